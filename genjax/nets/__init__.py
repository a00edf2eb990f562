"""Networks: pure flax.linen modules, no training logic, no configs."""

import importlib

# Exports resolve lazily so that `python -m genjax.nets.layers` does not find
# its own module already imported by this package (runpy warns about that).
_EXPORTS = {
    "Conv": "layers",
    "ConvTranspose": "layers",
    "Decoder": "larsen",
    "Discriminator": "larsen",
    "Encoder": "larsen",
    "check_image_shape": "larsen",
}
__all__ = sorted(_EXPORTS) + ["scale_width"]


def scale_width(channels, width: float) -> tuple[int, ...]:
  """Paper channel counts times `width` (presets keep the paper's numbers; one knob shrinks them)."""
  return tuple(max(1, int(round(c * width))) for c in channels)


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
