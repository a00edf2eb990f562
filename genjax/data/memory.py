"""Datasets that fit in memory, read with numpy alone: scikit-learn's digits and Fashion-MNIST.

No TensorFlow and no download. Each split is decoded once into a uint8 array ([N, H, W, C] and its labels)
and batches are taken from it by index in genjax.data.order's order (a pure function of the seed, resumed
by arithmetic, each process its rows of every global batch). Images are resized to `data.image_size`
(bilinear, antialiased, as tf.image.resize) per batch, on the host CPU. Split expressions are TFDS's ("train[:80%]", "train+test", "test[100:200]").

Sources:
- `digits`: scikit-learn's bundled 1,797 8×8 digits, bicubically upscaled to 32×32; train = the first
  1,500, test = the other 297 (scikit-learn's order).
- `fashion_mnist`: the original idx files (60,000 + 10,000 28×28 images) from `data.manual_dir`, else
  Debian's package `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist).
"""

import functools
import gzip
import os
import types
from typing import Iterator

import numpy as np

from genjax.data import order
from genjax.data import registry
from genjax.errors import DataError

DIGITS_SIZE = 32
DIGITS_TRAIN = 1500  # train = the first 1,500 images, test = the other 297.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                       "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


# --- Sources: {split: (images uint8 [N, H, W, C], labels int32 [N])} --------------------------------------

def upscale_digit(image8: np.ndarray) -> np.ndarray:
  """8×8 image with values 0..16 -> (32, 32, 1) uint8, bicubic."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  scaled = np.asarray(image8, np.float32) * (255.0 / 16.0)
  big = Image.fromarray(scaled).resize((DIGITS_SIZE, DIGITS_SIZE), Image.BICUBIC)
  # Bicubic overshoots at stroke edges; clip back into the pixel range.
  return np.clip(np.rint(np.asarray(big)), 0, 255).astype(np.uint8)[..., None]


@functools.lru_cache(maxsize=None)
def digits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  loaded = load_digits()
  images = np.stack([upscale_digit(image) for image in loaded.images])
  labels = loaded.target.astype(np.int32)
  return {"train": (images[:DIGITS_TRAIN], labels[:DIGITS_TRAIN]),
          "test": (images[DIGITS_TRAIN:], labels[DIGITS_TRAIN:])}


def fashion_mnist_dir(manual_dir: str | None) -> str:
  """The directory with Fashion-MNIST's four idx files; DataError naming the apt command and the option."""
  directory = manual_dir or FASHION_MNIST_DIR
  missing = [f for files in FASHION_MNIST_FILES.values() for f in files
             if not os.path.isfile(os.path.join(directory, f))]
  if not missing:
    return directory
  all_files = ", ".join(f for files in FASHION_MNIST_FILES.values() for f in files)
  if manual_dir:
    raise DataError(f"data.manual_dir {manual_dir!r} lacks Fashion-MNIST's {', '.join(missing)}: point it at a "
                    f"directory with the four original idx .gz files ({all_files})")
  raise DataError(f"dataset 'fashion_mnist' needs its original files, which are not in {FASHION_MNIST_DIR}: run "
                  f"`apt-get install dataset-fashion-mnist`, or set --config.data.manual_dir to a directory with "
                  f"{all_files}")


def read_idx(path: str) -> np.ndarray:
  """An idx file (gzipped): magic (2 zero bytes, type 0x08 = uint8, rank), big-endian dims, the data."""
  with gzip.open(path, "rb") as f:
    raw = f.read()
  if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
    raise DataError(f"{path} is not an idx file of unsigned bytes")
  rank = raw[3]
  shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=rank, offset=4))
  values = np.frombuffer(raw, np.uint8, offset=4 + 4 * rank)
  if values.size != int(np.prod(shape)):
    raise DataError(f"{path} is truncated: {values.size} values for shape {shape}")
  return values.reshape(shape)


def fashion_mnist(manual_dir: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  return _read_fashion_mnist(fashion_mnist_dir(manual_dir))


@functools.lru_cache(maxsize=2)
def _read_fashion_mnist(directory: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  return {split: (read_idx(os.path.join(directory, images))[..., None],
                  read_idx(os.path.join(directory, labels)).astype(np.int32))
          for split, (images, labels) in FASHION_MNIST_FILES.items()}


def load(data_config) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  name = data_config.name
  if name == "digits":
    return digits()
  if name == "fashion_mnist":
    return fashion_mnist(data_config.get("manual_dir") or None)
  raise DataError(f"dataset {name!r} is not one held in memory")


# --- Split expressions ------------------------------------------------------------------------------------

def select(splits: dict[str, tuple[np.ndarray, np.ndarray]], name: str,
           expression: str) -> tuple[np.ndarray, np.ndarray]:
  """The rows of a TFDS split expression ("train[:80%]+test"), in that order."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (its split parser; no TF)
  for part in expression.split("+"):
    base = part.partition("[")[0].strip()
    if base not in splits:
      raise DataError(f"dataset {name!r} has no split {base!r}: use one of {', '.join(sorted(splits))} "
                      "(--config.data.split / eval_split)")
  sizes = {split: types.SimpleNamespace(num_examples=len(labels)) for split, (_, labels) in splits.items()}
  try:
    parts = tfds.core.ReadInstruction.from_spec(expression).to_absolute(sizes)
  except (ValueError, AssertionError) as e:
    raise DataError(f"dataset {name!r}: invalid split {expression!r}: {str(e).splitlines()[0]}") from None
  images = [splits[p.splitname][0][p.from_:p.to] for p in parts]
  labels = [splits[p.splitname][1][p.from_:p.to] for p in parts]
  return np.concatenate(images), np.concatenate(labels)


# --- Batches ----------------------------------------------------------------------------------------------

def create_dataset(data_config, *, split: str, batch_size: int, seed: int, train: bool, skip_batches: int,
                   process_index: int, process_count: int) -> Iterator[dict[str, np.ndarray]]:
  """This process's batches of an in-memory dataset (see genjax.data.create_dataset)."""
  size, _, channels = registry.image_shape(data_config)
  images, labels = select(load(data_config), data_config.name, split)
  resize = _resizer(images.shape[1:3], size, channels)
  rows = order.batch_rows(len(labels), batch_size=batch_size, seed=seed, train=train, skip_batches=skip_batches,
                          process_index=process_index, process_count=process_count)
  return ({"image": resize(images[r]), "label": labels[r]} for r in rows)


def _resizer(native: tuple[int, int], size: int, channels: int):
  """uint8 [B, h, w, C] -> float32 [B, size, size, C] in [-1, 1]; resized (bilinear, antialiased) on the
  host CPU when the native size differs."""
  if tuple(native) == (size, size):
    return lambda images: np.asarray(images, np.float32) / 127.5 - 1.0
  import jax  # pylint: disable=import-outside-toplevel

  @jax.jit
  def resize(images):
    resized = jax.image.resize(images.astype(np.float32), (images.shape[0], size, size, channels), "linear",
                               antialias=True)
    return jax.numpy.clip(resized / 127.5 - 1.0, -1.0, 1.0)
  cpu = jax.local_devices(backend="cpu")[0]  # this process's own CPU (jax.devices() spans all processes)
  return lambda images: np.asarray(resize(jax.device_put(images, cpu)))
