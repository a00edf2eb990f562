"""VAE/GAN: autoencoding beyond pixels using a learned similarity metric (Larsen et al. 2016).

The decoder of a VAE is the generator of a GAN, and reconstruction is measured in the features of the
discriminator's l-th layer, Dis_l, instead of in pixels (eq. 8, a Gaussian with σ = 1):

    L_prior = KL(q(z|x) ‖ p(z))                                               (eq. 5)
    L_llike = −E_q[log N(Dis_l(x) | Dis_l(x̃), I)],  x̃ = Dec(z), z ~ q(z|x)    (eq. 8)
    L_GAN   = log Dis(x) + log(1 − Dis(Dec(z_p))) + log(1 − Dis(x̃))          (eq. 6, z_p ~ p(z))

L_GAN is the log-likelihood the discriminator maximises. Each network descends its own loss only
(Algorithm 1, written as losses to minimise):

    Enc:  L_prior + L_llike                                      no GAN gradient reaches the encoder
    Dec:  γ·L_llike − log Dis(Dec(z_p)) − log Dis(x̃)             the GAN term in its non-saturating
                                                                 form; Dis's parameters are constants
    Dis:  −L_GAN                                                  it never sees the reconstruction loss

Both the paper's equation and the released model/aegan.py show the reconstructions x̃ to the GAN
(`loss.recon_in_gan`, on in every preset; off, the GAN sees real images and prior samples only).
Optional equilibrium gating (`loss.gating`, the reference code) rests the discriminator or the
decoder when the other is far ahead.

All three losses come from ONE forward pass: real, reconstructed and prior images go through the
discriminator in one batch, as in the reference code, so BatchNorm sees them together.
"""

import jax
import jax.numpy as jnp

from genjax import config_lib, control, losses, optim
from genjax.core import gaussian_ae
from genjax.core.method import Method
from genjax.core.networks import compute_dtype, create_state
from genjax.core.step import Aux, Phase
from genjax.errors import ConfigError
from genjax.nets import larsen, scale_width

NETS = ("encoder", "decoder", "discriminator")


def validate(config, image_shape) -> None:
  m = config.model
  gaussian_ae.check_downsampling(image_shape, len(m.decoder_channels))
  gaussian_ae.check_downsampling(image_shape, len(m.discriminator_channels) - 1)
  if not 1 <= m.feature_layer <= len(m.discriminator_channels):
    raise ConfigError(
        f"model.feature_layer must be in 1..{len(m.discriminator_channels)} (a discriminator conv), "
        f"got {m.feature_layer}")
  config_lib.check_nonnegative(config.loss, ("gamma", "kl_weight", "margin"), "loss")


def init_state(config, rng: jax.Array, batch):
  m, x = config.model, batch["image"][:1]
  models = gaussian_ae.larsen_autoencoder(config, x.shape[1:])
  models["discriminator"] = larsen.Discriminator(
      channels=scale_width(m.discriminator_channels, m.width), hidden=scale_width([m.discriminator_hidden], m.width)[0],
      feature_layer=m.feature_layer, dtype=compute_dtype(config))
  inputs = {"encoder": (x,), "decoder": (jnp.zeros((1, m.latent_dim)),), "discriminator": (x,)}
  return create_state(rng, models, inputs, {net: optim.make_optimizer(config.optim[net]) for net in NETS})


def network_losses(config):
  """{network: its own loss} and Aux(metrics, BatchNorm statistics), from one forward pass."""
  cfg = config.loss

  def losses_fn(state, params, batch, rng):
    x = batch["image"]
    n = x.shape[0]
    (mean, logvar), decoded, vae_stats = gaussian_ae.reconstructions_and_prior_samples(state, params, x, rng)
    x_tilde = decoded[:n]
    (logits, features), dis_stats = state.forward("discriminator", params, jnp.concatenate([x, decoded]))
    real_logits, recon_logits, prior_logits = jnp.split(logits, 3)
    f_real, f_recon = features[:n], features[n:2 * n]

    kl = losses.gaussian_kl(mean, logvar)                              # L_prior
    llike = losses.gaussian_nll(f_real, f_recon, constant=False)       # L_llike, eq. 8, σ = 1
    real_bce = losses.bce_with_logits(real_logits, 1.0)
    prior_bce = losses.bce_with_logits(prior_logits, 0.0)
    recon_bce = losses.bce_with_logits(recon_logits, 0.0)
    gen_loss = losses.generator_loss(prior_logits)
    if cfg.recon_in_gan:
      fake_bce = 0.5 * (prior_bce + recon_bce)
      gen_loss = gen_loss + losses.generator_loss(recon_logits)
      dis_loss = real_bce + prior_bce + recon_bce                      # −L_GAN
    else:
      fake_bce = prior_bce
      dis_loss = real_bce + prior_bce

    own = {"encoder": cfg.kl_weight * kl + llike,
           "decoder": cfg.gamma * llike + gen_loss,
           "discriminator": dis_loss}
    metrics = {"kl": kl, "feature_llike": llike, "gen_loss": gen_loss, "dis_loss": dis_loss,
               "dis_real_bce": real_bce, "dis_fake_bce": fake_bce, "dis_recon_bce": recon_bce,
               "pixel_mse": jnp.mean(jnp.square(x - x_tilde))}
    return own, Aux(metrics, {**vae_stats, **dis_stats})
  return losses_fn


def equilibrium_gates(config):
  """Which of (discriminator, decoder) update this step: Larsen's gating, or always both."""
  cfg = config.loss

  def gates(metrics):
    if not cfg.gating:
      return {"discriminator": jnp.asarray(True), "decoder": jnp.asarray(True)}
    train_dis, train_dec = control.larsen_gates(metrics["dis_real_bce"], metrics["dis_fake_bce"],
                                                cfg.equilibrium, cfg.margin)
    return {"discriminator": train_dis, "decoder": train_dec}
  return gates


def objective(config):
  return [Phase(network_losses(config), rng="z", gates=equilibrium_gates(config))]


METHOD = Method(
    name="vaegan", init_state=init_state, objective=objective, validate=validate,
    generate=gaussian_ae.generate, encode=gaussian_ae.encode, decode=gaussian_ae.decode,
    reconstruct=gaussian_ae.reconstruct,
    progress=("feature_llike", "kl", "dis_loss", "gen_loss", "gate/discriminator"))
