"""Networks of the adversarial autoencoder with a learned prior (Wang, Peng, Ko 2020).

An unofficial transcription of the paper's appendix (32×32 images in [-1, 1]); channel counts are the
paper's and `scale_width` shrinks them. The number of stride-2 stages adapts to 16, 32 or 64 pixels:

  Encoder    3×3/2 conv 64, residual blocks 64, 128, 256, 512 (stride 2 until 4×4), 4×4 average pool,
             FC 2·code (BN + ReLU), FC code
  Decoder    "4×4 up-conv 512" on the 1×1 code (= an FC to 4×4×512), residual up-blocks 256, 128, 64,
             3×3 conv, tanh
  CodeGenerator        FC 2·input (BN + ReLU), FC code (BN);  input = [noise, condition]
  ImageDiscriminator   4×4/2 convs 64, 128, 256 (BN from the 2nd, LeakyReLU 0.2), FC 1000, heads FC 1 (D)
                       and FC n_classes (InfoGAN's Q); returns the last conv's features F too
  CodeDiscriminator    FC 1000, 500, 200 (LeakyReLU 0.2), FC 1;  input = [code, condition]

`Prior` describes p(z) without parameters: the noise and condition a code generator takes, or the
fixed distribution of Makhzani's AAE. Convs followed by BatchNorm have no bias. Params are float32,
`dtype` is the compute dtype, outputs are float32 (float64 when computing in float64).
"""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.nets.larsen import output_dtype
from genjax.nets.layers import Conv, ConvTranspose

IMAGE_SIZES = (16, 32, 64)
FIXED_PRIORS = ("gaussian", "mixture", "categorical_gaussian")
CONDITIONS = ("none", "label", "categorical", "vector")


def check_image_shape(image_shape) -> int:
  """The side of a square image of a supported size; ValueError otherwise."""
  shape = tuple(image_shape)
  if len(shape) != 3 or shape[0] != shape[1] or shape[0] not in IMAGE_SIZES:
    raise ValueError(f"image shape {shape} must be square (S, S, C) with S in {IMAGE_SIZES}")
  return shape[0]


