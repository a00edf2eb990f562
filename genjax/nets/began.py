"""The networks of BEGAN (Berthelot et al. 2017), also used by Khan et al. 2018.

Every layer a 3×3 conv with ELU, no BatchNorm. An image of side 8·2^s has s stages:

  encoder: conv n; per block i = 1..s+1 two convs n·i, then (not after the last) a stride-2 conv n·i
           down to the next resolution; FC to the code h (no activation).
  decoder: FC to 8×8×n; per block two convs n, then (not after the last) nearest-neighbour ×2
           upsampling; a last conv to the image channels (no output activation).

The stride-2 conv keeps the block's width, as in carpedm20/BEGAN-tensorflow. With `skip`, the 8×8
projection h0 is upsampled to each later block's resolution and concatenated to its input (the paper's
skip connections). The generator G has the decoder's architecture; the discriminator is the
autoencoder, which also returns its encoder's code. Params are float32; `dtype` is the compute dtype;
outputs are float32 (float64 when computing in float64).
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.nets.layers import Conv

BASE = 8  # side of the first decoder feature map and of the last encoder one


def num_stages(image_shape) -> int:
  """Number of ×2 stages between 8×8 and the image; ValueError unless it is square of side 8·2^s, s ≥ 1."""
  shape = tuple(image_shape)
  side = shape[0] if len(shape) == 3 else 0
  stages = int(round(math.log2(side / BASE))) if side >= BASE else 0
  if len(shape) != 3 or shape[0] != shape[1] or stages < 1 or side != BASE * 2**stages:
    raise ValueError(f"image shape {shape} must be (S, S, C) with S = 8·2^s for s ≥ 1 "
                     f"(16, 32, 64, 128, ...): BEGAN's networks work on an 8×8 base")
  return stages


def output_dtype(dtype):
  return jnp.promote_types(dtype, jnp.float32)


# Glorot-uniform weights and zero biases, TF-slim's defaults in the public BEGAN code (the paper names none).
_INIT = nn.initializers.xavier_uniform()


def _conv(features: int, dtype, stride: int = 1) -> Conv:
  return Conv(features, (3, 3), strides=(stride, stride), padding="SAME", dtype=dtype, kernel_init=_INIT)


def _dense(features: int, dtype) -> nn.Dense:
  return nn.Dense(features, dtype=dtype, kernel_init=_INIT)


def upsample(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling of NHWC feature maps."""
  n, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, factor, w, factor, c))
  return x.reshape(n, h * factor, w * factor, c)


class Encoder(nn.Module):
  """Image → code [N, code_dim]."""
  filters: int = 64
  code_dim: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # no BatchNorm
    stages = num_stages(x.shape[1:])
    x = nn.elu(_conv(self.filters, self.dtype)(x.astype(self.dtype)))
    for i in range(stages + 1):
      width = self.filters * (i + 1)
      x = nn.elu(_conv(width, self.dtype)(x))
      x = nn.elu(_conv(width, self.dtype)(x))
      if i < stages:
        x = nn.elu(_conv(width, self.dtype, stride=2)(x))
    x = _dense(self.code_dim, self.dtype)(x.reshape(x.shape[0], -1))
    return x.astype(output_dtype(self.dtype))


class GaussianEncoder(nn.Module):
  """BEGAN's encoder trunk with a 2·latent_dim head → (mean, logvar) of q(z|x) (Khan et al.)."""
  filters: int = 64
  latent_dim: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False):
    out = Encoder(self.filters, 2 * self.latent_dim, self.dtype)(x, train)
    mean, logvar = jnp.split(out, 2, axis=-1)
    return mean, logvar


class Decoder(nn.Module):
  """Code [N, latent_dim] → image of `image_shape` (unbounded: no output activation)."""
  image_shape: tuple[int, int, int]
  filters: int = 64
  latent_dim: int = 64
  skip: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
    del train  # no BatchNorm
    stages = num_stages(self.image_shape)
    h0 = _dense(BASE * BASE * self.filters, self.dtype)(z.astype(self.dtype))
    h0 = h0.reshape(z.shape[0], BASE, BASE, self.filters)
    x = h0
    for i in range(stages + 1):
      if i > 0:
        x = upsample(x)
        if self.skip:
          x = jnp.concatenate([x, upsample(h0, 2**i)], axis=-1)
      x = nn.elu(_conv(self.filters, self.dtype)(x))
      x = nn.elu(_conv(self.filters, self.dtype)(x))
    x = _conv(self.image_shape[-1], self.dtype)(x)
    return x.astype(output_dtype(self.dtype))


class Autoencoder(nn.Module):
  """BEGAN's discriminator: image → (reconstruction D(x), encoder code z_d)."""
  image_shape: tuple[int, int, int]
  filters: int = 64
  code_dim: int = 64
  skip: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False):
    code = Encoder(self.filters, self.code_dim, self.dtype, name="encoder")(x, train)
    recon = Decoder(self.image_shape, self.filters, self.code_dim, self.skip, self.dtype,
                    name="decoder")(code, train)
    return recon, code
