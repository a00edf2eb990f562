"""Command line: python -m genjax.main --config=configs/<method>.py[:preset] --workdir=DIR.

Kept short on purpose (as flax/examples do): all the work is in genjax.train, importable from your code.
"""

import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from genjax import train
from genjax.cli import parse_flags, user_errors

_CONFIG = config_flags.DEFINE_config_file("config", None, "Method config file, e.g. configs/vaegan.py:cifar10.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, TensorBoard events and results.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() (multi-host TPU pods).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if _MULTIHOST.value:
    jax.distributed.initialize()
  logging.get_absl_handler().addFilter(lambda record: "/orbax/" not in record.pathname)  # chatty at INFO
  logging.info("JAX devices: %s", jax.devices())
  with user_errors(sys.argv):
    config = _CONFIG.value
    train.train_and_evaluate(config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
