"""VAE/GAN: autoencoding beyond pixels using a learned similarity metric (Larsen et al. 2016).

The decoder of a VAE is the generator of a GAN, and reconstruction is measured in the features of the
discriminator's l-th layer, Dis_l, instead of in pixels (eq. 8, a Gaussian with σ = 1):

    L_prior   = KL(q(z|x) ‖ p(z))                                              (eq. 5)
    L_llike   = −E_q[log N(Dis_l(x) | Dis_l(x̃), I)],  x̃ = Dec(z), z ~ q(z|x)   (eq. 8)
    L_GAN     = log Dis(x) + log(1 − Dis(Dec(z_p))) [+ log(1 − Dis(x̃))]        (eq. 6, see below)

and each network descends its own loss only (Algorithm 1):

    θ_Enc ← −∇(L_prior + L_llike)       no GAN gradient reaches the encoder
    θ_Dec ← −∇(γ·L_llike − L_GAN)       discriminator parameters are constants here
    θ_Dis ← −∇(−L_GAN)                 the discriminator never sees the reconstruction loss

The generator side uses the non-saturating form −log Dis(·) of −L_GAN. The released scripts feed the GAN
real images and prior samples only; `loss.recon_in_gan` adds the reconstructions of the paper's equation.
Optional equilibrium gating (`loss.gating`, reference code) pauses the discriminator or the decoder
when the other is far ahead.

All three losses come from ONE forward pass (real, reconstructed and prior images go through the
discriminator in one batch, as in the reference code, so BatchNorm sees them together); one `jax.vjp`
then gives each network the gradient of its own loss by pulling back a one-hot cotangent.
"""

import jax
import jax.numpy as jnp

from genjax import config_lib, control, losses, optim
from genjax.errors import ConfigError
from genjax.config_lib import scale_width
from genjax.methods import common
from genjax.methods.common import decode, encode, generate, reconstruct  # noqa: F401  (the method's API)
from genjax.nets import larsen
from genjax.state import TrainState

NETS = ("encoder", "decoder", "discriminator")


def validate(config, image_shape) -> None:
  m = config.model
  common.check_downsampling(image_shape, len(m.decoder_channels))
  common.check_downsampling(image_shape, len(m.discriminator_channels) - 1)
  if not 1 <= m.feature_layer <= len(m.discriminator_channels):
    raise ConfigError(
        f"model.feature_layer must be in 1..{len(m.discriminator_channels)} (a discriminator conv), "
        f"got {m.feature_layer}")
  config_lib.check_nonnegative(config.loss, ("gamma", "kl_weight", "margin"), "loss")


def init_state(config, rng: jax.Array, batch) -> TrainState:
  image_shape = batch["image"].shape[1:]
  init_rng, state_rng = jax.random.split(rng)
  m = config.model
  models = common.larsen_autoencoder(config, image_shape)
  models["discriminator"] = larsen.Discriminator(
      channels=scale_width(m.discriminator_channels, m.width),
      hidden=scale_width([m.discriminator_hidden], m.width)[0],
      feature_layer=m.feature_layer, dtype=common.compute_dtype(config))
  x = batch["image"][:1]
  params, batch_stats = common.init_networks(
      models, init_rng, {"encoder": (x,), "decoder": (jnp.zeros((1, m.latent_dim)),), "discriminator": (x,)})
  tx = {net: optim.make_optimizer(config.optim[net]) for net in NETS}
  return TrainState.create(params=params, batch_stats=batch_stats, models=models, tx=tx,
                           rng=state_rng)


def network_losses(state: TrainState, params, batch, rng: jax.Array, config):
  """{network: its own loss} and (metrics, new BatchNorm statistics), from one forward pass."""
  cfg = config.loss
  x = batch["image"]
  n = x.shape[0]
  rng_q, rng_p = jax.random.split(rng)
  (mean, logvar), enc_stats = state.forward("encoder", params, x)
  z = losses.reparameterize(rng_q, mean, logvar)
  z_p = common.prior_sample(rng_p, n, mean.shape[-1], mean.dtype)
  decoded, dec_stats = state.forward("decoder", params, jnp.concatenate([z, z_p]))
  x_tilde = decoded[:n]
  (logits, features), dis_stats = state.forward("discriminator", params, jnp.concatenate([x, decoded]))
  real_logits, recon_logits, prior_logits = jnp.split(logits, 3)
  f_real, f_recon = features[:n], features[n:2 * n]

  kl = losses.gaussian_kl(mean, logvar)
  llike = losses.gaussian_nll(f_real, f_recon, constant=False)  # eq. 8, σ = 1
  real_bce = losses.bce_with_logits(real_logits, 1.0)
  prior_bce = losses.bce_with_logits(prior_logits, 0.0)
  recon_bce = losses.bce_with_logits(recon_logits, 0.0)
  gen_loss = losses.generator_loss(prior_logits)
  if cfg.recon_in_gan:
    fake_bce = 0.5 * (prior_bce + recon_bce)
    gen_loss = gen_loss + losses.generator_loss(recon_logits)
    dis_loss = real_bce + prior_bce + recon_bce
  else:
    fake_bce = prior_bce
    dis_loss = real_bce + prior_bce

  own = {
      "encoder": cfg.kl_weight * kl + llike,
      "decoder": cfg.gamma * llike + gen_loss,
      "discriminator": dis_loss,
  }
  metrics = {"kl": kl, "feature_llike": llike, "gen_loss": gen_loss, "dis_loss": dis_loss,
             "dis_real_bce": real_bce, "dis_fake_bce": fake_bce, "dis_recon_bce": recon_bce,
             "pixel_mse": jnp.mean(jnp.square(x - x_tilde))}
  return own, (metrics, {**enc_stats, **dec_stats, **dis_stats})


def network_gradients(state: TrainState, batch, rng: jax.Array, config):
  """∂(own loss)/∂(own params) for every network, from one forward pass and one vjp."""
  grads, (metrics, batch_stats) = common.own_gradients(
      lambda p: network_losses(state, p, batch, rng, config), state.params)
  return grads, metrics, batch_stats


def make_train_step(config):
  cfg = config.loss

  def train_step(state: TrainState, batch):
    grads, metrics, batch_stats = network_gradients(state, batch, state.step_rng("z"), config)
    train_dis, train_dec = control.larsen_gates(metrics["dis_real_bce"], metrics["dis_fake_bce"],
                                                cfg.equilibrium, cfg.margin)
    if not cfg.gating:
      train_dis = train_dec = jnp.asarray(True)
    state = state.apply_gradients(grads, active={"discriminator": train_dis, "decoder": train_dec},
                                  batch_stats=batch_stats)
    metrics.update(common.grad_norms(grads))
    metrics.update({"gate/discriminator": train_dis.astype(jnp.float32),
                    "gate/decoder": train_dec.astype(jnp.float32)})
    return state, metrics

  return train_step
