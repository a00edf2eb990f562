"""train_and_evaluate(config, workdir): the one loop every method shares; evaluate_checkpoint and
sample_checkpoint: --mode=eval and --mode=sample on a trained workdir.

The loop knows the method contract (init_state, make_train_step, generate, optional reconstruct) and
nothing else about a method: adding one never changes this file. What is evaluated (config.eval) is
genjax.evaluation.evaluator's business.
"""

import json
import os
import signal
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, metrics as clu_metrics, periodic_actions

from genjax import config_lib, data, methods, parallel, viz
from genjax.checkpoint import Checkpointer
from genjax.errors import CheckpointError, ConfigError, NonFiniteError
from genjax.evaluation import evaluator as evaluation
from genjax.state import TrainState, count_params

try:
  import resource  # the peak RSS in metrics.json; Unix only
except ImportError:
  resource = None

NUM_RECONSTRUCTIONS = 32
SKIPPED = "nonfinite_skipped"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *, mesh=None) -> TrainState:
  """Trains `config.method` in `workdir`, resuming from its latest checkpoint; returns the final state."""
  mesh = mesh or parallel.make_mesh()
  config_lib.validate(config, num_devices=mesh.size)
  method = methods.get_method(config.method)
  image_shape = data.image_shape(config.data)
  meta = _run_meta(config, image_shape)
  checkpointer = Checkpointer(workdir, meta, keep=config.train.keep_checkpoints)
  checkpointer.check_compatible()  # before anything is written
  evaluator = evaluation.Evaluator(method, config, mesh)  # a missing extractor fails before training
  _make_writable(workdir)

  held_out = _held_out_batch(config)
  state = _init_or_restore(method, config, {k: v[:1] for k, v in held_out.items()}, mesh, checkpointer)
  start_step, num_steps = int(jax.device_get(state.step)), config.train.num_steps
  batches = parallel.prefetch(data.create_dataset(
      config.data, batch_size=config.batch_size // jax.process_count(), seed=config.seed,
      skip_batches=start_step), mesh)
  train_step = compile_train_step(method, config, mesh, state)
  visuals = Visuals(method, config, mesh, held_out)

  writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0,
                                                asynchronous=True)
  if start_step == 0:
    writer.write_hparams(_flatten(config.to_dict()))
  if start_step < num_steps:
    logging.info("%s: training steps %d..%d in %s", config.method, start_step + 1, num_steps, workdir)
  else:
    logging.info("%s: already trained to step %d in %s", config.method, start_step, workdir)
  best = evaluation.BestCheckpoint(workdir, meta, config) if config.eval.best_metric else None

  def evaluate_now(state):
    # The checkpoint just written goes to disk first: the evaluation's reads never race the writer thread
    # (tfds.testing.mock_data redirects every file access while it is active, that thread's included).
    checkpointer.wait()
    return evaluation.report(evaluator, state, writer, best)

  stop = _StopOnSignal()
  try:
    state, summary, timer, memory = _train(state, train_step, batches, config, writer, visuals, checkpointer,
                                           stop, evaluate_now)
    if stop.requested:
      logging.warning("stopped early: no final evaluation (run --mode=eval on this workdir for one)")
    jax.block_until_ready(state)
    steps_per_sec = timer.steps_per_sec()  # of training alone, before the final evaluation
    results = {} if stop.requested else evaluate_now(state)
    _write_results(workdir, config, state, visuals, summary, results, steps_per_sec, checkpointer,
                   {"eval_setup": evaluator.setup(), "best": best.best if best else None,
                    "host_memory_mb": memory.report()})
  finally:  # also after an error: finish pending checkpoint writes and event files
    stop.restore()
    checkpointer.close()
    if best:
      best.close()
    writer.close()
  return state


