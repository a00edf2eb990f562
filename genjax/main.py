"""Command line: python -m genjax.main --config=configs/<method>.py[:preset] --workdir=DIR [--mode=...].

  --mode=train (default)                 train, resuming from DIR's latest checkpoint; evaluate as config.eval says
  --mode=eval [--checkpoint=best]        evaluate DIR's latest (or best) checkpoint -> DIR/eval.json
  --mode=sample --num_samples=N          N samples of that checkpoint -> DIR/samples_<checkpoint>_<step>.png/.npz

Kept short on purpose (as flax/examples do): all the work is in genjax.train, importable from your code.
"""

import json
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from genjax import train
from genjax.cli import config_value, parse_flags, user_errors

_CONFIG = config_flags.DEFINE_config_file("config", None, "Method config file, e.g. configs/vaegan.py:cifar10.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, TensorBoard events and results.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "sample"], "Train, evaluate or sample a checkpoint.")
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "latest", ["latest", "best"],
                                "--mode=eval/sample: the latest checkpoint, or the best by config.eval.best_metric.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "--mode=sample: how many images.", lower_bound=1)
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() (multi-host TPU pods).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if _MULTIHOST.value:
    jax.distributed.initialize()
  logging.get_absl_handler().addFilter(lambda record: "/orbax/" not in record.pathname)  # chatty at INFO
  logging.info("JAX devices: %s", jax.devices())
  config = config_value(_CONFIG, sys.argv)
  workdir = _WORKDIR.value
  with user_errors():
    if _MODE.value == "train":
      train.train_and_evaluate(config, workdir)
    elif _MODE.value == "eval":
      print(json.dumps(train.evaluate_checkpoint(config, workdir, _CHECKPOINT.value)["eval"], indent=2))
    else:
      paths = train.sample_checkpoint(config, workdir, _NUM_SAMPLES.value, _CHECKPOINT.value)
      print(f"wrote {paths['png']} and {paths['npz']}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
