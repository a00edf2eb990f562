"""The evaluator: sample quality, reconstruction error and likelihood of a TrainState, in the loop or alone.

`config.eval` (config_lib.base_config):
  metrics         names from METRICS below; what a method cannot do (no generate, reconstruct or
                  log_importance_weights, or no extractor for the sample metrics) is skipped and logged
  extractor       "none" (no sample metrics), "classifier" (a run of configs/classifier.py on the same data,
                  genjax.pretrained), "inception" (FID Inception-v3, genjax.evaluation.inception)
  extractor_path  the classifier's workdir, or the Inception weights .npz
  classifier_features  the classifier's feature space: "embedding" (its last hidden layer, the default)
                  or "logits" (TF-GAN's MNIST "classifier score" convention)
  num_samples     generated images; the real ones are the eval split's first num_samples (all of them if
                  it has fewer, e.g. digits' 297), which "recon" and "nll" also use
  batch_size      images per evaluation batch (0: the run's batch_size)
  nll_samples     K, importance samples per image of "nll"
  every           steps between evaluations during training (0: only at the end)
  best_metric     keep the checkpoint with the best value of this result in workdir/best ("" = none)
  best_mode       "min", "max" or "auto" (max where the metric says higher is better)

Results: those of each metric, plus the method's own `evaluate(state, batch)` averaged over the whole eval
split. Generated images use fixed noise (genjax.streams "eval_samples": the same at every evaluation).
A metric is one entry of METRICS: its results, what it needs, its minimum counts and how it is computed.
"""

import math
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from genjax import data, parallel, pretrained, streams
from genjax.checkpoint import Checkpointer
from genjax.errors import ConfigError
from genjax.evaluation import likelihood
from genjax.evaluation import metrics as metrics_lib
from genjax.evaluation.metrics import LIKELIHOOD, RECONSTRUCT, SAMPLES, EvaluationError, Extractor, Metric

EXTRACTOR_NONE = "none"
CLASSIFIER_FEATURES = ("embedding", "logits")
BEST_DIR = "best"

# --- The metrics: genjax.evaluation.metrics' sample metrics, and two that need a method hook --------------

def _reconstruction_error(method, state, images, rng, nll_samples):
  del rng, nll_samples
  error = jnp.square(method.reconstruct(state, images) - images)
  return {"recon_mse": jnp.mean(error.reshape(error.shape[0], -1), axis=-1)}


def _negative_log_likelihood(method, state, images, rng, nll_samples):
  log_w = method.log_importance_weights(state, images, rng, nll_samples)
  return {"nll": -likelihood.iwae_bound(log_w), "neg_elbo": -likelihood.elbo(log_w)}


METRICS = {
    **metrics_lib.SAMPLE_METRICS,
    "recon": Metric(("recon_mse",), RECONSTRUCT, _reconstruction_error),
    "nll": Metric(("nll", "neg_elbo"), LIKELIHOOD, _negative_log_likelihood),
}
HIGHER_IS_BETTER = frozenset().union(*(m.higher_is_better for m in METRICS.values())) | {"accuracy"}


def supports(method, metric: Metric) -> bool:
  """Whether `method` has the hook `metric` needs (an extractor aside)."""
  hook = {SAMPLES: method.generate, RECONSTRUCT: method.reconstruct,
          LIKELIHOOD: method.log_importance_weights}[metric.needs]
  return hook is not None


def result_source(name: str) -> str | None:
  """The metric that produces result `name` (None: a method's own evaluate() result)."""
  return next((m for m, metric in METRICS.items() if name in metric.results), None)


# --- Feature extractors: (extractor_path, config.eval, data config) -> (Extractor, its test accuracy) ----

def classifier_extractor(path: str, eval_config, data_config) -> tuple[Extractor, float | None]:
  """A trained classifier's last hidden layer (eval.classifier_features "embedding") or its logits, as
  features; its logits as logits (IS, class histogram). With the test accuracy its run recorded."""
  trained = load_classifier_extractor(path, data_config)
  if eval_config.get("classifier_features", "embedding") == "logits":
    def logits_twice(images):
      logits = trained.logits(images)
      return logits, logits
    return Extractor(logits_twice, jit=False), trained.accuracy
  return Extractor(trained.embed, jit=False), trained.accuracy


def load_classifier_extractor(path: str, data_config) -> pretrained.TrainedClassifier:
  command = (f"python -m genjax.main --config=configs/classifier.py --workdir={path} "
             f"--config.data.name={data_config.name} --config.data.image_size={data_config.image_size}")
  trained = pretrained.load_classifier(path, command)
  if not trained.fits(data_config):
    shape = data.image_shape(data_config)
    raise EvaluationError(
        f"eval.extractor_path: the classifier in {path!r} was trained on {trained.dataset} images of shape "
        f"{tuple(trained.image_shape)}, but this run evaluates {data_config.name} images of shape {tuple(shape)}: "
        f"train a matching one with `{command}`")
  return trained


