"""Tests for genjax.data: digits and Fashion-MNIST in memory from local files, TFDS datasets through tfds.data_source."""

import os

import ml_collections
import numpy as np
import pytest
from sklearn.datasets import load_digits
import tensorflow_datasets as tfds

from genjax import data
from genjax.data import memory
from genjax.data import registry
from genjax.errors import ConfigError, DataError

HOST = {"process_index": 0, "process_count": 1}
MOCKED = [name for name in data.DATASETS if name not in ("digits", "fashion_mnist")]


def _config(name="digits", image_size=32, data_dir="", **kwargs):
  return ml_collections.ConfigDict(dict(
      name=name, image_size=image_size, split="train", eval_split="test",
      data_dir=data_dir, shuffle_buffer=2000, **kwargs))


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _assert_batches_equal(a, b):
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# --- digits: scikit-learn's, in memory ---


def test_digits_splits_are_scikit_learns_order():
  splits = memory.digits()
  target = load_digits().target
  for name, expected in [("train", target[:1500]), ("test", target[1500:])]:
    images, labels = splits[name]
    assert images.shape == (len(expected), 32, 32, 1) and images.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255
    np.testing.assert_array_equal(labels, expected)  # kept in scikit-learn's order: the split is by index


def test_split_expressions_are_tfds_slices():
  splits = memory.digits()
  images, labels = memory.select(splits, "digits", "train[:10%]+test[-7:]")
  np.testing.assert_array_equal(labels, np.concatenate([splits["train"][1][:150], splits["test"][1][-7:]]))
  assert images.shape == (157, 32, 32, 1)
  with pytest.raises(DataError, match="invalid split 'train\\[:abc\\]'"):
    memory.select(splits, "digits", "train[:abc]")


def test_digits_upscale_is_smooth():
  image8 = load_digits().images[0]
  big = memory.upscale_digit(image8)
  assert big.shape == (32, 32, 1) and big.dtype == np.uint8
  # Smooth, not nearest-neighbour: more distinct levels than the 8x8 has.
  assert len(np.unique(big)) > 2 * len(np.unique(image8))
  # Block means still follow the source image.
  blocks = big[..., 0].reshape(8, 4, 8, 4).mean(axis=(1, 3))
  assert np.corrcoef(blocks.ravel(), image8.ravel())[0, 1] > 0.95


# --- Registry ---


def test_image_shape_and_num_classes():
  assert data.image_shape(_config(image_size=16)) == (16, 16, 1)
  assert data.image_shape(_config("cifar10", 32)) == (32, 32, 3)
  assert data.image_shape(_config("celeb_a", 64)) == (64, 64, 3)
  expected = {"digits": 10, "fashion_mnist": 10, "mnist": 10, "cifar10": 10, "svhn_cropped": 10,
              "stl10": 10, "imagenet32": 1000, "celeb_a": 0,
              "oxford_flowers102": 102}
  assert {name: data.num_classes(name) for name in data.DATASETS} == expected
  assert data.num_classes("imagenet_resized/32x32") == 1000


@pytest.mark.parametrize("size", [0, -8, "32", 3.0, True, None])
def test_image_shape_rejects_bad_size(size):
  with pytest.raises(ConfigError, match="image_size"):
    data.image_shape(_config(image_size=size))


def test_unknown_dataset_lists_known_names():
  with pytest.raises(ConfigError) as info:
    data.image_shape(_config("kmnist"))
  message = str(info.value)
  assert "kmnist" in message and "\n" not in message
  assert all(name in message for name in data.DATASETS)
  with pytest.raises(ConfigError):
    data.num_classes("kmnist")
  with pytest.raises(ConfigError):
    data.create_dataset(_config("kmnist"), batch_size=2, seed=0, **HOST)


# --- Batches of digits ---


@pytest.mark.parametrize("size", [32, 16])
def test_batches_have_the_promised_format(digits_dir, size):
  batch = next(data.create_dataset(
      _config(image_size=size, data_dir=digits_dir), batch_size=8, seed=0,
      **HOST))
  assert set(batch) == {"image", "label"}
  image, label = batch["image"], batch["label"]
  assert image.shape == (8, size, size, 1) and image.dtype == np.float32
  assert -1.0 <= image.min() < image.max() <= 1.0
  assert label.shape == (8,) and label.dtype == np.int32
  assert ((0 <= label) & (label < 10)).all()
  if size == 32:  # No resize: exactly the stored pixels, rescaled.
    np.testing.assert_allclose((image + 1) * 127.5,
                               np.round((image + 1) * 127.5), atol=1e-3)


