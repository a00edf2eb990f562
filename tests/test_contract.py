"""Every registered method against the contract (genjax.core.method.Method) and the house's import rules."""

import ast
import inspect
import os

import jax
import jax.numpy as jnp
import pytest

from genjax import methods
from genjax.core.method import Method
from genjax.core.step import Phase
from genjax.state import TrainState
from tests.helpers import ROOT, load_config, random_batch

# The hooks a method may leave None, and the parameters each takes (beyond these, defaults only).
HOOKS = {
    "validate": ("config", "image_shape"),
    "generate": ("state", "rng", "num", "condition"),
    "encode": ("state", "images"),
    "decode": ("state", "codes"),
    "reconstruct": ("state", "images"),
    "sample_codes": ("state", "rng", "num", "condition"),
    "sample_grids": ("state", "rng"),
    "evaluate": ("state", "batch"),
    "log_importance_weights": ("state", "images", "rng", "num_samples"),
    "prerequisites": ("config",),
}


def _takes(fn, n: int) -> bool:
  """Whether `fn` can be called with exactly n positional arguments."""
  positional = [p for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
  return len([p for p in positional if p.default is p.empty]) <= n <= len(positional)


@pytest.mark.parametrize("name", methods.names())
def test_every_method_satisfies_the_contract(name):
  method = methods.get_method(name)
  assert isinstance(method, Method) and method.name == name
  for hook, params in HOOKS.items():
    fn = getattr(method, hook)
    assert fn is None or _takes(fn, len(params)), (hook, inspect.signature(fn))
  config = load_config(name)
  config.unlock(); config.data.image_size = 16; config.lock()
  phases = method.objective(config)
  assert phases and all(isinstance(p, Phase) for p in phases)
  if name == "discreg":  # needs a trained classifier: its own test builds one
    return
  batch = jax.tree.map(jnp.asarray, random_batch(size=16))
  state = jax.eval_shape(lambda: method.init_state(config, jax.random.PRNGKey(0), batch))
  assert isinstance(state, TrainState) and state.step.shape == ()
  new, metrics = jax.eval_shape(method.make_train_step(config), state, batch)  # traces, compiles nothing
  assert jax.tree.structure(new) == jax.tree.structure(state)
  assert all(m.shape == () for m in metrics.values()) and metrics
  assert set(method.progress) & set(metrics), method.progress  # the progress line shows some of them
  if method.generate is not None:
    images = jax.eval_shape(lambda s: method.generate(s, jax.random.PRNGKey(0), 3), state)
    assert images.shape == (3, 16, 16, 1)


def test_an_unknown_method_is_refused_naming_the_known_ones():
  with pytest.raises(Exception, match=r"unknown method 'nope'; known methods: aae, aae_prior, atvae"):
    methods.get_method("nope")


# --- imports: no cycle, no arrow pointing up ----------------------------------------------------------------

# Lower layers never import higher ones (a module may import its own layer).
LAYERS = [
    ("genjax", "genjax.errors", "genjax.figures"),
    ("genjax.nets", "genjax.losses", "genjax.control", "genjax.optim", "genjax.config_lib", "genjax.state",
     "genjax.parallel", "genjax.streams", "genjax.data.registry", "genjax.evaluation", "genjax.evaluation.metrics",
     "genjax.evaluation.likelihood", "genjax.interrupt", "genjax.figures.draw", "genjax.progress", "genjax.cli"),
    ("genjax.data", "genjax.checkpoint", "genjax.core", "genjax.evaluation.inception"),
    ("genjax.pretrained",),
    ("genjax.methods",),
    ("genjax.evaluation.evaluator", "genjax.validation"),
    ("genjax.modes", "genjax.results", "genjax.figures.write"),
    ("genjax.train", "genjax.bench"),
    ("genjax.main", "genjax.figures.__main__"),
]


def _modules() -> dict[str, str]:
  root = os.path.join(ROOT, "genjax")
  found = {}
  for directory, _, files in os.walk(root):
    for filename in files:
      if filename.endswith(".py"):
        path = os.path.join(directory, filename)
        parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  return found


def _imports(path: str, known) -> set[str]:
  """The genjax modules a file imports, anywhere in it (functions included)."""
  out = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names if a.name.startswith("genjax")}
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("genjax"):
      for alias in node.names:
        full = f"{node.module}.{alias.name}"
        out.add(full if full in known else node.module)
  return {m for m in out if m in known}


def _layer(module: str) -> int:
  best = max((prefix for layer in LAYERS for prefix in layer
              if module == prefix or module.startswith(prefix + ".")), key=len)
  return next(i for i, layer in enumerate(LAYERS) if best in layer)


def test_imports_point_down_and_form_no_cycle():
  known = _modules()
  graph = {m: _imports(path, known) - {m} for m, path in known.items()}
  upward = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
            for m, deps in graph.items() for d in deps if _layer(d) > _layer(m)]
  assert not upward, "\n".join(upward)
  state = {}

  def visit(m, path):  # depth-first search for a back edge
    state[m] = "open"
    for d in sorted(graph[m]):
      if state.get(d) == "open":
        raise AssertionError(f"import cycle: {' → '.join(path + [m, d])}")
      if d not in state:
        visit(d, path + [m])
    state[m] = "done"
  for m in sorted(graph):
    if m not in state:
      visit(m, [])


def test_no_method_imports_another_method():
  known = _modules()
  method_modules = {m for m in known if m.startswith("genjax.methods.")}
  for m in method_modules:
    siblings = _imports(known[m], known) & method_modules
    assert not siblings, f"{m} imports {siblings}: shared pieces belong in genjax.core"
