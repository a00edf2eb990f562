"""Datasets: the registry, and `create_dataset`, the batches of any of them.

No TensorFlow: digits and fashion_mnist are read into memory with numpy (genjax/data/memory.py), the
other datasets through TFDS's TensorFlow-free reader over their ArrayRecord files (genjax/data/records.py);
both take their batches in genjax.data.order's order.
"""

from typing import Iterator

import numpy as np

from genjax.data.registry import CELEB_A_ATTRIBUTES
from genjax.data.registry import DATASETS
from genjax.data.registry import DatasetSpec
from genjax.data.registry import image_shape
from genjax.data.registry import num_classes
from genjax.data import registry
from genjax.errors import ConfigError

__all__ = ["CELEB_A_ATTRIBUTES", "DATASETS", "DatasetSpec", "create_dataset", "image_shape", "num_classes"]

_MAX_SEED = 2**31 - 1


def create_dataset(data_config, *, batch_size: int, seed: int, split: str | None = None, train: bool = True,
                   skip_batches: int = 0, process_index: int | None = None,
                   process_count: int | None = None) -> Iterator[dict[str, np.ndarray]]:
  """Yields this process's batches of `data_config.name`.

  Args:
    data_config: ConfigDict with name, image_size, split, eval_split, data_dir, manual_dir and
      shuffle_buffer.
    batch_size: examples per batch in this process.
    seed: fixes the training order; the same seed gives identical batches.
    split: split expression; defaults to data.split (train) or data.eval_split.
    train: shuffle and repeat forever, dropping no example but never yielding a partial batch; otherwise
      one ordered pass ending in a partial batch.
    skip_batches: start at this batch, e.g. the step of a resumed run.
    process_index: this process; defaults to jax.process_index().
    process_count: number of processes; defaults to jax.process_count().

  Returns:
    Iterator of {"image": float32 [B, S, S, C] in [-1, 1], "label": int32 [B]} plus "attributes" float32
    [B, 40] for celeb_a and "condition" float32 for datasets with such a feature.
  """
  spec = registry.get_spec(data_config.name)
  registry.check_int("batch_size", batch_size, minimum=1)
  registry.check_int("skip_batches", skip_batches, minimum=0)
  if split is None:
    key, default = ("split", spec.train_split) if train else ("eval_split", spec.eval_split)
    split = data_config.get(key) or default
  split = registry.canonical_split(spec, split)
  process_index, process_count = _processes(process_index, process_count)
  kwargs = dict(split=split, batch_size=batch_size, seed=int(seed) % _MAX_SEED, train=train,
                skip_batches=skip_batches, process_index=process_index, process_count=process_count)
  if spec.in_memory:
    from genjax.data import memory  # pylint: disable=import-outside-toplevel
    return memory.create_dataset(data_config, **kwargs)
  from genjax.data import records  # pylint: disable=import-outside-toplevel
  return records.create_dataset(data_config, **kwargs)


def _processes(index: int | None, count: int | None) -> tuple[int, int]:
  if index is None or count is None:
    import jax  # pylint: disable=import-outside-toplevel
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
  if not 0 <= index < count:
    raise ConfigError(f"invalid process_index {index} for process_count {count}: need 0 <= index < count")
  return index, count
