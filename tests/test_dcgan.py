"""DCGAN (Radford et al. 2016): own gradients, every preset end to end, a short run, bad input.

The reference is Goodfellow et al.'s game written directly on the modules, one `jax.grad` per network;
the method computes both gradients from one forward pass and one vjp.
"""

import pytest

import jax
import jax.numpy as jnp

from genjax import validation
from genjax.errors import ConfigError
from genjax.methods import dcgan
from tests.helpers import (assert_discriminator_at_chance, assert_discriminator_left_chance, check_own_gradients,
                           float64_setup, load_config, method_gradients, run_module, run_paper_preset,
                           train_on_digits)



def _reference_losses(state, params, batch, rng):
  """Goodfellow et al. 2014: D maximises log D(x) + log(1 − D(G(z))); G maximises log D(G(z))."""
  x = batch["image"]
  n = x.shape[0]
  z = jax.random.normal(rng, (n, state.models["generator"].latent_dim), x.dtype)
  fake = run_module(state, params, "generator", z)
  logits, _ = run_module(state, params, "discriminator", jnp.concatenate([x, fake]))  # BN sees both
  d_real, d_fake = jax.nn.sigmoid(logits[:n]), jax.nn.sigmoid(logits[n:])
  return {"discriminator": -jnp.mean(jnp.log(d_real)) - jnp.mean(jnp.log(1 - d_fake)),
          "generator": -jnp.mean(jnp.log(d_fake))}


def test_each_network_gets_exactly_its_own_gradient():
  rng = jax.random.PRNGKey(7)
  with jax.enable_x64(True):
    state, batch = float64_setup(dcgan, "dcgan")
    grads, metrics = method_gradients(dcgan)(state, batch, rng, {})
    check_own_gradients(grads, state, batch, rng, _reference_losses)
  assert_discriminator_at_chance(metrics)


# --- every preset through the loop; the default one long enough to see the diagnostics move ---------

def test_default_preset_trains_on_digits_and_the_discriminator_leaves_chance(tmp_path, digits_dir):
  results, _ = train_on_digits("dcgan", tmp_path, digits_dir, steps=60)
  assert_discriminator_left_chance(results["train"])
  assert {"grad_norm/generator", "grad_norm/discriminator", "dis_real_bce", "dis_fake_bce"} <= set(results["train"])
  assert {"d_real", "dis_real_bce"} <= set(results["eval"])


@pytest.mark.parametrize("preset", ["cifar10", "celeba64"])
def test_paper_presets_run_one_step_on_mock_data(preset, tmp_path):
  run_paper_preset("dcgan", preset, tmp_path)


# --- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset,edit,message", [
    ("", lambda c: c.data.update(image_size=36), "data.image_size"),   # 36 is not a multiple of 8
    ("", lambda c: c.data.update(image_size=4), "data.image_size"),    # too small for 3 stages
    ("celeba64", lambda c: c.data.update(image_size=40), "data.image_size"),  # 4 stages: 16 | size
    ("", lambda c: c.model.update(kernel_size=0), "model.kernel_size"),
    ("", lambda c: c.model.update(generator_output_stride=3), "model.generator_output_stride"),
    ("", lambda c: c.model.update(latent_dim=0), "model.latent_dim"),
])
def test_bad_values_are_refused_naming_the_key(preset, edit, message):
  config = load_config("dcgan", preset)
  config.unlock()
  edit(config)
  with pytest.raises(ConfigError, match=message):
    validation.validate(config, num_devices=8)
