"""Sample-quality metrics: FID, Inception Score, KID, precision/recall; streaming over a feature extractor.

Conventions (REFERENCES.md "Evaluation conventions"):

  FID = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^½)        Heusel et al. 2017; float64, unbiased Σ.
        With A = Σ_r^½, A Σ_g A is symmetric PSD and has the eigenvalues of Σ_r Σ_g, so
        Tr((Σ_r Σ_g)^½) = Σ_i √λ_i(A Σ_g A): two `eigh`s instead of scipy's `sqrtm`, on every backend.
  IS  = exp E_x KL(p(y|x) ‖ p(y))                               Salimans et al. 2016; 10 contiguous
        splits, mean ± std over splits (OpenAI's code); log-softmax in float64.
  KID = MMD²_u with k(x, y) = (xᵀy / d + 1)³                     Bińkowski et al. 2018; mean ± std over
        100 random subsets of 1000 (unbiased estimator: the diagonals of k(X, X), k(Y, Y) are left out);
        xᵀy in float32 at full precision, the kernel and its sums in float64.
  P/R = Kynkäänniemi et al. 2019: r_i = distance from real i to its k-th (k = 3) nearest other real,
        likewise for fakes; precision = fraction of fakes inside some real ball,
        recall = fraction of reals inside some fake ball.
  Classes: the histogram of a classifier's predicted classes over the generated images — how many
        classes get at least a tenth of their uniform share (classes_covered), its entropy in nats
        (log K when uniform) and the largest class's share: mode dropping shows here first.

The float64 statistics run in JAX under a scoped `jax.enable_x64`, so they are float64 whatever the
caller's x64 setting; on a TPU (no float64 `eigh`) they run on the host CPU. Precision/recall distances
are float32 on the default device, at full matmul precision, row-batched so memory stays bounded, and
computed from the features as given (no centring: distances that are equal in exact arithmetic, as for
integer or ReLU features with ties, stay equal, and the `≤` of a ball's edge agrees with the references).

`compute_metrics(extractor, real_batches, fake_batches)` streams image batches through an `Extractor`
(`{"pool": [N, D], "logits": [N, K]}` per batch) and returns {"fid", "is", "is_std", "kid", "kid_std",
"precision", "recall"}.
"""

import contextlib
import dataclasses
import functools
import warnings
from typing import Any, Callable, Iterable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from genjax.errors import GenjaxError

_HIGHEST = lax.Precision.HIGHEST


class EvaluationError(GenjaxError, ValueError):
  """Inputs a metric cannot be computed from (too few samples, mismatched feature sizes)."""


@contextlib.contextmanager
def float64_scope():
  """Scoped float64 JAX: on the default backend, or on the host CPU where float64 linalg is missing."""
  backend = jax.default_backend()
  device = jax.local_devices()[0] if backend in ("cpu", "gpu", "cuda", "rocm") else jax.local_devices(backend="cpu")[0]
  with jax.enable_x64(True), jax.default_device(device):
    yield


def _features(x, name: str) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim != 2:
    raise EvaluationError(f"{name} must be a [num_samples, dim] array, got shape {x.shape}")
  return x


def _same_dim(a: np.ndarray, b: np.ndarray, what: str) -> None:
  if a.shape[1] != b.shape[1]:
    raise EvaluationError(f"{what}: real and fake features have different dimensions "
                          f"({a.shape[1]} vs {b.shape[1]})")


# ---------------------------------------------------------------------------------------------------
# Streaming mean and covariance.


