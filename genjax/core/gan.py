"""A GAN of a generator G(z), z ~ N(0, I), and a discriminator D with features: DCGAN and DFM build on it.

The networks are DCGAN's (genjax.nets.dcgan) at the config's width; `forward` runs G on fresh noise and
D on [x; G(z)] in ONE call, so BatchNorm sees real and generated images together (as in the papers'
training graphs) and D's features φ of both come out of the same pass.
"""

from typing import Any

import jax
import jax.numpy as jnp

from genjax import losses
from genjax.core.gaussian_ae import prior_sample
from genjax.errors import ConfigError
from genjax.nets import dcgan as nets
from genjax.nets import scale_width
from genjax.state import TrainState


def check_model(m, image_shape) -> None:
  """The generator and discriminator keys of `config.model`."""
  if m.latent_dim < 1:
    raise ConfigError(f"model.latent_dim must be >= 1, got {m.latent_dim}")
  if m.kernel_size < 1:
    raise ConfigError(f"model.kernel_size must be >= 1, got {m.kernel_size}")
  if m.generator_output_stride not in (1, 2):
    raise ConfigError(f"model.generator_output_stride must be 1 or 2, got {m.generator_output_stride}")
  for key in ("generator_channels", "discriminator_channels"):
    if not m[key] or min(m[key]) < 1:
      raise ConfigError(f"model.{key} must be a non-empty list of positive widths, got {m[key]}")
  models = networks(m, image_shape)
  for net, stages in (("generator", models["generator"].num_stages),
                      ("discriminator", len(m.discriminator_channels))):
    error = nets.downsampling_error(image_shape, stages)
    if error:
      raise ConfigError(f"data.image_size: the {net}'s {error}")


def networks(m, image_shape, dtype=jnp.float32) -> dict[str, Any]:
  """Generator and discriminator of `config.model` at its width."""
  return {
      "generator": nets.Generator(image_shape=tuple(image_shape),
                                  channels=scale_width(m.generator_channels, m.width),
                                  latent_dim=m.latent_dim, kernel_size=m.kernel_size,
                                  output_stride=m.generator_output_stride, dtype=dtype),
      "discriminator": nets.Discriminator(channels=scale_width(m.discriminator_channels, m.width),
                                          kernel_size=m.kernel_size,
                                          batch_norm_first=m.discriminator_batch_norm_first, dtype=dtype),
  }


def example_inputs(config, batch) -> dict[str, tuple]:
  return {"generator": (jnp.zeros((1, config.model.latent_dim)),), "discriminator": (batch["image"][:1],)}


def forward(state: TrainState, params, images, rng: jax.Array):
  """G(z) for a batch of z ~ N(0, I), then D on [x; G(z)] in one call.

  Returns (real_logits, fake_logits), (real_features, fake_features), new BatchNorm statistics.
  """
  n = images.shape[0]
  z = prior_sample(rng, n, state.models["generator"].latent_dim, images.dtype)
  fake, gen_stats = state.forward("generator", params, z)
  (logits, features), dis_stats = state.forward("discriminator", params, jnp.concatenate([images, fake]))
  return (logits[:n], logits[n:]), (features[:n], features[n:]), {**gen_stats, **dis_stats}


def metrics(real_logits, fake_logits) -> dict[str, jax.Array]:
  """D's two cross-entropies (chance: log 2 each) and its mean outputs D(x), D(G(z))."""
  return {"dis_real_bce": losses.bce_with_logits(real_logits, 1.0),
          "dis_fake_bce": losses.bce_with_logits(fake_logits, 0.0),
          "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
          "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}


def generate(state: TrainState, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """G(z) for `num` draws z ~ N(0, I)."""
  del condition  # unconditional
  return state.apply("generator", prior_sample(rng, num, state.models["generator"].latent_dim))


def evaluate(state: TrainState, batch) -> dict[str, jax.Array]:
  """Held-out D(x) and −log D(x) (inference-mode BN): compared with the train values, D's overfitting."""
  logits, _ = state.apply("discriminator", batch["image"])
  return {"d_real": jnp.mean(jax.nn.sigmoid(logits)), "dis_real_bce": losses.bce_with_logits(logits, 1.0)}
