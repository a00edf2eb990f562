"""Pure loss functions. Each reduces to a scalar: summed over an example's elements, averaged over the batch.

Nothing here knows about configs, networks or the train loop; each function has a known-value test.
"""

import math

import jax
import jax.numpy as jnp
import optax

_LOG_2PI = math.log(2.0 * math.pi)


def _per_example_sum(x: jax.Array) -> jax.Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mean, exp(logvar)) || N(0, I)) in closed form (Kingma & Welling 2014, appendix B)."""
  kl = 0.5 * (jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar)
  return jnp.mean(_per_example_sum(kl))


def gaussian_nll(x: jax.Array, mean: jax.Array, log_sigma: jax.Array | float = 0.0,
                 constant: bool = True) -> jax.Array:
  """−log N(x | mean, σ²) with log σ broadcast against x (a scalar, per pixel, or per element).

  `constant=False` drops the ½·log 2π per element: same gradients, a readable value for large layers.
  """
  nll = 0.5 * jnp.square((x - mean) * jnp.exp(-log_sigma)) + log_sigma
  if constant:
    nll = nll + 0.5 * _LOG_2PI
  return jnp.mean(_per_example_sum(jnp.broadcast_to(nll, x.shape)))


def reparameterize(rng: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """z = mean + σ·ε, ε ~ N(0, I): the sample is differentiable in (mean, logvar)."""
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape, mean.dtype)


def bce_with_logits(logits: jax.Array, target: float) -> jax.Array:
  """Mean binary cross-entropy of `logits` against a constant label (numerically stable)."""
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """−log D(x) − log(1 − D(G(z))): the discriminator side of Goodfellow et al.'s minimax game."""
  return bce_with_logits(real_logits, 1.0) + bce_with_logits(fake_logits, 0.0)


def generator_loss(fake_logits: jax.Array) -> jax.Array:
  """Non-saturating generator loss −log D(G(z)) (Goodfellow et al. 2014, §3)."""
  return bce_with_logits(fake_logits, 1.0)


def mean_absolute_error(x: jax.Array, y: jax.Array) -> jax.Array:
  """mean |x − y| over every element: BEGAN's autoencoder energy L(v) = |v − D(v)| (Berthelot eq. 1)."""
  return jnp.mean(jnp.abs(x - y))


def squared_error(x: jax.Array, y: jax.Array) -> jax.Array:
  """‖x − y‖² summed over an example's elements, averaged over the batch (feature matching, MSE)."""
  return jnp.mean(_per_example_sum(jnp.square(x - y)))


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean −log softmax(logits)[label] for integer labels (classifiers, InfoGAN's Q head)."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def multilabel_bce(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Binary cross-entropy summed over independent labels (e.g. CelebA's 40 attributes), batch mean."""
  return jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1))
