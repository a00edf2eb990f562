"""TFDS datasets read without TensorFlow: `tfds.data_source` over the prepared ArrayRecord files.

TFDS's TensorFlow-free reader gives random access to decoded examples; genjax.data.order says which
records make each batch (a pure function of the seed, resumed by arithmetic, each process its rows of every
global batch), a thread pool reads, crops and resizes a batch's images in parallel (PIL's decoders and
resize release the GIL), and a background thread keeps two training batches ready ahead of the step.
Datasets must be prepared as ArrayRecord (`tfds build NAME --file_format=array_record`, on a machine with
internet and TensorFlow); one prepared as TFRecord is refused with the command that prepares it again.
"""

import concurrent.futures
import os
import queue
import threading
from typing import Iterator

import numpy as np

from genjax.data import order
from genjax.data import registry
from genjax.errors import DataError

_THREADS = min(8, os.cpu_count() or 1)
_AHEAD = 2  # batches read ahead of the step


def create_dataset(data_config, *, split: str, batch_size: int, seed: int, train: bool, skip_batches: int,
                   process_index: int, process_count: int) -> Iterator[dict[str, np.ndarray]]:
  """This process's batches of a TFDS dataset (see genjax.data.create_dataset)."""
  size, _, channels = registry.image_shape(data_config)
  spec = registry.get_spec(data_config.name)
  source = open_source(data_config.name, spec, split, data_config.get("data_dir") or None)
  example = lambda i: preprocess(source[int(i)], spec, size, channels)
  rows = order.batch_rows(len(source), batch_size=batch_size, seed=seed, train=train, skip_batches=skip_batches,
                          process_index=process_index, process_count=process_count)

  def batches():
    with concurrent.futures.ThreadPoolExecutor(_THREADS) as pool:
      for batch in rows:
        examples = list(pool.map(example, batch))
        yield {key: np.stack([e[key] for e in examples]) for key in examples[0]}
  return ahead(batches(), _AHEAD) if train else batches()  # an evaluation pass may be left part-way


def ahead(iterator: Iterator, size: int) -> Iterator:
  """`iterator`'s items, produced by a background thread up to `size` items ahead of the consumer (reading
  and decoding overlap the train step); its exception, if any, is raised where the item would have been.
  When the consumer is closed or dropped, the thread stops and closes `iterator`."""
  items: queue.Queue = queue.Queue(maxsize=size)
  stopped, done = threading.Event(), object()

  def hand_over(item) -> bool:
    while not stopped.is_set():
      try:
        items.put(item, timeout=0.1)
        return True
      except queue.Full:
        pass
    return False

  def produce():
    try:
      for item in iterator:
        if not hand_over(item):
          break
      else:
        hand_over(done)
    except BaseException as e:  # pylint: disable=broad-except  (handed to the consumer)
      hand_over(e)
    finally:
      iterator.close()

  threading.Thread(target=produce, daemon=True).start()
  try:
    while (item := items.get()) is not done:
      if isinstance(item, BaseException):
        raise item
      yield item
  finally:
    stopped.set()


def open_source(name: str, spec, split: str, data_dir: str | None):
  """tfds.data_source of `split`, or a DataError saying how to prepare or convert the dataset."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
  known = list(builder.info.splits)  # empty when unprepared (or mocked)
  for part in split.split("+"):
    base = part.partition("[")[0].strip()
    if known and base not in known:
      raise DataError(f"dataset {name!r} has no split {base!r}: use one of {', '.join(sorted(known))} "
                      "(--config.data.split / eval_split)")
  root = data_dir or str(builder.data_dir_root)
  if known and "array_record" not in str(builder.info.file_format).lower():
    raise DataError(f"dataset {name!r} in {root} is prepared as {builder.info.file_format.value}, and genjax reads "
                    f"ArrayRecord (without TensorFlow): prepare it again as ArrayRecord, once, on a machine with "
                    f"TensorFlow: `tfds build {spec.tfds_name} --data_dir={root} --file_format=array_record "
                    f"--overwrite` (it reuses the downloads in {root}/downloads)")
  try:
    return tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # pylint: disable=broad-except  (TFDS raises several kinds for "not there")
    if known:
      raise
    message = (f"dataset {name!r} is not prepared in {root}: on a machine with internet and TensorFlow run "
               f"`tfds build {spec.tfds_name} --file_format=array_record` and copy ~/tensorflow_datasets/"
               f"{spec.tfds_name.split('/')[0]} to {root} (or set --config.data.data_dir)")
    raise DataError(f"{message}; {spec.hint}" if spec.hint else message) from e


def preprocess(example: dict, spec, size: int, channels: int) -> dict[str, np.ndarray]:
  """One decoded example -> {"image": float32 [size, size, channels] in [-1, 1], "label": int32, ...}."""
  image = resize(crop(np.asarray(example["image"]), spec.crop, size), size)
  out = {"image": np.clip(image.reshape(size, size, channels) / 127.5 - 1.0, -1.0, 1.0).astype(np.float32),
         # No label (celeb_a) or an unlabelled split (stl10 gives -1) reads as 0.
         "label": np.int32(max(int(example.get("label", 0)), 0))}
  if spec.attributes:
    out["attributes"] = np.array([example["attributes"][k] for k in registry.CELEB_A_ATTRIBUTES], np.float32)
  if "condition" in example:
    out["condition"] = np.asarray(example["condition"], np.float32)
  return out


def crop(image: np.ndarray, kind: str, size: int) -> np.ndarray:
  """Central crop: CelebA's fixed face box or the largest square."""
  if not kind:
    return image
  height, width = image.shape[:2]
  side = registry.celeb_a_crop(size) if kind == "celeb_a" else min(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  return image[top:top + side, left:left + side]


def resize(image: np.ndarray, size: int) -> np.ndarray:
  """float32 [size, size, C]; bilinear and antialiased (PIL's, as tf.image.resize with antialias), only if
  needed."""
  if image.shape[:2] == (size, size):
    return image.astype(np.float32)
  from PIL import Image  # pylint: disable=import-outside-toplevel
  planes = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F").resize((size, size),
                                                                                         Image.BILINEAR))
            for c in range(image.shape[-1])]
  return np.stack(planes, axis=-1)
