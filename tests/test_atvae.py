"""Khan et al.'s adversarially trained VAE: own gradients of all three networks, k constant, the PID
wiring, the plain-generator variant = BEGAN with PID, presets, bad values, a short digits run.

The reference losses are written from the paper's equations directly on the modules (separate network
calls, one `jax.grad` per network); the method gets all three gradients from one pass and one vjp.
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from genjax import train, validation
from genjax.errors import ConfigError
from genjax.methods import atvae, began
from tests.helpers import (assert_trees_close, check_equilibrium, check_own_gradients, digits_batches, k_derivative,
                           load_config, network_gradients, one_device, random_batch, run_paper_preset, short_run,
                           tiny_config,
                           to_float64)

# Distinct weights, so that swapping two of them changes a gradient.
WEIGHTS = dict(alpha=0.3, beta=0.7, gamma=0.2, kl_weight=0.4, eta=0.5)


def _config(loss=None, model=None):
  return tiny_config("atvae", lr=1e-3, loss=dict(WEIGHTS, **(loss or {})), model=model or {})


def _setup(k=0.3, loss=None, model=None):
  config = _config(loss, model)
  batch = jax.tree.map(jnp.asarray, random_batch(size=16))
  state = atvae.init_state(config, jax.random.PRNGKey(0), batch)
  return config, state.replace(extra={**state.extra, "k": jnp.float32(k)}), batch


def _reference_losses(state, params, batch, rng, k, similarity=True, alpha=0.3, beta=0.7, gamma=0.2, w=0.4):
  """Khan et al.: L_dis = L_d − k(L_g + αL_v), L_gen = L_g + αL_v + βL_s + γL_e, L_enc = wL_n + βL_s + γL_e."""
  x = batch["image"]
  run = lambda net, v: state.models[net].apply({"params": params[net]}, v)
  mean, logvar = run("encoder", x)
  rng_q, rng_p = jax.random.split(rng)
  x_v = run("decoder", mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng_q, mean.shape, mean.dtype))
  x_g = run("decoder", jax.random.normal(rng_p, mean.shape, mean.dtype))
  L = lambda v: jnp.mean(jnp.abs(v - run("discriminator", v)[0]))
  l_d, l_g, l_v = L(x), L(x_g), L(x_v)
  l_s = jnp.mean(jnp.abs(run("discriminator", x)[1] - run("discriminator", x_v)[1])) if similarity else 0.0
  l_e = jnp.mean(jnp.abs(x - x_v))
  l_n = jnp.mean(0.5 * (jnp.exp(logvar) + mean**2 - 1 - logvar))  # KL per latent dimension, batch mean
  return {"discriminator": l_d - k * (l_g + alpha * l_v),
          "decoder": l_g + alpha * l_v + beta * l_s + gamma * l_e,
          "encoder": w * l_n + beta * l_s + gamma * l_e}


def _check_own_gradients(config, state, batch, reference):
  rng = jax.random.PRNGKey(7)
  with jax.enable_x64(True):  # float64 on both sides, so 1e-6 tests the routing, not round-off
    state, batch = to_float64(state), to_float64(batch)
    grads, _, _ = jax.jit(lambda s, b: network_gradients(atvae, s, b, rng, config))(state, batch)
    check_own_gradients(grads, state, batch, rng, reference)


def test_each_network_gets_exactly_its_own_gradient_with_k_constant():
  config, state, batch = _setup(k=0.3)
  _check_own_gradients(config, state, batch, lambda s, p, b, rng: _reference_losses(s, p, b, rng, 0.3))


def test_similarity_switch_drops_exactly_l_s():
  rng = jax.random.PRNGKey(2)
  losses = {}
  for on in (True, False):
    config, state, batch = _setup(k=0.3, loss=dict(similarity=on))
    own, (terms, _) = atvae.network_losses(config)(state, state.params, batch, rng)
    reference = _reference_losses(state, state.params, batch, rng, 0.3, similarity=on)
    assert_trees_close(own, reference, rtol=1e-5)
    losses[on] = (own, terms)
  (own_on, terms_on), (own_off, terms_off) = losses[True], losses[False]
  assert float(terms_off["code_l1"]) == 0.0 < float(terms_on["code_l1"])
  for net, weight in (("encoder", 0.7), ("decoder", 0.7), ("discriminator", 0.0)):
    np.testing.assert_allclose(own_on[net] - own_off[net], weight * terms_on["code_l1"], rtol=1e-5, atol=1e-7)


def test_plain_generator_gradients_are_began_with_k_constant():
  config, state, batch = _setup(k=0.3, model=dict(vae=False))
  assert set(state.params) == {"decoder", "discriminator"}

  def reference(s, p, batch, rng):  # BEGAN §3.4, z ~ U(−1, 1)
    x = batch["image"]
    G = lambda z: s.models["decoder"].apply({"params": p["decoder"]}, z)
    L = lambda v: jnp.mean(jnp.abs(v - s.models["discriminator"].apply({"params": p["discriminator"]}, v)[0]))
    fake = G(jax.random.uniform(rng, (x.shape[0], s.models["decoder"].latent_dim), x.dtype, -1.0, 1.0))
    return {"discriminator": L(x) - 0.3 * L(fake), "decoder": L(fake)}

  _check_own_gradients(config, state, batch, reference)


def test_no_gradient_flows_to_k():
  config, state, batch = _setup()
  assert k_derivative(atvae, config, state, batch) == 0.0


@pytest.mark.parametrize("form,expected", [("eq10", 0.5 * 0.2 - (0.3 + 0.3 * 0.4)),   # η L_d − (L_g + α L_v)
                                           ("eq11", 0.5 * 0.2 - 0.3 + 0.3 * 0.4)])   # as printed
def test_equilibrium_error_follows_eq10_or_the_printed_eq11(form, expected):
  config = tiny_config("atvae", lr=1e-3, loss=dict(error=form, eta=0.5, alpha=0.3))
  terms = {"loss_real": 0.2, "loss_fake": 0.3, "loss_recon": 0.4}
  assert float(atvae.equilibrium_error(config)(terms)) == pytest.approx(expected, abs=1e-7)


def test_p_control_drops_the_derivative_gains():
  gains = dict(lambda_1=1e-3, lambda_2=2e-5, lambda_3=3e-5)
  assert atvae.controller_gains(tiny_config("atvae", lr=1e-3, loss=dict(control="p", **gains))) == (1e-3, 0.0, 0.0)
  assert atvae.controller_gains(tiny_config("atvae", lr=1e-3, loss=gains)) == (1e-3, 2e-5, 3e-5)


def test_steps_update_k_by_the_pid_law_from_the_logged_losses():
  config, state, batch = _setup(k=0.0)  # the short digits run's config: one compiled step for both
  step = jax.jit(atvae.METHOD.make_train_step(config))
  k, e1, e2 = 0.0, 0.0, 0.0
  l1, l2, l3 = config.loss.lambda_1, config.loss.lambda_2, config.loss.lambda_3
  assert l2 > 0 and l3 > 0
  for _ in range(4):
    state, m = step(state, batch)
    assert float(m["k"]) == pytest.approx(k, abs=1e-7)  # L_dis used k_{t−1}
    e = 0.5 * float(m["loss_real"]) - (float(m["loss_fake"]) + 0.3 * float(m["loss_recon"]))
    k = float(np.clip(k + l1 * e + l2 * (e - e1) + l3 * (e + e2 - 2 * e1), 0.0, 1.0))
    e1, e2 = e, e1
    np.testing.assert_allclose(float(m["control_error"]), e, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(m["convergence"]), float(m["loss_real"]) + abs(e), rtol=1e-5)
    np.testing.assert_allclose(float(state.extra["k"]), k, rtol=1e-5, atol=1e-8)
  assert k > 0.0
  assert {"loss_real", "loss_fake", "loss_recon", "code_l1", "pixel_l1", "kl", "dis_loss", "gen_loss",
          "enc_loss", "grad_norm/encoder", "grad_norm/decoder", "grad_norm/discriminator"} <= set(m)


def test_plain_generator_with_p_control_is_began():
  b_config = tiny_config("began", lr=1e-3)
  config, state, batch = _setup(k=0.0, loss=dict(control="p", eta=b_config.loss.gamma,
                                                 lambda_1=b_config.loss.lambda_k), model=dict(vae=False))
  for key in ("filters", "code_dim", "latent_dim", "skip", "width"):
    assert b_config.model[key] == config.model[key], key
  for net, slot in (("generator", "decoder"), ("discriminator", "discriminator")):
    assert (b_config.optim[net].name, b_config.optim[net].lr, b_config.optim[net].b1) == (
        config.optim[slot].name, config.optim[slot].lr, config.optim[slot].b1)
  b_state = began.init_state(b_config, jax.random.PRNGKey(0), batch)
  new, metrics = jax.jit(atvae.METHOD.make_train_step(config))(state, batch)
  b_new, b_metrics = jax.jit(began.METHOD.make_train_step(b_config))(b_state, batch)
  assert_trees_close(new.params["decoder"], b_new.params["generator"], atol=1e-7)
  assert_trees_close(new.params["discriminator"], b_new.params["discriminator"], atol=1e-7)
  assert_trees_close(new.extra, b_new.extra, atol=1e-8)
  assert_trees_close(metrics["convergence"], b_metrics["convergence"], atol=1e-7)


def test_generate_encode_reconstruct():
  _, state, batch = _setup()
  images = atvae.generate(state, jax.random.PRNGKey(0), 3)
  assert images.shape == (3, 16, 16, 1) and float(jnp.max(jnp.abs(images))) <= 1.0
  assert atvae.encode(state, batch["image"]).shape == (8, 8)
  assert atvae.reconstruct(state, batch["image"]).shape == batch["image"].shape


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.loss.update(lambda_2=-1e-5), "loss.lambda_2"),
    (lambda c: c.loss.update(lambda_1=float("nan")), "loss.lambda_1"),
    (lambda c: c.loss.update(eta=float("inf")), "loss.eta"),
    (lambda c: c.loss.update(alpha=-0.3), "loss.alpha"),
    (lambda c: c.loss.update(beta=float("nan")), "loss.beta"),
    (lambda c: c.loss.update(control="pi"), "loss.control"),
    (lambda c: c.data.update(image_size=48), "data.image_size 48"),
])
def test_bad_values_are_refused_naming_the_key(edit, message):
  config = load_config("atvae")
  config.unlock()
  edit(config)
  with pytest.raises(ConfigError, match=message):
    validation.validate(config, num_devices=8)


def test_default_preset_trains_one_step_on_digits(digits_dir, tmp_path):
  config = load_config("atvae")
  config.unlock(); config.data.update(data_dir=digits_dir, image_size=16); config.lock()
  state = train.train_and_evaluate(config, str(tmp_path), mesh=one_device())
  assert int(state.step) == 1
  for png in ("samples.png", "reconstructions.png"):
    assert (tmp_path / png).stat().st_size > 100


@pytest.mark.parametrize("preset", ["celeba64", "celeba128", "cifar10"])
def test_paper_presets_run_one_step_on_mock_data(preset, tmp_path):
  _, state = run_paper_preset("atvae", preset, tmp_path)
  assert set(state.params) == {"encoder", "decoder", "discriminator"}


def test_short_digits_run_moves_k_and_lowers_the_convergence_measure(digits_dir):
  config = _config()
  state, history = short_run(atvae, config, digits_batches(config, digits_dir))
  check_equilibrium(state, history)
  assert history["pixel_l1"][-30:].mean() < history["pixel_l1"][:30].mean()  # the VAE learns too