def encoder_downsamples(size: int) -> int:
  """Stride-2 residual blocks that take the stem's S/2 to 4×4 (1, 2, 3 for S = 16, 32, 64)."""
  return int(math.log2(size // 8))


def decoder_upsamples(size: int, num_blocks: int) -> int:
  """Up-blocks that double the resolution; the rest keep it (the start is S / 2**n, 4×4 up to 32×32)."""
  return min(int(math.log2(size // 4)), num_blocks)


def _batch_norm(train: bool, dtype) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype)


def _leaky_relu(x):
  return nn.leaky_relu(x, 0.2)


class ResidualBlock(nn.Module):
  """ResNet basic block: 3×3 conv (stride 1 or 2), BN, ReLU, 3×3 conv, BN, + shortcut, ReLU."""
  features: int
  stride: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    s = (self.stride, self.stride)
    h = Conv(self.features, (3, 3), strides=s, use_bias=False, dtype=self.dtype)(x)
    h = nn.relu(_batch_norm(train, self.dtype)(h))
    h = Conv(self.features, (3, 3), use_bias=False, dtype=self.dtype)(h)
    h = _batch_norm(train, self.dtype)(h)
    if self.stride != 1 or x.shape[-1] != self.features:  # projection shortcut
      x = Conv(self.features, (1, 1), strides=s, use_bias=False, dtype=self.dtype)(x)
      x = _batch_norm(train, self.dtype)(x)
    return nn.relu(h + x)


class UpResidualBlock(nn.Module):
  """Residual block that doubles the resolution: 4×4/2 transposed conv, BN, ReLU, 3×3 conv, BN, + a
  2×2/2 transposed-conv shortcut, ReLU (stride 1 with `upsample=False`)."""
  features: int
  upsample: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    if self.upsample:
      h = ConvTranspose(self.features, (4, 4), strides=(2, 2), use_bias=False, dtype=self.dtype)(x)
    else:
      h = Conv(self.features, (3, 3), use_bias=False, dtype=self.dtype)(x)
    h = nn.relu(_batch_norm(train, self.dtype)(h))
    h = Conv(self.features, (3, 3), use_bias=False, dtype=self.dtype)(h)
    h = _batch_norm(train, self.dtype)(h)
    if self.upsample:
      x = ConvTranspose(self.features, (2, 2), strides=(2, 2), use_bias=False, dtype=self.dtype)(x)
      x = _batch_norm(train, self.dtype)(x)
    elif x.shape[-1] != self.features:
      x = _batch_norm(train, self.dtype)(Conv(self.features, (1, 1), use_bias=False, dtype=self.dtype)(x))
    return nn.relu(h + x)


class Encoder(nn.Module):
  """Image → deterministic code [N, code_dim].

  `softmax_dims` > 0 makes the first that many code units a softmax: the categorical part of a
  categorical+Gaussian prior (Makhzani et al. 2016, §6).
  """
  code_dim: int = 64
  stem: int = 64
  channels: Sequence[int] = (64, 128, 256, 512)
  softmax_dims: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    downsamples = encoder_downsamples(check_image_shape(x.shape[1:]))
    x = Conv(self.stem, (3, 3), strides=(2, 2), use_bias=False, dtype=self.dtype)(x.astype(self.dtype))
    x = nn.relu(_batch_norm(train, self.dtype)(x))
    for i, c in enumerate(self.channels):
      x = ResidualBlock(c, stride=2 if 1 <= i <= downsamples else 1, dtype=self.dtype)(x, train)
    x = jnp.mean(x, axis=(1, 2))  # the 4×4 average pool
    x = nn.Dense(2 * self.code_dim, use_bias=False, dtype=self.dtype)(x)
    x = nn.relu(_batch_norm(train, self.dtype)(x))
    code = nn.Dense(self.code_dim, dtype=self.dtype)(x).astype(output_dtype(self.dtype))
    if self.softmax_dims:
      k = self.softmax_dims
      code = jnp.concatenate([jax.nn.softmax(code[:, :k]), code[:, k:]], axis=-1)
    return code


class Decoder(nn.Module):
  """Code → image in [-1, 1]."""
  image_shape: tuple[int, int, int]
  stem: int = 512
  channels: Sequence[int] = (256, 128, 64)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, code, train: bool):
    size = check_image_shape(self.image_shape)
    upsamples = decoder_upsamples(size, len(self.channels))
    start = size // 2**upsamples
    # A 4×4 transposed conv of the code as a 1×1 image is an FC layer to 4×4×512.
    x = nn.Dense(start * start * self.stem, use_bias=False, dtype=self.dtype)(code.astype(self.dtype))
    x = x.reshape(x.shape[0], start, start, self.stem)
    x = nn.relu(_batch_norm(train, self.dtype)(x))
    for i, c in enumerate(self.channels):
      x = UpResidualBlock(c, upsample=i < upsamples, dtype=self.dtype)(x, train)
    x = Conv(self.image_shape[-1], (3, 3), dtype=self.dtype)(x)
    return jnp.tanh(x.astype(output_dtype(self.dtype)))


class CodeGenerator(nn.Module):
  """[noise, condition] → code z_c: the learned prior."""
  code_dim: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, noise, condition=None, *, train: bool):
    x = noise if condition is None else jnp.concatenate([noise, condition], axis=-1)
    x = nn.Dense(2 * x.shape[-1], use_bias=False, dtype=self.dtype)(x.astype(self.dtype))
    x = nn.relu(_batch_norm(train, self.dtype)(x))
    x = nn.Dense(self.code_dim, use_bias=False, dtype=self.dtype)(x)
    return _batch_norm(train, self.dtype)(x).astype(output_dtype(self.dtype))


class ImageDiscriminator(nn.Module):
  """Image (and condition vector) → (logit [N], last conv features F, Q logits [N, num_classes] or None).

  A condition vector joins the flattened conv features before the FC layer (text-to-image style).
  """
  channels: Sequence[int] = (64, 128, 256)
  hidden: int = 1000
  num_classes: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, condition=None, *, train: bool):
    x = x.astype(self.dtype)
    for i, c in enumerate(self.channels):
      x = Conv(c, (4, 4), strides=(2, 2), use_bias=i == 0, dtype=self.dtype)(x)
      x = _leaky_relu(x if i == 0 else _batch_norm(train, self.dtype)(x))
    features = x.astype(output_dtype(self.dtype))
    h = x.reshape(x.shape[0], -1)
    if condition is not None:
      h = jnp.concatenate([h, condition.astype(self.dtype)], axis=-1)
    h = _leaky_relu(nn.Dense(self.hidden, dtype=self.dtype)(h))
    logit = nn.Dense(1, dtype=self.dtype)(h)[:, 0].astype(output_dtype(self.dtype))
    q_logits = None
    if self.num_classes:
      q_logits = nn.Dense(self.num_classes, dtype=self.dtype, name="Q")(h).astype(output_dtype(self.dtype))
    return logit, features, q_logits


class CodeDiscriminator(nn.Module):
  """[code, condition] → logit [N]: D_C of the AAE."""
  hidden: Sequence[int] = (1000, 500, 200)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, code, condition=None, *, train: bool):
    del train  # no BatchNorm
    x = code if condition is None else jnp.concatenate([code, condition], axis=-1)
    x = x.astype(self.dtype)
    for h in self.hidden:
      x = _leaky_relu(nn.Dense(h, dtype=self.dtype)(x))
    return nn.Dense(1, dtype=self.dtype)(x)[:, 0].astype(output_dtype(self.dtype))


