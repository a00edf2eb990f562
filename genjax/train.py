"""train_and_evaluate(config, workdir): the one loop every method shares.

The loop knows the method contract (genjax.core.method) and nothing else about a method: restore-or-init,
then step after step (next batch → the jitted train step), with periodic actions — summaries to
TensorBoard and the progress display, sample grids, checkpoints, evaluations — and at the end an
evaluation, the grids as PNGs and metrics.json. A run that is already finished is not trained again.
"""

import dataclasses
import time

import jax
import jax.numpy as jnp
from clu import metrics as clu_metrics

from genjax import data, methods, modes, parallel, pretrained, progress, results, validation, writers
from genjax.checkpoint import Checkpointer
from genjax.errors import NonFiniteError
from genjax.evaluation import evaluator as evaluation
from genjax.figures.write import Visuals
from genjax.interrupt import StopOnSignal
from genjax.state import TrainState

SKIPPED = "nonfinite_skipped"


def train_and_evaluate(config, workdir: str, *, mesh=None) -> TrainState:
  """Trains `config.method` in `workdir`, resuming from its latest checkpoint; returns the final state.

  The method's prerequisites (discreg's classifier) are trained first when the config allows it.
  """
  mesh = mesh or parallel.make_mesh()
  validation.validate(config, num_devices=mesh.size)
  method = methods.get_method(config.method)
  train_prerequisites(method, config, mesh)
  with results.removed_if_left_empty(workdir):
    run = Run.open(method, config, workdir, mesh)
  try:
    if run.finished_before():
      run.progress.note(f"already trained to step {config.train.num_steps} and evaluated: nothing to do "
                        f"(results in {workdir}/metrics.json)")
      return run.state
    if run.start_step >= config.train.num_steps:
      run.progress.note(f"already trained to step {run.start_step}: evaluating it again")
      return run.finish(run.state, summary=None, interrupted=False)
    state, summary = train(run)
    return run.finish(state, summary, interrupted=run.stop.requested)
  finally:
    run.close()


def train_prerequisites(method, config, mesh=None) -> None:
  """Trains (or finishes training) the runs `method` needs first that the config allows training, each
  through this loop, one after the other; a prerequisite it may not train is the method's init's to refuse,
  naming the command that trains it."""
  for prerequisite in (method.prerequisites(config) if method.prerequisites else ()):
    if prerequisite.config is None:
      continue
    if (pretrained.latest_step(prerequisite.workdir) or 0) < prerequisite.config.train.num_steps:
      train_and_evaluate(prerequisite.config, prerequisite.workdir, mesh=mesh)


@dataclasses.dataclass
class Run:
  """One training run's context: what the loop reads and writes besides the state."""
  method: object
  config: object
  workdir: str
  mesh: object
  state: TrainState
  checkpointer: Checkpointer
  evaluator: evaluation.Evaluator
  best: evaluation.BestCheckpoint | None
  visuals: Visuals
  progress: progress.Progress
  memory: progress.HostMemory
  stop: StopOnSignal
  batches: object  # this host's training batches from the restored step on (numpy)
  start_step: int  # the restored state's step
  _writer: object = None

  @property
  def writer(self):
    """TensorBoard (and log) writer, made on first use: a finished run that is re-run writes nothing."""
    if self._writer is None:
      self._writer = writers.create_writer(self.workdir, just_logging=jax.process_index() > 0)
      if self.start_step == 0:
        self._writer.write_hparams(results.flatten(self.config.to_dict()))
    return self._writer

  @classmethod
  def open(cls, method, config, workdir, mesh) -> "Run":
    image_shape = data.image_shape(config.data)
    meta = modes.run_meta(config, image_shape)
    checkpointer = Checkpointer(workdir, meta, keep=config.train.keep_checkpoints)
    checkpointer.check_compatible()  # before anything is written
    held_out = modes.held_out_batch(config)  # an unprepared dataset fails before the workdir is made
    evaluator = evaluation.Evaluator(method, config, mesh)  # a missing extractor fails before training
    results.make_writable(workdir)
    state = modes.init_or_restore(method, config, {k: v[:1] for k, v in held_out.items()}, mesh, checkpointer)
    start = int(jax.device_get(state.step))
    # Made here, also for a finished run, so that a misspelt training split is refused on every run.
    batches = data.create_dataset(config.data, batch_size=config.batch_size // jax.process_count(),
                                  seed=config.seed, skip_batches=start)
    best = evaluation.BestCheckpoint(workdir, meta, config) if config.eval.best_metric else None
    return cls(method, config, workdir, mesh, state, checkpointer, evaluator, best,
               Visuals(method, config, mesh, held_out),
               progress.Progress(config.method, start, config.train.num_steps, method.progress,
                                 quiet=jax.process_index() > 0),
               progress.HostMemory(), StopOnSignal(), batches, start)

  def finished_before(self) -> bool:
    """Trained to its last step, and evaluated as this config asks (by an earlier run of it)."""
    return (self.start_step >= self.config.train.num_steps
            and results.recorded_evaluation(self.workdir, self.config.train.num_steps) == self.evaluator.setup())

  def evaluate(self, state) -> dict[str, float]:
    # The checkpoint just written goes to disk first: the evaluation's reads never race the writer thread
    # (tfds.testing.mock_data redirects every file access while it is active, that thread's included).
    self.checkpointer.wait()
    found = evaluation.report(self.evaluator, state, self.writer, self.best)
    if found:
      self.progress.note("evaluation at step {}: {}".format(
          int(jax.device_get(state.step)), ", ".join(f"{k} {progress.format_value(v)}" for k, v in found.items())))
    return found

  def finish(self, state, summary, interrupted: bool) -> TrainState:
    """The final evaluation (not after a stop request), the grids as PNGs and metrics.json."""
    jax.block_until_ready(state)
    steps_per_sec = self.progress.steps_per_sec()  # of training alone, before the final evaluation
    self.progress.close()
    if interrupted:
      self.progress.note("stopped early: no final evaluation (run --mode=eval on this workdir for one)")
    found = {} if interrupted else self.evaluate(state)
    results.write(self.workdir, self.config, state, self.visuals.grids(state), summary, found, steps_per_sec,
                  self.checkpointer.directory, {"eval_setup": self.evaluator.setup(),
                                                "best": self.best.best if self.best else None,
                                                "host_memory_mb": self.memory.report()})
    return state

  def close(self) -> None:
    """Finishes pending checkpoint writes and event files (also after an error)."""
    self.stop.restore()
    self.checkpointer.close()
    if self.best:
      self.best.close()
    if self._writer is not None:
      self._writer.close()


