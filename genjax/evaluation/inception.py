"""The FID Inception-v3 network in Flax: the 2015-12-05 TensorFlow graph as ported by pytorch-fid.

Structure (pytorch-fid's `fid_inception_v3`): torchvision's Inception-v3 without the auxiliary head,
1008 classes, and the FID patches: the average pools of the A, C and E_1 blocks leave padding out of
the average (TensorFlow's behaviour), and the pool branch of the last block (Mixed_7c, E_2) is a max
pool. Every conv has no bias and is followed by BatchNorm (eps 1e-3, running statistics) and a ReLU.
Outputs: "pool", the 2048-d global average pool (FID, KID, precision/recall), "logits", the 1008-way
fully connected layer on it, and "logits_unbiased", the same without its bias (pool3·Wᵀ): the logits
of the Inception Score as OpenAI's original code and torch-fidelity compute it, so that genjax's IS can be
set beside the papers'.

Input: NHWC images in [-1, 1] (the project's convention; pytorch-fid maps its [0, 1] inputs to
[-1, 1] the same way), 1 channel (repeated to 3) or 3, any size: they are resized to 299×299 by
bilinear interpolation with half-pixel centres and no antialiasing, i.e. torch's
`F.interpolate(mode="bilinear", align_corners=False)` that pytorch-fid uses, up- and downsampling.
(`jax.image.resize`'s default antialias=True would differ from it when downsampling.)

Weights. No machine here can download them; on one with internet and torch (torch is needed only
for this conversion):

  wget https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
  python -m genjax.evaluation.inception --convert pt_inception-2015-12-05-6726825d.pth inception_fid.npz

The .npz holds pytorch-fid's state_dict unchanged: its names ("Conv2d_1a_3x3.conv.weight",
"Mixed_5b.branch_pool.bn.running_var", "fc.bias", ...) and torch layouts (conv weights OIHW,
"fc.weight" [1008, 2048]); "num_batches_tracked" entries are dropped. `load_inception_params`
converts them to Flax variables (HWIO kernels, BatchNorm scale/bias/mean/var, Dense kernel [2048, 1008]).
"""

import argparse
import functools
import os
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from jax import lax

from genjax.errors import GenjaxError
from genjax.evaluation.metrics import Extractor

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
INPUT_SIZE = 299
NUM_CLASSES = 1008


class InceptionWeightsError(GenjaxError):
  """A missing or malformed Inception weights file."""


def resize_bilinear(images: jax.Array, size: int = INPUT_SIZE) -> jax.Array:
  """NHWC bilinear resize with half-pixel centres, no antialiasing (torch's align_corners=False)."""
  n, _, _, c = images.shape
  return jax.image.resize(images, (n, size, size, c), "bilinear", antialias=False)


class BasicConv2d(nn.Module):
  """Conv (no bias) -> BatchNorm (eps 1e-3, running statistics) -> ReLU."""
  features: int
  kernel_size: Sequence[int] = (1, 1)
  strides: Sequence[int] = (1, 1)
  padding: Sequence[int] = (0, 0)
  precision: Any = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, tuple(self.kernel_size), tuple(self.strides),
                padding=[(p, p) for p in self.padding], use_bias=False, precision=self.precision,
                name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _conv(name, features, kernel=1, strides=1, padding=0, precision=lax.Precision.HIGHEST):
  pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
  return BasicConv2d(features, pair(kernel), pair(strides), pair(padding), precision, name=name)


def _avg_pool_3x3(x):
  """TensorFlow's 3×3 stride-1 SAME average pool: padded zeros are not counted."""
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x, stride=1):
  pad = ((1, 1), (1, 1)) if stride == 1 else "VALID"
  return nn.max_pool(x, (3, 3), (stride, stride), pad)


