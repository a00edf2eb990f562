"""Command line: python -m genjax.main --config=configs/<method>.py[:preset] --workdir=DIR.

Kept short on purpose (as flax/examples do): all the work is in genjax.train, importable from your code.
"""

import contextlib
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from genjax import train
from genjax.errors import GenjaxError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Method config file, e.g. configs/vaegan.py:cifar10.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, TensorBoard events and results.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() (multi-host TPU pods).")
flags.mark_flags_as_required(["config", "workdir"])


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
