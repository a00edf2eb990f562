"""The known datasets and the image shape a config asks for.

Kept free of TensorFlow so models can size themselves without loading it.
"""

import dataclasses
import numbers
from typing import Mapping

from genjax.errors import ConfigError

# CelebA's 40 binary attributes in the order of list_attr_celeba.txt (which is
# also sorted order); `attributes[:, i]` of a batch is CELEB_A_ATTRIBUTES[i].
CELEB_A_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs "
    "Big_Lips Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows "
    "Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns "
    "Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How to read one dataset from TFDS.

  Attributes:
    tfds_name: name for `tfds.builder`.
    channels: channels of the decoded image.
    num_classes: label classes; 0 when the dataset has no class label.
    train_split: training split used when the config names none.
    eval_split: evaluation split used when the config names none.
    crop: "celeb_a" (fixed central face crop), "square" (central square of a
      variable-size image) or "" (none).
    attributes: number of binary attributes (celeb_a: 40), else 0.
    split_aliases: accepted spellings of split names, e.g. stl10 "unlabeled".
    hint: extra advice appended to the "not prepared" error.
    in_memory: read into memory with numpy (genjax/data/memory.py, no TensorFlow), not from TFDS records.
  """
  tfds_name: str
  channels: int
  num_classes: int
  train_split: str = "train"
  eval_split: str = "test"
  crop: str = ""
  attributes: int = 0
  split_aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
  hint: str = ""
  in_memory: bool = False


DATASETS: dict[str, DatasetSpec] = {
    # In memory, from local files (genjax/data/memory.py): scikit-learn's bundled digits, and
    # Fashion-MNIST's original idx files (Debian's dataset-fashion-mnist or data.manual_dir).
    "digits": DatasetSpec("digits", channels=1, num_classes=10, in_memory=True),
    "fashion_mnist": DatasetSpec("fashion_mnist", channels=1, num_classes=10, in_memory=True),
    "mnist": DatasetSpec("mnist", channels=1, num_classes=10),
    "cifar10": DatasetSpec("cifar10", channels=3, num_classes=10),
    "svhn_cropped": DatasetSpec("svhn_cropped", channels=3, num_classes=10),
    "celeb_a": DatasetSpec(
        "celeb_a", channels=3, num_classes=0, crop="celeb_a",
        attributes=len(CELEB_A_ATTRIBUTES),
        hint=("celeb_a downloads from Google Drive, which is often "
              "rate-limited: see https://www.tensorflow.org/datasets/catalog/"
              "celeb_a and retry or fetch its files by hand")),
    # The 100k unlabelled images are the usual GAN training set (labels -1,
    # given as 0); TFDS spells the split "unlabelled".
    "stl10": DatasetSpec(
        "stl10", channels=3, num_classes=10, train_split="unlabelled",
        split_aliases={"unlabeled": "unlabelled"}),
    "imagenet32": DatasetSpec(
        "imagenet_resized/32x32", channels=3, num_classes=1000,
        eval_split="validation"),
    "oxford_flowers102": DatasetSpec(
        "oxford_flowers102", channels=3, num_classes=102, crop="square"),
}


def get_spec(name: str) -> DatasetSpec:
  """Returns the spec for a dataset name (or its TFDS name)."""
  if name in DATASETS:
    return DATASETS[name]
  for spec in DATASETS.values():
    if spec.tfds_name == name:
      return spec
  raise ConfigError(
      f"unknown dataset {name!r}: set --config.data.name to one of "
      f"{', '.join(DATASETS)}")


def num_classes(name: str) -> int:
  """Number of label classes of a dataset; 0 when it has none (celeb_a)."""
  return get_spec(name).num_classes


def celeb_a_crop(image_size: int) -> int:
  """Side of the central square cut from CelebA's 218x178 aligned faces.

  108 is the DCGAN/BEGAN-style face crop used for 64x64 and smaller; larger
  outputs take 140 (as in WAE and related 128px work) to keep hair and chin.
  """
  return 108 if image_size <= 64 else 140


def image_shape(data_config) -> tuple[int, int, int]:
  """(H, W, C) of the images a batch will have; loads no data."""
  spec = get_spec(data_config.get("name"))
  size = data_config.get("image_size")
  if (isinstance(size, bool) or not isinstance(size, numbers.Integral)
      or size < 1):
    raise ConfigError(
        f"invalid data.image_size {size!r}: set --config.data.image_size to a "
        "positive integer such as 32")
  return (int(size), int(size), spec.channels)


def canonical_split(spec: DatasetSpec, split: str) -> str:
  """Maps aliases ("unlabeled") to TFDS names inside a split expression."""
  parts = []
  for part in split.split("+"):
    name, bracket, rest = part.strip().partition("[")
    parts.append(spec.split_aliases.get(name, name) + bracket + rest)
  return "+".join(parts)


def check_int(name: str, value, *, minimum: int) -> None:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
    raise ConfigError(f"invalid {name} {value!r}: pass an integer >= {minimum}")