class InceptionA(nn.Module):
  """Mixed_5b/c/d (FIDInceptionA)."""
  pool_features: int
  precision: Any = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_conv, precision=self.precision)
    b1 = c("branch1x1", 64)(x)
    b5 = c("branch5x5_2", 64, 5, padding=2)(c("branch5x5_1", 48)(x))
    b3 = c("branch3x3dbl_1", 64)(x)
    b3 = c("branch3x3dbl_3", 96, 3, padding=1)(c("branch3x3dbl_2", 96, 3, padding=1)(b3))
    bp = c("branch_pool", self.pool_features)(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a: grid reduction 35 -> 17."""
  precision: Any = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_conv, precision=self.precision)
    b3 = c("branch3x3", 384, 3, strides=2)(x)
    bd = c("branch3x3dbl_2", 96, 3, padding=1)(c("branch3x3dbl_1", 64)(x))
    bd = c("branch3x3dbl_3", 96, 3, strides=2)(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3(x, stride=2)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b/c/d/e (FIDInceptionC): factorised 7×7 convolutions."""
  channels_7x7: int
  precision: Any = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_conv, precision=self.precision)
    c7 = self.channels_7x7
    b1 = c("branch1x1", 192)(x)
    b7 = c("branch7x7_1", c7)(x)
    b7 = c("branch7x7_2", c7, (1, 7), padding=(0, 3))(b7)
    b7 = c("branch7x7_3", 192, (7, 1), padding=(3, 0))(b7)
    bd = c("branch7x7dbl_1", c7)(x)
    bd = c("branch7x7dbl_2", c7, (7, 1), padding=(3, 0))(bd)
    bd = c("branch7x7dbl_3", c7, (1, 7), padding=(0, 3))(bd)
    bd = c("branch7x7dbl_4", c7, (7, 1), padding=(3, 0))(bd)
    bd = c("branch7x7dbl_5", 192, (1, 7), padding=(0, 3))(bd)
    bp = c("branch_pool", 192)(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a: grid reduction 17 -> 8."""
  precision: Any = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_conv, precision=self.precision)
    b3 = c("branch3x3_2", 320, 3, strides=2)(c("branch3x3_1", 192)(x))
    b7 = c("branch7x7x3_1", 192)(x)
    b7 = c("branch7x7x3_2", 192, (1, 7), padding=(0, 3))(b7)
    b7 = c("branch7x7x3_3", 192, (7, 1), padding=(3, 0))(b7)
    b7 = c("branch7x7x3_4", 192, 3, strides=2)(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3(x, stride=2)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b (FIDInceptionE_1, average pool) and Mixed_7c (FIDInceptionE_2, max pool)."""
  max_pool: bool = False
  precision: Any = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_conv, precision=self.precision)
    b1 = c("branch1x1", 320)(x)
    b3 = c("branch3x3_1", 384)(x)
    b3 = jnp.concatenate([c("branch3x3_2a", 384, (1, 3), padding=(0, 1))(b3),
                          c("branch3x3_2b", 384, (3, 1), padding=(1, 0))(b3)], axis=-1)
    bd = c("branch3x3dbl_2", 384, 3, padding=1)(c("branch3x3dbl_1", 448)(x))
    bd = jnp.concatenate([c("branch3x3dbl_3a", 384, (1, 3), padding=(0, 1))(bd),
                          c("branch3x3dbl_3b", 384, (3, 1), padding=(1, 0))(bd)], axis=-1)
    pooled = _max_pool_3x3(x) if self.max_pool else _avg_pool_3x3(x)
    bp = c("branch_pool", 192)(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """FID Inception-v3: images [N, H, W, 1 or 3] in [-1, 1] -> {"pool": [N, 2048], "logits": [N, 1008],
  "logits_unbiased": [N, 1008]}.

  Inference only (BatchNorm uses its running statistics, dropout is off). `resize_input=False` feeds
  the images at their own size (at least 75×75).
  """
  resize_input: bool = True
  precision: Any = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, images):
    x = jnp.asarray(images, jnp.float32)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
      raise ValueError(f"Inception takes NHWC images with 1 or 3 channels, got shape {x.shape}")
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    if self.resize_input:
      x = resize_bilinear(x)
    c = functools.partial(_conv, precision=self.precision)
    p = {"precision": self.precision}
    x = c("Conv2d_1a_3x3", 32, 3, strides=2)(x)
    x = c("Conv2d_2a_3x3", 32, 3)(x)
    x = c("Conv2d_2b_3x3", 64, 3, padding=1)(x)
    x = _max_pool_3x3(x, stride=2)
    x = c("Conv2d_3b_1x1", 80)(x)
    x = c("Conv2d_4a_3x3", 192, 3)(x)
    x = _max_pool_3x3(x, stride=2)
    x = InceptionA(32, **p, name="Mixed_5b")(x)
    x = InceptionA(64, **p, name="Mixed_5c")(x)
    x = InceptionA(64, **p, name="Mixed_5d")(x)
    x = InceptionB(**p, name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, **p, name=name)(x)
    x = InceptionD(**p, name="Mixed_7a")(x)
    x = InceptionE(max_pool=False, **p, name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, **p, name="Mixed_7c")(x)
    pool = jnp.mean(x, axis=(1, 2))
    fc = nn.Dense(NUM_CLASSES, precision=self.precision, name="fc")
    logits = fc(pool)
    # OpenAI's Inception Score code and torch-fidelity score pool3·Wᵀ, without the layer's bias.
    unbiased = jnp.matmul(pool, fc.variables["params"]["kernel"], precision=self.precision)
    return {"pool": pool, "logits": logits, "logits_unbiased": unbiased}


# ---------------------------------------------------------------------------------------------------
# Weights: pytorch-fid state_dict names and layouts <-> Flax variables.


@functools.lru_cache(maxsize=None)
def variable_shapes() -> dict[str, Any]:
  """{"params": ..., "batch_stats": ...} of `InceptionV3` as ShapeDtypeStructs (no compute)."""
  return jax.eval_shape(lambda: InceptionV3().init(jax.random.key(0),
                                                   jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3))))


