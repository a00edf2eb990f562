"""python -m genjax.figures: every figure of a trained run (see genjax.figures.write)."""

import functools

from absl import app

from genjax.cli import parse_flags
from genjax.figures import write

if __name__ == "__main__":
  app.run(functools.partial(write.main, holders=write.define_flags()), flags_parser=parse_flags)