def _train(state, train_step, batches, config, writer, visuals, checkpointer, stop, evaluate_now):
  """Steps until train.num_steps (or a stop request), with the periodic side effects (the evaluation at
  the last step is the caller's)."""
  start_step, cfg = int(jax.device_get(state.step)), config.train
  progress = periodic_actions.ReportProgress(num_train_steps=cfg.num_steps, writer=writer,
                                             every_steps=cfg.log_every)
  timer, memory, summary, pending = _StepTimer(), _HostMemory(), {}, None
  for step in range(start_step + 1, cfg.num_steps + 1):
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      state, metrics = train_step(state, next(batches))
    pending = _accumulate(pending, metrics)
    progress(step)
    timer.tick(step, metrics)
    last = step == cfg.num_steps or stop.requested
    if step % cfg.log_every == 0 or last:
      summary = _checked_summary(pending, step)
      if summary.get(SKIPPED):
        logging.warning("skipped %d non-finite update(s) by step %d", round(float(pending[SKIPPED].total)), step)
      writer.write_scalars(step, {**summary, **memory.log(step)})
      pending = None
    if (step % cfg.image_every == 0 or last) and (grids := visuals.grids(state)):
      writer.write_images(step, grids)
    if step % cfg.checkpoint_every == 0 or last:
      if pending is not None:
        _checked_summary(pending, step)  # never checkpoint a non-finite state
      checkpointer.save(state)
    if config.eval.every and step % config.eval.every == 0 and not last:
      started = time.perf_counter()
      evaluate_now(state)
      timer.exclude(time.perf_counter() - started)
    if stop.requested:
      logging.warning("stop requested: checkpoint written at step %d", step)
      break
  return state, summary, timer, memory


def skip_nonfinite(train_step):
  """`train_step` that drops an update whose metrics (every loss term and gradient norm) are not all finite.

  A dropped update leaves params, optimizer and method state as they were, but the step still advances
  (so does the data), and `metrics["nonfinite_skipped"]` is 1; the loop averages the other metrics over
  the steps that were kept.
  """
  def guarded(state: TrainState, batch):
    new, metrics = train_step(state, batch)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(metrics)]))
    kept = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, state).replace(step=new.step)
    return kept, {**metrics, SKIPPED: 1.0 - finite.astype(jnp.float32)}
  return guarded


def compile_train_step(method, config, mesh, state: TrainState):
  """The method's step under jit: batch sharded over the mesh, state replicated and donated."""
  state_sharding = jax.tree.map(lambda _: parallel.replicated(mesh), state)
  step = method.make_train_step(config)
  if config.train.on_nonfinite == "skip":
    step = skip_nonfinite(step)
  return jax.jit(step,
                 in_shardings=(state_sharding, parallel.batch_sharding(mesh)),
                 out_shardings=(state_sharding, parallel.replicated(mesh)),
                 donate_argnums=0)


def _init_or_restore(method, config, example, mesh, checkpointer) -> TrainState:
  state = method.init_state(config, jax.random.PRNGKey(config.seed), example)
  state = checkpointer.restore(parallel.replicate(state, mesh))
  if int(jax.device_get(state.step)) > 0:
    logging.info("resumed from %s at step %d", checkpointer.directory, int(jax.device_get(state.step)))
  return state


def _held_out_batch(config) -> dict[str, np.ndarray]:
  """The first images of the eval split, the same on every host: the reconstruction grid's originals, and
  (its first example) the example batch networks are built from, so every feature (label, attributes,
  condition) a dataset has reaches `init_state` with its true shape."""
  held_out = data.create_dataset(config.data, batch_size=NUM_RECONSTRUCTIONS, seed=config.seed,
                                 split=config.data.eval_split, train=False, process_index=0, process_count=1)
  return next(iter(held_out))


