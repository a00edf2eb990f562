"""Denoising feature matching (Warde-Farley & Bengio 2017): own gradients, the fixed denoising target,
every preset end to end, a short run whose diagnostics move as the paper says, bad input.
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp
import optax

from genjax import validation
from genjax.errors import ConfigError
from genjax.methods import dfm
from tests.helpers import (assert_discriminator_at_chance, assert_discriminator_left_chance, assert_trees_close,
                           check_own_gradients, float64_setup, load_config, method_gradients, run_module,
                           run_paper_preset, train_on_digits)

LOSS = {"denoise_weight": 5.0, "adv_weight": 0.7, "noise_std": 0.8}  # not the defaults: each must matter


def _reference_losses(state, params, batch, rng, denoise_weight, adv_weight, noise_std):
  """The paper's three objectives, written out on the modules."""
  x = batch["image"]
  n = x.shape[0]
  rng_z, rng_c = jax.random.split(rng)
  z = jax.random.normal(rng_z, (n, state.models["generator"].latent_dim), x.dtype)
  logits, phi = run_module(state, params, "discriminator",
                           jnp.concatenate([x, run_module(state, params, "generator", z)]))
  d_real, d_fake = jax.nn.sigmoid(logits[:n]), jax.nn.sigmoid(logits[n:])
  phi_x, phi_g = phi[:n], phi[n:]
  n_h = phi.shape[-1]
  # Denoiser: min_r E‖φ(x) − r(φ(x) + σε)‖², real features only.
  noisy = phi_x + noise_std * jax.random.normal(rng_c, phi_x.shape, phi_x.dtype)
  l_r = jnp.mean(jnp.sum(jnp.square(phi_x - run_module(state, params, "denoiser", noisy)), -1))
  # Generator: λ_denoise ‖φ(G(z)) − r(φ(G(z)))‖² with r(φ(G(z))) a fixed target, − λ_adv log D(G(z)).
  target = jax.lax.stop_gradient(run_module(state, params, "denoiser", phi_g))
  l_g = (denoise_weight / n_h * jnp.mean(jnp.sum(jnp.square(phi_g - target), -1))
         - adv_weight * jnp.mean(jnp.log(d_fake)))
  l_d = -jnp.mean(jnp.log(d_real)) - jnp.mean(jnp.log(1 - d_fake))
  return {"generator": l_g, "discriminator": l_d, "denoiser": l_r}


def test_each_network_gets_exactly_its_own_gradient_and_the_denoising_target_is_fixed():
  rng = jax.random.PRNGKey(7)
  gradients = method_gradients(dfm)
  with jax.enable_x64(True):
    state, batch = float64_setup(dfm, "dfm", **LOSS)
    grads, metrics = gradients(state, batch, rng, LOSS)
    check_own_gradients(grads, state, batch, rng, lambda s, p, b, r: _reference_losses(s, p, b, r, **LOSS))
    # λ_denoise weights a term of L_G whose target r(φ(G(z))) is fixed: r's and D's gradients are
    # bit-identical under any λ_denoise. σ corrupts L_r's input only: G's and D's are unchanged by σ.
    heavy, _ = gradients(state, batch, rng, {**LOSS, "denoise_weight": 500.0})
    noisier, _ = gradients(state, batch, rng, {**LOSS, "noise_std": 2.0})
    for net in ("denoiser", "discriminator"):
      assert_trees_close(grads[net], heavy[net])
    for net in ("generator", "discriminator"):
      assert_trees_close(grads[net], noisier[net])
    assert not np.allclose(optax.global_norm(grads["generator"]), optax.global_norm(heavy["generator"]))
    assert not np.allclose(optax.global_norm(grads["denoiser"]), optax.global_norm(noisier["denoiser"]))
  assert_discriminator_at_chance(metrics)


def test_default_preset_on_digits_the_denoiser_learns_and_d_leaves_chance(tmp_path, digits_dir):
  # The paper's lr 1e-4 moves r too slowly for a run of 60 steps: 1e-3 for every network here.
  results, state = train_on_digits("dfm", tmp_path, digits_dir, steps=60, lr=1e-3)
  m = results["train"]  # means over steps 31..60
  n_h = state.models["discriminator"].num_features((16, 16, 1))
  # r denoises real features: far better than returning its input (error σ²·n_h) or returning 0
  # (error ‖φ(x)‖², about where the freshly initialised r starts).
  assert m["denoise_loss"] < 0.5 * n_h * 1.0**2, m
  assert m["denoise_loss"] < 0.5 * n_h * m["feature_rms"]**2, m
  assert_discriminator_left_chance(m)
  expected = {"denoise_loss", "gen_denoise", "gen_adv", "d_real", "d_fake", "dis_real_bce", "dis_fake_bce",
              "grad_norm/generator", "grad_norm/discriminator", "grad_norm/denoiser"}
  assert expected <= set(m)
  assert {"d_real", "real_denoise_residual"} <= set(results["eval"])


@pytest.mark.parametrize("preset", ["cifar10", "stl10", "imagenet32"])
def test_paper_presets_run_one_step_on_mock_data(preset, tmp_path):
  results, _ = run_paper_preset("dfm", preset, tmp_path)
  assert results["num_params"]["denoiser"] > 0


@pytest.mark.parametrize("key,value", [
    ("denoise_weight", -0.03), ("denoise_weight", float("nan")), ("adv_weight", -1.0),
    ("adv_weight", float("inf")), ("noise_std", -1.0), ("noise_std", float("inf")),
])
def test_bad_weights_and_noise_are_refused_naming_the_key(key, value):
  config = load_config("dfm")
  config.unlock()
  config.loss[key] = value
  with pytest.raises(ConfigError, match=f"loss.{key}"):
    validation.validate(config, num_devices=8)
  with pytest.raises(ConfigError, match=f"loss.{key}"):
    dfm.validate(config, (32, 32, 1))  # the method's own check, without the loop's finite check


@pytest.mark.parametrize("preset,size", [("", 36), ("stl10", 44), ("", 4)])
def test_image_sizes_the_architecture_cannot_take_are_refused(preset, size):
  config = load_config("dfm", preset)
  config.unlock()
  config.data.image_size = size
  with pytest.raises(ConfigError, match="data.image_size"):
    validation.validate(config, num_devices=8)