def test_same_seed_same_batches_other_seed_other_order(digits_dir):
  config = _config(image_size=16, data_dir=digits_dir)
  make = lambda seed: _take(data.create_dataset(
      config, batch_size=32, seed=seed, **HOST), 3)
  first, again, other = make(0), make(0), make(1)
  for a, b in zip(first, again):
    _assert_batches_equal(a, b)
  assert not np.array_equal(first[0]["image"], other[0]["image"])


@pytest.mark.parametrize("k", [3, 25])  # 25 * 64 > 1500: a later epoch.
def test_skip_batches_equals_dropping_them(digits_dir, k):
  config = _config(image_size=16, data_dir=digits_dir)
  full = _take(data.create_dataset(config, batch_size=64, seed=7, **HOST),
               k + 3)
  resumed = _take(data.create_dataset(config, batch_size=64, seed=7,
                                      skip_batches=k, **HOST), 3)
  for a, b in zip(full[k:], resumed):
    _assert_batches_equal(a, b)


def test_each_epoch_is_a_fresh_permutation(digits_dir):
  config = _config(image_size=8, data_dir=digits_dir)
  batches = _take(data.create_dataset(config, batch_size=100, seed=3, **HOST),
                  30)
  labels = np.concatenate([b["label"] for b in batches])
  images = np.concatenate([b["image"] for b in batches])
  epoch0, epoch1 = labels[:1500], labels[1500:]
  target = load_digits().target[:1500]
  for epoch in (epoch0, epoch1):
    np.testing.assert_array_equal(np.sort(epoch), np.sort(target))
  assert not np.array_equal(epoch0, epoch1)
  assert not np.array_equal(epoch0, target)  # Shuffled at all.
  # Every image exactly once per epoch.
  assert len(np.unique(images[:1500].reshape(1500, -1), axis=0)) == len(
      np.unique(load_digits().images[:1500].reshape(1500, -1), axis=0))


def test_eval_is_one_ordered_pass(digits_dir):
  config = _config(image_size=16, data_dir=digits_dir)
  batches = list(data.create_dataset(config, batch_size=64, seed=0,
                                     train=False, **HOST))
  assert [len(b["label"]) for b in batches] == [64] * 4 + [41]
  labels = np.concatenate([b["label"] for b in batches])
  np.testing.assert_array_equal(labels, load_digits().target[1500:])


def test_processes_take_their_rows_of_every_global_batch(digits_dir):
  """N processes together read exactly the batches one process reads (training and evaluation)."""
  config = _config(image_size=16, data_dir=digits_dir)
  one = _take(data.create_dataset(config, batch_size=64, seed=0, **HOST), 30)  # 30 * 64 > 1500: two epochs
  parts = [_take(data.create_dataset(config, batch_size=32, seed=0, process_index=i, process_count=2), 30)
           for i in range(2)]
  for whole, first, second in zip(one, *parts):
    _assert_batches_equal(whole, {k: np.concatenate([first[k], second[k]]) for k in whole})
  evals = [list(data.create_dataset(config, batch_size=64, seed=0, train=False, process_index=i, process_count=2))
           for i in range(2)]
  labels = np.concatenate([b["label"] for pair in zip(*evals) for b in pair] + [b["label"] for b in evals[0][2:]])
  np.testing.assert_array_equal(labels, load_digits().target[1500:])  # 297 = 2 * 128 + 41: the last one on p0


def test_default_process_index(digits_dir):
  batch = next(data.create_dataset(_config(data_dir=digits_dir), batch_size=4,
                                   seed=0))
  assert batch["image"].shape == (4, 32, 32, 1)


def test_unknown_split_names_the_available_ones(digits_dir):
  with pytest.raises(DataError) as info:
    data.create_dataset(_config(data_dir=digits_dir), batch_size=4, seed=0,
                        split="validation", **HOST)
  message = str(info.value)
  assert "validation" in message and "test, train" in message
  assert "\n" not in message


def test_bad_batch_arguments(digits_dir):
  config = _config(data_dir=digits_dir)
  with pytest.raises(ConfigError, match="batch_size"):
    data.create_dataset(config, batch_size=0, seed=0, **HOST)
  with pytest.raises(ConfigError, match="skip_batches"):
    data.create_dataset(config, batch_size=4, seed=0, skip_batches=-1, **HOST)


def test_split_aliases():
  spec = data.DATASETS["stl10"]
  assert registry.canonical_split(spec, "unlabeled") == "unlabelled"
  assert registry.canonical_split(spec, "train+unlabeled[:10%]") == (
      "train+unlabelled[:10%]")