def inception_extractor(path: str, eval_config, data_config) -> tuple[Extractor, None]:
  """FID Inception-v3 with the weights in `path` (an .npz; see genjax.evaluation.inception)."""
  del eval_config
  from genjax.evaluation import inception  # pylint: disable=import-outside-toplevel  (Flax Inception on demand)
  channels = data.image_shape(data_config)[-1]
  if channels not in (1, 3):
    raise EvaluationError(f"eval.extractor 'inception' takes images with 1 or 3 channels, this run's have {channels}")
  return inception.inception_extractor(path), None


EXTRACTORS = {"classifier": classifier_extractor, "inception": inception_extractor}


# --- Config validation (genjax.validation calls it) -------------------------------------------------------

def validate(config, method, num_devices: int) -> None:
  """Raises ConfigError naming the first invalid `eval.*` value."""
  e = config.eval
  requested = requested_metrics(e)
  unknown = next((m for m in requested if m not in METRICS), None)
  _check(unknown is None, f"eval.metrics: unknown metric {unknown!r}; choose from {', '.join(METRICS)}")
  extractors = (EXTRACTOR_NONE,) + tuple(EXTRACTORS)
  _check(e.extractor in extractors, f"eval.extractor must be one of {extractors}, got {e.extractor!r}")
  _check(e.extractor == EXTRACTOR_NONE or bool(e.extractor_path),
         f"eval.extractor_path is empty: set it to the {e.extractor} "
         f"{'workdir (a run of configs/classifier.py)' if e.extractor == 'classifier' else 'weights .npz'}")
  _check(e.classifier_features in CLASSIFIER_FEATURES,
         f"eval.classifier_features must be one of {CLASSIFIER_FEATURES}, got {e.classifier_features!r}")
  for key in ("num_samples", "nll_samples"):
    _check(e[key] >= 1, f"eval.{key} must be >= 1, got {e[key]}")
  for key in ("batch_size", "every"):
    _check(e[key] >= 0, f"eval.{key} must be >= 0, got {e[key]}")
  _check(e.batch_size % num_devices == 0,
         f"eval.batch_size {e.batch_size} is not divisible by the {num_devices} devices")
  if e.extractor != EXTRACTOR_NONE:
    for name in requested:
      least = METRICS[name].least("fake")
      _check(e.num_samples >= least, f"eval.num_samples {e.num_samples} is too few for {name!r}, which needs at "
             f"least {least}")
  _check(e.best_mode in ("auto", "min", "max"), f"eval.best_mode must be 'auto', 'min' or 'max', got {e.best_mode!r}")
  if e.best_metric:
    _check_best_metric(e.best_metric, requested, e.extractor, method)


def _check_best_metric(name: str, requested, extractor: str, method) -> None:
  source = result_source(name)
  if source is None:  # the method's own evaluate() names its results
    _check(method.evaluate is not None,
           f"eval.best_metric {name!r} is not a result this run computes; choose from "
           f"{', '.join(r for m in requested for r in METRICS[m].results)}")
    return
  metric = METRICS[source]
  _check(source in requested, f"eval.best_metric {name!r} needs {source!r} in eval.metrics")
  if metric.needs == SAMPLES:
    _check(extractor != EXTRACTOR_NONE, f"eval.best_metric {name!r} needs an eval.extractor (it is 'none')")
  _check(supports(method, metric), f"eval.best_metric {name!r}: this method has no {metric.needs} hook")


def _check(ok: bool, message: str) -> None:
  if not ok:
    raise ConfigError(message)


def requested_metrics(eval_config) -> tuple[str, ...]:
  metrics = eval_config.metrics
  return (metrics,) if isinstance(metrics, str) else tuple(metrics)


# --- Batches ----------------------------------------------------------------------------------------------

def _shard(images: np.ndarray, mesh) -> jax.Array:
  """A host-global batch (the same on every host) as one array sharded over the mesh."""
  sharding = parallel.batch_sharding(mesh)
  return jax.make_array_from_callback(images.shape, sharding, lambda index: images[index])


def _pad(images: np.ndarray, size: int) -> np.ndarray:
  return np.pad(images, [(0, size - len(images))] + [(0, 0)] * (images.ndim - 1))


