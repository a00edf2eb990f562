"""VampPrior VAE (Tomczak & Welling 2018): the KL estimator, the slot's gradient, end to end.

The references are written from the paper with scipy (numpy) or jax.scipy densities, not with the
method's own log-density helpers.
"""

import json

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow_datasets as tfds

import jax
import jax.numpy as jnp
import optax

from genjax import losses, parallel, train
from genjax.evaluation import evaluator
from genjax.methods import vampprior
from tests.helpers import assert_trees_close, load_config, network_gradients, random_batch, to_float64


def _config(**loss):
  config = load_config("vampprior")
  config.unlock()
  config.data.image_size = 16
  config.model.num_pseudo_inputs = 6
  config.loss.update(loss)
  config.lock()
  return config


@pytest.fixture(scope="module")
def setup():
  config = _config()
  batch = jax.tree.map(jnp.asarray, random_batch(size=16))
  return config, vampprior.init_state(config, jax.random.PRNGKey(0), batch), batch


def _scipy_kl(z, mean, logvar, prior_mean, prior_logvar):
  """mean_i [log q(z_i|x_i) − log (1/K) Σ_k q(z_i|u_k)] with scipy densities (T&W eq. 9)."""
  log_q = scipy.stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1)
  log_qk = scipy.stats.norm.logpdf(z[:, None], prior_mean[None], np.exp(0.5 * prior_logvar)[None]).sum(-1)
  log_p = scipy.special.logsumexp(log_qk, axis=1) - np.log(len(prior_mean))
  return np.mean(log_q - log_p)


@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: every q(z|u_k) underflows without logsumexp
def test_kl_estimator_matches_scipy(scale):
  rng = np.random.default_rng(0)
  mean, logvar = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)) * 0.5
  prior_mean, prior_logvar = rng.normal(size=(7, 4)), rng.normal(size=(7, 4)) * 0.5
  z = scale * rng.normal(size=(5, 4))
  with jax.enable_x64(True):
    kl, terms = vampprior.vamp_kl(*map(jnp.asarray, (z, mean, logvar, prior_mean, prior_logvar)))
    expected = _scipy_kl(z, mean, logvar, prior_mean, prior_logvar)
    assert np.isfinite(expected) and abs(expected) > 0.1
    np.testing.assert_allclose(float(kl), expected, rtol=1e-10)
    np.testing.assert_allclose(float(terms["log_q"] - terms["log_prior"]), expected, rtol=1e-10)


def test_standard_normal_pseudo_posterior_gives_the_closed_form_kl():
  """K = 1 with q(z|u_1) = N(0, I): E_q[log q − log p_λ] = KL(q ‖ N(0, I)); K copies change nothing."""
  rng = np.random.default_rng(1)
  mean = jnp.asarray(rng.normal(size=(4, 6)), jnp.float32)
  logvar = jnp.asarray(rng.normal(size=(4, 6)) * 0.5, jnp.float32)
  draws = 20_000
  m, lv = jnp.tile(mean, (draws, 1)), jnp.tile(logvar, (draws, 1))
  z = losses.reparameterize(jax.random.PRNGKey(0), m, lv)
  zeros = jnp.zeros((1, 6))
  estimate, _ = vampprior.vamp_kl(z, m, lv, zeros, zeros)
  per_sample = vampprior.log_normal(z, m, lv) - vampprior.log_vamp_prior(z, zeros, zeros)
  standard_error = float(jnp.std(per_sample)) / np.sqrt(len(per_sample))
  closed_form = float(losses.gaussian_kl(mean, logvar))
  assert abs(float(estimate) - closed_form) < 4 * standard_error, (float(estimate), closed_form)
  three = jnp.zeros((3, 6))  # a mixture of 3 identical components is that component: needs the −log K
  np.testing.assert_allclose(vampprior.vamp_kl(z, m, lv, three, three)[0], estimate, rtol=1e-5)


def test_nll_hook_weights_are_joint_over_proposal_with_the_mixture_prior(setup):
  """log w_k = log p(x|z_k) + log p_λ(z_k) − log q(z_k|x), written with scipy densities (IWAE eq. 8)."""
  config, state, batch = setup
  x = batch["image"][:3]
  log_w = np.asarray(vampprior.log_importance_weights(state, x, jax.random.PRNGKey(5), 2), np.float64)
  mean, logvar = map(np.asarray, state.apply("encoder", x))
  prior_mean, prior_logvar = map(np.asarray, state.apply("encoder", vampprior.pseudo_inputs(state.params)))
  sigma = float(np.exp(state.params[vampprior.PIXEL_LOG_SIGMA]))
  for k, key in enumerate(jax.random.split(jax.random.PRNGKey(5), 2)):  # the hook's draws
    z = np.asarray(losses.reparameterize(key, jnp.asarray(mean), jnp.asarray(logvar)), np.float64)
    rec = np.asarray(state.apply("decoder", jnp.asarray(z, jnp.float32)), np.float64)
    log_px = scipy.stats.norm.logpdf(np.asarray(x), rec, sigma).reshape(3, -1).sum(-1)
    log_q = scipy.stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1)
    log_qk = scipy.stats.norm.logpdf(z[:, None], prior_mean[None], np.exp(0.5 * prior_logvar)[None]).sum(-1)
    log_p = scipy.special.logsumexp(log_qk, axis=1) - np.log(len(prior_mean))
    np.testing.assert_allclose(log_w[k], log_px + log_p - log_q, rtol=1e-4)