class Visuals:
  """Fixed-noise samples, reconstructions of fixed held-out images, and the method's own grids (if any)."""

  def __init__(self, method, config, mesh, held_out):
    self.num_samples = config.train.num_image_samples
    self.noise_rng = jax.random.PRNGKey(config.seed + 1)
    self._generate = jax.jit(method.generate, static_argnums=2) if hasattr(method, "generate") else None
    self._sample_grids = jax.jit(method.sample_grids) if hasattr(method, "sample_grids") else None
    self._reconstruct = jax.jit(method.reconstruct) if hasattr(method, "reconstruct") else None
    self.originals = parallel.replicate(held_out["image"], mesh)

  def grids(self, state: TrainState) -> dict[str, np.ndarray]:
    grids = {}
    if self._generate:
      grids["samples"] = viz.image_grid(jax.device_get(self._generate(state, self.noise_rng, self.num_samples)))
    if self._reconstruct:
      recon = jax.device_get(self._reconstruct(state, self.originals))
      grids["reconstructions"] = viz.pairs_grid(jax.device_get(self.originals), recon)
    if self._sample_grids:
      for name, images in jax.device_get(self._sample_grids(state, self.noise_rng)).items():
        rows, cols = images.shape[:2]
        grids[name] = viz.image_grid(images.reshape((rows * cols,) + images.shape[2:]), ncols=cols)
    return grids


def evaluate(method, config, state: TrainState, mesh) -> dict[str, float]:
  """`method.evaluate(state, batch)` averaged over the whole eval split ({} if the method has none)."""
  return evaluation.method_metrics(method, config, state, mesh)


def restore_checkpoint(config, workdir: str, checkpoint: str = "latest", *, mesh=None):
  """(method, state) of `workdir`'s latest checkpoint, or of its best one (`checkpoint="best"`)."""
  mesh = mesh or parallel.make_mesh()
  config_lib.validate(config, num_devices=mesh.size)
  subdirs = {"latest": "checkpoints", "best": evaluation.BEST_DIR}
  if checkpoint not in subdirs:
    raise ConfigError(f"checkpoint must be 'latest' or 'best', got {checkpoint!r}")
  method = methods.get_method(config.method)
  checkpointer = Checkpointer(workdir, _run_meta(config, data.image_shape(config.data)), subdir=subdirs[checkpoint])
  try:
    if checkpointer.latest_step() is None:
      how = " (kept when eval.best_metric is set)" if checkpoint == "best" else ""
      raise CheckpointError(f"no {checkpoint} checkpoint{how} in {checkpointer.directory}: train one first "
                            f"with the same --config and --workdir")
    held_out = _held_out_batch(config)
    state = _init_or_restore(method, config, {k: v[:1] for k, v in held_out.items()}, mesh, checkpointer)
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
  if not hasattr(method, "generate"):
    raise ConfigError(f"method {config.method!r} does not generate images: nothing to sample")
  generate = evaluation.compile_generate(method, config.eval.batch_size or config.batch_size, mesh)
  rng = jax.random.PRNGKey(config.seed + 4)
  images = np.concatenate(list(evaluation.generated_batches(generate, state, rng, num_samples)))
  stem = os.path.join(workdir, f"samples_{checkpoint}_{int(jax.device_get(state.step))}")
  paths = {"png": stem + ".png", "npz": stem + ".npz"}
  if jax.process_index() == 0:
    viz.save_png(paths["png"], viz.image_grid(images))
    np.savez(paths["npz"], images=images.astype(np.float32))
  return paths


def _accumulate(pending, metrics: dict[str, jax.Array]):
  """Running averages (a clu Average per metric) without waiting for the device; a skipped update's
  metrics (see `skip_nonfinite`) are left out of the averages."""
  kept = jnp.reshape(metrics[SKIPPED] == 0, (1,)) if SKIPPED in metrics else None
  update = {k: clu_metrics.Average.from_model_output(v, mask=None if k == SKIPPED else kept)
            for k, v in metrics.items()}
  return update if pending is None else {k: pending[k].merge(update[k]) for k in update}