def _torch_name(collection: str, path: tuple[str, ...]) -> str:
  *module, leaf = path
  if collection == "batch_stats":  # BatchNorm "mean"/"var".
    return ".".join(module + [f"running_{leaf}"])
  return ".".join(module + [{"kernel": "weight", "scale": "weight", "bias": "bias"}[leaf]])


# Flax -> torch layout: conv HWIO -> OIHW, dense [in, out] -> [out, in]; and back.
_TO_TORCH = {1: (0,), 2: (1, 0), 4: (3, 2, 0, 1)}
_FROM_TORCH = {1: (0,), 2: (1, 0), 4: (2, 3, 1, 0)}


def _to_torch(array: np.ndarray) -> np.ndarray:
  return array.transpose(_TO_TORCH[array.ndim])


def _torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
  return tuple(shape[i] for i in _TO_TORCH[len(shape)])


def _flat_variables(variables) -> dict[tuple[str, tuple[str, ...]], Any]:
  return {(collection, path): leaf
          for collection in ("params", "batch_stats")
          for path, leaf in traverse_util.flatten_dict(variables[collection]).items()}


def state_dict(variables) -> dict[str, np.ndarray]:
  """Flax Inception variables -> {pytorch-fid name: array in torch layout} (the .npz format)."""
  return {_torch_name(collection, path): _to_torch(np.asarray(leaf))
          for (collection, path), leaf in _flat_variables(variables).items()}


def parameter_shapes() -> dict[str, tuple[int, ...]]:
  """{pytorch-fid name: shape in torch layout} of every array the .npz holds."""
  return {_torch_name(collection, path): _torch_shape(spec.shape)
          for (collection, path), spec in _flat_variables(variable_shapes()).items()}


def save_inception_params(variables, path: str) -> None:
  np.savez(path, **state_dict(variables))


def load_inception_params(path: str) -> dict[str, Any]:
  """Flax variables {"params", "batch_stats"} from an .npz of pytorch-fid's state_dict (module docstring)."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise InceptionWeightsError(
        f"Inception weights file not found: {path}. On a machine with internet: wget {WEIGHTS_URL} && "
        f"python -m genjax.evaluation.inception --convert {WEIGHTS_URL.rsplit('/', 1)[1]} {path}")
  try:
    with np.load(path) as npz:
      arrays = {k: npz[k] for k in npz.files if not k.endswith("num_batches_tracked")}
  except Exception as e:  # pylint: disable=broad-except  (zipfile, pickle and format errors alike)
    raise InceptionWeightsError(f"{path}: not a readable .npz of Inception weights ({e})") from None
  flat = {}
  for (collection, key), spec in _flat_variables(variable_shapes()).items():
    name, expected = _torch_name(collection, key), _torch_shape(spec.shape)
    if name not in arrays:
      raise InceptionWeightsError(f"{path}: parameter {name} is missing; is this pytorch-fid's "
                                  f"pt_inception-2015-12-05 converted as described in genjax.evaluation.inception?")
    value = arrays.pop(name)
    if value.shape != expected:
      raise InceptionWeightsError(f"{path}: parameter {name} has shape {value.shape}, expected {expected}")
    flat[(collection,) + key] = jnp.asarray(value.transpose(_FROM_TORCH[value.ndim]), jnp.float32)
  if arrays:
    raise InceptionWeightsError(f"{path}: unexpected parameter {sorted(arrays)[0]} "
                                f"({len(arrays)} unexpected in all); not the FID Inception weights?")
  return traverse_util.unflatten_dict(flat)


def inception_extractor(weights, *, resize_input: bool = True) -> Extractor:
  """An `Extractor` running FID Inception with `weights` (an .npz path or variables): its pool features,
  and its unbiased logits for the Inception Score (as OpenAI's code and torch-fidelity)."""
  variables = load_inception_params(weights) if isinstance(weights, (str, os.PathLike)) else weights
  apply = jax.jit(InceptionV3(resize_input=resize_input).apply)

  def fn(images):
    out = apply(variables, images)
    return out["pool"], out["logits_unbiased"]
  return Extractor(fn, jit=False)


def convert_torch_checkpoint(src: str, dst: str) -> None:
  """pytorch-fid's .pth state_dict -> the .npz that `load_inception_params` reads (needs torch)."""
  try:
    import torch  # pylint: disable=import-outside-toplevel  (only this conversion needs torch)
  except ImportError:
    raise InceptionWeightsError("converting a .pth checkpoint needs PyTorch (pip install torch, on any "
                                "machine; genjax itself does not need it)") from None
  state = torch.load(src, map_location="cpu", weights_only=True)
  np.savez(dst, **{k: v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")})
  load_inception_params(dst)  # Checks every name and shape.


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("--convert", nargs=2, metavar=("SRC_PTH", "DST_NPZ"), required=True,
                      help="convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth to an .npz")
  args = parser.parse_args(argv)
  try:
    convert_torch_checkpoint(*args.convert)
  except GenjaxError as e:
    raise SystemExit(f"error: {e}") from None
  print(f"wrote {args.convert[1]}")


if __name__ == "__main__":
  main()
