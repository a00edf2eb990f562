"""Importance-sampled log-likelihood of latent-variable models (Burda, Grosse & Salakhutdinov 2016).

    w_k = p(x, z_k) / q(z_k|x),   z_k ~ q(z|x),   k = 1..K
    L_K(x) = log (1/K) Σ_k w_k                                        (IWAE, eq. 8)
    E[L_1] = ELBO ≤ E[L_K] ≤ E[L_{K+1}] ≤ log p(x),  L_K → log p(x) as K → ∞    (Theorem 1)

A method supplies the log weights through its Method record's
`log_importance_weights(state, images, rng, num_samples) -> [K, N]`; the evaluator reports
nll = −mean L_K and neg_elbo = −mean (1/K) Σ_k log w_k (the same draws, an unbiased −ELBO).
The VAE, the discriminatively regularized VAE and the VampPrior VAE have it.
"""

import math
from typing import Callable

import jax
import jax.numpy as jnp

from genjax import losses

_LOG_2PI = math.log(2.0 * math.pi)


def diagonal_gaussian_log_density(x: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """log N(x | mean, diag(exp(logvar))), summed over every axis but the first: [N]."""
  log_density = -0.5 * (jnp.square(x - mean) * jnp.exp(-logvar) + logvar + _LOG_2PI)
  return jnp.sum(jnp.broadcast_to(log_density, x.shape).reshape(x.shape[0], -1), axis=-1)


def log_importance_weights(rng: jax.Array, mean: jax.Array, logvar: jax.Array,
                           log_joint: Callable[[jax.Array], jax.Array], num_samples: int) -> jax.Array:
  """log w_k = log p(x, z_k) − log q(z_k|x) for K draws z_k ~ N(mean, exp(logvar)): [K, N].

  `log_joint(z)` is log p(x, z) per example [N]; the K draws run one after another (lax.map), so
  memory is that of one batch whatever K is.
  """
  def one(key):
    z = losses.reparameterize(key, mean, logvar)
    return log_joint(z) - diagonal_gaussian_log_density(z, mean, logvar)
  return jax.lax.map(one, jax.random.split(rng, num_samples))


def iwae_bound(log_w: jax.Array) -> jax.Array:
  """L_K = log (1/K) Σ_k w_k per example, from log weights [K, N]."""
  return jax.nn.logsumexp(log_w, axis=0) - jnp.log(log_w.shape[0]).astype(log_w.dtype)


def elbo(log_w: jax.Array) -> jax.Array:
  """(1/K) Σ_k log w_k per example: the Monte-Carlo ELBO of the same draws."""
  return jnp.mean(log_w, axis=0)

