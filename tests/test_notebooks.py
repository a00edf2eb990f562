"""The notebooks in colab/, run as a new user would, with tiny settings, so that they cannot rot.

No Jupyter is needed: the .ipynb JSON is read and its code cells are executed in order in one namespace.
What a notebook must follow for that:
  - Its first code cell is the settings cell: plain assignments. The test runs it, then replaces the
    values its `tiny` dict names (each must be assigned there: a renamed setting fails loudly).
  - Shell lines (`!cmd`, at any indentation) go through `Shell` after IPython's `{expression}`
    expansion: `python -m genjax...` must exit 0; what needs the internet or sets up Colab (git clone,
    pip install, wget, tfds build) is skipped; any other command fails the test, so a new one needs a
    decision in SKIPPED_COMMANDS.
  - Magics: %cd (the test runs in the repository), %load_ext and %tensorboard are skipped; others fail.
  - IPython.display is a recorder here: the test checks what the notebook displayed.
The notebooks' code is the same for every method, so CONFIG becomes configs/vae.py, whose programs this
session has usually compiled already (aae_prior's and vaegan's runs are their own tests'), and
`python -m genjax.main` runs in this process (see Shell). GENJAX_NOTEBOOK_FAITHFUL=1 keeps the notebooks'
own CONFIG and runs every command as a subprocess, as in Colab (a few minutes).
"""

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import types

import jax
import numpy as np
import pytest
from absl import flags

from genjax import parallel
from tests.helpers import ROOT

MAKE_MESH = parallel.make_mesh
FAITHFUL = os.environ.get("GENJAX_NOTEBOOK_FAITHFUL") == "1"

SKIPPED_COMMANDS = ("git clone", "pip install", "wget", "tfds build")  # internet or Colab set-up
SKIPPED_MAGICS = ("cd", "load_ext", "tensorboard")
SHELL_LINE = re.compile(r"^(\s*)([!%])(.*)$")
TINY_FLAGS = ("--config.model.width=0.0625 --config.data.image_size=16 --config.batch_size=8 "
              "--config.train.num_image_samples=4")


def read_cells(name: str) -> list[str]:
  with open(os.path.join(ROOT, "colab", name)) as f:
    notebook = json.load(f)
  return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def translate(source: str) -> str:
  """IPython's `!cmd` and `%magic` lines → calls of the test's __shell__ / __magic__."""
  lines = []
  for line in source.splitlines():
    match = SHELL_LINE.match(line)
    if match:
      indent, kind, rest = match.groups()
      call = "__shell__" if kind == "!" else "__magic__"
      line = f"{indent}{call}({rest.strip()!r}, globals())"
    lines.append(line)
  return "\n".join(lines)


def expand(command: str, namespace: dict) -> str:
  """IPython's expansion of `{expression}` in shell commands."""
  return re.sub(r"\{([^{}]+)\}", lambda m: str(eval(m.group(1), namespace)), command)  # noqa: S307


MAIN_FLAGS = ("config", "workdir", "mode", "checkpoint", "num_samples", "multihost")


def _drop_flags_of_other_commands() -> None:
  """genjax.bench (imported by tests/test_bench.py in the same worker) defines --config too: drop the
  flags genjax.main is about to define when another module holds their names."""
  for name in MAIN_FLAGS:
    if name in flags.FLAGS and flags.FLAGS.find_module_defining_flag(name) != "genjax.main":
      delattr(flags.FLAGS, name)