def train(run: Run) -> tuple[TrainState, dict[str, float] | None]:
  """Steps until train.num_steps (or a stop request) with the periodic actions; (state, the last summary)."""
  cfg, state, start = run.config.train, run.state, run.start_step
  train_step = compile_train_step(run.method, run.config, run.mesh, state)
  batches = parallel.prefetch(run.batches, run.mesh)
  run.progress.note(f"training steps {start + 1}..{cfg.num_steps} in {run.workdir} (compiling the step first)")
  pending, summary = None, None
  last_step = lambda step: step == cfg.num_steps or run.stop.requested
  every = lambda n: lambda step: step % n == 0 or last_step(step)
  for step in range(start + 1, cfg.num_steps + 1):
    run.stop.step = step
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      state, metrics = train_step(state, next(batches))
    pending = accumulate(pending, metrics)
    run.progress.step(step)
    if every(cfg.log_every)(step):
      summary = checked_summary(pending, step)
      if summary.get(SKIPPED):
        run.progress.note(f"skipped {round(float(pending[SKIPPED].total))} non-finite update(s) by step {step}")
      pending = None
      speed = {"steps_per_sec": rate} if (rate := run.progress.steps_per_sec()) else {}
      run.writer.write_scalars(step, {**summary, **speed, **run.memory.log(step)})
      run.progress.summary(step, summary)
    if every(cfg.image_every)(step) and (grids := run.visuals.grids(state)):
      run.writer.write_images(step, grids)
    if every(cfg.checkpoint_every)(step):
      if pending is not None:
        checked_summary(pending, step)  # never checkpoint a non-finite state
      run.checkpointer.save(state)
    if run.config.eval.every and step % run.config.eval.every == 0 and not last_step(step):
      started = time.perf_counter()
      run.evaluate(state)
      run.progress.exclude(time.perf_counter() - started)
    if run.stop.requested:
      run.progress.note(f"stop requested: checkpoint written at step {step}")
      break
  return state, summary


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
  return jax.jit(step, in_shardings=(state_sharding, parallel.batch_sharding(mesh)),
                 out_shardings=(state_sharding, parallel.replicated(mesh)), donate_argnums=0)


def accumulate(pending, metrics: dict[str, jax.Array]):
  """Running averages (a clu Average per metric) without waiting for the device; a skipped update's
  metrics (see `skip_nonfinite`) are left out of the averages."""
  kept = jnp.reshape(metrics[SKIPPED] == 0, (1,)) if SKIPPED in metrics else None
  update = {k: clu_metrics.Average.from_model_output(v, mask=None if k == SKIPPED else kept)
            for k, v in metrics.items()}
  return update if pending is None else {k: pending[k].merge(update[k]) for k in update}


def checked_summary(pending, step: int) -> dict[str, float]:
  """Averages since the last summary; raises NonFiniteError naming the term (and network) if one is not finite."""
  summary = {k: float(v.compute()) for k, v in pending.items() if int(v.count)}  # count 0: every update skipped
  bad = {k: v for k, v in summary.items() if not jnp.isfinite(v)}
  if bad:
    key, value = next(iter(bad.items()))
    where = f" in the gradient of network '{key.split('/', 1)[1]}'" if key.startswith("grad_norm/") else ""
    raise NonFiniteError(f"non-finite {key} = {value}{where} by step {step} (non-finite: {', '.join(bad)}); "
                         f"the last good checkpoint is kept — lower the learning rate or check the data")
  return summary
