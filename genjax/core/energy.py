"""BEGAN's energy-based GAN (Berthelot, Schumm, Metz 2017), which Khan et al. 2018 build on.

The discriminator D is an autoencoder; the energy of an image is its L1 reconstruction error, and an
equilibrium weight k_t, kept by a controller in `TrainState.extra`, balances real and generated energies:

    L(v)    = mean |v − D(v)|                         (eq. 1, η = 1)
    L_D     = L(x) − k_t · L(G(z))     for θ_D         (§3.4)
    L_G     = L(G(z))                  for θ_G         (§3.4)
    k_{t+1} = clip(k_t + λ_k e_t, 0, 1),  e_t = γ L(x) − L(G(z));  M_global = L(x) + |e_t|   (§3.4, 3.4.1)

with z ~ U(−1, 1) and k_t a constant inside both gradients. Both networks update simultaneously, as in
the paper (§3.4: the two losses are minimised at once), from one forward pass: G(z), then D on [x, G(z)]
in one call. Khan et al. replace the P controller by a PID one (genjax.control.pid_update).
"""

import jax
import jax.numpy as jnp

from genjax import control, losses
from genjax.core.networks import compute_dtype
from genjax.core.step import Aux
from genjax.errors import ConfigError
from genjax.nets import began as nets
from genjax.nets import scale_width
from genjax.state import TrainState


def check_architecture(config, image_shape) -> None:
  """An image of side 8·2^s (s ≥ 1) and positive sizes."""
  try:
    nets.num_stages(image_shape)
  except ValueError as e:
    raise ConfigError(f"data.image_size {image_shape[0]} does not fit BEGAN's networks: {e}") from None
  for key in ("filters", "code_dim", "latent_dim"):
    value = config.model[key]
    if not isinstance(value, int) or value < 1:
      raise ConfigError(f"model.{key} must be a positive integer, got {value!r}")


def check_k_init(section) -> None:
  if not 0.0 <= section.k_init <= 1.0:
    raise ConfigError(f"loss.k_init must be in [0, 1], got {section.k_init}")


def filters(config) -> int:
  return scale_width([config.model.filters], config.model.width)[0]


def decoder(config, image_shape) -> nets.Decoder:
  """G (BEGAN) or the VAE's decoder (Khan): the discriminator's decoder architecture, own weights."""
  return nets.Decoder(image_shape=tuple(image_shape), filters=filters(config), latent_dim=config.model.latent_dim,
                      skip=config.model.skip, dtype=compute_dtype(config))


def discriminator(config, image_shape) -> nets.Autoencoder:
  m = config.model
  return nets.Autoencoder(image_shape=tuple(image_shape), filters=filters(config), code_dim=m.code_dim,
                          skip=m.skip, dtype=compute_dtype(config))


def uniform_prior(rng: jax.Array, num: int, latent_dim: int, dtype=jnp.float32) -> jax.Array:
  """z ~ U(−1, 1)."""
  return jax.random.uniform(rng, (num, latent_dim), dtype, minval=-1.0, maxval=1.0)


def energies(state: TrainState, params, *groups):
  """L(v) = mean |v − D(v)| of each group of images and D's encoder codes, from one D call (eq. 1)."""
  (recon, codes), _ = state.forward("discriminator", params, jnp.concatenate(groups))
  splits = [sum(len(g) for g in groups[:i + 1]) for i in range(len(groups) - 1)]
  recons, codes = jnp.split(recon, splits), jnp.split(codes, splits)
  return [losses.mean_absolute_error(v, r) for v, r in zip(groups, recons)], codes


def equilibrium_k(state: TrainState) -> jax.Array:
  """k_t as a constant of this step's gradients."""
  return jax.lax.stop_gradient(state.extra["k"])


def generator_losses(state: TrainState, params, batch, rng: jax.Array, generator: str):
  """{D: L(x) − k_t L(G(z)), G: L(G(z))} (§3.4) and the terms to log; `generator` names G's network."""
  x = batch["image"]
  z = uniform_prior(rng, x.shape[0], state.models[generator].latent_dim, x.dtype)
  fake, _ = state.forward(generator, params, z)
  (loss_real, loss_fake), _ = energies(state, params, x, fake)
  dis_loss = loss_real - equilibrium_k(state) * loss_fake
  own = {"discriminator": dis_loss, generator: loss_fake}
  return own, Aux({"loss_real": loss_real, "loss_fake": loss_fake, "dis_loss": dis_loss, "gen_loss": loss_fake})


def k_controller(error_fn, gains: tuple[float, float, float]):
  """A Phase.update that moves k_t by `control.pid_update` on the error `error_fn(terms)`, and logs k_t,
  e_t and the convergence measure L(x) + |e_t|."""
  def update(state: TrainState, batch, terms):
    del batch
    error = error_fn(terms)
    logged = {"k": state.extra["k"], "control_error": error,
              "convergence": control.convergence(terms["loss_real"], error)}
    return control.pid_update(state.extra, error, gains), logged
  return update


def generate_clipped(state: TrainState, net: str, z: jax.Array) -> jax.Array:
  """`net`(z) in the image range: BEGAN's decoders have no output activation."""
  return jnp.clip(state.apply(net, z), -1.0, 1.0)
