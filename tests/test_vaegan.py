"""VAE/GAN (Larsen et al. 2016): each network receives exactly the gradient of its own loss.

The reference below is written from the paper's Algorithm 1 directly on the modules, with one
`jax.grad` per network; the method computes all three from one forward pass and one vjp.
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp
import optax

from genjax.methods import vaegan
from tests.helpers import assert_trees_close, load_config, network_gradients, random_batch, to_float64


def _setup(**loss):
  config = load_config("vaegan")
  config.unlock()
  config.data.image_size = 16
  config.loss.update(loss)
  config.lock()
  batch = jax.tree.map(jnp.asarray, random_batch(size=16))
  state = vaegan.init_state(config, jax.random.PRNGKey(0), batch)
  return config, state, batch


def _reference_losses(state, params, batch, rng, gamma, recon_in_gan):
  """Larsen Algorithm 1, spelled out: L_prior, L_llike (eq. 8, σ=1), L_GAN."""
  def run(net, inputs):
    variables = {"params": params[net], "batch_stats": state.batch_stats[net]}
    return state.models[net].apply(variables, inputs, train=True, mutable=["batch_stats"])[0]

  x, n = batch["image"], batch["image"].shape[0]
  rng_q, rng_p = jax.random.split(rng)
  mean, logvar = run("encoder", x)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng_q, mean.shape, mean.dtype)
  z_p = jax.random.normal(rng_p, mean.shape, mean.dtype)
  decoded = run("decoder", jnp.concatenate([z, z_p]))
  logits, feats = run("discriminator", jnp.concatenate([x, decoded]))
  d = jax.nn.sigmoid(logits)
  d_real, d_recon, d_prior = d[:n], d[n:2 * n], d[2 * n:]
  l_prior = jnp.mean(jnp.sum(0.5 * (jnp.exp(logvar) + mean**2 - 1 - logvar), -1))
  l_llike = jnp.mean(jnp.sum(0.5 * jnp.square(feats[:n] - feats[n:2 * n]).reshape(n, -1), -1))
  fakes = [d_prior, d_recon] if recon_in_gan else [d_prior]
  l_dis = -jnp.mean(jnp.log(d_real)) - sum(jnp.mean(jnp.log(1 - f)) for f in fakes)
  l_gen = -sum(jnp.mean(jnp.log(f)) for f in fakes)  # non-saturating −L_GAN
  return {"encoder": l_prior + l_llike, "decoder": gamma * l_llike + l_gen, "discriminator": l_dis}


@pytest.mark.parametrize("recon_in_gan", [False, True])
def test_each_network_gets_exactly_its_own_gradient(recon_in_gan):
  config, state, batch = _setup(recon_in_gan=recon_in_gan, gamma=0.3)
  rng = jax.random.PRNGKey(7)
  with jax.enable_x64(True):  # float64 on both sides, so 1e-6 tests the routing, not round-off
    state, batch = to_float64(state), to_float64(batch)
    grads, _, _ = jax.jit(lambda s, b: network_gradients(vaegan, s, b, rng, config))(state, batch)
    for net in vaegan.NETS:
      own = jax.jit(jax.grad(lambda p: _reference_losses(state, {**state.params, net: p}, batch, rng, 0.3,
                                                         recon_in_gan)[net]))(state.params[net])
      assert_trees_close(grads[net], own, atol=1e-6, rtol=1e-6)


def test_no_gan_gradient_reaches_the_encoder_and_no_reconstruction_gradient_the_discriminator():
  config, state, batch = _setup()
  rng = jax.random.PRNGKey(3)
  def gradients(state, batch, config):
    return jax.jit(lambda s, b: network_gradients(vaegan, s, b, rng, config)[0])(state, batch)
  grads = gradients(state, batch, config)
  # Scaling the discriminator's output head changes L_GAN but not Dis_l: the encoder must not notice.
  head = jax.tree.map(lambda p: p * 3.0, state.params["discriminator"])
  last = sorted(k for k in head if k.startswith("Dense"))[-1]
  params = {**state.params, "discriminator": {**state.params["discriminator"], last: head[last]}}
  grads_scaled = gradients(state.replace(params=params), batch, config)
  assert_trees_close(grads["encoder"], grads_scaled["encoder"], atol=1e-7, rtol=1e-5)
  # γ weights the reconstruction in the decoder's loss only.
  config_g = load_config("vaegan")
  config_g.unlock(); config_g.data.image_size = 16; config_g.loss.gamma = 100.0; config_g.lock()
  grads_g = gradients(state, batch, config_g)
  assert_trees_close(grads["discriminator"], grads_g["discriminator"], atol=0, rtol=0)
  assert_trees_close(grads["encoder"], grads_g["encoder"], atol=0, rtol=0)
  assert not np.allclose(optax.global_norm(grads["decoder"]), optax.global_norm(grads_g["decoder"]))


@pytest.mark.parametrize("equilibrium,margin,rests", [
    (10.0, 0.0, "discriminator"),   # every BCE < 10: the discriminator is "too good" and rests
    (0.0, 0.0, "decoder"),          # every BCE > 0: the discriminator "too bad", the decoder rests
    (0.68, 100.0, None),            # gates wide open
])
def test_gating_rests_exactly_the_gated_network(equilibrium, margin, rests):
  config, state, batch = _setup(gating=True, equilibrium=equilibrium, margin=margin)
  step = jax.jit(vaegan.METHOD.make_train_step(config))
  new, metrics = step(state, batch)
  grads = jax.jit(lambda s, b: network_gradients(vaegan, s, b, s.step_rng("z"), config)[0])(state, batch)
  for net in vaegan.NETS:
    if net == rests:
      assert_trees_close(new.params[net], state.params[net])
      assert_trees_close(new.opt_state[net], state.opt_state[net])
      assert float(metrics[f"gate/{net}"]) == 0.0
    else:
      own = {net: state.params[net]}  # a slot's optimizer sees {network: params}
      updates, _ = state.tx[net].update({net: grads[net]}, state.opt_state[net], own)
      assert_trees_close(new.params[net], optax.apply_updates(own, updates)[net], atol=1e-6, rtol=1e-5)


def test_step_reports_every_term_gate_and_gradient_norm():
  config, state, batch = _setup()
  _, metrics = jax.jit(vaegan.METHOD.make_train_step(config))(state, batch)
  expected = {"kl", "feature_llike", "gen_loss", "dis_loss", "dis_real_bce", "dis_fake_bce",
              "gate/discriminator", "gate/decoder", "grad_norm/encoder", "grad_norm/decoder",
              "grad_norm/discriminator"}
  assert expected <= set(metrics)
  assert all(np.isfinite(float(v)) for v in metrics.values())


def test_the_discriminator_step_lowers_its_loss_and_the_decoder_step_lowers_its_gan_loss():
  config, state, batch = _setup(gating=False)
  config.unlock()
  for slot in vaegan.NETS:
    config.optim[slot].update(name="sgd", lr=1e-2)
  config.lock()
  state = vaegan.init_state(config, jax.random.PRNGKey(0), batch)
  rng = jax.random.PRNGKey(1)
  own_losses = jax.jit(lambda params: vaegan.network_losses(config)(state, params, batch, rng)[0])
  gradients = jax.jit(lambda s: network_gradients(vaegan, s, batch, rng, config)[0])
  new = state
  for _ in range(3):
    new = new.apply_gradients(gradients(new)).replace(batch_stats=state.batch_stats)
  before = own_losses(state.params)
  for net in vaegan.NETS:  # each descends its own objective: a flipped sign would climb
    after = own_losses({**state.params, net: new.params[net]})
    assert float(after[net]) < float(before[net]), net
