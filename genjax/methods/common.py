"""Pieces shared by the methods: network init, per-network gradients, the Gaussian encoder/decoder pair."""

from typing import Any

import jax
import jax.numpy as jnp
import optax

from genjax.config_lib import scale_width
from genjax.errors import ConfigError
from genjax.nets import larsen


def compute_dtype(config) -> Any:
  return jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32


def init_networks(models: dict[str, Any], rng: jax.Array, inputs: dict[str, tuple]) -> tuple[dict, dict]:
  """(params, batch_stats) of each named module on its example inputs, each with its own key.

  One jit for all networks: XLA:CPU compiles one program much faster than one per network.
  """
  @jax.jit
  def init_all(rng):
    variables = {name: module.init(jax.random.fold_in(rng, i), *inputs[name], train=False)
                 for i, (name, module) in enumerate(models.items())}
    params = {name: v["params"] for name, v in variables.items()}
    batch_stats = {name: v["batch_stats"] for name, v in variables.items() if "batch_stats" in v}
    return params, batch_stats
  return init_all(rng)


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


def own_gradients(losses_fn, params):
  """{net: ∂own[net]/∂params[net]} for `losses_fn(params) -> ({net: own loss}, aux)`; returns (grads, aux).

  One forward pass and one `jax.vjp`: a one-hot cotangent per network pulls back its own loss alone, and
  the other networks' parts of each pull-back are dead code that XLA drops.
  """
  own, vjp_fn, aux = jax.vjp(losses_fn, params, has_aux=True)
  grads = {}
  for net in own:
    one_hot = {k: jnp.asarray(k == net, v.dtype) for k, v in own.items()}
    grads[net] = vjp_fn(one_hot)[0][net]
  return grads, aux


def gradient_step(loss_fn, noise: str):
  """The train step of a method with one loss: every network gets ∂loss/∂(its params).

  `loss_fn(state, params, batch, rng) -> (loss, (metrics, new batch_stats))`; rng is the step's key for
  `noise`.
  """
  def train_step(state, batch):
    grads, (metrics, batch_stats) = jax.grad(loss_fn, argnums=1, has_aux=True)(
        state, state.params, batch, state.step_rng(noise))
    metrics.update(grad_norms(grads))
    return state.apply_gradients(grads, batch_stats=batch_stats), metrics
  return train_step


def grad_norms(grads: dict[str, Any]) -> dict[str, jax.Array]:
  return {f"grad_norm/{net}": optax.global_norm(g) for net, g in grads.items()}


def prior_sample(rng: jax.Array, num: int, latent_dim: int, dtype=jnp.float32) -> jax.Array:
  return jax.random.normal(rng, (num, latent_dim), dtype)


def generate(state, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """Decodes `num` draws from the N(0, I) prior."""
  del condition  # unconditional
  return state.apply("decoder", prior_sample(rng, num, state.models["decoder"].latent_dim))


def encode(state, images: jax.Array) -> jax.Array:
  """Posterior means of the codes of `images`."""
  mean, _ = state.apply("encoder", images)
  return mean


def decode(state, codes: jax.Array) -> jax.Array:
  """Decoder output of `codes` (inference mode): interpolations, attribute arithmetic."""
  return state.apply("decoder", codes)


def reconstruct(state, images: jax.Array) -> jax.Array:
  """Decoder output at the posterior mean."""
  return decode(state, encode(state, images))
