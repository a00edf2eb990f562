"""VAE with a VampPrior (Tomczak & Welling 2018): the prior is learned from K pseudo-inputs.

The VAE of genjax.methods.vae (Larsen encoder/decoder, one pixel log σ) with its N(0, I) prior replaced
by the variational mixture of posteriors at K learned pseudo-inputs u_k:

    p_λ(z) = (1/K) Σ_k q(z | u_k)                                           (T&W eq. 9)
    L(x)   = −E_q(z|x)[log p(x|z)] + β·E_q(z|x)[log q(z|x) − log p_λ(z)]     (T&W eq. 2 with eq. 9)

The KL has no closed form; one sample z ~ q(z|x) (the one the decoder sees) estimates it, with a
logsumexp over k for the mixture. β ramps linearly from 0 over `loss.warmup_steps` (T&W §4: warm-up).

Pseudo-inputs: the paper's "hardtanh of a linear layer on the identity" is, without bias, a weight row
per k, i.e. image-shaped params u_k clipped to the data range: u_k = hardtanh(w_k) ∈ [-1, 1]. They are
initialised N(mean, std) with the paper's defaults mapped from [0, 1] to [-1, 1] (0.05 ± 0.01 → −0.9 ±
0.02) and trained in the VAE's single slot with encoder, decoder and log σ.

BatchNorm: the pseudo-inputs go through the encoder in inference mode (running statistics), the data in
train mode. So the running statistics come from data only (K = 500 pseudo-inputs in the same call would
outnumber a batch of 64), the data's normalisation does not depend on K, and the prior trained against
is exactly the prior `generate` samples. The running statistics are constants in the gradient.
"""

import math

import jax
import jax.numpy as jnp

from genjax import config_lib, losses, optim
from genjax.core import gaussian_ae
from genjax.core.gaussian_ae import PIXEL_LOG_SIGMA
from genjax.core.method import Method
from genjax.core.networks import create_state
from genjax.core.step import Aux, Phase
from genjax.errors import ConfigError

PSEUDO = "pseudo_inputs"
_LOG_2PI = math.log(2.0 * math.pi)
_EVAL_RNG = 0  # the fixed key of `evaluate`'s z samples


def validate(config, image_shape) -> None:
  gaussian_ae.check_downsampling(image_shape, len(config.model.decoder_channels))
  config_lib.check_nonnegative(config.loss, ("beta",))
  m = config.model
  if m.num_pseudo_inputs < 1:
    raise ConfigError(f"model.num_pseudo_inputs must be >= 1, got {m.num_pseudo_inputs}")
  if m.pseudo_init_std < 0:
    raise ConfigError(f"model.pseudo_init_std must be >= 0, got {m.pseudo_init_std}")
  if config.loss.warmup_steps < 0:
    raise ConfigError(f"loss.warmup_steps must be >= 0, got {config.loss.warmup_steps}")


def init_state(config, rng: jax.Array, batch):
  """The VAE's networks and pixel log σ, plus K image-shaped pseudo-inputs, in one optimizer slot."""
  pseudo_rng, vae_rng = jax.random.split(rng)
  m, image_shape = config.model, batch["image"].shape[1:]
  u = m.pseudo_init_mean + m.pseudo_init_std * jax.random.normal(
      pseudo_rng, (m.num_pseudo_inputs,) + tuple(image_shape), jnp.float32)
  log_sigma = {PIXEL_LOG_SIGMA: jnp.asarray(config.loss.log_sigma, jnp.float32)}
  learned = config.loss.learn_sigma
  models = gaussian_ae.larsen_autoencoder(config, image_shape)
  inputs = {"encoder": (batch["image"][:1],), "decoder": (jnp.zeros((1, m.latent_dim)),)}
  slot = ("encoder", "decoder") + ((PIXEL_LOG_SIGMA,) if learned else ()) + (PSEUDO,)
  return create_state(vae_rng, models, inputs, {"vae": optim.make_optimizer(config.optim.vae)},
                      slots={"vae": slot}, params={**(log_sigma if learned else {}), PSEUDO: u},
                      extra=None if learned else log_sigma)


def pseudo_inputs(params) -> jax.Array:
  """u_k = hardtanh(w_k): the pseudo-inputs in the data range [-1, 1]."""
  return jnp.clip(params[PSEUDO], -1.0, 1.0)


def log_normal(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """log N(z | mean, diag exp(logvar)), summed over the last axis (broadcasting the rest)."""
  return -0.5 * jnp.sum(_LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar), axis=-1)


def log_vamp_prior(z: jax.Array, prior_mean: jax.Array, prior_logvar: jax.Array) -> jax.Array:
  """log p_λ(z) = log (1/K) Σ_k q(z | u_k) for z [N, D] and the K posteriors [K, D] (eq. 9)."""
  log_qk = log_normal(z[:, None, :], prior_mean[None], prior_logvar[None])  # [N, K]
  return jax.nn.logsumexp(log_qk, axis=-1) - math.log(prior_mean.shape[0])


