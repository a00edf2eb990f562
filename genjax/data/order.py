"""Which records make up each batch: a pure function of the seed, shared by every dataset kind.

Training: epoch e is the permutation `np.random.default_rng([seed, e]).permutation(n)`; epochs are
concatenated and cut into global batches (no record dropped, no partial batch), so batch k starts at record
k · global_batch and a resumed run starts there by arithmetic, reading nothing to skip. Evaluation: one
ordered pass, the last batch partial. Each process takes its own rows of every global batch (rows
[i · B, (i + 1) · B) for process i of batch size B), so N processes together see what one process would.
"""

import functools
from typing import Iterator

import numpy as np

from genjax.errors import DataError


def batch_rows(n: int, *, batch_size: int, seed: int, train: bool, skip_batches: int, process_index: int,
               process_count: int) -> Iterator[np.ndarray]:
  """The record indices of this process's part of each global batch."""
  if train and not n:
    raise DataError("the training split is empty: use a larger split")
  global_batch = batch_size * process_count
  lo, hi = process_index * batch_size, (process_index + 1) * batch_size
  order = training_order(n, seed)
  position = skip_batches * global_batch
  while train or position < n:
    rows = order(position, global_batch) if train else np.arange(position, min(position + global_batch, n))
    position += global_batch
    if len(rows[lo:hi]):
      yield rows[lo:hi]


def training_order(n: int, seed: int):
  """order(position, count) -> the indices of records position..position + count of the concatenated
  epochs, epoch e being np.random.default_rng([seed, e]).permutation(n)."""

  @functools.lru_cache(maxsize=2)  # a batch smaller than the split spans at most two epochs
  def epoch(e: int) -> np.ndarray:
    return np.random.default_rng([seed, e]).permutation(n)

  def order(position: int, count: int) -> np.ndarray:
    epochs, offsets = np.divmod(np.arange(position, position + count), n)
    return np.concatenate([epoch(int(e))[offsets[epochs == e]] for e in np.unique(epochs)])
  return order
