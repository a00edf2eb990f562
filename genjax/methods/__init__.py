"""Method registry: `config.method` → the module that implements it.

A method module exposes
  init_state(config, rng, batch) -> TrainState         (batch: one real example with every feature)
  make_train_step(config) -> step(state, batch) -> (state, metrics)   (pure: jit, scan or shard it)
and, where they apply,
  generate(state, rng, num, condition=None) -> images in [-1, 1]
  encode(state, images) and reconstruct(state, images)   (methods with an encoder)
  evaluate(state, batch) -> {name: mean over the batch}  (the loop averages it over the eval split)
  sample_grids(state, rng) -> {name: images [rows, cols, H, W, C]}   (extra grids, e.g. label × noise)
  validate(config, image_shape)                          (ConfigError for values the method cannot take)
"""

import importlib
from types import ModuleType

from genjax.errors import ConfigError

METHODS = {
    "aae": "genjax.methods.aae_prior",          # Makhzani's AAE = the learned-prior AAE, switches off
    "aae_prior": "genjax.methods.aae_prior",
    "atvae": "genjax.methods.atvae",
    "began": "genjax.methods.began",
    "classifier": "genjax.methods.classifier",
    "dcgan": "genjax.methods.dcgan",
    "dfm": "genjax.methods.dfm",
    "discreg": "genjax.methods.discreg",
    "vae": "genjax.methods.vae",
    "vaegan": "genjax.methods.vaegan",
    "vampprior": "genjax.methods.vampprior",
}


def get_method(name: str) -> ModuleType:
  if name not in METHODS:
    raise ConfigError(f"unknown method {name!r}; known methods: {', '.join(sorted(METHODS))}")
  return importlib.import_module(METHODS[name])
