"""The networks of Lamb, Dumoulin & Courville 2016, "Discriminative regularization for generative models".

`Classifier` is the reference code's pretrained classifier: six bias-free convs, each BN + ReLU —
4×4·32, 3×3/2·32, 4×4·64, 3×3/2·64, 3×3·128, 3×3/2·128 — then an MLP 1000 → outputs, dropout 0.5
after the strided blocks and the MLP's hidden layer. Its feature layers, used by the discriminative
regularizer, are the BN outputs (before the ReLU) of the three strided convs: "conv2", "conv4", "conv6";
its embedding, used by the evaluation's classifier FID, is the MLP's hidden layer (after BN + ReLU).

`MLPClassifier` (not in the paper) is a second, independent extractor for the evaluation: two fully
connected hidden layers on the pixels, each BN + ReLU + dropout; its embedding is the second one. An
FID comparison that holds in both extractors' features does not depend on one network's view.

The same paper's VAE is in genjax.nets.discreg.

Params are float32; `dtype` is the compute dtype; outputs are float32 (float64 when computing in float64).
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.nets.larsen import output_dtype
from genjax.nets.layers import Conv

# (kernel, stride) of the six classifier convs; channels come from `Classifier.channels`.
CONV_SPECS = ((4, 1), (3, 2), (4, 1), (3, 2), (3, 1), (3, 2))
CHANNELS = (32, 32, 64, 64, 128, 128)
FEATURE_LAYERS = ("conv2", "conv4", "conv6")  # the BN outputs of the strided convs
PADDINGS = ("VALID", "SAME")
ARCHITECTURES = ("lamb", "mlp")


def batch_norm(train: bool, dtype, name=None) -> nn.BatchNorm:
  # Reference code: population statistics as an exponential moving average with decay 0.05.
  return nn.BatchNorm(use_running_average=not train, momentum=0.95, epsilon=1e-5, dtype=dtype, name=name)


def feature_sizes(image_size: int, padding: str) -> tuple[int, ...]:
  """Spatial size after each classifier conv; raises ValueError if a VALID conv has no room left."""
  if padding not in PADDINGS:
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
  sizes, n = [], image_size
  for i, (k, s) in enumerate(CONV_SPECS):
    if padding == "SAME":
      n = -(-n // s)
    elif n < k:
      raise ValueError(
          f"image size {image_size} is too small for the classifier's unpadded (VALID) convs: conv{i + 1} "
          f"({k}×{k}) sees {n}×{n}; use images of at least 32×32 or padding 'SAME'")
    else:
      n = (n - k) // s + 1
    sizes.append(n)
  return tuple(sizes)


class Classifier(nn.Module):
  """Image -> logits [N, num_outputs]; {feature layer: BN output} with `features=True`; (embedding [N, hidden],
  logits) with `embedding=True`."""
  num_outputs: int
  channels: Sequence[int] = CHANNELS
  hidden: int = 1000
  padding: str = "VALID"        # the reference convs are unpadded; "SAME" keeps small images' maps
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, features: bool = False, embedding: bool = False):
    if len(self.channels) != len(CONV_SPECS):
      raise ValueError(f"channels must have {len(CONV_SPECS)} entries, got {self.channels}")
    feature_sizes(min(x.shape[1:3]), self.padding)
    out_dtype = output_dtype(self.dtype)
    x = x.astype(self.dtype)
    found = {}
    for i, (c, (k, s)) in enumerate(zip(self.channels, CONV_SPECS), start=1):
      x = Conv(c, (k, k), strides=(s, s), padding=self.padding, use_bias=False, dtype=self.dtype,
               name=f"conv{i}")(x)
      x = batch_norm(train, self.dtype, name=f"bn{i}")(x)
      if s > 1:
        found[f"conv{i}"] = x.astype(out_dtype)
      x = nn.relu(x)
      if s > 1:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    if features:
      return found
    hidden = dense_bn_relu(x.reshape(x.shape[0], -1), self.hidden, train, self.dtype, name="hidden")
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(hidden)
    logits = nn.Dense(self.num_outputs, dtype=self.dtype, name="logits")(x).astype(out_dtype)
    return (hidden.astype(out_dtype), logits) if embedding else logits


class MLPClassifier(nn.Module):
  """Image -> logits [N, num_outputs] through two hidden layers of `hidden` units (each BN + ReLU + dropout);
  (embedding [N, hidden], logits) with `embedding=True`, the embedding being the second hidden layer."""
  num_outputs: int
  hidden: int = 1000
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, embedding: bool = False):
    x = x.astype(self.dtype).reshape(x.shape[0], -1)
    for i in range(2):
      hidden = dense_bn_relu(x, self.hidden, train, self.dtype, name=f"hidden{i + 1}")
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(hidden)
    logits = nn.Dense(self.num_outputs, dtype=self.dtype, name="logits")(x)
    out_dtype = output_dtype(self.dtype)
    return (hidden.astype(out_dtype), logits.astype(out_dtype)) if embedding else logits.astype(out_dtype)


def dense_bn_relu(x, features: int, train: bool, dtype, name=None):
  x = nn.Dense(features, use_bias=False, dtype=dtype, name=name)(x)
  return nn.relu(batch_norm(train, dtype, name=name and f"bn_{name}")(x))
