"""The Gaussian autoencoder several papers build on: q(z|x) = N(μ(x), σ²(x)), a decoder, a N(0, I) prior.

Larsen et al.'s encoder and decoder (genjax.nets.larsen) are the networks of the VAE, VAE/GAN and
VampPrior; the hooks below (generate, encode, decode, reconstruct) serve any method whose state has an
"encoder" returning (mean, logvar) and a "decoder", and `importance_weights` gives the IWAE bound of any
Gaussian-decoder VAE (Burda et al. 2016) for the evaluator's "nll".
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp

from genjax import losses
from genjax.core.networks import compute_dtype
from genjax.errors import ConfigError
from genjax.evaluation import likelihood
from genjax.nets import larsen, scale_width
from genjax.state import TrainState

PIXEL_LOG_SIGMA = "pixel_log_sigma"  # log σ of p(x|z): a learned parameter, or fixed in `extra`


def larsen_autoencoder(config, image_shape) -> dict[str, Any]:
  """Encoder and decoder of Larsen et al. 2016 at the config's width (also the plain VAE's networks)."""
  m, dtype = config.model, compute_dtype(config)
  return {
      "encoder": larsen.Encoder(channels=scale_width(m.encoder_channels, m.width),
                                hidden=scale_width([m.encoder_hidden], m.width)[0],
                                latent_dim=m.latent_dim, dtype=dtype),
      "decoder": larsen.Decoder(image_shape=tuple(image_shape),
                                channels=scale_width(m.decoder_channels, m.width),
                                latent_dim=m.latent_dim, dtype=dtype),
  }


def check_downsampling(image_shape, num_downsamples: int) -> None:
  try:
    larsen.check_image_shape(tuple(image_shape), num_downsamples)
  except ValueError as e:
    raise ConfigError(str(e)) from None


def prior_sample(rng: jax.Array, num: int, latent_dim: int, dtype=jnp.float32) -> jax.Array:
  """z ~ N(0, I)."""
  return jax.random.normal(rng, (num, latent_dim), dtype)


def reconstructions_and_prior_samples(state: TrainState, params, x: jax.Array, rng: jax.Array):
  """Larsen et al.'s x̃ = Dec(z), z ~ q(z|x), and x_p = Dec(z_p), z_p ~ N(0, I), in one decoder pass over
  [z; z_p] (the VAE/GAN and Khan et al.'s VAE): ((mean, logvar), [x̃; x_p], the nets' BatchNorm statistics)."""
  rng_q, rng_p = jax.random.split(rng)
  (mean, logvar), enc_stats = state.forward("encoder", params, x)
  z = losses.reparameterize(rng_q, mean, logvar)
  z_p = prior_sample(rng_p, x.shape[0], mean.shape[-1], mean.dtype)
  decoded, dec_stats = state.forward("decoder", params, jnp.concatenate([z, z_p]))
  return (mean, logvar), decoded, {**enc_stats, **dec_stats}


def generate(state: TrainState, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """Decodes `num` draws from the N(0, I) prior."""
  del condition  # unconditional
  return state.apply("decoder", prior_sample(rng, num, state.models["decoder"].latent_dim))


def encode(state: TrainState, images: jax.Array) -> jax.Array:
  """Posterior means of the codes of `images`."""
  mean, _ = state.apply("encoder", images)
  return mean


def decode(state: TrainState, codes: jax.Array) -> jax.Array:
  """Decoder output of `codes` (inference mode): interpolations, attribute arithmetic."""
  return state.apply("decoder", codes)


def reconstruct(state: TrainState, images: jax.Array) -> jax.Array:
  """Decoder output at the posterior mean."""
  return decode(state, encode(state, images))


def pixel_log_sigma(state: TrainState, params=None) -> jax.Array:
  """log σ of p(x|z) = N(dec(z), σ²): the learned parameter, else the fixed value kept in `extra`."""
  params = state.params if params is None else params
  return params[PIXEL_LOG_SIGMA] if PIXEL_LOG_SIGMA in params else state.extra[PIXEL_LOG_SIGMA]


def standard_normal_log_density(z: jax.Array) -> jax.Array:
  """log N(z | 0, I) per example."""
  return likelihood.diagonal_gaussian_log_density(z, 0.0, 0.0)


def importance_weights(state: TrainState, images, rng: jax.Array, num_samples: int,
                       log_prior: Callable[[jax.Array], jax.Array] = standard_normal_log_density) -> jax.Array:
  """log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x), z_k ~ q(z|x) from the encoder and
  p(x|z) = N(dec(z), σ_x²) with σ_x = `pixel_log_sigma`: [K, N], inference mode. `log_prior(z)` is
  log p(z) per example (default N(0, I))."""
  mean, logvar = state.apply("encoder", images)
  log_sigma = pixel_log_sigma(state)

  def log_joint(z):
    return likelihood.diagonal_gaussian_log_density(images, state.apply("decoder", z), 2.0 * log_sigma) + log_prior(z)
  return likelihood.log_importance_weights(rng, mean, logvar, log_joint, num_samples)
