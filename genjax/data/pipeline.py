"""TFDS records -> resumable host-local numpy batches, with tf.data (TensorFlow).

Training order is a pure function of the seed (and of TF's global seed, which
genjax never sets). Epoch e is the host's split
shuffled with a seed derived from (seed, e), and epochs are concatenated, so
`skip_batches=k` starts directly at the right epoch and skips only the rest
of the way, on still-encoded records, before the decode/resize map (a small
training split is decoded once, cached in memory, and shuffled decoded).
"""

import functools
import sys
from typing import Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from genjax.data import registry
from genjax.errors import DataError

try:  # TF is only the input pipeline: the accelerators belong to JAX.
  tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # TF already initialised its devices elsewhere.
  pass

_DEFAULT_SHUFFLE_BUFFER = 10_000
_CACHE_BYTES = 256 * 2**20  # float32 images of a training split decoded once (digits 6 MB, MNIST 245 MB)
_MAX_SEED = 2**31 - 1  # tf.random's seeds


def create_dataset(data_config, *, split: str, batch_size: int, seed: int, train: bool, skip_batches: int,
                   process_index: int, process_count: int) -> Iterator[dict[str, np.ndarray]]:
  """This process's batches of a TFDS dataset (see genjax.data.create_dataset, which checks the arguments
  and resolves the split and the processes)."""
  size, _, channels = registry.image_shape(data_config)
  spec = registry.get_spec(data_config.name)
  builder = tfds.builder(spec.tfds_name, data_dir=data_config.get("data_dir") or None)
  records = _read(builder, data_config.name, spec, split,
                  _host_split(split, process_index, process_count),
                  train=train, seed=seed)
  skip = skip_batches * batch_size
  preprocess = functools.partial(
      _preprocess, spec=spec, size=size, channels=channels,
      image_feature=builder.info.features["image"])
  # A small training split is decoded once and kept in memory, so decoding never competes with a fast
  # step for the CPU; shuffling decoded records gives the same order as shuffling encoded ones.
  decoded_once = train and 0 < int(records.cardinality()) * size * size * channels * 4 <= _CACHE_BYTES
  if decoded_once:
    records = records.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).cache()
  if train:
    records = _shuffled_epochs(records, seed=seed, skip=skip,
                               buffer=data_config.get("shuffle_buffer"))
  else:
    records = records.skip(skip)
  ds = records if decoded_once else records.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(batch_size, drop_remainder=train)
  ds = ds.prefetch(tf.data.AUTOTUNE).with_options(_options())
  return ds.as_numpy_iterator()


def _read(builder, name: str, spec, split: str, host_split, *, train: bool,
          seed: int) -> tf.data.Dataset:
  """Records of this host's split with the image still encoded."""
  known = list(builder.info.splits)  # Empty if unprepared or mocked.
  for part in split.split("+"):
    base = part.partition("[")[0].strip()
    if known and base not in known:
      raise DataError(
          f"dataset {name!r} has no split {base!r}: use one of "
          f"{', '.join(sorted(known))} (--config.data.split / eval_split)")
  read_config = tfds.ReadConfig(
      shuffle_seed=seed,
      # A fixed file order per seed keeps every epoch reproducible on its own.
      shuffle_reshuffle_each_iteration=False,
      try_autocache=False,  # Cheap to re-read; avoids partial-cache warnings.
      options=_options())
  try:
    return builder.as_dataset(
        split=host_split, read_config=read_config,
        # TFDS refuses to shuffle the files of an ordered dataset (digits).
        shuffle_files=train and not builder.info.disable_shuffling,
        # Skipping then costs no image decoding.
        decoders={"image": tfds.decode.SkipDecoding()})
  except AssertionError as e:  # TFDS's "could not find data" (not mocked).
    raise DataError(_not_prepared_message(name, spec, builder)) from e


def _not_prepared_message(name: str, spec, builder) -> str:
  data_dir = str(builder.data_dir_root)
  folder = spec.tfds_name.split("/")[0]
  message = (
      f"dataset {name!r} is not prepared in {data_dir}: on a machine with "
      "internet run python -c \"import tensorflow_datasets as tfds; "
      f"tfds.builder('{spec.tfds_name}').download_and_prepare()\" and copy "
      f"~/tensorflow_datasets/{folder} to {data_dir} "
      "(or set --config.data.data_dir)")
  return f"{message}; {spec.hint}" if spec.hint else message


def _host_split(split: str, process_index: int, process_count: int):
  """This host's disjoint part of the split."""
  if process_count == 1:
    return split
  return tfds.split_for_jax_process(
      split, process_index=process_index, process_count=process_count)


def _shuffled_epochs(records: tf.data.Dataset, *, seed: int, skip: int,
                     buffer) -> tf.data.Dataset:
  """Endless reshuffled epochs, starting `skip` records in."""
  n = int(records.cardinality())
  buffer = buffer or _DEFAULT_SHUFFLE_BUFFER
  if n == 0:
    raise DataError("this host's part of the training split is empty: use a "
                    "larger split or fewer hosts")
  if n < 0:  # Unknown size: one reshuffling stream, skipped record by record.
    return records.shuffle(buffer, seed=seed,
                           reshuffle_each_iteration=True).repeat().skip(skip)
  first_epoch, offset = divmod(skip, n)

  def epoch(e):
    epoch_seed = tf.random.stateless_uniform(
        [], seed=tf.stack([tf.constant(seed, tf.int64), e]),
        minval=0, maxval=_MAX_SEED, dtype=tf.int64)
    return records.shuffle(min(buffer, n), seed=epoch_seed,
                           reshuffle_each_iteration=False)

  epochs = tf.data.Dataset.range(first_epoch, sys.maxsize)
  return epochs.flat_map(epoch).skip(offset)


def _preprocess(example, *, spec, size: int, channels: int, image_feature):
  """Decodes, crops and resizes one example to the batch format."""
  image = image_feature.decode_example(example["image"])
  image = _resize(_crop(image, spec.crop, size), size)
  image.set_shape((size, size, channels))
  out = {"image": tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)}
  # No label (celeb_a) or an unlabelled split (stl10 gives -1) reads as 0.
  label = example.get("label", tf.constant(0, tf.int64))
  out["label"] = tf.maximum(tf.cast(label, tf.int32), 0)
  if spec.attributes:
    attrs = example["attributes"]
    out["attributes"] = tf.stack(
        [tf.cast(attrs[k], tf.float32) for k in registry.CELEB_A_ATTRIBUTES])
  if "condition" in example:
    out["condition"] = tf.cast(example["condition"], tf.float32)
  return out


def _crop(image: tf.Tensor, crop: str, size: int) -> tf.Tensor:
  """Central crop: CelebA's fixed face box or the largest square."""
  if not crop:
    return image
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  side = (registry.celeb_a_crop(size) if crop == "celeb_a"
          else tf.minimum(height, width))
  return tf.image.crop_to_bounding_box(
      image, (height - side) // 2, (width - side) // 2, side, side)


def _resize(image: tf.Tensor, size: int) -> tf.Tensor:
  """float32 image of size x size; antialiased, and only if needed."""
  if image.shape[0] == size and image.shape[1] == size:
    return tf.cast(image, tf.float32)
  return tf.image.resize(image, (size, size), method="bilinear",
                         antialias=True)


def _options() -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = True  # Parallel maps keep order: exact resume.
  return options
