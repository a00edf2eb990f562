"""Image grids for TensorBoard and PNG files (written by the loop, callable alone)."""

import math

import numpy as np


def to_uint8(images) -> np.ndarray:
  """[-1, 1] floats → uint8 [0, 255]."""
  images = np.asarray(images, np.float32)
  return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images, ncols: int | None = None, pad: int = 1) -> np.ndarray:
  """[N, H, W, C] images in [-1, 1] → one uint8 [rows·(H+pad)+pad, cols·(W+pad)+pad, C] grid."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
  for i, image in enumerate(images):
    r, col = divmod(i, ncols)
    top, left = pad + r * (h + pad), pad + col * (w + pad)
    grid[top:top + h, left:left + w] = image
  return grid


def pairs_grid(originals, reconstructions, ncols: int = 8) -> np.ndarray:
  """Rows alternate originals and their reconstructions, `ncols` pairs per row."""
  originals, reconstructions = np.asarray(originals), np.asarray(reconstructions)
  rows = []
  for start in range(0, len(originals), ncols):
    rows += [originals[start:start + ncols], reconstructions[start:start + ncols]]
  if len(rows[-1]) < ncols:  # pad the last pair of rows with white
    blank = np.ones((ncols - len(rows[-1]),) + originals.shape[1:], np.float32)
    rows[-2], rows[-1] = (np.concatenate([r, blank]) for r in rows[-2:])
  return image_grid(np.concatenate(rows), ncols=ncols)


def save_png(path: str, grid: np.ndarray) -> None:
  import tensorflow as tf  # only here: encoding PNGs is all viz needs from it
  tf.io.write_file(path, tf.io.encode_png(grid))
