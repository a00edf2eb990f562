"""BEGAN: Boundary Equilibrium Generative Adversarial Networks (Berthelot, Schumm, Metz 2017).

The energy-based GAN of genjax.core.energy with BEGAN's proportional control of k:

    L(v)    = mean |v − D(v)|                                         (eq. 1, η = 1)
    L_D     = L(x) − k_t · L(G(z))        for θ_D                      (§3.4, objective)
    L_G     = L(G(z))                     for θ_G                      (§3.4, objective)
    k_{t+1} = clip(k_t + λ_k (γ L(x) − L(G(z))), 0, 1),   k₀ = 0       (§3.4, proportional control)
    M_global = L(x) + |γ L(x) − L(G(z))|                               (§3.4.1, convergence measure)

with z ~ U(−1, 1); k_t is a constant inside both gradients. Both networks update simultaneously, as in
the paper (§3.4: the two losses are minimised at once), from one forward pass; alternating updates
would cost a second forward pass per step and change the game the paper analyses.
"""

import jax
import jax.numpy as jnp

from genjax import config_lib, control, optim
from genjax.core import energy
from genjax.core.method import Method
from genjax.core.networks import create_state
from genjax.core.step import Phase

NETS = ("generator", "discriminator")


def validate(config, image_shape) -> None:
  energy.check_architecture(config, image_shape)
  config_lib.check_nonnegative(config.loss, ("gamma", "lambda_k"))
  energy.check_k_init(config.loss)


def init_state(config, rng: jax.Array, batch):
  image_shape = batch["image"].shape[1:]
  models = {"generator": energy.decoder(config, image_shape), "discriminator": energy.discriminator(config, image_shape)}
  inputs = {"generator": (jnp.zeros((1, config.model.latent_dim)),), "discriminator": (batch["image"][:1],)}
  return create_state(rng, models, inputs, {net: optim.make_optimizer(config.optim[net]) for net in NETS},
                      extra=control.pid_init(config.loss.k_init))


def objective(config):
  cfg = config.loss
  losses_fn = lambda state, params, batch, rng: energy.generator_losses(state, params, batch, rng, "generator")
  error_fn = lambda terms: control.began_error(terms["loss_real"], terms["loss_fake"], cfg.gamma)
  return [Phase(losses_fn, rng="z", update=energy.k_controller(error_fn, (cfg.lambda_k, 0.0, 0.0)))]  # P control


def generate(state, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """G(z), z ~ U(−1, 1), in the image range."""
  del condition  # unconditional
  return energy.generate_clipped(state, "generator", energy.uniform_prior(rng, num, state.models["generator"].latent_dim))


METHOD = Method(name="began", init_state=init_state, objective=objective, validate=validate, generate=generate,
                progress=("loss_real", "loss_fake", "k", "convergence"))
