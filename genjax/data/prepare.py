"""Preparing a dataset on this machine, without a download: TFDS's own builders, fed local files.

- `digits`: genjax's builder (genjax/data/digits.py) generates it from scikit-learn's bundled images.
- `fashion_mnist`: TFDS's own `fashion_mnist` builder (same features, splits and version as a download)
  reads the original idx files from a local directory — `data.manual_dir`, else Debian's package
  `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist). TFDS copies files given as local paths
  instead of fetching them; the builder's URL is pointed at the directory, nothing else changes.

Both happen once, on first use, into `data.data_dir`; TFDS's own progress output is replaced by one line.
"""

import contextlib
import io
import os
import sys
import tempfile

import tensorflow_datasets as tfds

from genjax.errors import DataError

# Importing `digits` registers that builder with TFDS.
from genjax.data import digits  # pylint: disable=unused-import

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def local_files_dir(name: str, manual_dir: str | None) -> str | None:
  """The directory holding `name`'s original files (manual_dir, else the default one), or None if there is
  none to prepare from; DataError if manual_dir is given but lacks them."""
  if name != "fashion_mnist":
    return None
  for directory in ([manual_dir] if manual_dir else [FASHION_MNIST_DIR]):
    missing = [f for f in FASHION_MNIST_FILES if not os.path.isfile(os.path.join(directory, f))]
    if not missing:
      return directory
    if manual_dir:
      raise DataError(f"data.manual_dir {manual_dir!r} lacks Fashion-MNIST's {', '.join(missing)}: point it at "
                      "a directory with the four original idx .gz files")
  return None


def fashion_mnist_missing_message(data_dir: str) -> str:
  return (f"dataset 'fashion_mnist' is not prepared in {data_dir} and its original files are not in "
          f"{FASHION_MNIST_DIR}: run `apt-get install dataset-fashion-mnist`, or set --config.data.manual_dir "
          f"to a directory with {', '.join(FASHION_MNIST_FILES)}")


def prepare(builder, name: str, manual_dir: str | None = None) -> None:
  """Prepares `builder` from local sources if it is an offline dataset that is not prepared yet."""
  if builder.is_prepared():
    return
  if name == "digits":
    source = "scikit-learn's bundled digits"
  else:
    directory = local_files_dir(name, manual_dir)
    if directory is None:
      if name == "fashion_mnist":
        raise DataError(fashion_mnist_missing_message(str(builder.data_dir_root)))
      return  # a download-only dataset: reading it reports how to prepare it
    builder.URL = directory.rstrip("/") + "/"  # TFDS copies local paths instead of downloading
    source = f"the original files in {directory}"
  print(f"genjax: preparing dataset {name!r} in {builder.data_dir_root} from {source} (once; nothing is "
        "downloaded)", file=sys.stderr, flush=True)
  tfds.disable_progress_bar()
  with tempfile.TemporaryDirectory(prefix="genjax-prepare-") as scratch, contextlib.redirect_stdout(io.StringIO()):
    builder.download_and_prepare(download_dir=scratch)  # the copies and their extraction are dropped after
