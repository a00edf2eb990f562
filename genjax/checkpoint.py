"""Orbax checkpoints of a TrainState plus the run's identity (method, config) in `workdir/checkpoints`.

Each checkpoint holds two items: "state" (every array of the TrainState: step, params, batch_stats,
opt_state, rng, extra) and "meta" (JSON: method, image shape, config). The meta is read before anything
is written, so a workdir that belongs to another method or shape is refused intact.
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from genjax.errors import CheckpointError
from genjax.state import TrainState

_ARRAY_FIELDS = ("step", "params", "batch_stats", "opt_state", "rng", "extra")


def state_arrays(state: TrainState) -> dict[str, Any]:
  return {f: getattr(state, f) for f in _ARRAY_FIELDS}


class Checkpointer:
  """Periodic, asynchronous, keep-N checkpoints with restore of the latest."""

  def __init__(self, workdir: str, meta: dict[str, Any], keep: int = 3):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self.meta = meta
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=False,
                                           enable_async_checkpointing=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def check_compatible(self) -> None:
    """Raises CheckpointError if the latest checkpoint is of another method or image shape."""
    step = self.latest_step()
    if step is None:
      return
    saved = self._read_meta(step)
    for key in ("method", "image_shape"):
      if saved.get(key) != self.meta[key]:
        raise CheckpointError(
            f"{self.directory} holds a checkpoint (step {step}) with {key}={saved.get(key)!r}, but this "
            f"run has {key}={self.meta[key]!r}; use another --workdir or delete that directory")

  def restore(self, state: TrainState) -> TrainState:
    """The latest checkpoint into `state`'s structure and shardings, or `state` if there is none."""
    step = self.latest_step()
    if step is None:
      return state
    self.check_compatible()
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_arrays(state))
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    except (ValueError, KeyError, TypeError) as e:
      raise CheckpointError(
          f"checkpoint at step {step} in {self.directory} does not fit this config's networks "
          f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); use another --workdir") from None
    return state.replace(**restored["state"])

  def save(self, state: TrainState) -> None:
    os.makedirs(self.directory, exist_ok=True)
    step = int(jax.device_get(state.step))
    self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state_arrays(state)),
                                                     meta=ocp.args.JsonSave(self.meta)), force=True)

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def _read_meta(self, step: int) -> dict[str, Any]:
    try:
      return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as e:  # a checkpoint without readable meta is not ours
      raise CheckpointError(f"{self.directory} holds a checkpoint (step {step}) that genjax cannot read "
                            f"({type(e).__name__}); use another --workdir") from None
