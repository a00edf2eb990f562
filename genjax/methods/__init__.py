"""Method registry: `config.method` → the module that implements it.

A method module exposes
  init_state(config, rng, batch) -> TrainState
  make_train_step(config) -> step(state, batch) -> (state, metrics)   (pure: jit, scan or shard it)
  generate(state, rng, num, condition=None) -> images in [-1, 1]
and, where the method has an encoder, encode(state, images) and reconstruct(state, images). An optional
validate(config) raises ConfigError for values the method cannot take (e.g. an image size).
"""

import importlib
from types import ModuleType

from genjax.errors import ConfigError

METHODS = {
    "vae": "genjax.methods.vae",
    "vaegan": "genjax.methods.vaegan",
}


def get_method(name: str) -> ModuleType:
  if name not in METHODS:
    raise ConfigError(f"unknown method {name!r}; known methods: {', '.join(sorted(METHODS))}")
  return importlib.import_module(METHODS[name])
