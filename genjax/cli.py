"""What every genjax command shares: user mistakes reported as one line and a non-zero exit."""

import contextlib
import re
import sys

from absl import flags

from genjax.errors import GenjaxError


def _fail(message) -> None:
  print(f"genjax: error: {message}", file=sys.stderr)
  sys.exit(2)


@contextlib.contextmanager
def user_errors():
  """Reports the user's mistakes (GenjaxError, a bad flag) as one line `genjax: error: ...`, exit status 2.

  Anything else is a bug and keeps its traceback.
  """
  try:
    yield
  except (GenjaxError, flags.Error) as e:
    _fail(e)


@contextlib.contextmanager
def config_errors(argv: list[str]):
  """config_flags' errors (unreadable file, override of a key the config lacks) in one line, exit 2.

  Wraps the flag parsing and the first read of the config flag's value (config_flags loads lazily).
  """
  with user_errors():
    try:
      yield
    except OSError:  # config_flags could not open the config file
      given = [a.split("=", 1)[1].split(":")[0] for a in argv if a.startswith("--config=")]
      _fail(f"cannot read the config file {given[0] if given else ''!r}: "
            "pass --config=configs/<method>.py[:preset]")
    except (AttributeError, KeyError) as e:
      text = str(e).replace("\\", "")  # the message arrives repr-escaped
      overrides = [a.split("=")[0][len("--config."):] for a in argv if a.startswith("--config.")]
      named = lambda part: re.search(rf"'{re.escape(part)}'", text)  # ml_collections quotes the missing key
      given = [o for o in overrides if named(o.split(".")[-1])] or [o for o in overrides if any(map(named, o.split(".")))]
      hint = re.search(r'Did you mean "([^"]+)"', text)
      _fail(f"unknown config key {(given[0] if given else text.splitlines()[0])!r}"
            f"{f' (did you mean {hint[1]!r}?)' if hint else ''}: see the config file for the keys it has")


def config_value(config_flag, argv: list[str]):
  """The ConfigDict of a config_flags flag, loaded now so that its errors are reported in one line."""
  with config_errors(argv):
    config = config_flag.value
    config.keys()  # config_flags returns a lazy stand-in that raises its loading error on first use
  return config


def parse_flags(argv: list[str]) -> list[str]:
  with config_errors(argv):
    return flags.FLAGS(argv)