def vamp_kl(z, mean, logvar, prior_mean, prior_logvar) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Single-sample estimate of KL(q(z|x) ‖ p_λ(z)) = E_q[log q(z|x) − log p_λ(z)], batch mean."""
  log_q = jnp.mean(log_normal(z, mean, logvar))
  log_p = jnp.mean(log_vamp_prior(z, prior_mean, prior_logvar))
  return log_q - log_p, {"log_q": log_q, "log_prior": log_p}


def kl_weight(config, step: jax.Array) -> jax.Array:
  """β, ramped linearly from 0 over the first `warmup_steps` steps (T&W §4)."""
  if config.loss.warmup_steps == 0:
    return jnp.asarray(config.loss.beta, jnp.float32)
  return config.loss.beta * jnp.minimum(1.0, step.astype(jnp.float32) / config.loss.warmup_steps)


def neg_elbo(state, params, x, rng: jax.Array, beta, train: bool = True):
  """β-weighted negative ELBO of images x and Aux(metrics, new BatchNorm statistics)."""
  (mean, logvar), enc_stats = state.forward("encoder", params, x, train=train)
  prior_mean, prior_logvar = state.forward("encoder", params, pseudo_inputs(params), train=False)[0]  # q(z|u_k)
  z = losses.reparameterize(rng, mean, logvar)
  x_rec, dec_stats = state.forward("decoder", params, z, train=train)
  log_sigma = gaussian_ae.pixel_log_sigma(state, params)              # learned or fixed
  nll = losses.gaussian_nll(x, x_rec, log_sigma)                      # −log p(x|z)
  kl, kl_terms = vamp_kl(z, mean, logvar, prior_mean, prior_logvar)   # KL to p_λ of eq. 9
  loss = nll + beta * kl                                              # −ELBO, T&W eq. 2
  metrics = {"loss": loss, "neg_elbo": nll + kl, "nll": nll, "kl": kl, **kl_terms, "beta": beta,
             "pixel_mse": jnp.mean(jnp.square(x - x_rec)), "pixel_sigma": jnp.exp(log_sigma)}
  return loss, Aux(metrics, {**enc_stats, **dec_stats})


def objective(config):
  def losses_fn(state, params, batch, rng):
    loss, aux = neg_elbo(state, params, batch["image"], rng, kl_weight(config, state.step))
    return {"vae": loss}, aux
  return [Phase(losses_fn, rng="z")]


def generate(state, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """k ~ U{1..K}, z ~ q(z | u_k), x = dec(z): samples of the VampPrior, decoded."""
  del condition  # unconditional
  return gaussian_ae.decode(state, sample_codes(state, rng, num))


def sample_codes(state, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """z ~ p_λ(z): a pseudo-input u_k drawn uniformly, then z ~ q(z | u_k)."""
  del condition
  k_rng, z_rng = jax.random.split(rng)
  k = jax.random.randint(k_rng, (num,), 0, state.params[PSEUDO].shape[0])
  mean, logvar = state.apply("encoder", pseudo_inputs(state.params)[k])
  return losses.reparameterize(z_rng, mean, logvar)


def evaluate(state, batch) -> dict[str, jax.Array]:
  """Negative ELBO (β = 1) and its terms on a held-out batch, inference-mode BatchNorm."""
  _, (metrics, _) = neg_elbo(state, state.params, batch["image"], jax.random.PRNGKey(_EVAL_RNG), 1.0, train=False)
  return {k: metrics[k] for k in ("neg_elbo", "nll", "kl", "log_q", "log_prior", "pixel_mse")}


def sample_grids(state, rng: jax.Array) -> dict[str, jax.Array]:
  """The first (up to 64) pseudo-inputs u_k as an 8-column grid."""
  del rng
  u = pseudo_inputs(state.params)[:64]
  cols = min(8, u.shape[0])
  rows = u.shape[0] // cols
  return {"pseudo_inputs": u[:rows * cols].reshape((rows, cols) + u.shape[1:])}


def log_importance_weights(state, images, rng: jax.Array, num_samples: int) -> jax.Array:
  """The evaluator's "nll": IWAE weights with the VampPrior p_λ(z) of eq. 9."""
  prior_mean, prior_logvar = state.apply("encoder", pseudo_inputs(state.params))
  return gaussian_ae.importance_weights(state, images, rng, num_samples,
                                        lambda z: log_vamp_prior(z, prior_mean, prior_logvar))


METHOD = Method(
    name="vampprior", init_state=init_state, objective=objective, validate=validate, generate=generate,
    encode=gaussian_ae.encode, decode=gaussian_ae.decode, reconstruct=gaussian_ae.reconstruct,
    sample_codes=sample_codes, sample_grids=sample_grids, evaluate=evaluate,
    log_importance_weights=log_importance_weights, progress=("loss", "kl", "beta", "pixel_mse"))
