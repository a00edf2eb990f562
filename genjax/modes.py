"""Using a trained workdir: restore its checkpoint (--mode=eval, --mode=sample, genjax.figures).

  restore_checkpoint(config, workdir)           -> (method, state) of the latest (or best) checkpoint
  evaluate_checkpoint(config, workdir)          -> evaluates it as config.eval says; writes eval.json
  sample_checkpoint(config, workdir, num)       -> num samples as a PNG grid and an .npz
"""

import json
import os
from typing import Any

import jax
import numpy as np
from absl import logging

from genjax import data, methods, parallel, streams, validation
from genjax.checkpoint import Checkpointer
from genjax.errors import CheckpointError, ConfigError
from genjax.evaluation import evaluator as evaluation
from genjax.figures import draw

NUM_HELD_OUT = 32  # the held-out images of the reconstruction grids


def run_meta(config, image_shape) -> dict[str, Any]:
  """A checkpoint's identity: method, image shape and config (read before any array)."""
  return {"method": config.method, "image_shape": list(image_shape), "config": json.loads(config.to_json())}


def held_out_batch(config) -> dict[str, np.ndarray]:
  """The first images of the eval split, the same on every host: the reconstruction grid's originals, and
  (its first example) the example batch networks are built from, so every feature (label, attributes,
  condition) a dataset has reaches `init_state` with its true shape."""
  held_out = data.create_dataset(config.data, batch_size=NUM_HELD_OUT, seed=config.seed,
                                 split=config.data.eval_split, train=False, process_index=0, process_count=1)
  return next(iter(held_out))


def init_or_restore(method, config, example, mesh, checkpointer):
  """The method's initial state, replicated over the mesh, with `checkpointer`'s latest checkpoint in it."""
  state = method.init_state(config, jax.random.PRNGKey(config.seed), example)
  state = checkpointer.restore(parallel.replicate(state, mesh))
  if int(jax.device_get(state.step)) > 0:
    logging.info("resumed from %s at step %d", checkpointer.directory, int(jax.device_get(state.step)))
  return state


def restore_checkpoint(config, workdir: str, checkpoint: str = "latest", *, mesh=None):
  """(method, state) of `workdir`'s latest checkpoint, or of its best one (`checkpoint="best"`)."""
  mesh = mesh or parallel.make_mesh()
  validation.validate(config, num_devices=mesh.size)
  subdirs = {"latest": "checkpoints", "best": evaluation.BEST_DIR}
  if checkpoint not in subdirs:
    raise ConfigError(f"checkpoint must be 'latest' or 'best', got {checkpoint!r}")
  method = methods.get_method(config.method)
  checkpointer = Checkpointer(workdir, run_meta(config, data.image_shape(config.data)), subdir=subdirs[checkpoint])
  try:
    if checkpointer.latest_step() is None:
      how = " (kept when eval.best_metric is set)" if checkpoint == "best" else ""
      raise CheckpointError(f"no {checkpoint} checkpoint{how} in {checkpointer.directory}: train one first "
                            f"with the same --config and --workdir")
    example = {k: v[:1] for k, v in held_out_batch(config).items()}
    state = init_or_restore(method, config, example, mesh, checkpointer)
  finally:
    checkpointer.close()
  return method, state


def evaluate_checkpoint(config, workdir: str, checkpoint: str = "latest", *, mesh=None) -> dict[str, Any]:
  """--mode=eval: evaluates a checkpoint of `workdir` as config.eval says; writes and returns eval.json."""
  mesh = mesh or parallel.make_mesh()
  method, state = restore_checkpoint(config, workdir, checkpoint, mesh=mesh)
  evaluator = evaluation.Evaluator(method, config, mesh)
  results = {"method": config.method, "dataset": config.data.name, "step": int(jax.device_get(state.step)),
             "checkpoint": checkpoint, "eval": evaluator(state), "eval_setup": evaluator.setup()}
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "eval.json"), "w") as f:
      json.dump(results, f, indent=2)
  return results


def sample_checkpoint(config, workdir: str, num_samples: int, checkpoint: str = "latest", *,
                      mesh=None) -> dict[str, str]:
  """--mode=sample: `num_samples` images of a checkpoint as a PNG grid and an .npz ("images", float32 in
  [-1, 1], NHWC) in `workdir`; returns their paths."""
  mesh = mesh or parallel.make_mesh()
  if num_samples < 1:
    raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
  method, state = restore_checkpoint(config, workdir, checkpoint, mesh=mesh)
  if method.generate is None:
    raise ConfigError(f"method {config.method!r} does not generate images: nothing to sample")
  generate = evaluation.compile_generate(method, config.eval.batch_size or config.batch_size, mesh)
  rng = streams.key(config.seed, "sample_mode")
  images = np.concatenate(list(evaluation.generated_batches(generate, state, rng, num_samples)))
  stem = os.path.join(workdir, f"samples_{checkpoint}_{int(jax.device_get(state.step))}")
  paths = {"png": stem + ".png", "npz": stem + ".npz"}
  if jax.process_index() == 0:
    draw.save_png(paths["png"], draw.image_grid(images))
    np.savez(paths["npz"], images=images.astype(np.float32))
  return paths