# --- Download-only datasets, through tfds.testing.mock_data ---


@pytest.mark.parametrize("name", MOCKED)
def test_mocked_dataset_batches(name, tmp_path):
  config = _config(name, image_size=24, data_dir=str(tmp_path))
  channels = data.image_shape(config)[-1]
  with tfds.testing.mock_data(num_examples=6):
    train = _take(data.create_dataset(config, batch_size=4, seed=0, **HOST), 2)
    evals = list(data.create_dataset(config, batch_size=4, seed=0,
                                     train=False, **HOST))
  assert [len(b["label"]) for b in evals] == [4, 2]
  for batch in train + evals:
    n = len(batch["label"])
    image, label = batch["image"], batch["label"]
    assert image.shape == (n, 24, 24, channels) and image.dtype == np.float32
    assert -1.0 <= image.min() < image.max() <= 1.0
    assert label.dtype == np.int32
    assert ((0 <= label) & (label < max(data.num_classes(name), 1))).all()
    if name == "celeb_a":
      attributes = batch["attributes"]
      assert attributes.shape == (n, 40) and attributes.dtype == np.float32
      assert set(np.unique(attributes)) <= {0.0, 1.0}
    else:
      assert "attributes" not in batch


@pytest.mark.parametrize("name", ["cifar10", "celeb_a", "imagenet32"])
def test_not_prepared_is_one_actionable_line(name, tmp_path):
  config = _config(name, data_dir=str(tmp_path))
  with pytest.raises(DataError) as info:
    data.create_dataset(config, batch_size=4, seed=0, **HOST)
  message = str(info.value)
  assert "\n" not in message
  assert f"'{name}'" in message and str(tmp_path) in message
  assert f"tfds build {data.DATASETS[name].tfds_name} --file_format=array_record" in message
  assert list(tmp_path.iterdir()) == []  # Nothing was downloaded.


# --- Fashion-MNIST: in memory from the original idx files (Debian's dataset-fashion-mnist) ---


@pytest.fixture(scope="module")
def fashion_files():
  if not os.path.isdir(memory.FASHION_MNIST_DIR):
    pytest.fail(f"{memory.FASHION_MNIST_DIR} is missing: apt-get install dataset-fashion-mnist (.ci/run does)")
  return memory.FASHION_MNIST_DIR