class Prior(nn.Module):
  """p(z), static (no parameters): what a code generator takes, or the fixed prior of an AAE.

  Attributes:
    learned: True → codes come from a CodeGenerator fed `noise` and a condition (Wang et al.);
      False → `fixed_sample` (Makhzani et al.).
    code_dim, noise_dim: sizes of a code and of the generator's N(0, I) noise.
    condition: "none", "label" (one-hot class), "categorical" (random one-hot category) or "vector".
    condition_dim: classes, categories or vector size (0 for "none").
    kind: fixed prior: "gaussian" N(0, scale²·I); "mixture" of `components` Gaussians of std
      `component_std` with means on a circle of radius `scale` in the first two dims (Makhzani Fig. 4);
      "categorical_gaussian": [one-hot of `components` categories, N(0, scale²·I)] (Makhzani §6).
  """
  learned: bool = True
  code_dim: int = 64
  noise_dim: int = 64
  condition: str = "none"
  condition_dim: int = 0
  kind: str = "gaussian"
  scale: float = 1.0
  components: int = 10
  component_std: float = 0.5
  dtype: Any = jnp.float32

  @property
  def categorical(self) -> bool:
    """Whether the condition is a class or category (then the image discriminator has a Q head)."""
    return self.condition in ("label", "categorical")

  def noise(self, rng, num: int):
    return jax.random.normal(rng, (num, self.noise_dim), self.dtype)

  def random_condition(self, rng, num: int):
    """(one-hot, index) of uniformly drawn classes or categories."""
    index = jax.random.randint(rng, (num,), 0, self.condition_dim)
    return jax.nn.one_hot(index, self.condition_dim, dtype=self.dtype), index

  def fixed_sample(self, rng, num: int):
    rng_k, rng_z = jax.random.split(rng)
    if self.kind == "gaussian":
      return self.scale * jax.random.normal(rng_z, (num, self.code_dim), self.dtype)
    k = jax.random.randint(rng_k, (num,), 0, self.components)
    if self.kind == "mixture":
      angle = 2 * jnp.pi * k.astype(self.dtype) / self.components
      means = jnp.zeros((num, self.code_dim), self.dtype)
      means = means.at[:, 0].set(self.scale * jnp.cos(angle)).at[:, 1].set(self.scale * jnp.sin(angle))
      return means + self.component_std * jax.random.normal(rng_z, (num, self.code_dim), self.dtype)
    if self.kind == "categorical_gaussian":
      gaussian = self.scale * jax.random.normal(rng_z, (num, self.code_dim - self.components), self.dtype)
      return jnp.concatenate([jax.nn.one_hot(k, self.components, dtype=self.dtype), gaussian], axis=-1)
    raise ValueError(f"unknown fixed prior {self.kind!r}; choose one of {FIXED_PRIORS}")