class Shell:
  """Runs a notebook's shell commands; remembers the genjax ones.

  `python -m genjax.main ARGS` runs genjax.main's own flag parsing and main() in this process, on one
  CPU device (a subprocess would spend ~5 s importing JAX and TensorFlow, and compile without this
  session's cache); with GENJAX_NOTEBOOK_FAITHFUL=1 every command is a real subprocess.
  """

  def __init__(self, env, monkeypatch):
    self.env, self.monkeypatch, self.commands = env, monkeypatch, []

  def __call__(self, command: str, namespace: dict) -> None:
    command = expand(command, namespace)
    if command.startswith(SKIPPED_COMMANDS):
      return
    if not command.startswith("python -m genjax"):
      raise AssertionError(f"the notebook runs {command!r}: map it in tests/test_notebooks.py")
    self.commands.append(command)
    if command.startswith("python -m genjax.main ") and not FAITHFUL:
      self.genjax_main(shlex.split(command)[3:])
      return
    done = subprocess.run(shlex.quote(sys.executable) + command[len("python"):], shell=True, cwd=ROOT,
                          env=self.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"

  def genjax_main(self, args: list[str]) -> None:
    """`python -m genjax.main ARGS` in this process: its flags parsed afresh, then its main()."""
    _drop_flags_of_other_commands()
    from genjax import main as cli  # pylint: disable=import-outside-toplevel  (defines its flags)
    _reset_flags()  # the previous command's
    argv = ["genjax.main", *args]
    self.monkeypatch.setattr(sys, "argv", argv)  # config_flags reads the overrides from sys.argv
    self.monkeypatch.setattr(parallel, "make_mesh", lambda devices=None: MAKE_MESH(jax.devices()[:1]))
    try:
      cli.main(cli.parse_flags(argv))
    except SystemExit as e:
      raise AssertionError(f"python -m genjax.main {' '.join(args)} exited with {e.code}") from None


def magic(line: str, namespace: dict) -> None:
  del namespace
  if line.split()[0] not in SKIPPED_MAGICS:
    raise AssertionError(f"the notebook uses %{line}: map it in tests/test_notebooks.py")


class Display:
  """Stands in for IPython.display: records what is displayed."""

  def __init__(self):
    self.shown = []
    self.module = types.ModuleType("IPython.display")
    self.module.display = self.shown.append
    self.module.clear_output = lambda wait=False: None
    self.module.Image = lambda filename=None, **kwargs: ("png", filename)


def settings_names(source: str) -> set[str]:
  names = set()
  for node in ast.parse(source).body:
    assert isinstance(node, ast.Assign), f"the settings cell holds more than assignments: {ast.dump(node)[:80]}"
    for target in node.targets:
      names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
  return names


def run_notebook(name: str, tiny: dict, shell, monkeypatch) -> tuple[dict, dict, Display]:
  """Executes the code cells of colab/`name` with the settings cell's values replaced by `tiny`; the
  namespace, the settings as the notebook has them, and the display recorder."""
  cells = read_cells(name)
  missing = set(tiny) - settings_names(cells[0])
  assert not missing, f"the settings cell of {name} no longer assigns {missing}"
  display = Display()
  ipython = types.ModuleType("IPython")
  ipython.display = display.module
  monkeypatch.setitem(sys.modules, "IPython", ipython)
  monkeypatch.setitem(sys.modules, "IPython.display", display.module)
  monkeypatch.chdir(ROOT)  # where `%cd genjax` leaves a Colab user
  namespace = {"__name__": "__main__", "__shell__": shell, "__magic__": magic}
  for i, source in enumerate(cells):
    exec(compile(translate(source), f"{name}[cell {i}]", "exec"), namespace)  # noqa: S102
    if i == 0:
      settings = {k: namespace[k] for k in settings_names(source)}
      namespace.update(tiny)
  return namespace, settings, display


def _reset_flags() -> None:
  for name in [n for n in flags.FLAGS if n.startswith("config.")]:  # a command's config overrides
    delattr(flags.FLAGS, name)
  flags.FLAGS.unparse_flags()


@pytest.fixture
def shell(tmp_path_factory, monkeypatch):
  """A Shell; subprocesses get one CPU device as a user has, no LLVM optimisation and a compilation cache."""
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_backend_optimization_level=0",
         "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-cache")),
         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
  yield Shell(env, monkeypatch)
  _reset_flags()  # leave absl's flags as the next test in this process expects them


def test_quickstart(tmp_path, digits_dir, shell, monkeypatch):
  workdir, classifier = tmp_path / "runs" / "aae_prior", tmp_path / "runs" / "classifier"
  tiny = {"WORKDIR": str(workdir), "NUM_STEPS": 2, "CHUNK": 1, "EXTRACTOR_PATH": str(classifier),
          "CLASSIFIER_STEPS": 1, "EVAL_SAMPLES": 16, "FLAGS": f"{TINY_FLAGS} --config.data.data_dir={digits_dir}",
          **({} if FAITHFUL else {"CONFIG": "configs/vae.py"})}
  namespace, settings, display = run_notebook("quickstart.ipynb", tiny, shell, monkeypatch)

  assert settings["CONFIG"] == "configs/aae_prior.py"  # the offline default; cifar10 is the commented line
  assert settings["EXTRACTOR"] == "classifier"
  config = namespace["CONFIG"]
  modes = [re.search(r"--mode=(\w+)", c).group(1) if "--mode" in c else "train" for c in shell.commands]
  configs = [re.search(r"--config=(\S+)", c).group(1) for c in shell.commands]
  assert modes == ["train"] * 3 + ["eval"], shell.commands  # 2 chunks, the classifier, then FID
  assert configs == [config] * 2 + ["configs/classifier.py", config], configs
  # the samples after each chunk, then the reconstructions
  assert display.shown == [("png", f"{workdir}/samples.png")] * 2 + [("png", f"{workdir}/reconstructions.png")]
  evaluation = json.loads((workdir / "eval.json").read_text())
  assert evaluation["step"] == 2 and evaluation["eval_setup"]["extractor"] == "classifier"
  assert evaluation["eval_setup"]["num_generated"] == 16
  for key in ("fid", "is", "kid"):
    assert np.isfinite(evaluation["eval"][key]), evaluation


def test_train_step_in_your_code(shell, monkeypatch):
  tiny = {"OVERRIDES": {"model.width": 1 / 16, "data.image_size": 16, "batch_size": 8}, "NUM_STEPS": 4,
          "STEPS_PER_SCAN": 2, **({} if FAITHFUL else {"CONFIG": "configs/vae.py"})}
  namespace, settings, display = run_notebook("train_step_in_your_code.ipynb", tiny, shell, monkeypatch)
  assert settings["CONFIG"] == "configs/vaegan.py"
  assert namespace["config"].model.width == 1 / 16 and namespace["config"].data.image_size == 16
  assert int(namespace["state"].step) == 4
  assert all(v.shape == (2,) and np.all(np.isfinite(v)) for v in namespace["metrics"].values())
  samples, pairs = display.shown  # the method reconstructs: samples, then originals / reconstructions
  assert samples.size[0] > 8 * 16 and pairs.size[1] > 8 * 16  # titled, upscaled panels (PIL images)
