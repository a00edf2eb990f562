"""The VAE of Lamb, Dumoulin & Courville 2016, "Discriminative regularization for generative models".

`Encoder` / `Decoder` are the reference VAE (CelebA 64×64): per stage [3×3 conv, 3×3 conv, 2×2/2 conv]
with BN + ReLU at 32/64/128/256 channels, MLP 1000 → (μ, log σ²); the decoder mirrors it with 2×2/2
transposed convs and ends in a 1×1 conv. Pixels are in [-1, 1] here, so the output is tanh (the
reference used [0, 1] and a sigmoid). The classifier whose features regularize it is
genjax.nets.classifier.Classifier.

Params are float32; `dtype` is the compute dtype; outputs are float32 (float64 when computing in float64).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.nets import larsen
from genjax.nets.classifier import batch_norm, dense_bn_relu
from genjax.nets.larsen import check_image_shape, output_dtype
from genjax.nets.layers import Conv, ConvTranspose


def _stage(x, features: int, train: bool, dtype, up: bool = False):
  """[3×3 conv, 3×3 conv, 2×2/2 conv (transposed when `up`)], each BN + ReLU, bias-free."""
  for kernel, stride, layer in ((3, 1, Conv), (3, 1, Conv), (2, 2, ConvTranspose if up else Conv)):
    x = layer(features, (kernel, kernel), strides=(stride, stride), padding="SAME", use_bias=False,
              dtype=dtype)(x)
    x = nn.relu(batch_norm(train, dtype)(x))
  return x


class Encoder(larsen.Encoder):
  """Image -> (mean, logvar) of q(z|x): stages of [3×3, 3×3, 2×2/2] convs, each BN + ReLU; MLP.

  The fields of larsen.Encoder (channels, hidden, latent_dim, dtype); the paper's values are
  channels (32, 64, 128, 256), hidden 1000, latent 500.
  """

  @nn.compact
  def __call__(self, x: jax.Array, train: bool):
    check_image_shape(x.shape[1:], len(self.channels))
    x = x.astype(self.dtype)
    for c in self.channels:
      x = _stage(x, c, train, self.dtype)
    x = dense_bn_relu(x.reshape(x.shape[0], -1), self.hidden, train, self.dtype)
    x = nn.Dense(2 * self.latent_dim, dtype=self.dtype)(x)
    return tuple(jnp.split(x.astype(output_dtype(self.dtype)), 2, axis=-1))


class Decoder(larsen.Decoder):
  """z -> image in [-1, 1]: MLP, stages of [3×3, 3×3 convs, 2×2/2 transposed conv], 1×1 conv + tanh.

  The fields of larsen.Decoder plus the MLP's `hidden` width; the paper's channels are the encoder's,
  reversed (256, 128, 64, 32), hidden 1000.
  """
  hidden: int = 1000

  @nn.compact
  def __call__(self, z: jax.Array, train: bool) -> jax.Array:
    n = len(self.channels)
    check_image_shape(self.image_shape, n)
    h, w, c_out = self.image_shape
    x = dense_bn_relu(z.astype(self.dtype), self.hidden, train, self.dtype)
    x = dense_bn_relu(x, (h // 2**n) * (w // 2**n) * self.channels[0], train, self.dtype)
    x = x.reshape(x.shape[0], h // 2**n, w // 2**n, self.channels[0])
    for c in self.channels:
      x = _stage(x, c, train, self.dtype, up=True)
    x = Conv(c_out, (1, 1), dtype=self.dtype)(x)  # with a bias (the reference's has none, then a sigmoid)
    return jnp.tanh(x.astype(output_dtype(self.dtype)))
