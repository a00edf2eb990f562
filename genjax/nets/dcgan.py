"""DCGAN networks (Radford, Metz, Chintala 2016) and the feature denoiser of Warde-Farley & Bengio 2017.

Generator: z → FC → reshape to (H/2^s, W/2^s, c₀) → stride-2 transposed convs → tanh, BN + ReLU on
every hidden layer. Discriminator: strided convs with LeakyReLU 0.2 (BN from the 2nd conv, or on
every conv) → FC logit; it also returns its features φ(x), the flattened last conv map that feeds the
logit. Denoiser: fully connected, BN + ReLU on every hidden layer, linear output of φ's size.

All weights are initialised from N(0, 0.02) and BN gains from N(1, 0.02), as in Radford's code. Layers
followed by BN have no bias. Params are float32; `dtype` is the compute dtype; outputs are float32
(float64 when computing in float64).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.nets.larsen import output_dtype
from genjax.nets.layers import Conv, ConvTranspose

_INIT = nn.initializers.normal(0.02)


def _gain_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _batch_norm(train: bool, dtype) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                      scale_init=_gain_init)


def _dense(features: int, dtype, use_bias: bool) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, dtype=dtype, kernel_init=_INIT)


def downsampling_error(image_shape, num_stages: int) -> str | None:
  """Why an (H, W, C) image cannot pass `num_stages` stride-2 stages, or None if it can."""
  factor = 2**num_stages
  h, w = tuple(image_shape)[:2]
  if h % factor or w % factor or h < factor or w < factor:
    return (f"{h}x{w} images cannot pass {num_stages} stride-2 stages: use a multiple of {factor} "
            f"(e.g. {4 * factor})")
  return None


def _check(image_shape, num_stages: int) -> None:
  error = downsampling_error(image_shape, num_stages)
  if error:
    raise ValueError(error)


class Generator(nn.Module):
  """z → image in [-1, 1].

  `channels[0]` is the width of the projected map; each later entry is one stride-2 transposed conv;
  the output layer is a transposed conv to the image's channels with stride `output_stride` (2 in
  DCGAN; 1 when the last hidden map is already full size, as in DFM's 128→64→32→16→3 generator).
  The number of stride-2 stages, s = len(channels) − 1 + (output_stride == 2), sets the start size.
  """
  image_shape: tuple[int, int, int]
  channels: Sequence[int] = (512, 256, 128)
  latent_dim: int = 100
  kernel_size: int = 5
  output_stride: int = 2
  dtype: Any = jnp.float32

  @property
  def num_stages(self) -> int:
    return len(self.channels) - 1 + (self.output_stride == 2)

  @nn.compact
  def __call__(self, z: jax.Array, train: bool) -> jax.Array:
    _check(self.image_shape, self.num_stages)
    h, w, c_out = self.image_shape
    h, w = h // 2**self.num_stages, w // 2**self.num_stages
    k = (self.kernel_size, self.kernel_size)
    x = _dense(h * w * self.channels[0], self.dtype, use_bias=False)(z.astype(self.dtype))
    x = nn.relu(_batch_norm(train, self.dtype)(x))
    x = x.reshape(x.shape[0], h, w, self.channels[0])
    for c in self.channels[1:]:
      x = ConvTranspose(c, k, strides=(2, 2), use_bias=False, dtype=self.dtype, kernel_init=_INIT)(x)
      x = nn.relu(_batch_norm(train, self.dtype)(x))
    s = self.output_stride
    x = ConvTranspose(c_out, k, strides=(s, s), dtype=self.dtype, kernel_init=_INIT)(x)
    return jnp.tanh(x.astype(output_dtype(self.dtype)))


class Discriminator(nn.Module):
  """Image → (logits [N], features φ [N, F]): stride-2 convs, LeakyReLU 0.2, FC logit.

  BN follows every conv but the first (DCGAN) or every conv (`batch_norm_first`, DFM). φ is the
  flattened output of the last conv block, the input of the logit layer.
  """
  channels: Sequence[int] = (128, 256, 512)
  kernel_size: int = 5
  batch_norm_first: bool = False
  dtype: Any = jnp.float32

  def num_features(self, image_shape) -> int:
    """F, the size of φ for (H, W, C) images."""
    _check(image_shape, len(self.channels))
    h, w = tuple(image_shape)[:2]
    return (h // 2**len(self.channels)) * (w // 2**len(self.channels)) * self.channels[-1]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool):
    _check(x.shape[1:], len(self.channels))
    k = (self.kernel_size, self.kernel_size)
    x = x.astype(self.dtype)
    for i, c in enumerate(self.channels):
      bn = i > 0 or self.batch_norm_first
      x = Conv(c, k, strides=(2, 2), use_bias=not bn, dtype=self.dtype, kernel_init=_INIT)(x)
      if bn:
        x = _batch_norm(train, self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    features = x.reshape(x.shape[0], -1)
    logits = _dense(1, self.dtype, use_bias=True)(features)
    return logits[:, 0].astype(output_dtype(self.dtype)), features.astype(output_dtype(self.dtype))


class Denoiser(nn.Module):
  """r: corrupted features → clean features. FC hidden layers (BN + ReLU), linear output layer."""
  hidden: Sequence[int] = (1024, 1024)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h: jax.Array, train: bool) -> jax.Array:
    x = h.astype(self.dtype)
    for units in self.hidden:
      x = _dense(units, self.dtype, use_bias=False)(x)
      x = nn.relu(_batch_norm(train, self.dtype)(x))
    return _dense(h.shape[-1], self.dtype, use_bias=True)(x).astype(output_dtype(self.dtype))
