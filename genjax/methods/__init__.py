"""The methods: `config.method` → its `Method` record (genjax.core.method).

Every module here is one method, named after it, exporting `METHOD`; `get_method(name)` imports it on
first use, so adding a method is adding its file (plus its config and its test). Method files kept
outside genjax are found too, in the directories of the environment variable GENJAX_METHODS_PATH
(os.pathsep-separated). `aae` is an alias: the learned-prior AAE with Wang et al.'s three switches off is
Makhzani's AAE (configs/aae.py).
"""

import dataclasses
import functools
import importlib
import os

from genjax.core.method import Method
from genjax.errors import ConfigError

ALIASES = {"aae": "aae_prior"}
__path__ += [d for d in os.environ.get("GENJAX_METHODS_PATH", "").split(os.pathsep) if d]  # noqa: F821


def names() -> list[str]:
  """Every method: the modules of this package that define METHOD, and the aliases (no import needed)."""
  found = set(ALIASES)
  for path in __path__:  # noqa: F821  (a package's search path; a user's scratch tree may extend it)
    for filename in os.listdir(path):
      if filename.endswith(".py") and not filename.startswith("_"):
        with open(os.path.join(path, filename)) as f:
          if "\nMETHOD = " in f.read():
            found.add(filename[:-3])
  return sorted(found)


@functools.cache
def get_method(name: str) -> Method:
  module_name = ALIASES.get(name, name)
  try:
    module = importlib.import_module(f"{__name__}.{module_name}") if module_name.isidentifier() else None
  except ModuleNotFoundError as e:
    if e.name != f"{__name__}.{module_name}":
      raise
    module = None
  method = getattr(module, "METHOD", None)
  if not isinstance(method, Method):
    raise ConfigError(f"unknown method {name!r}; known methods: {', '.join(names())}")
  return dataclasses.replace(method, name=name) if name != method.name else method
