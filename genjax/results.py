"""A run's record in its workdir: metrics.json, written at the end of every run and never losing what an
earlier run of the same workdir recorded."""

import contextlib
import json
import os
from typing import Any

import jax

from genjax.errors import ConfigError
from genjax.figures import draw
from genjax.state import count_params

RESULTS_FILE = "metrics.json"
# What only a run that trained knows: kept from the earlier record when a later run only evaluates.
TRAINING_RECORD = ("train", "steps_per_sec", "images_per_sec", "host_memory_mb")


def read(workdir: str) -> dict[str, Any] | None:
  try:
    with open(os.path.join(workdir, RESULTS_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def recorded_evaluation(workdir: str, step: int) -> dict[str, Any] | None:
  """The evaluation setup metrics.json records for `step` (None if it records another step or none)."""
  record = read(workdir)
  return record.get("eval_setup") if record and record.get("step") == step and "eval" in record else None


def write(workdir: str, config, state, grids: dict, summary: dict | None, evaluation: dict, steps_per_sec,
          checkpoints: str, extra: dict[str, Any]) -> None:
  """The grids as PNGs and metrics.json; `summary` None (this process trained no step) keeps the earlier
  record's training figures."""
  if jax.process_index() != 0:
    return
  for name, grid in grids.items():
    draw.save_png(os.path.join(workdir, f"{name}.png"), grid)
  record = {
      "method": config.method, "dataset": config.data.name, "step": int(jax.device_get(state.step)),
      "train": summary or {}, "eval": evaluation, "steps_per_sec": steps_per_sec,
      "images_per_sec": steps_per_sec * config.batch_size if steps_per_sec else None,
      "num_params": {net: count_params(p) for net, p in state.params.items()},
      "checkpoints": checkpoints,
      **extra,
  }
  earlier = read(workdir)
  if summary is None and earlier:
    record.update({key: earlier[key] for key in TRAINING_RECORD if key in earlier})
  path = os.path.join(workdir, RESULTS_FILE)
  with open(path + ".tmp", "w") as f:
    json.dump(record, f, indent=2)
  os.replace(path + ".tmp", path)  # a run killed while writing leaves the earlier record whole


@contextlib.contextmanager
def removed_if_left_empty(workdir: str):
  """Removes `workdir` again if it did not exist and an error leaves it empty."""
  existed = os.path.exists(workdir)
  try:
    yield
  except BaseException:
    if not existed and os.path.isdir(workdir) and not os.listdir(workdir):
      os.rmdir(workdir)
    raise


def make_writable(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".genjax_write_test")
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"workdir {workdir!r} is not writable: {e.strerror}") from None


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  """A nested config as {dotted key: scalar} (TensorBoard's hparams)."""
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(flatten(value, name + "."))
    else:
      flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
  return flat
