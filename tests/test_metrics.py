"""Metric formulas against independent numpy/scipy references, known values, and input errors."""

import itertools

import jax
import numpy as np
import pytest
import scipy.linalg
import scipy.special

from genjax.evaluation import metrics
from genjax.evaluation.metrics import EvaluationError


def _gaussian(n, d, seed, shift=0.0):
  """Correlated Gaussian features with a non-zero mean (like Inception pool features)."""
  rng = np.random.default_rng(seed)
  return rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + shift + rng.uniform(0, 3, d)


# ---------------------------------------------------------------------------------------------------
# Streaming statistics and FID.


def test_running_stats_over_uneven_batches_equal_numpy():
  x = _gaussian(103, 7, seed=0, shift=1e3)  # A large mean: the naive Σxxᵀ − nμμᵀ would lose digits.
  stats = metrics.RunningStats()
  for lo, hi in [(0, 1), (1, 51), (51, 51), (51, 53), (53, 103)]:
    stats.update(x[lo:hi].astype(np.float64))
  mean, cov = stats.mean_and_cov()
  assert stats.count == 103
  np.testing.assert_allclose(mean, x.mean(0), rtol=1e-12)
  np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=1e-9)  # Unbiased: 1 / (n - 1).
  with pytest.raises(EvaluationError, match="dimension 3 after batches of dimension 7"):
    stats.update(np.zeros((2, 3)))
  with pytest.raises(EvaluationError, match="at least 2 samples, got 1"):
    metrics.RunningStats().update(x[:1]).mean_and_cov()


def _fid_scipy(a, b):
  """The usual route: scipy.linalg.sqrtm of Σ₁Σ₂."""
  mu1, mu2 = a.mean(0), b.mean(0)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def test_fid_matches_scipy_sqrtm_route_in_float64():
  assert not jax.config.jax_enable_x64
  a, b = _gaussian(300, 12, seed=1, shift=5.0), 0.7 * _gaussian(250, 12, seed=2, shift=4.0)
  expected = _fid_scipy(a, b)
  got = metrics.fid(a.astype(np.float32), b.astype(np.float32))
  np.testing.assert_allclose(got, _fid_scipy(a.astype(np.float32).astype(np.float64),
                                             b.astype(np.float32).astype(np.float64)), rtol=1e-6)
  np.testing.assert_allclose(metrics.fid(a, b), expected, rtol=1e-6)
  assert not jax.config.jax_enable_x64  # The float64 scope did not leak.


def test_fid_known_values():
  x = _gaussian(200, 6, seed=3)
  trace = np.trace(np.cov(x, rowvar=False))
  assert abs(metrics.fid(x, x)) < 1e-9 * trace
  delta = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 0.25])
  np.testing.assert_allclose(metrics.fid(x, x + delta), delta @ delta, rtol=1e-6)
  # Independent samples of one distribution: small but not zero.
  assert 0 < metrics.fid(x, _gaussian(200, 6, seed=3)[::-1][:150] + 0.1) < 0.1 * trace


def test_fid_input_errors():
  with pytest.raises(EvaluationError, match="different dimensions \\(4 vs 5\\)"):
    metrics.fid(np.zeros((10, 4)), np.zeros((10, 5)))
  with pytest.raises(EvaluationError, match="at least 2 fake samples, got 1"):
    metrics.fid(_gaussian(10, 3, seed=0), _gaussian(1, 3, seed=1))
  with pytest.warns(UserWarning, match="singular"):
    metrics.fid(_gaussian(5, 8, seed=0), _gaussian(20, 8, seed=1))
  with pytest.raises(EvaluationError, match="\\[num_samples, dim\\]"):
    metrics.fid(np.zeros((10,)), np.zeros((10,)))


# ---------------------------------------------------------------------------------------------------
# Inception Score.


