"""Known values of every loss, computed independently with numpy/scipy."""

import numpy as np
import pytest
import scipy.stats
from scipy.special import expit

import jax
import jax.numpy as jnp

from genjax import control, losses

RNG = np.random.default_rng(0)


def test_gaussian_kl_matches_closed_form_and_monte_carlo():
  mean, logvar = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3)) * 0.5
  var = np.exp(logvar)
  # KL(N(m, v) || N(0, 1)) = ½(v + m² − 1 − log v), summed over dims, averaged over the batch.
  expected = np.mean(np.sum(0.5 * (var + mean**2 - 1 - logvar), axis=1))
  np.testing.assert_allclose(losses.gaussian_kl(jnp.asarray(mean), jnp.asarray(logvar)), expected, rtol=1e-5)
  # and against sampling: E_q[log q − log p]
  z = mean[0] + np.sqrt(var[0]) * RNG.normal(size=(400_000, 3))
  mc = np.mean(np.sum(scipy.stats.norm.logpdf(z, mean[0], np.sqrt(var[0])) - scipy.stats.norm.logpdf(z), 1))
  np.testing.assert_allclose(losses.gaussian_kl(jnp.asarray(mean[:1]), jnp.asarray(logvar[:1])), mc, rtol=2e-2)


def test_gaussian_kl_is_zero_at_the_prior():
  assert float(losses.gaussian_kl(jnp.zeros((2, 5)), jnp.zeros((2, 5)))) == 0.0


@pytest.mark.parametrize("log_sigma_shape", [(), (1, 2, 3), (2, 2, 3)])
def test_gaussian_nll_matches_scipy(log_sigma_shape):
  x, mean = RNG.normal(size=(2, 2, 3)), RNG.normal(size=(2, 2, 3))
  log_sigma = RNG.normal(size=log_sigma_shape) * 0.3
  expected = -np.mean(np.sum(scipy.stats.norm.logpdf(x, mean, np.exp(log_sigma)).reshape(2, -1), 1))
  got = losses.gaussian_nll(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(log_sigma))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gaussian_nll_without_constant_drops_half_log_2pi_per_element():
  x, mean = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
  full = losses.gaussian_nll(jnp.asarray(x), jnp.asarray(mean))
  bare = losses.gaussian_nll(jnp.asarray(x), jnp.asarray(mean), constant=False)
  np.testing.assert_allclose(full - bare, 4 * 0.5 * np.log(2 * np.pi), rtol=1e-5)
  np.testing.assert_allclose(bare, np.mean(np.sum(0.5 * (x - mean) ** 2, 1)), rtol=1e-5)


def test_gan_losses_match_binary_cross_entropy():
  real, fake = RNG.normal(size=7) * 3, RNG.normal(size=7) * 3
  d_real, d_fake = expit(real), expit(fake)
  expected_dis = -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))
  expected_gen = -np.mean(np.log(d_fake))  # non-saturating: −log D(G(z))
  np.testing.assert_allclose(losses.discriminator_loss(jnp.asarray(real), jnp.asarray(fake)), expected_dis, rtol=1e-5)
  np.testing.assert_allclose(losses.generator_loss(jnp.asarray(fake)), expected_gen, rtol=1e-5)


def test_bce_is_stable_for_large_logits():
  assert np.isfinite(float(losses.bce_with_logits(jnp.asarray([1e4, -1e4]), 1.0)))
  np.testing.assert_allclose(losses.bce_with_logits(jnp.asarray([-100.0]), 1.0), 100.0, rtol=1e-6)


def test_reparameterize_has_the_right_moments_and_gradient():
  mean, logvar = jnp.full((200_000, 1), 1.5), jnp.full((200_000, 1), np.log(4.0))
  z = losses.reparameterize(jax.random.PRNGKey(0), mean, logvar)
  np.testing.assert_allclose([z.mean(), z.std()], [1.5, 2.0], rtol=1e-2)
  grad = jax.grad(lambda m: losses.reparameterize(jax.random.PRNGKey(0), m, logvar[:1]).sum())(mean[:1])
  np.testing.assert_allclose(grad, 1.0)


@pytest.mark.parametrize("real,fake,expected", [
    (0.69, 0.69, (True, True)),    # balanced: both train
    (0.20, 0.69, (False, True)),   # discriminator too good on real: it rests
    (0.69, 0.10, (False, True)),   # too good on fake: it rests
    (1.20, 0.69, (True, False)),   # discriminator far behind: the decoder rests
    (0.20, 1.20, (True, True)),    # both would rest: both train
])
def test_larsen_gates(real, fake, expected):
  dis, dec = control.larsen_gates(jnp.asarray(real), jnp.asarray(fake), 0.68, 0.35)
  assert (bool(dis), bool(dec)) == expected


def test_generic_losses_match_numpy():
  x, y = RNG.normal(size=(3, 4, 2)), RNG.normal(size=(3, 4, 2))
  np.testing.assert_allclose(losses.mean_absolute_error(jnp.asarray(x), jnp.asarray(y)), np.mean(np.abs(x - y)),
                             rtol=1e-6)
  np.testing.assert_allclose(losses.squared_error(jnp.asarray(x), jnp.asarray(y)),
                             np.mean(np.sum((x - y).reshape(3, -1) ** 2, 1)), rtol=1e-6)
  logits, labels = RNG.normal(size=(5, 4)), np.array([0, 3, 1, 1, 2])
  log_p = logits - np.log(np.sum(np.exp(logits), 1, keepdims=True))
  np.testing.assert_allclose(losses.softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels)),
                             -np.mean(log_p[np.arange(5), labels]), rtol=1e-6)
  targets = (RNG.uniform(size=(5, 4)) > 0.5).astype(np.float64)
  p = expit(logits)
  expected = -np.mean(np.sum(targets * np.log(p) + (1 - targets) * np.log(1 - p), 1))
  np.testing.assert_allclose(losses.multilabel_bce(jnp.asarray(logits), jnp.asarray(targets)), expected, rtol=1e-5)
