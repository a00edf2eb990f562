"""A config checked at start, before anything is compiled or written: ConfigError names the first bad value.

The shared sections (batch size, dtype, train, optim, model sizes, loss weights) here; `config.eval`
by the evaluator's metric registry; the rest by the method's own `validate`.
"""

import math

import jax

from genjax import config_lib, data, methods
from genjax.errors import ConfigError
from genjax.evaluation import evaluator
from genjax.optim import OPTIMIZERS

TRAIN_COUNTS = ("num_steps", "log_every", "image_every", "checkpoint_every", "keep_checkpoints", "num_image_samples")


def validate(config, num_devices: int | None = None) -> None:
  """Raises ConfigError naming the first invalid value."""
  method = methods.get_method(config.method)
  image_shape = data.image_shape(config.data)
  num_devices = num_devices or jax.device_count()
  _check(config.batch_size > 0, f"batch_size must be positive, got {config.batch_size}")
  _check(config.batch_size % num_devices == 0,
         f"batch_size {config.batch_size} is not divisible by the {num_devices} devices; "
         f"use a multiple of {num_devices}")
  _check(config.dtype in config_lib.DTYPES, f"dtype must be one of {config_lib.DTYPES}, got {config.dtype!r}")
  for key in TRAIN_COUNTS:
    low = 0 if key == "num_steps" else 1
    _check(config.train[key] >= low, f"train.{key} must be >= {low}, got {config.train[key]}")
  _check(config.train.on_nonfinite in ("stop", "skip"),
         f"train.on_nonfinite must be 'stop' or 'skip', got {config.train.on_nonfinite!r}")
  for slot, opt in config.optim.items():
    _check(opt.name in OPTIMIZERS, f"optim.{slot}.name must be one of {OPTIMIZERS}, got {opt.name!r}")
    _check(math.isfinite(opt.lr) and opt.lr > 0, f"optim.{slot}.lr must be a positive number, got {opt.lr}")
  _check_model_sizes(config.model)
  for key, value in config.loss.items():
    if isinstance(value, float):
      _check(math.isfinite(value), f"loss.{key} must be finite, got {value}")
  evaluator.validate(config, method, num_devices)
  if method.validate is not None:
    method.validate(config, image_shape)


def _check_model_sizes(model) -> None:
  """Layer sizes (ints and tuples of ints) >= 1, `condition_dim` >= 0 (0: none), width > 0."""
  for key, value in model.items():
    sizes = value if isinstance(value, tuple) else (value,)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in sizes):
      low = 0 if key == "condition_dim" else 1
      _check(all(v >= low for v in sizes), f"model.{key} must be >= {low}, got {value!r}")
  if "width" in model:
    _check(math.isfinite(model.width) and model.width > 0, f"model.width must be a positive number, "
           f"got {model.width}")


def _check(ok: bool, message: str) -> None:
  if not ok:
    raise ConfigError(message)
