"""BEGAN (Berthelot et al. 2017): networks, own gradients, k as a constant, the controller, presets.

The reference losses below are written from the paper (§3.4) directly on the modules, one `jax.grad`
per network; the method computes both gradients from one forward pass and one vjp.
"""

import json

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from genjax import train, validation
from genjax.errors import ConfigError
from genjax.methods import began
from genjax.nets import began as nets
from tests.helpers import (assert_trees_close, check_equilibrium, check_own_gradients, digits_batches, k_derivative,
                           load_config, network_gradients, one_device, random_batch, run_paper_preset, short_run,
                           tiny_config,
                           to_float64)

PAPER_PRESETS = ("celeba64", "celeba128", "cifar10")


def _setup(k=0.3, **edits):
  config = tiny_config("began", lr=1e-3, **edits)
  batch = jax.tree.map(jnp.asarray, random_batch(size=16))
  state = began.init_state(config, jax.random.PRNGKey(0), batch)
  return config, state.replace(extra={**state.extra, "k": jnp.float32(k)}), batch


def _reference_losses(state, params, batch, rng, k):
  """BEGAN §3.4: L_D = L(x) − k L(G(z)), L_G = L(G(z)), L(v) = mean |v − D(v)|, z ~ U(−1, 1)."""
  x = batch["image"]
  G = lambda z: state.models["generator"].apply({"params": params["generator"]}, z)
  D = lambda v: state.models["discriminator"].apply({"params": params["discriminator"]}, v)[0]
  L = lambda v: jnp.mean(jnp.abs(v - D(v)))
  z = jax.random.uniform(rng, (x.shape[0], state.models["generator"].latent_dim), x.dtype, -1.0, 1.0)
  return {"discriminator": L(x) - k * L(G(z)), "generator": L(G(z))}


# --- networks ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,stages", [(16, 1), (32, 2), (64, 3), (128, 4)])
def test_stages_follow_the_image_size(size, stages):
  assert nets.num_stages((size, size, 3)) == stages


@pytest.mark.parametrize("shape", [(24, 24, 1), (8, 8, 1), (36, 36, 3), (32, 64, 3), (48, 48, 3)])
def test_sizes_off_the_8x8_base_are_refused(shape):
  with pytest.raises(ValueError, match="8·2"):
    nets.num_stages(shape)


@pytest.mark.parametrize("skip", [False, True])
def test_autoencoder_shapes_and_skip_connections(skip):
  ae = nets.Autoencoder(image_shape=(32, 32, 3), filters=4, code_dim=5, skip=skip)
  x = jnp.ones((2, 32, 32, 3))
  params = jax.eval_shape(ae.init, jax.random.PRNGKey(0), x)  # shapes only: nothing to compute
  recon, code = jax.eval_shape(ae.apply, params, x)
  assert recon.shape == x.shape and code.shape == (2, 5)
  # Encoder: conv n, blocks n, 2n, 3n (two convs each, stride-2 convs after the first two), FC.
  enc = params["params"]["encoder"]
  assert [enc[f"Conv_{i}"]["kernel"].shape[-1] for i in range(9)] == [4, 4, 4, 4, 8, 8, 8, 12, 12]
  assert enc["Dense_0"]["kernel"].shape == (8 * 8 * 12, 5)
  # Decoder: each conv after an upsampling sees the 8×8 projection's n channels more with skips.
  dec = params["params"]["decoder"]
  assert dec["Conv_2"]["kernel"].shape[2] == (8 if skip else 4)
  assert dec["Conv_0"]["kernel"].shape[2] == 4


def test_upsampling_is_nearest_neighbour():
  x = jnp.arange(4.0).reshape(1, 2, 2, 1)
  np.testing.assert_array_equal(nets.upsample(x)[0, :, :, 0],
                                [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])


# --- gradients -------------------------------------------------------------------------------------

def test_each_network_gets_exactly_its_own_gradient_with_k_constant():
  config, state, batch = _setup(k=0.3)
  rng = jax.random.PRNGKey(7)
  with jax.enable_x64(True):  # float64 on both sides, so 1e-6 tests the routing, not round-off
    state, batch = to_float64(state), to_float64(batch)
    grads, _, _ = jax.jit(lambda s, b: network_gradients(began, s, b, rng, config))(state, batch)
    check_own_gradients(grads, state, batch, rng, lambda s, p, b, rng: _reference_losses(s, p, b, rng, 0.3))