def _checked_summary(pending, step: int) -> dict[str, float]:
  """Averages since the last summary; raises NonFiniteError naming the term (and network) if one is not finite."""
  summary = {k: float(v.compute()) for k, v in pending.items() if int(v.count)}  # count 0: every update skipped
  bad = {k: v for k, v in summary.items() if not np.isfinite(v)}
  if bad:
    key, value = next(iter(bad.items()))
    where = f" in the gradient of network '{key.split('/', 1)[1]}'" if key.startswith("grad_norm/") else ""
    raise NonFiniteError(f"non-finite {key} = {value}{where} by step {step} (non-finite: {', '.join(bad)}); "
                         f"the last good checkpoint is kept — lower the learning rate or check the data")
  return summary


class _StepTimer:
  """Steps/s after the first (compiling) step of this process."""

  def __init__(self):
    self.t0, self.first, self.steps = None, None, 0

  def tick(self, step: int, metrics) -> None:
    if self.t0 is None:
      jax.block_until_ready(metrics)
      self.t0, self.first = time.perf_counter(), step
    self.steps = step - self.first

  def exclude(self, seconds: float) -> None:
    """Leaves `seconds` spent on something else (an evaluation) out of the rate."""
    if self.t0 is not None:
      self.t0 += seconds

  def steps_per_sec(self) -> float | None:
    if not self.steps:
      return None
    return self.steps / (time.perf_counter() - self.t0)


class _HostMemory:
  """This process's resident memory at each log (TensorBoard `host/rss_mb`): a long run shows whether it
  grows after the first steps; metrics.json keeps the first and last logged values and the peak."""

  def __init__(self):
    self.first = self.last = None

  def log(self, step: int) -> dict[str, float]:
    rss = host_rss_mb()
    if rss is None:
      return {}
    self.first = self.first or (step, rss)
    self.last = (step, rss)
    return {"host/rss_mb": rss}

  def report(self) -> dict[str, float] | None:
    if self.first is None:
      return None
    unit = 2**20 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = resource and round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / unit, 1)
    return {"first_log_step": self.first[0], "first_log": self.first[1], "last_log_step": self.last[0],
            "last_log": self.last[1], "peak": peak}


def host_rss_mb() -> float | None:
  """Resident set size of this process in MiB (Linux: /proc/self/statm), None where unavailable."""
  try:
    with open("/proc/self/statm") as f:
      pages = int(f.read().split()[1])
  except (OSError, ValueError, IndexError):
    return None
  return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _write_results(workdir, config, state, visuals, summary, eval_results, steps_per_sec, checkpointer,
                   extra) -> None:
  if jax.process_index() != 0:
    return
  jax.block_until_ready(state)
  for name, grid in visuals.grids(state).items():
    viz.save_png(os.path.join(workdir, f"{name}.png"), grid)
  results = {
      "method": config.method, "dataset": config.data.name, "step": int(jax.device_get(state.step)),
      "train": summary, "eval": eval_results, "steps_per_sec": steps_per_sec,
      "images_per_sec": steps_per_sec * config.batch_size if steps_per_sec else None,
      "num_params": {net: count_params(p) for net, p in state.params.items()},
      "checkpoints": checkpointer.directory,
      **extra,
  }
  with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump(results, f, indent=2)


def _run_meta(config, image_shape) -> dict[str, Any]:
  return {"method": config.method, "image_shape": list(image_shape), "config": json.loads(config.to_json())}


def _make_writable(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".genjax_write_test")
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"workdir {workdir!r} is not writable: {e.strerror}") from None


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(_flatten(value, name + "."))
    else:
      flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
  return flat


class _StopOnSignal:
  """SIGTERM (a preempted Colab runtime) or Ctrl-C asks the loop to checkpoint and stop after this step."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = False
    self._previous = {}
    try:
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    except ValueError:  # not the main thread: leave signals alone
      pass

  def _handle(self, signum, frame):
    del frame
    if self.requested and signum == signal.SIGINT:  # a second Ctrl-C: the user really wants out
      raise KeyboardInterrupt
    self.requested = True

  def restore(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
