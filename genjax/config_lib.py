"""The config sections every method shares, preset selection and validation at start.

A config file in configs/ builds on `base_config`, adds its method's `model`, `loss` and `optim` slots
and its presets, and returns a locked ConfigDict so a mistyped key is an error, not a silent default.
"""

import importlib.util
import math
import os
from typing import Callable

import jax
import ml_collections

from genjax.errors import ConfigError
from genjax.optim import OPTIMIZERS

DTYPES = ("float32", "bfloat16")


def base_config(method: str) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.method = method
  config.seed = 0
  config.batch_size = 64                  # global: split over all devices and hosts
  config.dtype = "float32"                # compute dtype; params, optimizer states and losses stay float32

  config.data = ml_collections.ConfigDict(dict(
      name="digits", image_size=32, split="train", eval_split="test", data_dir="", shuffle_buffer=10_000,
      manual_dir="",  # fashion_mnist: the original idx files (default: Debian's /usr/share/datasets/fashion-mnist)
  ))
  config.model = ml_collections.ConfigDict()
  config.loss = ml_collections.ConfigDict()
  config.optim = ml_collections.ConfigDict()

  config.train = ml_collections.ConfigDict(dict(
      num_steps=2_000,
      log_every=100,          # scalars to TensorBoard and the log
      image_every=500,        # sample / reconstruction grids to TensorBoard
      checkpoint_every=500,
      keep_checkpoints=3,
      num_image_samples=64,   # size of the fixed-noise sample grid
      on_nonfinite="stop",    # a NaN/Inf loss or gradient: "stop" (name it, keep the last good
                              # checkpoint) or "skip" (drop that update, count it in `nonfinite_skipped`)
  ))
  config.eval = ml_collections.ConfigDict(dict(  # genjax.evaluation.evaluator documents every key
      metrics=("fid", "kid"),  # and "is", "pr", "recon", "nll"; what a method cannot do is skipped
      extractor="none",       # "classifier" | "inception" | "none": no fid/is/kid/pr
      extractor_path="",      # classifier: its workdir, e.g. runs/classifier; inception: inception_fid.npz
      num_samples=2_000,      # generated images; real: the eval split's first num_samples (or all of it)
      batch_size=0,           # 0: batch_size
      nll_samples=100,        # K of the importance-sampled NLL (IWAE bound, Burda et al. 2016)
      every=0,                # steps between evaluations while training; 0: only at the end
      best_metric="",         # keep the best checkpoint by this result (e.g. "fid") in workdir/best
      best_mode="auto",       # "min" | "max" | "auto" (max for is, precision, recall, accuracy)
  ))
  return config


def load_config(spec: str) -> ml_collections.ConfigDict:
  """`path/to/config.py[:preset]` → its ConfigDict, as `--config=` would give it (for your own scripts)."""
  path, _, preset = spec.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"cannot read the config file {path!r}: pass configs/<method>.py[:preset]")
  module_spec = importlib.util.spec_from_file_location(f"genjax_config_{os.path.basename(path)[:-3]}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(preset)


def select_preset(arg: str, config: ml_collections.ConfigDict,
                  presets: dict[str, Callable[[ml_collections.ConfigDict], None]]) -> ml_collections.ConfigDict:
  """Applies preset `arg` ("" = the offline default) and locks the config."""
  if arg not in presets:
    known = ", ".join(repr(p) for p in presets)
    raise ConfigError(f"unknown preset {arg!r} for method {config.method!r}; presets: {known}")
  presets[arg](config)
  config.lock()
  return config


def validate(config: ml_collections.ConfigDict, num_devices: int | None = None) -> None:
  """Raises ConfigError naming the first invalid value."""
  from genjax import data, methods  # here, not at the top: methods import config_lib
  from genjax.evaluation import evaluator
  method = methods.get_method(config.method)
  image_shape = data.image_shape(config.data)
  num_devices = num_devices or jax.device_count()
  _check(config.batch_size > 0, f"batch_size must be positive, got {config.batch_size}")
  _check(config.batch_size % num_devices == 0,
         f"batch_size {config.batch_size} is not divisible by the {num_devices} devices; "
         f"use a multiple of {num_devices}")
  _check(config.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {config.dtype!r}")
  for key in ("num_steps", "log_every", "image_every", "checkpoint_every", "keep_checkpoints",
              "num_image_samples"):
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
  if hasattr(method, "validate"):
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


def check_nonnegative(section, keys, prefix: str = "loss") -> None:
  """Weights, gains and noise scales: finite numbers >= 0."""
  for key in keys:
    value = section[key]
    _check(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
           f"{prefix}.{key} must be a finite number >= 0, got {value!r}")


def _check(ok: bool, message: str) -> None:
  if not ok:
    raise ConfigError(message)


def scale_width(channels, width: float) -> tuple[int, ...]:
  """Paper channel counts times `width` (presets keep the paper's numbers; one knob shrinks them)."""
  return tuple(max(1, int(round(c * width))) for c in channels)