class RunningStats:
  """Mean and unbiased covariance of feature batches, accumulated in float64 on the host.

  Keeps the count, Σx and Σxxᵀ of the features minus a shift (the first batch's mean), which avoids
  the cancellation of the naive Σxxᵀ − nμμᵀ; memory is O(dim²) however many samples are fed.
  """

  def __init__(self):
    self.count = 0
    self._shift = self._sum = self._outer = None

  @property
  def dim(self) -> Optional[int]:
    return None if self._shift is None else len(self._shift)

  def update(self, features) -> "RunningStats":
    x = _features(features, "features").astype(np.float64)
    if not len(x):
      return self
    if self._shift is None:
      self._shift = x.mean(0)
      self._sum = np.zeros_like(self._shift)
      self._outer = np.zeros((x.shape[1], x.shape[1]))
    elif x.shape[1] != self.dim:
      raise EvaluationError(f"feature batch of dimension {x.shape[1]} after batches of dimension {self.dim}")
    x = x - self._shift
    self._sum += x.sum(0)
    self._outer += x.T @ x
    self.count += len(x)
    return self

  def mean_and_cov(self) -> tuple[np.ndarray, np.ndarray]:
    """(μ [dim], Σ [dim, dim]) in float64, Σ with the 1/(n − 1) normalisation."""
    if self.count < 2:
      raise EvaluationError(f"mean and covariance need at least 2 samples, got {self.count}")
    n, mean = self.count, self._sum / self.count
    cov = (self._outer - n * np.outer(mean, mean)) / (n - 1)
    return self._shift + mean, (cov + cov.T) / 2


def mean_and_cov(features) -> tuple[np.ndarray, np.ndarray]:
  """One-shot `RunningStats` of a [N, dim] array."""
  return RunningStats().update(features).mean_and_cov()


# ---------------------------------------------------------------------------------------------------
# FID.


@jax.jit
def _frechet(mu1, cov1, mu2, cov2):
  dot = functools.partial(jnp.matmul, precision=_HIGHEST)
  w, v = jnp.linalg.eigh(cov1)
  a = dot(v * jnp.sqrt(jnp.clip(w, 0.0)), v.T)  # A = Σ₁^½.
  m = dot(dot(a, cov2), a)
  tr_sqrt = jnp.sum(jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh((m + m.T) / 2), 0.0)))
  diff = mu1 - mu2
  return diff @ diff + jnp.trace(cov1) + jnp.trace(cov2) - 2.0 * tr_sqrt


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
  """‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½) in float64."""
  mu1, mu2 = np.asarray(mu1), np.asarray(mu2)
  cov1, cov2 = np.asarray(cov1), np.asarray(cov2)
  d = mu1.shape[-1]
  if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
    raise EvaluationError(f"FID: statistics of different dimensions (means {mu1.shape}, {mu2.shape}; "
                          f"covariances {cov1.shape}, {cov2.shape})")
  with float64_scope():
    return float(_frechet(*(jnp.asarray(a, jnp.float64) for a in (mu1, cov1, mu2, cov2))))


def fid_from_stats(real: RunningStats, fake: RunningStats) -> float:
  """FID of two accumulators; warns when a covariance is singular (fewer samples than dimensions)."""
  if real.dim != fake.dim:
    raise EvaluationError(f"FID: real and fake features have different dimensions ({real.dim} vs {fake.dim})")
  for name, stats in (("real", real), ("fake", fake)):
    if stats.count < 2:
      raise EvaluationError(f"FID needs at least 2 {name} samples, got {stats.count}")
    if stats.count <= stats.dim:
      warnings.warn(f"FID from {stats.count} {name} samples of dimension {stats.dim}: the covariance is "
                    f"singular and FID is biased upwards; use more than {stats.dim} samples", stacklevel=2)
  return frechet_distance(*real.mean_and_cov(), *fake.mean_and_cov())


def fid(real_features, fake_features) -> float:
  """FID between two [N, dim] feature arrays."""
  real, fake = _features(real_features, "real features"), _features(fake_features, "fake features")
  _same_dim(real, fake, "FID")
  return fid_from_stats(RunningStats().update(real), RunningStats().update(fake))


# ---------------------------------------------------------------------------------------------------
# Inception Score.


