"""TFDS builder `digits`: scikit-learn's handwritten digits at 32x32.

The 1,797 real 8x8 images ship inside scikit-learn, so this dataset prepares
itself with no network: the offline smoke-test dataset of genjax. Importing
this module registers the builder, after which
`tfds.builder("digits", data_dir=...)` works.
"""

from etils import epath
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
import tensorflow_datasets as tfds

SIZE = 32
NUM_TRAIN = 1500  # train = the first 1,500 images, test = the other 297.


def upscale(image8: np.ndarray) -> np.ndarray:
  """8x8 image with values 0..16 -> (32, 32, 1) uint8, bicubic."""
  scaled = np.asarray(image8, np.float32) * (255.0 / 16.0)
  big = Image.fromarray(scaled).resize((SIZE, SIZE), Image.BICUBIC)
  # Bicubic overshoots at stroke edges; clip back into the pixel range.
  return np.clip(np.rint(np.asarray(big)), 0, 255).astype(np.uint8)[..., None]


class Digits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8x8 handwritten digits, bicubically upscaled to 32x32."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  # TFDS derives this via `importlib_resources`, a module it does not depend
  # on (ModuleNotFoundError in download_and_prepare); it is only used to look
  # for a checksums.tsv, which a dataset without downloads does not have.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=(
            "UCI optical handwritten digits as bundled with scikit-learn "
            "(sklearn.datasets.load_digits), upscaled from 8x8 to 32x32."),
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(SIZE, SIZE, 1)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
        # Keep scikit-learn's order so the splits are reproducible by index.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {
        "train": self._generate_examples(0, NUM_TRAIN),
        "test": self._generate_examples(NUM_TRAIN, None),
    }

  def _generate_examples(self, start, stop):
    digits = load_digits()
    for i in range(start, stop or len(digits.images)):
      yield i, {"image": upscale(digits.images[i]),
                "label": int(digits.target[i])}