def test_fashion_mnist_is_the_original_files(fashion_files):
  splits = memory.fashion_mnist()
  assert {k: (v[0].shape, v[0].dtype) for k, v in splits.items()} == {
      "train": ((60_000, 28, 28, 1), np.uint8), "test": ((10_000, 28, 28, 1), np.uint8)}
  for _, labels in splits.values():
    np.testing.assert_array_equal(np.bincount(labels), [len(labels) // 10] * 10)
  test = next(data.create_dataset(_config("fashion_mnist", image_size=28), batch_size=10_000, seed=0, train=False,
                                  **HOST))
  np.testing.assert_array_equal(test["label"], splits["test"][1])  # the file's order
  np.testing.assert_allclose(test["image"], splits["test"][0] / 127.5 - 1.0, atol=1e-6)  # native size: no resize
  upsampled = next(data.create_dataset(_config("fashion_mnist", image_size=32), batch_size=8, seed=0, train=False,
                                       **HOST))["image"]
  assert upsampled.shape == (8, 32, 32, 1) and -1.0 <= upsampled.min() and upsampled.max() <= 1.0
  assert abs(upsampled.mean() - test["image"][:8].mean()) < 0.02  # bilinear keeps the brightness


def test_fashion_mnist_train_batches_are_real_and_resumable(fashion_files):
  config = _config("fashion_mnist")
  first = _take(data.create_dataset(config, batch_size=64, seed=1, **HOST), 3)
  again = _take(data.create_dataset(config, batch_size=64, seed=1, skip_batches=2, **HOST), 1)
  _assert_batches_equal(first[2], again[0])
  assert len(set(np.concatenate([b["label"] for b in first]).tolist())) == 10


def test_fashion_mnist_without_its_files_names_the_apt_command_and_the_option(tmp_path, monkeypatch):
  monkeypatch.setattr(memory, "FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
  with pytest.raises(DataError) as info:
    data.create_dataset(_config("fashion_mnist"), batch_size=4, seed=0, **HOST)
  message = str(info.value)
  assert "\n" not in message and "apt-get install dataset-fashion-mnist" in message
  assert "--config.data.manual_dir" in message
  with pytest.raises(DataError, match="lacks Fashion-MNIST's train-images-idx3-ubyte.gz"):
    data.create_dataset(_config("fashion_mnist", manual_dir=str(tmp_path)), batch_size=4, seed=0, **HOST)


# --- TFDS datasets on disk: ArrayRecord through tfds.data_source, without TensorFlow ---

READ_DUMMY_MNIST = """
import json, sys
import ml_collections
from genjax import data
from genjax.data import registry
registry.DATASETS["dummy_mnist"] = registry.DatasetSpec("dummy_mnist", channels=1, num_classes=10)
config = ml_collections.ConfigDict(dict(name="dummy_mnist", image_size=16, split="train", eval_split="test",
                                        data_dir=sys.argv[1], shuffle_buffer=0))
host = dict(process_index=0, process_count=1)
train = data.create_dataset(config, batch_size=8, seed=3, **host)
batches = [next(train) for _ in range(4)]  # 20 records: an epoch boundary inside batch 3
evals = list(data.create_dataset(config, batch_size=8, seed=0, train=False, **host))
print(json.dumps({"labels": [b["label"].tolist() for b in batches], "shape": list(batches[0]["image"].shape),
                  "eval_sizes": [len(b["label"]) for b in evals], "tensorflow": "tensorflow" in sys.modules}))
"""


def test_an_array_record_dataset_is_read_without_tensorflow(tmp_path, monkeypatch):
  import json, subprocess, sys  # pylint: disable=import-outside-toplevel,multiple-imports
  from tests.test_without_tensorflow import without_tensorflow_env  # pylint: disable=import-outside-toplevel
  tfds.testing.DummyMnist(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
  result = subprocess.run([sys.executable, "-c", READ_DUMMY_MNIST, str(tmp_path)], env=without_tensorflow_env(),
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  read = json.loads(result.stdout.strip().splitlines()[-1])
  assert read["shape"] == [8, 16, 16, 1] and read["eval_sizes"] == [8, 8, 4] and not read["tensorflow"]
  monkeypatch.setitem(registry.DATASETS, "dummy_mnist", registry.DatasetSpec("dummy_mnist", channels=1, num_classes=10))
  config = _config("dummy_mnist", image_size=16, data_dir=str(tmp_path))
  here = _take(data.create_dataset(config, batch_size=8, seed=3, **HOST), 4)
  assert read["labels"] == [b["label"].tolist() for b in here]  # the same batches, here and there
  labels = np.concatenate([b["label"] for b in here])
  first_epoch = np.sort(labels[:20])
  everything = np.sort(np.concatenate([b["label"] for b in data.create_dataset(
      config, batch_size=20, seed=0, split="train", train=False, **HOST)]))
  np.testing.assert_array_equal(first_epoch, everything)  # every record once in the first epoch


def test_a_tfrecord_dataset_names_the_command_that_prepares_it_again(tmp_path, monkeypatch):
  tfds.testing.DummyMnist(data_dir=str(tmp_path)).download_and_prepare()  # TFDS's default: TFRecord
  monkeypatch.setitem(registry.DATASETS, "dummy_mnist", registry.DatasetSpec("dummy_mnist", channels=1, num_classes=10))
  with pytest.raises(DataError) as info:
    data.create_dataset(_config("dummy_mnist", data_dir=str(tmp_path)), batch_size=4, seed=0, **HOST)
  message = str(info.value)
  assert "\n" not in message and "prepared as tfrecord" in message
  assert f"tfds build dummy_mnist --data_dir={tmp_path} --file_format=array_record --overwrite" in message


def test_batches_read_ahead_arrive_in_order_and_errors_arrive_where_they_happened():
  from genjax.data import records  # pylint: disable=import-outside-toplevel

  def numbers_then_error():
    yield from range(5)
    raise DataError("record 5 is unreadable")

  read = records.ahead(numbers_then_error(), size=2)
  assert [next(read) for _ in range(5)] == list(range(5))
  with pytest.raises(DataError, match="record 5 is unreadable"):
    next(read)


def test_a_dropped_read_ahead_stops_its_thread():
  import gc, threading, time  # pylint: disable=import-outside-toplevel,multiple-imports
  from genjax.data import records  # pylint: disable=import-outside-toplevel
  closed = threading.Event()

  def endless():
    try:
      while True:
        yield 0
    finally:
      closed.set()

  read = records.ahead(endless(), size=2)
  next(read)
  del read
  gc.collect()
  assert closed.wait(timeout=5)  # the producer saw the consumer go and closed its iterator
