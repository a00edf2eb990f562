"""DCGAN: unsupervised representation learning with deep convolutional GANs (Radford et al. 2016).

A GAN (Goodfellow et al. 2014) whose generator G and discriminator D are all-convolutional with batch
normalisation; z ~ N(0, I). Each network descends its own side of the minimax game (Goodfellow eq. 1):

    L_D = −E_x log D(x) − E_z log(1 − D(G(z)))       the discriminator's side of eq. 1
    L_G = −E_z log D(G(z))                           non-saturating generator loss (Goodfellow §3)

Both losses come from ONE forward pass: real and generated images go through D in one concatenated
batch, so BatchNorm sees them together; one `jax.vjp` then gives each network the gradient of its
own loss (D's parameters are constants in L_G, G's in L_D) by pulling back a one-hot cotangent.
The networks (genjax/nets/dcgan.py) and this forward pass are shared with DFM (genjax/methods/dfm.py).
"""

from typing import Any

import jax
import jax.numpy as jnp

from genjax import losses, optim
from genjax.config_lib import scale_width
from genjax.errors import ConfigError
from genjax.methods import common
from genjax.nets import dcgan as nets
from genjax.state import TrainState

NETS = ("generator", "discriminator")


def validate(config, image_shape) -> None:
  check_gan_model(config.model, image_shape)


def check_gan_model(m, image_shape) -> None:
  """The generator and discriminator config keys shared by DCGAN and DFM."""
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


def init_state(config, rng: jax.Array, batch) -> TrainState:
  init_rng, state_rng = jax.random.split(rng)
  models = networks(config.model, batch["image"].shape[1:], common.compute_dtype(config))
  params, batch_stats = common.init_networks(models, init_rng, example_inputs(config, batch))
  return TrainState.create(params=params, batch_stats=batch_stats, models=models, rng=state_rng,
                           tx={net: optim.make_optimizer(config.optim[net]) for net in NETS})


def example_inputs(config, batch) -> dict[str, tuple]:
  return {"generator": (jnp.zeros((1, config.model.latent_dim)),), "discriminator": (batch["image"][:1],)}


def gan_forward(state: TrainState, params, images, rng: jax.Array):
  """G(z) for a batch of z ~ N(0, I), then D on [x; G(z)] in one call.

  Returns (real_logits, fake_logits), (real_features, fake_features), new BatchNorm statistics.
  """
  n = images.shape[0]
  z = common.prior_sample(rng, n, state.models["generator"].latent_dim, images.dtype)
  fake, gen_stats = state.forward("generator", params, z)
  (logits, features), dis_stats = state.forward("discriminator", params, jnp.concatenate([images, fake]))
  return (logits[:n], logits[n:]), (features[:n], features[n:]), {**gen_stats, **dis_stats}


def gan_metrics(real_logits, fake_logits) -> dict[str, jax.Array]:
  """D's two cross-entropies (chance: log 2 each) and its mean outputs D(x), D(G(z))."""
  return {"dis_real_bce": losses.bce_with_logits(real_logits, 1.0),
          "dis_fake_bce": losses.bce_with_logits(fake_logits, 0.0),
          "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
          "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}


def network_losses(state: TrainState, params, batch, rng: jax.Array, config):
  """{network: its own loss} and (metrics, new BatchNorm statistics), from one forward pass."""
  del config
  (real_logits, fake_logits), _, batch_stats = gan_forward(state, params, batch["image"], rng)
  own = {"generator": losses.generator_loss(fake_logits),                       # L_G, Goodfellow §3
         "discriminator": losses.discriminator_loss(real_logits, fake_logits)}  # L_D, Goodfellow eq. 1
  metrics = {"gen_loss": own["generator"], "dis_loss": own["discriminator"],
             **gan_metrics(real_logits, fake_logits)}
  return own, (metrics, batch_stats)


def network_gradients(state: TrainState, batch, rng: jax.Array, config, losses_fn=network_losses):
  """(grads, metrics, new BatchNorm statistics) of a method's `network_losses`."""
  grads, (metrics, batch_stats) = common.own_gradients(
      lambda p: losses_fn(state, p, batch, rng, config), state.params)
  return grads, metrics, batch_stats


def make_train_step(config, losses_fn=network_losses):
  def train_step(state: TrainState, batch):
    grads, metrics, batch_stats = network_gradients(state, batch, state.step_rng("z"), config, losses_fn)
    metrics.update(common.grad_norms(grads))
    return state.apply_gradients(grads, batch_stats=batch_stats), metrics
  return train_step


def generate(state: TrainState, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """G(z) for `num` draws z ~ N(0, I)."""
  del condition  # unconditional
  return state.apply("generator", common.prior_sample(rng, num, state.models["generator"].latent_dim))


def evaluate(state: TrainState, batch) -> dict[str, jax.Array]:
  """Held-out D(x) and −log D(x) (inference-mode BN): compared with the train values, D's overfitting."""
  logits, _ = state.apply("discriminator", batch["image"])
  return {"d_real": jnp.mean(jax.nn.sigmoid(logits)), "dis_real_bce": losses.bce_with_logits(logits, 1.0)}

