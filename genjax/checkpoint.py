"""Orbax checkpoints of a TrainState plus the run's identity (method, config) in `workdir/checkpoints`.

Each checkpoint holds two items: "state" (every array of the TrainState: step, params, batch_stats,
opt_state, rng, extra) and "meta" (JSON: method, image shape, config). The meta is read before anything
is written, so a workdir that belongs to another method or shape is refused intact.
"""

import os
from typing import Any

from absl import logging
import jax
import orbax.checkpoint as ocp

from genjax.errors import CheckpointError
from genjax.state import TrainState

class UnreadableCheckpoint(CheckpointError):
  """A checkpoint that cannot be restored: partial or corrupt files, or networks of another config.

  Which of the two it was shows only when an older checkpoint of the same run restores fine.
  """

  def __init__(self, message: str, detail: str):
    super().__init__(message)
    self.detail = detail


_ARRAY_FIELDS = ("step", "params", "batch_stats", "opt_state", "rng", "extra")


def state_arrays(state: TrainState) -> dict[str, Any]:
  return {f: getattr(state, f) for f in _ARRAY_FIELDS}


def _shapes(tree) -> dict[str, tuple[int, ...] | None]:
  """{'params/encoder/Dense_0/kernel': shape} of a tree of arrays or of orbax array metadata."""
  return {jax.tree_util.keystr(path, simple=True, separator="/"):
          None if getattr(leaf, "shape", None) is None else tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


class Checkpointer:
  """Periodic, asynchronous, keep-N checkpoints with restore of the latest.

  `subdir` "checkpoints" holds the run's periodic checkpoints; the evaluator keeps the best one in "best".
  """

  def __init__(self, workdir: str, meta: dict[str, Any], keep: int = 3, subdir: str = "checkpoints"):
    self.directory = os.path.join(os.path.abspath(workdir), subdir)
    self.meta = meta
    # A run killed while writing leaves a tmp directory that orbax never lists as a step; clean it up.
    # Only where there is a directory: orbax cleans up in a thread, which a process that ends at once
    # (`--mode=eval` on an empty workdir) would otherwise leave raising at interpreter shutdown.
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=False, enable_async_checkpointing=True,
                                           cleanup_tmp_directories=os.path.isdir(self.directory))
    self._manager = ocp.CheckpointManager(
        self.directory, options=options,  # handlers named up front, so the state's metadata can be read alone
        item_handlers={"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()})

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def check_compatible(self) -> None:
    """Raises CheckpointError if the newest readable checkpoint is of another method or image shape."""
    for step in self._steps_newest_first():
      try:
        saved = self._read_meta(step)
      except CheckpointError:
        continue  # unreadable: restore() falls back past it
      for key in ("method", "image_shape"):
        if saved.get(key) != self.meta[key]:
          raise CheckpointError(
              f"{self.directory} holds a checkpoint (step {step}) with {key}={saved.get(key)!r}, but this "
              f"run has {key}={self.meta[key]!r}; use another --workdir or delete that directory")
      return

  def restore(self, state: TrainState) -> TrainState:
    """The newest readable checkpoint into `state`'s structure and shardings, or `state` if there is none.

    A checkpoint that cannot be read (a partial or corrupt write) is reported in one line and the previous
    one is used; the unreadable ones are then moved aside to `checkpoints/unreadable-<step>` (kept for
    inspection, out of the way of new saves). If none is readable, nothing is moved and the error is raised.
    """
    self.check_compatible()
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_arrays(state))
    unreadable = []
    for step in self._steps_newest_first():
      try:
        restored = self._restore_state(step, target)
      except UnreadableCheckpoint as e:
        logging.warning("checkpoint at step %d is unreadable (%s); trying the previous one", step, e.detail)
        unreadable.append((step, e))
        continue
      for bad_step, _ in unreadable:
        self._move_aside(bad_step)
      return state.replace(**restored)
    if unreadable:
      raise unreadable[0][1]
    return state

  def save(self, state: TrainState, extra_meta: dict[str, Any] | None = None) -> None:
    """Saves `state` with the run's meta (plus `extra_meta`, e.g. the evaluation that made it the best)."""
    os.makedirs(self.directory, exist_ok=True)
    step = int(jax.device_get(state.step))
    meta = {**self.meta, **(extra_meta or {})}
    self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state_arrays(state)),
                                                     meta=ocp.args.JsonSave(meta)), force=True)

  def latest_meta(self) -> dict[str, Any] | None:
    """The meta of the newest readable checkpoint (None if there is none)."""
    for step in self._steps_newest_first():
      try:
        return self._read_meta(step)
      except CheckpointError:
        continue
    return None

  def wait(self) -> None:
    """Blocks until the pending asynchronous writes are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def _steps_newest_first(self) -> list[int]:
    return sorted(self._manager.all_steps(), reverse=True)

  def _restore_state(self, step: int, target) -> dict[str, Any]:
    self._read_meta(step)
    self._check_shapes(step, target)
    try:
      return self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))["state"]
    except Exception as e:  # a partial or corrupt write, or networks of another config
      detail = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
      raise UnreadableCheckpoint(
          f"checkpoint at step {step} in {self.directory} cannot be restored into this config's networks "
          f"({detail}); use the config it was written with, or another --workdir", detail) from None

  def _check_shapes(self, step: int, target) -> None:
    """Refuses, before reading any array, a checkpoint whose arrays differ from `target`'s (networks of
    another config): a failed restore part-way would leave orbax's pending reads printing tracebacks."""
    try:
      saved = _shapes(self._manager.item_metadata(step)["state"])
    except Exception as e:  # unreadable metadata: a partial or corrupt write
      detail = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
      raise UnreadableCheckpoint(f"checkpoint at step {step} in {self.directory} is unreadable ({detail}); "
                                 f"use another --workdir", detail) from None
    wanted = _shapes(target)
    for name in sorted(saved.keys() | wanted.keys()):
      there, here = saved.get(name, "absent"), wanted.get(name, "absent")
      if there != here and None not in (there, here):  # orbax records no shape for some scalars
        raise CheckpointError(
            f"checkpoint at step {step} in {self.directory} does not match this config's networks: {name} "
            f"is {there} there and {here} here (did a model or optimizer key change?); use the config it "
            f"was written with, or another --workdir")

  def _move_aside(self, step: int) -> None:
    os.replace(os.path.join(self.directory, str(step)), os.path.join(self.directory, f"unreadable-{step}"))
    self._manager.reload()

  def _read_meta(self, step: int) -> dict[str, Any]:
    try:
      return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as e:  # a partial write, or a checkpoint that is not ours
      raise UnreadableCheckpoint(f"checkpoint at step {step} in {self.directory} is unreadable "
                                 f"({type(e).__name__}); use another --workdir", type(e).__name__) from None