def _is_openai(probs, splits=10):
  """OpenAI's improved-gan inception_score loop, in numpy float64."""
  scores = []
  n = probs.shape[0]
  for i in range(splits):
    part = probs[i * n // splits:(i + 1) * n // splits]
    kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
    scores.append(np.exp(np.mean(np.sum(kl, 1))))
  return np.mean(scores), np.std(scores)


@pytest.mark.parametrize("n", [250, 253])  # 253: splits of unequal sizes.
def test_inception_score_matches_numpy(n):
  logits = 3 * np.random.default_rng(n).standard_normal((n, 12))
  expected = _is_openai(scipy.special.softmax(logits, axis=1))
  np.testing.assert_allclose(metrics.inception_score(logits.astype(np.float32)),
                             _is_openai(scipy.special.softmax(logits.astype(np.float32).astype(np.float64), 1)),
                             rtol=1e-6)
  np.testing.assert_allclose(metrics.inception_score(logits), expected, rtol=1e-6)
  np.testing.assert_allclose(metrics.inception_score_from_probs(scipy.special.softmax(logits, 1)), expected,
                             rtol=1e-6)


def test_inception_score_known_values():
  k = 7
  confident_and_diverse = np.eye(k)[np.arange(70) % k]  # Every split: each class 10 times, one-hot.
  mean, std = metrics.inception_score_from_probs(confident_and_diverse)
  np.testing.assert_allclose([mean, std], [k, 0.0], atol=1e-9)
  same = np.tile(np.array([[5.0, 1.0, -2.0]]), (40, 1))  # p(y|x) = p(y): KL = 0.
  np.testing.assert_allclose(metrics.inception_score(same), [1.0, 0.0], atol=1e-12)
  with pytest.raises(EvaluationError, match="at least as many samples as splits \\(10\\), got 9"):
    metrics.inception_score(np.zeros((9, 3)))


# ---------------------------------------------------------------------------------------------------
# KID.


def _mmd2_double_loop(x, y):
  m, d = len(x), x.shape[1]
  k = lambda a, b: (a @ b / d + 1) ** 3
  xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
  return xx + yy - 2 * xy


def test_kid_matches_double_loop():
  real, fake = _gaussian(30, 5, seed=4), _gaussian(25, 5, seed=5, shift=0.5)
  # The subsets KID draws: per subset, real indices then fake indices, without replacement.
  rng = np.random.default_rng(7)
  mmds = []
  for _ in range(4):
    x = real[rng.choice(30, 10, replace=False)]
    mmds.append(_mmd2_double_loop(x, fake[rng.choice(25, 10, replace=False)]))
  got = metrics.kernel_inception_distance(real, fake, num_subsets=4, subset_size=10, seed=7)
  np.testing.assert_allclose(got, [np.mean(mmds), np.std(mmds)], rtol=1e-6)
  assert metrics.kernel_inception_distance(real, fake, num_subsets=4, subset_size=10, seed=7) == got
  assert metrics.kernel_inception_distance(real, fake, num_subsets=4, subset_size=10, seed=8) != got


def test_kid_input_errors():
  with pytest.raises(EvaluationError, match="subset size 1000 .* \\(real 30, fake 25\\)"):
    metrics.kernel_inception_distance(np.zeros((30, 4)), np.zeros((25, 4)))
  with pytest.raises(EvaluationError, match="different dimensions"):
    metrics.kernel_inception_distance(np.zeros((30, 4)), np.zeros((30, 3)), subset_size=10)


# ---------------------------------------------------------------------------------------------------
# Precision and recall.


def _pr_brute_force(real, fake, k):
  dist = lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
  real_radii = np.sort(dist(real, real), axis=1)[:, k]  # Index 0 is the point itself.
  fake_radii = np.sort(dist(fake, fake), axis=1)[:, k]
  precision = np.mean([(dist(f[None], real)[0] <= real_radii).any() for f in fake])
  recall = np.mean([(dist(r[None], fake)[0] <= fake_radii).any() for r in real])
  return precision, recall


def test_precision_recall_matches_brute_force():
  real, fake = _gaussian(60, 4, seed=6), 1.3 * _gaussian(50, 4, seed=7, shift=1.0)
  expected = _pr_brute_force(real, fake, k=3)
  assert 0 < expected[0] < 1 and 0 < expected[1] < 1 and expected[0] != expected[1]
  np.testing.assert_allclose(metrics.precision_recall(real, fake), expected, rtol=1e-6)
  np.testing.assert_allclose(metrics.precision_recall(real, fake, batch_size=7), expected, rtol=1e-6)
  np.testing.assert_allclose(metrics.precision_recall(real, fake, k=5), _pr_brute_force(real, fake, 5), rtol=1e-6)


def test_precision_recall_not_swapped():
  rng = np.random.default_rng(8)
  real = np.concatenate([rng.standard_normal((40, 3)), 20 + rng.standard_normal((40, 3))])
  fake = real[:40][rng.permutation(40)[:30]] + 1e-3 * rng.standard_normal((30, 3))  # Inside cluster 1 only.
  precision, recall = metrics.precision_recall(real, fake)
  assert precision == 1.0  # Every fake lies inside a real ball ...
  assert recall <= 0.5     # ... but no real of the second cluster lies inside a fake ball.
  np.testing.assert_allclose((precision, recall), _pr_brute_force(real, fake, 3), rtol=1e-6)


def test_precision_recall_with_tied_distances_matches_the_reference():
  """Integer-valued features (quantised ones, ReLU features with dead units) put many points exactly on a
  ball's edge: distances equal in exact arithmetic must stay equal, or `≤` at the edge flips."""
  rng = np.random.default_rng(11)
  real = rng.integers(0, 4, (120, 6)).astype(np.float32) + 7.0   # a mean far from 0, as features have
  fake = rng.integers(0, 5, (100, 6)).astype(np.float32) + 7.0
  expected = _pr_brute_force(real.astype(np.float64), fake.astype(np.float64), k=3)
  assert 0 < expected[0] < 1, expected  # a case where the edges decide
  assert metrics.precision_recall(real, fake) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_kth_neighbour_counts_ties_like_a_sort(k):
  """The k-th nearest other point, with duplicated points (several at distance 0): a sort's answer."""
  rng = np.random.default_rng(12)
  points = rng.integers(0, 3, (40, 2)).astype(np.float32)  # 9 distinct values for 40 points
  expected = np.sort(((points[:, None] - points[None]) ** 2).sum(-1), axis=1)[:, k]
  np.testing.assert_array_equal(np.asarray(metrics._kth_neighbour(points, points, k)), expected)


def test_class_histogram_counts_covered_classes_and_entropy():
  logits = np.full((100, 4), -5.0)
  classes = np.array([0] * 50 + [1] * 47 + [2] * 3)  # class 3 never, class 2 at 3 % (≥ 10 % of 25 %)
  logits[np.arange(100), classes] = 5.0
  out = metrics.class_histogram(logits)
  fractions = np.array([0.5, 0.47, 0.03])
  assert out["classes_covered"] == 3.0 and out["class_max_fraction"] == 0.5
  np.testing.assert_allclose(out["class_entropy"], -np.sum(fractions * np.log(fractions)), rtol=1e-12)
  logits[np.arange(100), classes] = -5.0
  logits[np.arange(100), np.arange(100) % 4] = 5.0  # uniform: log K
  np.testing.assert_allclose(metrics.class_histogram(logits)["class_entropy"], np.log(4), rtol=1e-12)
  assert metrics.class_histogram(logits[:2])["classes_covered"] == 2.0  # 2 of 4 classes seen in 2 images


def test_precision_recall_input_errors():
  with pytest.raises(EvaluationError, match="k=3 needs more than 3 .* \\(real 10, fake 3\\)"):
    metrics.precision_recall(np.zeros((10, 2)), np.zeros((3, 2)))
  with pytest.raises(EvaluationError, match="different dimensions"):
    metrics.precision_recall(np.zeros((10, 2)), np.zeros((10, 3)))


# ---------------------------------------------------------------------------------------------------
# Streaming through an extractor.


def _projection_extractor():
  """Integer random projections of {-1, 0, 1} images: float32-exact features, so batching cannot matter."""
  rng = np.random.default_rng(9)
  proj, head = rng.integers(-2, 3, (64, 6)).astype(np.float32), rng.integers(-1, 2, (6, 5)).astype(np.float32)

  def fn(images):
    features = images.reshape(images.shape[0], -1) @ proj
    return features, features @ head / 8
  return metrics.Extractor(fn), lambda images: fn(np.asarray(images))


def _image_batches(sizes, seed):
  rng = np.random.default_rng(seed)
  return [rng.integers(-1, 2, (n, 8, 8, 1)).astype(np.float32) for n in sizes]


def test_compute_metrics_streams_batches():
  extractor, reference_fn = _projection_extractor()
  real, fake = _image_batches([40, 40, 23], seed=10), _image_batches([32, 32, 32, 5], seed=11)
  options = dict(kid_subsets=5, kid_subset_size=20, seed=3)
  got = metrics.compute_metrics(extractor, iter(real), ({"image": b} for b in fake), **options)
  real_f, _ = reference_fn(np.concatenate(real))
  fake_f, fake_logits = reference_fn(np.concatenate(fake))
  expected = {"fid": metrics.fid(real_f, fake_f)}
  expected["is"], expected["is_std"] = metrics.inception_score(fake_logits)
  expected["kid"], expected["kid_std"] = metrics.kernel_inception_distance(
      real_f, fake_f, num_subsets=5, subset_size=20, seed=3)
  expected["precision"], expected["recall"] = metrics.precision_recall(real_f, fake_f)
  expected.update(metrics.class_histogram(fake_logits))
  assert got.keys() == expected.keys()
  for name in expected:
    assert isinstance(got[name], float)
    np.testing.assert_allclose(got[name], expected[name], rtol=1e-9, err_msg=name)
  assert metrics.compute_metrics(extractor, real, fake, metrics=["fid"]) == {"fid": got["fid"]}


def test_compute_metrics_errors():
  extractor, _ = _projection_extractor()
  batches = _image_batches([20], seed=0)
  with pytest.raises(EvaluationError, match="unknown metric 'fd'"):
    metrics.compute_metrics(extractor, batches, batches, metrics=("fd",))
  with pytest.raises(EvaluationError, match="batch iterator is empty"):
    metrics.compute_metrics(extractor, [], batches, metrics=("fid",))
  no_logits = metrics.Extractor(lambda images: (images.reshape(images.shape[0], -1), None))
  with pytest.raises(EvaluationError, match="need logits"):
    metrics.compute_metrics(no_logits, batches, batches, metrics=("is",))
