"""Command line: python -m genjax.main --config=configs/<method>.py[:preset] --workdir=DIR [--mode=...].

  --mode=train (default)                 train, resuming from DIR's latest checkpoint; evaluate as config.eval says
  --mode=eval [--checkpoint=best]        evaluate DIR's latest (or best) checkpoint -> DIR/eval.json
  --mode=sample --num_samples=N          N samples of that checkpoint -> DIR/samples_<checkpoint>_<step>.png/.npz

Kept short on purpose (as flax/examples do): all the work is in genjax.train and genjax.modes, importable
from your code. Library logs are hidden unless --verbosity is given (e.g. --verbosity=0 for INFO).
"""

import json
import os
import sys

from absl import app, flags
from ml_collections import config_flags

from genjax.cli import config_value, parse_flags, user_errors  # light: a bad flag is answered at once
from genjax import host_memory

_CONFIG = config_flags.DEFINE_config_file("config", None, "Method config: configs/<method>.py[:preset] or "
                                          "<method>[:preset], e.g. vaegan:cifar10.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, TensorBoard events and results.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "sample"], "Train, evaluate or sample a checkpoint.")
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "latest", ["latest", "best"],
                                "--mode=eval/sample: the latest checkpoint, or the best by config.eval.best_metric.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "--mode=sample: how many images.", lower_bound=1)
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Start JAX's multi-process runtime with the cluster's own settings "
                                "(jax.distributed.initialize(): TPU pods, SLURM, ...).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0, for a run of several "
                                   "processes (with --num_processes and --process_id).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.", lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process, 0 .. num_processes - 1.", lower_bound=0)
flags.mark_flags_as_required(["config", "workdir"])
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "genjax", "xla")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from genjax import progress  # pylint: disable=import-outside-toplevel
  progress.quiet_libraries(verbose=flags.FLAGS["verbosity"].present)
  config = config_value(_CONFIG, sys.argv)
  with user_errors():
    import jax  # pylint: disable=import-outside-toplevel
    # A re-run or resume of the same config compiles nothing again (JAX_COMPILATION_CACHE_DIR to move it).
    jax.config.update("jax_compilation_cache_dir", os.environ.get("JAX_COMPILATION_CACHE_DIR", CACHE))
    if _MULTIHOST.value or _COORDINATOR.value:
      from genjax import parallel  # pylint: disable=import-outside-toplevel
      parallel.initialize_processes(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    from genjax import validation  # pylint: disable=import-outside-toplevel
    validation.validate(config)  # before data and networks load: errors come fast
    from genjax import modes, train  # pylint: disable=import-outside-toplevel
    if _MODE.value == "train":
      train.train_and_evaluate(config, _WORKDIR.value)
    elif _MODE.value == "eval":
      print(json.dumps(modes.evaluate_checkpoint(config, _WORKDIR.value, _CHECKPOINT.value)["eval"], indent=2))
    else:
      paths = modes.sample_checkpoint(config, _WORKDIR.value, _NUM_SAMPLES.value, _CHECKPOINT.value)
      print(f"wrote {paths['png']} and {paths['npz']}")


if __name__ == "__main__":
  host_memory.keep_step_memory()  # Before JAX starts its threads: see genjax/host_memory.py.
  app.run(main, flags_parser=parse_flags)