def eval_split(config, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
  """One ordered pass over the eval split, the same on every host, ending in a partial batch."""
  return data.create_dataset(config.data, batch_size=batch_size, seed=config.seed, split=config.data.eval_split,
                             train=False, process_index=0, process_count=1)


def compile_generate(method, batch_size: int, mesh):
  """jit(state, rng) -> `batch_size` images of `method.generate`, computed sharded, returned replicated."""
  def generate(state, rng):
    images = method.generate(state, rng, batch_size)
    return jax.lax.with_sharding_constraint(images, parallel.batch_sharding(mesh))
  return jax.jit(generate, out_shardings=parallel.replicated(mesh))


def generated_batches(generate, state, rng: jax.Array, num: int) -> Iterator[np.ndarray]:
  """`num` images from a `compile_generate` function, batch i drawn with key fold_in(rng, i), the last cut."""
  start, i = 0, 0
  while start < num:
    images = np.asarray(jax.device_get(generate(state, jax.random.fold_in(rng, i))))[:num - start]
    start, i = start + len(images), i + 1
    yield images


def method_metrics(method, config, state, mesh, evaluate_batch=None) -> dict[str, float]:
  """`method.evaluate(state, batch)` averaged over the whole eval split ({} if the method has none)."""
  if method.evaluate is None:
    return {}
  evaluate_batch = evaluate_batch or jax.jit(method.evaluate)
  totals, count = {}, 0
  for batch in eval_split(config, config.eval.batch_size or config.batch_size):
    n = len(batch["image"])
    for k, v in jax.device_get(evaluate_batch(state, parallel.replicate(batch, mesh))).items():
      totals[k] = totals.get(k, 0.0) + float(v) * n
    count += n
  return {k: v / count for k, v in totals.items()}


# --- The evaluator ----------------------------------------------------------------------------------------

class Evaluator:
  """`evaluator(state) -> {result: float}`: everything `config.eval` asks for that the method supports;
  `evaluator.score(images)`: the sample metrics of images from anywhere (another library's samples).

  Built once per run: it loads the extractor and the real images' features up front, so a missing
  weights file or too small an eval split is reported before training starts.
  """

  def __init__(self, method, config, mesh=None):
    self.method, self.config, self.cfg = method, config, config.eval
    self.mesh = mesh or parallel.make_mesh()
    self.batch_size = self.cfg.batch_size or config.batch_size
    requested = requested_metrics(self.cfg)
    has_extractor = self.cfg.extractor != EXTRACTOR_NONE
    self.metrics = {name: METRICS[name] for name in requested
                    if supports(method, METRICS[name]) and (METRICS[name].needs != SAMPLES or has_extractor)}
    self.sample_metrics = {n: m for n, m in self.metrics.items() if m.needs == SAMPLES}
    self.per_example = {n: m for n, m in self.metrics.items() if m.needs != SAMPLES}
    skipped = [m for m in requested if m not in self.metrics]
    if skipped:
      logging.info("eval: skipping %s (no eval.extractor, or the method lacks generate / reconstruct / "
                   "log_importance_weights)", ", ".join(skipped))
    self._evaluate_batch = jax.jit(method.evaluate) if method.evaluate is not None else None
    self._per_example = self._compile_per_example() if self.per_example else None
    self._generate = compile_generate(method, self.batch_size, self.mesh) if self.sample_metrics else None
    self.extractor, self.real, self.extractor_accuracy = None, None, None
    if self.sample_metrics:
      self.extractor, self.extractor_accuracy = EXTRACTORS[self.cfg.extractor](self.cfg.extractor_path, self.cfg,
                                                                               config.data)
      self.real = metrics_lib.extract(self.extractor, self._real_images(),
                                      keep_features=metrics_lib.keeps(tuple(self.sample_metrics), "pool"))
      self._check_real_count(self.real.count)

  def setup(self) -> dict[str, Any]:
    """How the results were computed (metrics.json / eval.json "eval_setup")."""
    sampled = bool(self.sample_metrics)
    return {"extractor": self.cfg.extractor if sampled else EXTRACTOR_NONE,
            "extractor_path": self.cfg.extractor_path if sampled else "",
            "classifier_features": self.cfg.classifier_features if sampled and self.cfg.extractor == "classifier" else None,
            "extractor_accuracy": self.extractor_accuracy if sampled else None,
            "num_real": self.real.count if self.real else None,
            "num_generated": self.cfg.num_samples if sampled else None,
            "nll_samples": self.cfg.nll_samples if "nll" in self.metrics else None}

  def __call__(self, state) -> dict[str, float]:
    state = parallel.replicate(state, self.mesh)
    results = method_metrics(self.method, self.config, state, self.mesh, self._evaluate_batch)
    if self._per_example:
      results.update(self._per_example_metrics(state))
    if self.sample_metrics:
      rng = streams.key(self.config.seed, "eval_samples")
      results.update(self.score(generated_batches(self._generate, state, rng, self.cfg.num_samples)))
    return results

  def score(self, image_batches) -> dict[str, float]:
    """The sample metrics of image batches ([B, H, W, C] in [-1, 1]) against the real ones."""
    if self.real is None:
      raise EvaluationError("no sample metrics to compute: set eval.extractor and a sample metric in eval.metrics")
    names = tuple(self.sample_metrics)
    fake = metrics_lib.extract(self.extractor, image_batches, keep_features=metrics_lib.keeps(names, "pool"),
                               keep_logits=metrics_lib.keeps(names, "logits"))
    return metrics_lib.metrics_from_features(self.real, fake, names, seed=self.config.seed)

  def _real_images(self) -> Iterator[np.ndarray]:
    """The eval split's first num_samples images, in batches."""
    left = self.cfg.num_samples
    for batch in eval_split(self.config, self.batch_size):
      if left <= 0:
        break
      images = batch["image"][:left]
      left -= len(images)
      yield images

  def _check_real_count(self, count: int) -> None:
    for name, metric in self.sample_metrics.items():
      if count < metric.least("real"):
        raise EvaluationError(
            f"eval.metrics: {name!r} needs at least {metric.least('real')} real images, but the eval split "
            f"{self.config.data.eval_split!r} of {self.config.data.name} has {count}: use a larger "
            f"data.eval_split or leave {name!r} out")
    if count < self.cfg.num_samples:
      logging.info("eval: %d real images (all of split %r) vs %d generated", count,
                   self.config.data.eval_split, self.cfg.num_samples)

  def _compile_per_example(self):
    """jit(state, images, rng) -> {result: [B]} of the per-example metrics, batch sharded, results replicated."""
    method, k = self.method, self.cfg.nll_samples

    def per_example(state, images, rng):
      out = {}
      for metric in self.per_example.values():
        out.update(metric.compute(method, state, images, rng, k))
      return out
    return jax.jit(per_example, out_shardings=parallel.replicated(self.mesh))

  def _per_example_metrics(self, state) -> dict[str, float]:
    rng = streams.key(self.config.seed, "eval_nll")
    sums, count = {}, 0
    for i, images in enumerate(self._real_images()):
      n = len(images)
      out = jax.device_get(self._per_example(state, _shard(_pad(images, self.batch_size), self.mesh),
                                             jax.random.fold_in(rng, i)))
      for key, values in out.items():
        sums[key] = sums.get(key, 0.0) + float(np.sum(np.asarray(values, np.float64)[:n]))
      count += n
    return {key: total / count for key, total in sums.items()}


# --- The best checkpoint ----------------------------------------------------------------------------------

def higher_is_better(eval_config) -> bool:
  if eval_config.best_mode != "auto":
    return eval_config.best_mode == "max"
  return eval_config.best_metric in HIGHER_IS_BETTER


class BestCheckpoint:
  """The checkpoint with the best `eval.best_metric` so far, in workdir/best; a resumed run keeps it.

  Its meta records {"best": {"metric", "value", "step"}}.
  """

  def __init__(self, workdir: str, meta: dict[str, Any], config):
    self.metric, self.higher = config.eval.best_metric, higher_is_better(config.eval)
    self._checkpointer = Checkpointer(workdir, meta, keep=1, subdir=BEST_DIR)
    self._checkpointer.check_compatible()
    stored = (self._checkpointer.latest_meta() or {}).get("best")
    self.best = stored if stored and stored.get("metric") == self.metric else None

  @property
  def directory(self) -> str:
    return self._checkpointer.directory

  def update(self, state, results: dict[str, float]) -> bool:
    """Saves `state` if its result is better than the best so far; True if it did."""
    if self.metric not in results:
      raise EvaluationError(f"eval.best_metric {self.metric!r} is not among the evaluation results "
                            f"({', '.join(sorted(results)) or 'none'})")
    value = float(results[self.metric])
    if not math.isfinite(value):
      return False
    if self.best is not None and not (value > self.best["value"] if self.higher else value < self.best["value"]):
      return False
    self.best = {"metric": self.metric, "value": value, "step": int(jax.device_get(state.step))}
    self._checkpointer.save(state, {"best": self.best})
    logging.info("eval: best %s = %.6g at step %d, saved in %s", self.metric, value, self.best["step"],
                 self.directory)
    return True

  def close(self) -> None:
    self._checkpointer.close()


def report(evaluator: Evaluator, state, writer=None, best: BestCheckpoint | None = None) -> dict[str, float]:
  """Evaluates `state`; writes eval/<result> scalars to `writer`; updates the best checkpoint."""
  results = evaluator(state)
  step = int(jax.device_get(state.step))
  if results:
    logging.info("eval at step %d: %s", step, ", ".join(f"{k} = {v:.6g}" for k, v in results.items()))
    if writer is not None:
      writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
  if best is not None:
    best.update(state, results)
  return results