def _reference_neg_elbo(state, params, x, rng):
  """T&W eq. 2 with the VampPrior eq. 9, spelled out on the modules (pseudo-inputs: inference-mode BN)."""
  def run(net, inputs, train):
    variables = {"params": params[net], "batch_stats": state.batch_stats[net]}
    if train:
      return state.models[net].apply(variables, inputs, train=True, mutable=["batch_stats"])
    return state.models[net].apply(variables, inputs, train=False), None

  norm, n = jax.scipy.stats.norm, x.shape[0]
  (mean, logvar), enc_stats = run("encoder", x, True)
  u = jnp.clip(params["pseudo_inputs"], -1.0, 1.0)  # hardtanh
  (mean_k, logvar_k), _ = run("encoder", u, False)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape, mean.dtype)
  x_rec, _ = run("decoder", z, True)
  log_px = jnp.sum(norm.logpdf(x, x_rec, jnp.exp(params["pixel_log_sigma"])).reshape(n, -1), -1)
  log_q = jnp.sum(norm.logpdf(z, mean, jnp.exp(0.5 * logvar)), -1)
  log_qk = jnp.sum(norm.logpdf(z[:, None], mean_k[None], jnp.exp(0.5 * logvar_k)[None]), -1)
  log_p = jax.scipy.special.logsumexp(log_qk, axis=1, b=1.0 / u.shape[0])
  return jnp.mean(-log_px + log_q - log_p), enc_stats["batch_stats"]


def test_slot_gradient_is_the_negative_elbo_gradient_and_reaches_the_pseudo_inputs(setup):
  config, state, batch = setup
  rng = jax.random.PRNGKey(7)
  with jax.enable_x64(True):  # float64 on both sides, so 1e-6 tests the terms, not round-off
    state, batch = to_float64(state), to_float64(batch)
    grads, metrics, batch_stats = jax.jit(
        lambda s, b: network_gradients(vampprior, s, b, rng, config))(state, batch)
    reference = jax.jit(jax.grad(lambda p: _reference_neg_elbo(state, p, batch["image"], rng), has_aux=True))
    expected, enc_stats = reference(state.params)
    assert set(grads) == set(state.slots["vae"])
    assert_trees_close(grads, expected, atol=1e-6, rtol=1e-6)
    assert float(optax.global_norm(grads["pseudo_inputs"])) > 1e-6  # the prior term is there
    # BN running statistics come from the data batch only, not from the K pseudo-inputs.
    assert_trees_close(batch_stats["encoder"], enc_stats, atol=1e-12)
    loss = _reference_neg_elbo(state, state.params, batch["image"], rng)[0]
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-10)


def test_kl_warmup_ramps_beta_linearly():
  config = _config(beta=2.0, warmup_steps=100)
  weights = [float(vampprior.kl_weight(config, jnp.asarray(s))) for s in (0, 50, 100, 400)]
  assert weights == [0.0, 1.0, 2.0, 2.0]
  assert float(vampprior.kl_weight(_config(beta=0.5), jnp.asarray(0))) == 0.5


def test_generate_decodes_codes_drawn_from_the_pseudo_posteriors(setup):
  """With σ→0 posteriors, every sample decodes one of the K pseudo-inputs' posterior means."""
  config, state, _ = setup
  enc = state.params["encoder"]
  head = sorted(k for k in enc if k.startswith("Dense"))[-1]
  bias = enc[head]["bias"].at[config.model.latent_dim:].set(-1e4)  # logvar ≈ −1e4
  state = state.replace(params={**state.params, "encoder": {**enc, head: {**enc[head], "bias": bias}}})
  samples = vampprior.generate(state, jax.random.PRNGKey(3), 6)
  means, _ = state.apply("encoder", vampprior.pseudo_inputs(state.params))
  decoded = state.apply("decoder", means)
  distances = jnp.sum(jnp.square(samples[:, None] - decoded[None]), axis=(2, 3, 4))
  assert samples.shape == (6, 16, 16, 1)
  np.testing.assert_allclose(jnp.min(distances, axis=1), 0.0, atol=1e-8)


def _digits_config(digits_dir, **train_overrides):
  config = load_config("vampprior", "", **train_overrides)
  config.unlock()
  config.data.update(data_dir=digits_dir, image_size=16)
  config.lock()
  return config


@pytest.mark.parametrize("preset", ["mnist", "cifar10"])
def test_paper_presets_run_one_step_on_mock_data(preset, tmp_path):
  config = load_config("vampprior", preset)
  with tfds.testing.mock_data(num_examples=16):
    state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 1
  size, k = config.data.image_size, config.model.num_pseudo_inputs
  assert k == 500
  assert state.params["pseudo_inputs"].shape[:3] == (k, size, size)
  results = json.loads((tmp_path / "metrics.json").read_text())
  assert results["dataset"] == config.data.name
  assert all(np.isfinite(v) for v in results["train"].values())


def test_default_preset_improves_the_elbo_on_digits(digits_dir, tmp_path):
  """Digits end to end (every output written); the held-out negative ELBO falls within 40 steps."""
  config = _digits_config(digits_dir, num_steps=40, log_every=20, image_every=40, checkpoint_every=40)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 40
  results = json.loads((tmp_path / "metrics.json").read_text())
  assert all(np.isfinite(v) for v in results["train"].values())
  for png in ("samples.png", "reconstructions.png", "pseudo_inputs.png"):
    assert (tmp_path / png).stat().st_size > 100
  mesh = parallel.make_mesh()
  initial = vampprior.init_state(config, jax.random.PRNGKey(config.seed), {"image": np.zeros((1, 16, 16, 1))})
  before = evaluator.method_metrics(vampprior.METHOD, config, parallel.replicate(initial, mesh), mesh)["neg_elbo"]
  after = results["eval"]["neg_elbo"]  # the same held-out split and evaluation noise
  assert after < before - 0.1 * abs(before), (before, after)
