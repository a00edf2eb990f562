"""The config sections every method shares, preset selection and validation at start.

A config file in configs/ builds on `base_config`, adds its method's `model`, `loss` and `optim` slots
and its presets, and returns a locked ConfigDict so a mistyped key is an error, not a silent default.
"""

import difflib
import importlib.util
import math
import os
from typing import Callable

import ml_collections

from genjax.errors import ConfigError

DTYPES = ("float32", "bfloat16")
# The configs that come with genjax: configs/ beside the package (installed as genjax/configs in a wheel).
CONFIGS = next((d for d in (os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs"),
                            os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs"))
                if os.path.isdir(d)), "configs")


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
      metrics=("fid", "kid"),  # and "is", "pr", "classes", "recon", "nll"; what a method cannot do is skipped
      extractor="none",       # "classifier" | "inception" | "none": no fid/is/kid/pr
      extractor_path="",      # classifier: its workdir, e.g. runs/classifier; inception: inception_fid.npz
      classifier_features="embedding",  # classifier: "embedding" (last hidden layer) or "logits" (TF-GAN)
      num_samples=2_000,      # generated images; real: the eval split's first num_samples (or all of it)
      batch_size=0,           # 0: batch_size
      nll_samples=100,        # K of the importance-sampled NLL (IWAE bound, Burda et al. 2016)
      every=0,                # steps between evaluations while training; 0: only at the end
      best_metric="",         # keep the best checkpoint by this result (e.g. "fid") in workdir/best
      best_mode="auto",       # "min" | "max" | "auto" (max for is, precision, recall, accuracy)
  ))
  return config


def config_names() -> list[str]:
  """The methods of the configs that come with genjax."""
  return sorted(f[:-3] for f in os.listdir(CONFIGS) if f.endswith(".py")) if os.path.isdir(CONFIGS) else []


def config_file(spec: str) -> str:
  """The file of `path/to/config.py` or of a method's name (`vaegan`: genjax's own configs/vaegan.py);
  a path that is not there is also looked for in genjax's configs/ (so configs/vaegan.py works from any
  directory). ConfigError naming the nearest config when there is none."""
  path = spec if spec.endswith(".py") else os.path.join("configs", f"{spec}.py")
  if os.path.isfile(path):
    return path
  shipped = os.path.join(CONFIGS, os.path.basename(path))
  if os.path.isfile(shipped) and os.path.dirname(os.path.normpath(path)) in ("", "configs"):
    return shipped
  known = config_names()
  nearest = difflib.get_close_matches(os.path.basename(path)[:-3], known, n=1)
  hint = f" (did you mean configs/{nearest[0]}.py?)" if nearest else ""
  raise ConfigError(f"cannot read the config file {spec!r}{hint}: pass configs/<method>.py[:preset] or a method "
                    f"name ({', '.join(known)})")


def load_config(spec: str) -> ml_collections.ConfigDict:
  """`path/to/config.py[:preset]` or `<method>[:preset]` → its ConfigDict, as `--config=` would give it."""
  name, _, preset = spec.partition(":")
  return load_module(name).get_config(preset)


def load_module(name: str):
  """The module of a config file (`path/to/config.py` or a method's name): a config built on another's
  pieces loads it this way (configs/ is not a package)."""
  path = config_file(name)
  module_spec = importlib.util.spec_from_file_location(f"genjax_config_{os.path.basename(path)[:-3]}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def optimizer_config(name: str = "adam", lr: float = 2e-4, **overrides) -> ml_collections.ConfigDict:
  """The fields every slot has; methods set what their paper says."""
  cfg = ml_collections.ConfigDict(dict(
      name=name, lr=lr,
      b1=0.5, b2=0.999, eps=1e-8,          # adam
      decay=0.9,                           # rmsprop's moving-average decay
      momentum=0.0,                        # sgd / rmsprop
      schedule="constant",                 # "constant" | "exponential" | "step_halving"
      decay_steps=10_000, decay_rate=0.5,  # exponential: lr·rate^(step/decay_steps)
      end_lr=0.0,                          # floor of the decaying schedules
      grad_clip=0.0,                       # global-norm clipping; 0 = off
  ))
  cfg.update(overrides)
  return cfg


def select_preset(arg: str, config: ml_collections.ConfigDict,
                  presets: dict[str, Callable[[ml_collections.ConfigDict], None]]) -> ml_collections.ConfigDict:
  """Applies preset `arg` ("" = the offline default) and locks the config."""
  if arg not in presets:
    known = ", ".join(repr(p) for p in presets)
    raise ConfigError(f"unknown preset {arg!r} for method {config.method!r}; presets: {known}")
  presets[arg](config)
  config.lock()
  return config


def set_optimizers(config: ml_collections.ConfigDict, slots, name: str, lr: float, **values) -> None:
  """The same optimizer (a fresh `optimizer_config`) in each slot of `config.optim`."""
  for slot in slots:
    config.optim[slot] = optimizer_config(name, lr, **values)


def update_optimizers(config: ml_collections.ConfigDict, **values) -> None:
  """Sets `values` (e.g. lr=2e-4, schedule="constant") in every optimizer slot of the config."""
  for slot in config.optim:
    config.optim[slot].update(values)


def check_nonnegative(section, keys, prefix: str = "loss") -> None:
  """Weights, gains and noise scales: finite numbers >= 0."""
  for key in keys:
    value = section[key]
    _check(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
           f"{prefix}.{key} must be a finite number >= 0, got {value!r}")


def _check(ok: bool, message: str) -> None:
  if not ok:
    raise ConfigError(message)
