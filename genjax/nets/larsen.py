"""The VAE/GAN networks of Larsen et al. 2016, "Autoencoding beyond pixels".

Paper sizes (64x64 images in [-1, 1]) are the defaults; for 32x32 use decoder
channels (192, 128, 32). Convs and FC layers followed by batch norm have no
bias, since the norm's shift replaces it. Params are float32; `dtype` is the
compute dtype; outputs are float32 (float64 when computing in float64).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.nets.layers import Conv, ConvTranspose


def check_image_shape(image_shape, num_downsamples: int) -> None:
  """Raises ValueError unless H and W are positive multiples of 2**n."""
  factor = 2**num_downsamples
  shape = tuple(image_shape)
  if (len(shape) != 3 or min(shape) < 1
      or shape[0] % factor or shape[1] % factor):
    raise ValueError(
        f"image shape {shape} must be (H, W, C) with H and W positive "
        f"multiples of {factor} (2**{num_downsamples} for "
        f"{num_downsamples} stride-2 layers)")


def output_dtype(dtype):
  """bf16/f32 compute → f32 outputs; f64 compute (exactness tests) → f64."""
  return jnp.promote_types(dtype, jnp.float32)


def _batch_norm(train: bool, dtype) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                      epsilon=1e-5, dtype=dtype)


def _conv(features: int, stride: int, dtype, use_bias: bool) -> Conv:
  return Conv(features, (5, 5), strides=(stride, stride), padding="SAME",
                 use_bias=use_bias, dtype=dtype)


class Encoder(nn.Module):
  """Image -> (mean, logvar) of q(z|x): 5x5/2 convs, each BN + ReLU; FC."""
  channels: Sequence[int] = (64, 128, 256)
  hidden: int = 1024
  latent_dim: int = 128
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool):
    check_image_shape(x.shape[1:], len(self.channels))
    x = x.astype(self.dtype)
    for c in self.channels:
      x = _conv(c, 2, self.dtype, use_bias=False)(x)
      x = nn.relu(_batch_norm(train, self.dtype)(x))
    x = x.reshape(x.shape[0], -1)
    x = nn.Dense(self.hidden, use_bias=False, dtype=self.dtype)(x)
    x = nn.relu(_batch_norm(train, self.dtype)(x))
    x = nn.Dense(2 * self.latent_dim, dtype=self.dtype)(x)
    mean, logvar = jnp.split(x.astype(output_dtype(self.dtype)), 2, axis=-1)
    return mean, logvar


class Decoder(nn.Module):
  """z -> image in [-1, 1]: FC, 5x5/2 transposed convs, 5x5 conv + tanh."""
  image_shape: tuple[int, int, int]
  channels: Sequence[int] = (256, 128, 32)
  latent_dim: int = 128
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool) -> jax.Array:
    n = len(self.channels)
    check_image_shape(self.image_shape, n)
    h, w, c_out = self.image_shape
    h, w = h // 2**n, w // 2**n
    x = z.astype(self.dtype)
    x = nn.Dense(h * w * self.channels[0], use_bias=False, dtype=self.dtype)(x)
    x = nn.relu(_batch_norm(train, self.dtype)(x))
    x = x.reshape(x.shape[0], h, w, self.channels[0])
    for c in self.channels:
      x = ConvTranspose(c, (5, 5), strides=(2, 2), use_bias=False,
                        dtype=self.dtype)(x)
      x = nn.relu(_batch_norm(train, self.dtype)(x))
    x = _conv(c_out, 1, self.dtype, use_bias=True)(x)
    return jnp.tanh(x.astype(output_dtype(self.dtype)))


class Discriminator(nn.Module):
  """Image -> (logits [N], Dis_l features): 5x5 convs, FC + BN + ReLU, FC 1.

  The first conv has stride 1 and no BN; the rest stride 2, BN, ReLU. The
  features are the pre-BN output of conv number `feature_layer` (1-based).
  """
  channels: Sequence[int] = (32, 128, 256, 256)
  hidden: int = 512
  feature_layer: int = 4
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool):
    if not 1 <= self.feature_layer <= len(self.channels):
      raise ValueError(f"feature_layer must be in [1, {len(self.channels)}], "
                       f"got {self.feature_layer}")
    check_image_shape(x.shape[1:], len(self.channels) - 1)
    x = x.astype(self.dtype)
    for i, c in enumerate(self.channels):
      first = i == 0
      x = _conv(c, 1 if first else 2, self.dtype, use_bias=first)(x)
      if i + 1 == self.feature_layer:
        features = x.astype(output_dtype(self.dtype))
      x = nn.relu(x if first else _batch_norm(train, self.dtype)(x))
    x = x.reshape(x.shape[0], -1)
    x = nn.Dense(self.hidden, use_bias=False, dtype=self.dtype)(x)
    x = nn.relu(_batch_norm(train, self.dtype)(x))
    logits = nn.Dense(1, dtype=self.dtype)(x)
    return logits[:, 0].astype(output_dtype(self.dtype)), features
