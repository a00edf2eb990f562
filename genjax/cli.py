"""What every genjax command shares: user mistakes reported as one line and a non-zero exit."""

import contextlib
import sys

from absl import flags

from genjax.errors import GenjaxError


@contextlib.contextmanager
def user_errors(argv: list[str]):
  """Reports the user's mistakes as one line `genjax: error: ...` and exit status 2."""
  def fail(message):
    print(f"genjax: error: {message}", file=sys.stderr)
    sys.exit(2)

  try:
    yield
  except (GenjaxError, flags.Error) as e:
    fail(e)
  except OSError:  # config_flags could not open the config file
    given = [a.split("=", 1)[1].split(":")[0] for a in argv if a.startswith("--config=")]
    fail(f"cannot read the config file {given[0] if given else ''!r}: pass --config=configs/<method>.py[:preset]")
  except (AttributeError, KeyError) as e:  # config_flags: an override of a key the config does not have
    key = str(e).strip("'\"")
    given = [a.split("=")[0][2:] for a in argv if a.startswith("--config.") and key in a.split("=")[0].split(".")]
    fail(f"unknown config key {given[0] if given else key!r}: see the config file for the keys it has")


def parse_flags(argv: list[str]) -> list[str]:
  with user_errors(argv):
    return flags.FLAGS(argv)
