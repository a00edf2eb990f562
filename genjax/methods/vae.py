"""Variational autoencoder (Kingma & Welling 2014), the baseline every hybrid here improves on.

    L(x) = −E_q(z|x)[log p(x|z)] + β·KL(q(z|x) ‖ N(0, I))          (K&W eq. 10, β = 1)

p(x|z) is Gaussian with mean dec(z) and one log σ shared by all pixels, learned (or fixed): learning σ
balances the two terms by maximum likelihood instead of by a hand-tuned weight. One optimizer slot,
"vae", trains encoder, decoder and σ together.
"""

import jax
import jax.numpy as jnp

from genjax import config_lib, losses, optim
from genjax.core import gaussian_ae
from genjax.core.method import Method
from genjax.core.networks import create_state
from genjax.core.step import Aux, Phase
from genjax.core.gaussian_ae import PIXEL_LOG_SIGMA


def validate(config, image_shape) -> None:
  gaussian_ae.check_downsampling(image_shape, len(config.model.decoder_channels))
  config_lib.check_nonnegative(config.loss, ("beta",))


def init_state(config, rng: jax.Array, batch):
  models = gaussian_ae.larsen_autoencoder(config, batch["image"].shape[1:])
  inputs = {"encoder": (batch["image"][:1],), "decoder": (jnp.zeros((1, config.model.latent_dim)),)}
  log_sigma = {PIXEL_LOG_SIGMA: jnp.asarray(config.loss.log_sigma, jnp.float32)}
  learned = config.loss.learn_sigma
  return create_state(rng, models, inputs, {"vae": optim.make_optimizer(config.optim.vae)},
                      slots={"vae": ("encoder", "decoder") + ((PIXEL_LOG_SIGMA,) if learned else ())},
                      params=log_sigma if learned else None, extra=None if learned else log_sigma)


def negative_elbo(config):
  """The losses of the one phase: {"vae": −ELBO of the batch} (the slot of encoder, decoder and σ)."""
  def losses_fn(state, params, batch, rng):
    x = batch["image"]
    (mean, logvar), enc_stats = state.forward("encoder", params, x)
    z = losses.reparameterize(rng, mean, logvar)
    x_rec, dec_stats = state.forward("decoder", params, z)
    log_sigma = gaussian_ae.pixel_log_sigma(state, params)
    nll = losses.gaussian_nll(x, x_rec, log_sigma)     # −log p(x|z)
    kl = losses.gaussian_kl(mean, logvar)               # KL(q(z|x) ‖ N(0, I))
    loss = nll + config.loss.beta * kl                  # K&W eq. 10
    metrics = {"loss": loss, "nll": nll, "kl": kl, "pixel_mse": jnp.mean(jnp.square(x - x_rec)),
               "pixel_sigma": jnp.exp(log_sigma)}
    return {"vae": loss}, Aux(metrics, {**enc_stats, **dec_stats})
  return losses_fn


def objective(config):
  return [Phase(negative_elbo(config), rng="z")]


METHOD = Method(
    name="vae", init_state=init_state, objective=objective, validate=validate,
    generate=gaussian_ae.generate, encode=gaussian_ae.encode, decode=gaussian_ae.decode,
    reconstruct=gaussian_ae.reconstruct, log_importance_weights=gaussian_ae.importance_weights,
    progress=("loss", "kl", "pixel_mse"))