def test_no_gradient_flows_to_k():
  config, state, batch = _setup()
  assert k_derivative(began, config, state, batch) == 0.0


def test_step_updates_both_networks_simultaneously_and_k_by_proportional_control():
  config, state, batch = _setup(k=0.2)
  new, metrics = jax.jit(began.METHOD.make_train_step(config))(state, batch)
  grads, _, _ = jax.jit(lambda s, b: network_gradients(began, s, b, s.step_rng("z"), config))(state, batch)
  for net in ("generator", "discriminator"):  # both from the same (old) parameters
    own = {net: state.params[net]}
    updates, _ = state.tx[net].update({net: grads[net]}, state.opt_state[net], own)
    assert_trees_close(new.params[net], jax.tree.map(jnp.add, own, updates)[net], atol=1e-6, rtol=1e-5)
  real, fake, gamma = float(metrics["loss_real"]), float(metrics["loss_fake"]), config.loss.gamma
  k = np.clip(0.2 + config.loss.lambda_k * (gamma * real - fake), 0, 1)
  np.testing.assert_allclose(float(new.extra["k"]), k, atol=1e-7)
  np.testing.assert_allclose(float(metrics["convergence"]), real + abs(gamma * real - fake), rtol=1e-6)
  np.testing.assert_allclose(float(metrics["dis_loss"]), real - 0.2 * fake, rtol=1e-6)
  assert float(metrics["k"]) == pytest.approx(0.2)
  assert {"grad_norm/generator", "grad_norm/discriminator", "gen_loss", "control_error"} <= set(metrics)


def test_generate_draws_images_in_range():
  _, state, _ = _setup()
  images = began.generate(state, jax.random.PRNGKey(0), 3)
  assert images.shape == (3, 16, 16, 1) and float(jnp.max(jnp.abs(images))) <= 1.0


# --- configuration ---------------------------------------------------------------------------------

@pytest.mark.parametrize("edit,message", [
    (lambda c: c.loss.update(gamma=-0.5), "loss.gamma"),
    (lambda c: c.loss.update(lambda_k=float("nan")), "loss.lambda_k"),
    (lambda c: c.loss.update(lambda_k=float("inf")), "loss.lambda_k"),
    (lambda c: c.loss.update(k_init=1.5), "loss.k_init"),
    (lambda c: c.data.update(image_size=48), "data.image_size 48"),
    (lambda c: c.data.update(image_size=8), "data.image_size 8"),
])
def test_bad_values_are_refused_naming_the_key(edit, message):
  config = load_config("began")
  config.unlock()
  edit(config)
  with pytest.raises(ConfigError, match=message):
    validation.validate(config, num_devices=8)


def test_began_optimizer_schedule_halves_down_to_its_floor():
  from genjax import optim
  lr = optim.learning_rate(load_config("began", "celeba64").optim.generator)
  np.testing.assert_allclose([float(lr(s)) for s in (0, 99_999, 100_000, 200_000, 300_000, 900_000)],
                             [8e-5, 8e-5, 4e-5, 2e-5, 2e-5, 2e-5], rtol=1e-6)


# --- end to end ------------------------------------------------------------------------------------

def test_default_preset_trains_one_step_on_digits(digits_dir, tmp_path):
  config = load_config("began")
  config.unlock(); config.data.update(data_dir=digits_dir, image_size=16); config.lock()
  state = train.train_and_evaluate(config, str(tmp_path), mesh=one_device())
  assert int(state.step) == 1 and (tmp_path / "samples.png").stat().st_size > 100
  assert json.loads((tmp_path / "metrics.json").read_text())["train"]["k"] == 0.0


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_paper_presets_run_one_step_on_mock_data(preset, tmp_path):
  _, state = run_paper_preset("began", preset, tmp_path)
  assert 0.0 < float(state.extra["k"]) <= 1.0


def test_short_digits_run_moves_k_and_lowers_the_convergence_measure(digits_dir):
  config = tiny_config("began", lr=1e-3)
  check_equilibrium(*short_run(began, config, digits_batches(config, digits_dir)))
