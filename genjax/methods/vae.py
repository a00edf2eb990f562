"""Variational autoencoder (Kingma & Welling 2014), the baseline every hybrid here improves on.

    L(x) = −E_q(z|x)[log p(x|z)] + β·KL(q(z|x) ‖ N(0, I))          (K&W eq. 10, β = 1)

p(x|z) is Gaussian with mean dec(z) and one learned log σ shared by all pixels (or a fixed one):
learning σ balances the two terms by maximum likelihood instead of by a hand-tuned weight.
One optimizer slot, "vae", trains encoder, decoder and σ together.
"""

import jax
import jax.numpy as jnp

from genjax import config_lib, losses, optim
from genjax.evaluation import likelihood
from genjax.methods import common
from genjax.methods.common import decode, encode, generate, reconstruct  # noqa: F401  (the method's API)
from genjax.state import TrainState

SIGMA = "pixel_log_sigma"


def validate(config, image_shape) -> None:
  common.check_downsampling(image_shape, len(config.model.decoder_channels))
  config_lib.check_nonnegative(config.loss, ("beta",))


def init_state(config, rng: jax.Array, batch) -> TrainState:
  image_shape = batch["image"].shape[1:]
  init_rng, state_rng = jax.random.split(rng)
  models = common.larsen_autoencoder(config, image_shape)
  z = jnp.zeros((1, config.model.latent_dim))
  params, batch_stats = common.init_networks(
      models, init_rng, {"encoder": (batch["image"][:1],), "decoder": (z,)})
  nets = ("encoder", "decoder")
  if config.loss.learn_sigma:
    params[SIGMA] = jnp.asarray(config.loss.log_sigma, jnp.float32)
    nets += (SIGMA,)
  return TrainState.create(params=params, batch_stats=batch_stats, models=models,
                           tx={"vae": optim.make_optimizer(config.optim.vae)}, slots={"vae": nets},
                           rng=state_rng)


def loss_fn(state: TrainState, params, batch, rng: jax.Array, config):
  """Negative ELBO of the batch and (metrics, new BatchNorm statistics)."""
  x = batch["image"]
  (mean, logvar), enc_stats = state.forward("encoder", params, x)
  z = losses.reparameterize(rng, mean, logvar)
  x_rec, dec_stats = state.forward("decoder", params, z)
  log_sigma = params[SIGMA] if SIGMA in params else config.loss.log_sigma
  nll = losses.gaussian_nll(x, x_rec, log_sigma)
  kl = losses.gaussian_kl(mean, logvar)
  loss = nll + config.loss.beta * kl
  metrics = {"loss": loss, "nll": nll, "kl": kl, "pixel_mse": jnp.mean(jnp.square(x - x_rec)),
             "pixel_sigma": jnp.exp(log_sigma)}
  return loss, (metrics, {**enc_stats, **dec_stats})


def make_train_step(config):
  def train_step(state: TrainState, batch):
    grad_fn = jax.grad(loss_fn, argnums=1, has_aux=True)
    grads, (metrics, batch_stats) = grad_fn(state, state.params, batch, state.step_rng("z"), config)
    metrics.update(common.grad_norms({"vae": grads}))
    return state.apply_gradients(grads, batch_stats=batch_stats), metrics
  return train_step


def pixel_log_sigma(state: TrainState, config) -> jax.Array:
  """log σ of p(x|z): learned, or fixed by config.loss.log_sigma."""
  return state.params[SIGMA] if SIGMA in state.params else jnp.asarray(config.loss.log_sigma, jnp.float32)


def importance_weights(state: TrainState, images, rng: jax.Array, num_samples: int, log_sigma, log_prior):
  """log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x), z_k ~ q(z|x) = N(μ, σ²) from the encoder and
  p(x|z) = N(dec(z), σ_x²): [K, N] in inference mode. `log_prior(z)` is log p(z) per example."""
  mean, logvar = state.apply("encoder", images)

  def log_joint(z):
    return likelihood.diagonal_gaussian_log_density(images, state.apply("decoder", z), 2.0 * log_sigma) + log_prior(z)
  return likelihood.log_importance_weights(rng, mean, logvar, log_joint, num_samples)


def log_importance_weights(state: TrainState, images, rng: jax.Array, num_samples: int, config) -> jax.Array:
  """The evaluator's "nll" hook (genjax.evaluation.likelihood) with the N(0, I) prior."""
  return importance_weights(state, images, rng, num_samples, pixel_log_sigma(state, config),
                            lambda z: likelihood.diagonal_gaussian_log_density(z, 0.0, 0.0))
