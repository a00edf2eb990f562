"""What every genjax command shares: user mistakes reported as one line and a non-zero exit, and a quiet
start.

genjax never imports TensorFlow; where another library does, its C++ start-up logs ("Could not find cuda
drivers", oneDNN notices) are off unless --verbosity is given (commands import this module first).
"""

import contextlib
import os
import re
import sys

from absl import flags

from genjax.errors import GenjaxError
from genjax.interrupt import Interrupted

if not any(arg.startswith(("--verbosity", "-v")) for arg in sys.argv[1:]):
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
  except Interrupted:
    print("genjax: stopped without saving; the checkpoints already written are kept", file=sys.stderr)
    sys.exit(130)


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


HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, after `--help` (answered here, before anything heavy is imported, exit 0) and with
  `--config=<method>[:preset]` read as genjax's own configs/<method>.py."""
  if any(arg in HELP_FLAGS for arg in argv[1:]):
    print(help_text(sys.modules["__main__"].__doc__ or "", argv[1:]))
    sys.exit(0)
  argv = [resolve_config_arg(arg) for arg in argv]
  sys.argv[:] = argv  # config_flags reads overrides from sys.argv
  with config_errors(argv):
    return flags.FLAGS(argv)


def resolve_config_arg(arg: str) -> str:
  """`--config=vaegan:cifar10` → `--config=<genjax's configs>/vaegan.py:cifar10`; a path is kept, and one
  that names no file is refused here with the nearest config's name."""
  if not arg.startswith("--config="):
    return arg
  from genjax import config_lib  # pylint: disable=import-outside-toplevel  (light: no jax)
  name, sep, preset = arg[len("--config="):].partition(":")
  with user_errors():
    return f"--config={config_lib.config_file(name)}{sep}{preset}"


def help_text(doc: str, args) -> str:
  """The command's docstring, the configs with their presets, the override syntax and the flags."""
  from genjax import config_lib  # pylint: disable=import-outside-toplevel
  lines = [doc.strip(), "", "Methods (--config=configs/<method>.py[:preset], or --config=<method>[:preset]):"]
  for name in config_lib.config_names():
    try:
      presets = ", ".join(repr(p) for p in config_lib.load_module(name).PRESETS)
    except Exception as e:  # pylint: disable=broad-except  (a broken config file still shows in the list)
      presets = f"(cannot read: {type(e).__name__})"
    lines.append(f"  {name:<12} presets {presets}")
  lines += ["", "Any config value: --config.<key>=<value>, e.g. --config.train.num_steps=5000 "
            "--config.optim.discriminator.lr=1e-4 --config.data.image_size=64.", "",
            flags.FLAGS.main_module_help() if "--helpfull" not in args else flags.FLAGS.get_help()]
  return "\n".join(lines)
