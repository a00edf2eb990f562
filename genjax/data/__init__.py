"""Datasets: the registry, the offline `digits` builder and the input pipeline.

`image_shape`/`num_classes` need no TensorFlow; importing `create_dataset`
loads TensorFlow (hidden from the GPUs) and registers the `digits` builder.
"""

from typing import TYPE_CHECKING

from genjax.data.registry import CELEB_A_ATTRIBUTES
from genjax.data.registry import DATASETS
from genjax.data.registry import DatasetSpec
from genjax.data.registry import image_shape
from genjax.data.registry import num_classes

if TYPE_CHECKING:
  from genjax.data.pipeline import create_dataset

__all__ = ["CELEB_A_ATTRIBUTES", "DATASETS", "DatasetSpec", "create_dataset",
           "image_shape", "num_classes"]


def __getattr__(name: str):
  # Lazy so that sizing a model does not pay for importing TensorFlow.
  if name == "create_dataset":
    from genjax.data.pipeline import create_dataset  # pylint: disable=g-import-not-at-top,redefined-outer-name
    globals()["create_dataset"] = create_dataset
    return create_dataset
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