def _split_bounds(n: int, splits: int, what: str) -> list[tuple[int, int]]:
  if splits < 1 or n < splits:
    raise EvaluationError(f"{what} needs at least as many samples as splits ({splits}), got {n}")
  return [(i * n // splits, (i + 1) * n // splits) for i in range(splits)]


def _inception_score(log_p, splits: int) -> tuple[float, float]:
  """IS from log p(y|x) [N, K] (float64 JAX array), OpenAI's contiguous splits."""
  scores = []
  for lo, hi in _split_bounds(log_p.shape[0], splits, "Inception Score"):
    part = log_p[lo:hi]
    p = jnp.exp(part)
    log_py = jnp.log(jnp.mean(p, axis=0))
    kl = jnp.where(p > 0, p * (part - log_py), 0.0).sum(axis=1)  # KL(p(y|x) ‖ p(y)) per sample.
    scores.append(float(jnp.exp(jnp.mean(kl))))
  return float(np.mean(scores)), float(np.std(scores))


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
  """(mean, std) of exp E KL(p(y|x) ‖ p(y)) over `splits` splits, from class logits [N, K]."""
  logits = _features(logits, "logits")
  with float64_scope():
    return _inception_score(jax.nn.log_softmax(jnp.asarray(logits, jnp.float64), axis=-1), splits)


def inception_score_from_probs(probs, splits: int = 10) -> tuple[float, float]:
  """(mean, std) as `inception_score`, from class probabilities [N, K] (rows summing to 1)."""
  probs = _features(probs, "probabilities")
  with float64_scope():
    return _inception_score(jnp.log(jnp.asarray(probs, jnp.float64)), splits)


# ---------------------------------------------------------------------------------------------------
# KID.


@jax.jit
def _mmd2_unbiased(x, y):
  """Unbiased MMD² of two equal-size samples under k(a, b) = (aᵀb / d + 1)³.

  The features (float32) are multiplied in float32 at full precision, the kernel and its sums are float64:
  1.8× faster than float64 products on CPU, and within 2e-7 (relative) of them on 1,000-d ReLU features.
  """
  m, d = x.shape
  kernel = lambda a, b: (jnp.matmul(a, b.T, precision=_HIGHEST).astype(jnp.float64) / d + 1.0) ** 3
  off_diagonal_mean = lambda k: (k.sum() - jnp.trace(k)) / (m * (m - 1))
  return off_diagonal_mean(kernel(x, x)) + off_diagonal_mean(kernel(y, y)) - 2.0 * kernel(x, y).mean()


def kernel_inception_distance(real_features, fake_features, *, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """(mean, std) of the unbiased MMD² over `num_subsets` random subsets (without replacement) of each set."""
  real, fake = _features(real_features, "real features"), _features(fake_features, "fake features")
  _same_dim(real, fake, "KID")
  if subset_size < 2 or subset_size > min(len(real), len(fake)):
    raise EvaluationError(f"KID subset size {subset_size} must be between 2 and the number of samples "
                          f"(real {len(real)}, fake {len(fake)}); lower kid_subset_size")
  if num_subsets < 1:
    raise EvaluationError(f"KID needs at least one subset, got num_subsets={num_subsets}")
  rng = np.random.default_rng(seed)
  mmds = []
  with float64_scope():
    for _ in range(num_subsets):
      x = real[rng.choice(len(real), subset_size, replace=False)]
      y = fake[rng.choice(len(fake), subset_size, replace=False)]
      mmds.append(float(_mmd2_unbiased(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))))
  return float(np.mean(mmds)), float(np.std(mmds))


# ---------------------------------------------------------------------------------------------------
# Precision and recall.


def _sq_distances(a, b):
  """Squared Euclidean distances [len(a), len(b)], clipped at 0."""
  ab = jnp.matmul(a, b.T, precision=_HIGHEST)
  return jnp.maximum((a * a).sum(1)[:, None] - 2.0 * ab + (b * b).sum(1)[None, :], 0.0)


@functools.partial(jax.jit, static_argnums=2)
def _kth_neighbour(rows, points, k):
  """Squared distance from each row to its k-th nearest point, the row itself (distance 0) excluded.

  The (k + 1)-th smallest distance, found by taking out the row's minimum k times (one entry each time,
  so ties count as often as they occur, as in a sort): XLA:CPU's top_k over 10,000 columns takes 4–7×
  as long as computing the distances themselves; k + 1 passes of min take about half as long again.
  """
  distances = _sq_distances(rows, points)
  row = jnp.arange(distances.shape[0])
  take_out_minimum = lambda _, d: d.at[row, jnp.argmin(d, axis=1)].set(jnp.inf)
  return jnp.min(lax.fori_loop(0, k, take_out_minimum, distances), axis=1)


@jax.jit
def _inside_any(rows, centres, sq_radii):
  return jnp.any(_sq_distances(rows, centres) <= sq_radii[None, :], axis=1)


def _by_rows(fn, rows: jax.Array, batch_size: int, *args) -> np.ndarray:
  """fn(rows[i:i + batch_size], *args) over row batches, the last one zero-padded (one compiled shape)."""
  n = rows.shape[0]
  size = min(batch_size, n)
  padded = jnp.pad(rows, ((0, -n % size), (0, 0)))
  return np.concatenate([np.asarray(fn(padded[i:i + size], *args)) for i in range(0, n, size)])[:n]


def precision_recall(real_features, fake_features, *, k: int = 3,
                     batch_size: int = 1000) -> tuple[float, float]:
  """(precision, recall) of Kynkäänniemi et al. 2019 with k-th-nearest-neighbour balls.

  Memory: batch_size × max(num_real, num_fake) distances at a time.
  """
  real, fake = _features(real_features, "real features"), _features(fake_features, "fake features")
  _same_dim(real, fake, "precision/recall")
  if k < 1 or min(len(real), len(fake)) <= k:
    raise EvaluationError(f"precision/recall with k={k} needs more than {k} real and fake samples "
                          f"(real {len(real)}, fake {len(fake)})")
  real, fake = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
  real_radii = _by_rows(_kth_neighbour, real, batch_size, real, k)
  fake_radii = _by_rows(_kth_neighbour, fake, batch_size, fake, k)
  precision = _by_rows(_inside_any, fake, batch_size, real, jnp.asarray(real_radii)).mean()
  recall = _by_rows(_inside_any, real, batch_size, fake, jnp.asarray(fake_radii)).mean()
  return float(precision), float(recall)


# ---------------------------------------------------------------------------------------------------
# The class histogram of generated images.

CLASS_RESULTS = ("classes_covered", "class_entropy", "class_max_fraction")
COVERED_SHARE = 0.1  # a class is covered when it gets at least this fraction of its uniform share


def class_histogram(logits) -> dict[str, float]:
  """Of a classifier's logits [N, K] on generated images: classes_covered (classes predicted for at least
  COVERED_SHARE / K of the images), class_entropy (nats; log K when uniform) and class_max_fraction."""
  logits = _features(logits, "logits")
  k = logits.shape[1]
  fractions = np.bincount(np.argmax(logits, axis=1), minlength=k) / len(logits)
  nonzero = fractions[fractions > 0]
  return {"classes_covered": float(np.sum(fractions >= COVERED_SHARE / k)),
          "class_entropy": float(-np.sum(nonzero * np.log(nonzero))),
          "class_max_fraction": float(fractions.max())}


# ---------------------------------------------------------------------------------------------------
# Feature extractors and streaming.


class Extractor:
  """Images [N, H, W, C] in [-1, 1] -> {"pool": [N, D] features, "logits": [N, K] or None}.

  Wraps any callable `fn(images) -> (features, logits)` (logits may be None), e.g. Inception
  (`inception.inception_extractor(path)`) or a classifier trained by this project. Batches are
  zero-padded to the largest batch seen so the jitted `fn` compiles once.
  """

  def __init__(self, fn: Callable[[jax.Array], tuple[Any, Any]], *, jit: bool = True):
    self._fn = jax.jit(fn) if jit else fn
    self._size = 0

  def features(self, images) -> dict[str, Optional[np.ndarray]]:
    images = np.asarray(images)
    n = len(images)
    self._size = max(self._size, n)
    padded = np.pad(images, [(0, self._size - n)] + [(0, 0)] * (images.ndim - 1))
    pool, logits = jax.device_get(self._fn(padded))
    pool = np.asarray(pool)[:n].reshape(n, -1)
    return {"pool": pool, "logits": None if logits is None else np.asarray(logits)[:n]}


@dataclasses.dataclass
class FeatureSet:
  """What the metrics need from one image set: running statistics, and the features themselves when
  KID or precision/recall need them, the logits when IS does."""
  stats: RunningStats
  pool: Optional[np.ndarray] = None
  logits: Optional[np.ndarray] = None

  @property
  def count(self) -> int:
    return self.stats.count


def extract(extractor: Extractor, batches: Iterable[Any], *, keep_features: bool = False,
            keep_logits: bool = False) -> FeatureSet:
  """Streams image batches (arrays, or dicts with an "image" entry) through `extractor`."""
  stats, pools, logits = RunningStats(), [], []
  for batch in batches:
    images = batch["image"] if isinstance(batch, dict) else batch
    out = extractor.features(images)
    stats.update(out["pool"])
    if keep_features:
      pools.append(out["pool"].astype(np.float32))
    if keep_logits:
      if out["logits"] is None:
        raise EvaluationError("the Inception Score and the class histogram need logits, but the extractor "
                              "returns none")
      logits.append(out["logits"].astype(np.float32))
  if not stats.count:
    raise EvaluationError("no images to evaluate: the batch iterator is empty")
  return FeatureSet(stats, np.concatenate(pools) if keep_features else None,
                    np.concatenate(logits) if keep_logits else None)


# ---------------------------------------------------------------------------------------------------
# The registry: each sample metric as one entry, from which validation, the evaluator and tables derive.

SAMPLES, RECONSTRUCT, LIKELIHOOD = "samples", "reconstruct", "likelihood"  # what a metric needs


@dataclasses.dataclass(frozen=True)
class Metric:
  """One metric a run can ask for (`config.eval.metrics`).

  Attributes:
    results: the result names it produces.
    needs: SAMPLES (generated images and a feature extractor), RECONSTRUCT (a method's `reconstruct`) or
      LIKELIHOOD (a method's `log_importance_weights`).
    compute: SAMPLES: (real FeatureSet, fake FeatureSet, options) -> results, options being those of
      `metrics_from_features`; the others (genjax.evaluation.evaluator): (method, state, images, rng,
      nll_samples) -> {result: [B] per-example values}.
    keep: what the feature sets must keep besides running statistics: "pool" (the features), "logits".
    min_real, min_fake: the fewest real / generated images it takes (options fill in splits and k).
    higher_is_better: its results for which higher is better.
  """
  results: tuple[str, ...]
  needs: str
  compute: Callable[..., dict[str, Any]]
  keep: frozenset = frozenset()
  min_real: Callable[[dict], int] | int = 0
  min_fake: Callable[[dict], int] | int = 0
  higher_is_better: frozenset = frozenset()

  def least(self, which: str, options: dict | None = None) -> int:
    value = self.min_real if which == "real" else self.min_fake
    return value({**DEFAULT_OPTIONS, **(options or {})}) if callable(value) else value


DEFAULT_OPTIONS = {"is_splits": 10, "kid_subsets": 100, "kid_subset_size": 1000, "pr_k": 3, "pr_batch_size": 1000,
                   "seed": 0}


def _fid_metric(real, fake, options):
  del options
  return {"fid": fid_from_stats(real.stats, fake.stats)}


def _is_metric(real, fake, options):
  del real
  score, std = inception_score(fake.logits, options["is_splits"])
  return {"is": score, "is_std": std}


def _kid_metric(real, fake, options):
  size = min(options["kid_subset_size"], real.count, fake.count)
  kid, std = kernel_inception_distance(real.pool, fake.pool, num_subsets=options["kid_subsets"], subset_size=size,
                                       seed=options["seed"])
  return {"kid": kid, "kid_std": std}


def _pr_metric(real, fake, options):
  precision, recall = precision_recall(real.pool, fake.pool, k=options["pr_k"], batch_size=options["pr_batch_size"])
  return {"precision": precision, "recall": recall}


def _classes_metric(real, fake, options):
  del real, options
  return class_histogram(fake.logits)


SAMPLE_METRICS = {
    "fid": Metric(("fid",), SAMPLES, _fid_metric, min_real=2, min_fake=2),
    "is": Metric(("is", "is_std"), SAMPLES, _is_metric, keep=frozenset({"logits"}),
                 min_fake=lambda o: o["is_splits"], higher_is_better=frozenset({"is"})),
    "kid": Metric(("kid", "kid_std"), SAMPLES, _kid_metric, keep=frozenset({"pool"}), min_real=2, min_fake=2),
    "pr": Metric(("precision", "recall"), SAMPLES, _pr_metric, keep=frozenset({"pool"}),
                 min_real=lambda o: o["pr_k"] + 1, min_fake=lambda o: o["pr_k"] + 1,
                 higher_is_better=frozenset({"precision", "recall"})),
    "classes": Metric(CLASS_RESULTS, SAMPLES, _classes_metric, keep=frozenset({"logits"}), min_fake=1,
                      higher_is_better=frozenset({"classes_covered", "class_entropy"})),
}
METRICS = tuple(SAMPLE_METRICS)


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
  metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
  unknown = [m for m in metrics if m not in SAMPLE_METRICS]
  if unknown:
    raise EvaluationError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
  return metrics


def keeps(metrics: Sequence[str], what: str) -> bool:
  """Whether any of `metrics` needs the feature sets to keep `what` ("pool" or "logits")."""
  return any(what in SAMPLE_METRICS[m].keep for m in metrics)


def metrics_from_features(real: FeatureSet, fake: FeatureSet, metrics: Sequence[str] = METRICS,
                          **options) -> dict[str, float]:
  """The requested metrics of fake vs real (IS and the class histogram are of the fakes alone); options:
  is_splits, kid_subsets, kid_subset_size (capped at the counts), pr_k, pr_batch_size, seed."""
  unknown = set(options) - set(DEFAULT_OPTIONS)
  if unknown:
    raise TypeError(f"unknown options {sorted(unknown)}")
  options, out = {**DEFAULT_OPTIONS, **options}, {}
  for name in _check_metrics(metrics):
    out.update(SAMPLE_METRICS[name].compute(real, fake, options))
  return out


def compute_metrics(extractor: Extractor, real_batches: Iterable[Any], fake_batches: Iterable[Any],
                    metrics: Sequence[str] = METRICS, **options) -> dict[str, float]:
  """Streams both sets through `extractor` and returns the requested metrics.

  FID only keeps running statistics; KID and precision/recall keep the [N, D] features (float32), IS
  and the class histogram the fakes' logits. `options` are those of `metrics_from_features`.
  """
  metrics = _check_metrics(metrics)
  real = extract(extractor, real_batches, keep_features=keeps(metrics, "pool"))
  fake = extract(extractor, fake_batches, keep_features=keeps(metrics, "pool"), keep_logits=keeps(metrics, "logits"))
  return metrics_from_features(real, fake, metrics, **options)
