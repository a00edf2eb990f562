"""Trains several methods on one dataset for one step budget and compares them under one evaluation.

  python experiments/compare_methods.py --methods=vae,vaegan,dcgan --workdir=runs/compare
  python experiments/compare_methods.py --methods=vae,vaegan,dcgan,began --steps=2000 --workdir=runs/compare \
      --extractor=classifier --extractor_path=runs/classifier --num_samples=2000
  python experiments/compare_methods.py --methods=vae:cifar10,vaegan:cifar10,dcgan:cifar10 --steps=50000 \
      --workdir=runs/compare_cifar10 --extractor=inception --extractor_path=inception_fid.npz

Each entry of --methods is `<method>` (its offline digits preset) or `<method>:<preset>`
(configs/<method>.py:<preset>). Every run trains in `<workdir>/<name>` through
genjax.train.train_and_evaluate, so a second call resumes or, if already trained, only re-evaluates
when the evaluation changed. All runs share one evaluation: --extractor, --extractor_path and
--num_samples set config.eval of every run (the classifier extractor is a run of configs/classifier.py
on the same data and image size). `--config.<key>=<value>` overrides that key in every config
(e.g. --config.batch_size=32 --config.data.data_dir=/data/tfds). --dataset and --steps set
data.name and train.num_steps. Writes
  <workdir>/comparison.md    markdown table: method, steps, steps/s, every evaluation result
  <workdir>/comparison.png   each run's samples.png side by side, titled
  <workdir>/comparison.json  the same rows, machine-readable
and prints the table. From Python: `compare(["vae", "dcgan"], "runs/compare", steps=500)`.
"""

import ast
import dataclasses
import json
import math
import os
import re
from typing import Any, Callable, Iterable, Sequence

import ml_collections
import numpy as np
from absl import app, flags

from genjax import config_lib  # genjax.train (TensorFlow) when first needed: flag errors answer fast
from genjax.figures import draw
from genjax.cli import parse_flags, user_errors
from genjax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")
RUN_FILE = "comparison_run.json"   # per run: the evaluation it was scored with and its row
# Results shown first, in this order; a method's own evaluate() results follow, sorted.
FIRST = ("fid", "is", "kid", "precision", "recall", "recon_mse", "nll", "neg_elbo")
WITH_STD = {"is": "is_std", "kid": "kid_std"}


@dataclasses.dataclass(frozen=True)
class Run:
  """One row: a config (`configs/<method>.py[:preset]`) and overrides on top of the shared ones."""
  name: str
  config: str
  overrides: tuple[tuple[str, Any], ...] = ()

  @property
  def dirname(self) -> str:
    return re.sub(r"[^\w.-]+", "_", self.name).strip("_") or "run"


def parse_run(spec: str) -> Run:
  """`vae` or `vae:cifar10` → a Run of configs/vae.py[:cifar10]."""
  method, _, preset = spec.strip().partition(":")
  path = os.path.join(CONFIGS, f"{method}.py")
  if not method or not os.path.isfile(path):
    known = sorted(f[:-3] for f in os.listdir(CONFIGS) if f.endswith(".py"))
    raise ConfigError(f"--methods: no config for {spec!r}; choose from {', '.join(known)} "
                      f"(optionally with :<preset>)")
  return Run(spec.strip(), f"{path}:{preset}")


# --- Configs -----------------------------------------------------------------------------------------------

def parse_value(text: str, current: Any) -> Any:
  """A command-line string as the type of the value it replaces (bool, int, float, str, tuple)."""
  try:
    if isinstance(current, bool):
      if text.lower() not in ("true", "false", "1", "0"):
        raise ValueError
      return text.lower() in ("true", "1")
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
    if isinstance(current, str):
      return text
    if isinstance(current, (tuple, list)):
      value = ast.literal_eval(text)
      return tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    raise ConfigError(f"cannot read {text!r} as a {type(current).__name__}") from None


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[tuple[str, Any]], where: str = ""):
  """Sets each dotted key (which must exist) to its value; strings are read as the key's type."""
  for key, value in overrides:
    section, _, leaf = key.rpartition(".")
    try:
      parent = config
      for part in filter(None, section.split(".")):
        parent = parent[part]
      current = parent[leaf]
    except (KeyError, AttributeError, TypeError):
      raise ConfigError(f"unknown config key {key!r}{where}: see the config file for the keys it has") from None
    try:
      parent[leaf] = parse_value(value, current) if isinstance(value, str) else value
    except (TypeError, ValueError, ConfigError) as e:
      raise ConfigError(f"config.{key}{where}: {e}") from None
  return config


def build_config(run: Run, shared: Sequence[tuple[str, Any]] = ()) -> ml_collections.ConfigDict:
  """The run's config with the shared overrides, then its own."""
  config = config_lib.load_config(run.config)
  return apply_overrides(config, list(shared) + list(run.overrides), f" (run {run.name!r})")


def shared_overrides(dataset=None, steps=None, extractor=None, extractor_path=None, num_samples=None,
                     overrides: dict[str, Any] | Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
  """The keyword arguments of `compare` as dotted-key overrides (None: leave the configs' value)."""
  named = {"data.name": dataset, "train.num_steps": steps, "eval.extractor": extractor,
           "eval.extractor_path": extractor_path, "eval.num_samples": num_samples}
  items = list(overrides.items()) if isinstance(overrides, dict) else list(overrides)
  return items + [(k, v) for k, v in named.items() if v is not None]


def eval_setup(config) -> dict[str, Any]:
  """What must be the same for the rows to be comparable."""
  return {"dataset": config.data.name, "image_size": config.data.image_size,
          "metrics": list(config.eval.metrics) if not isinstance(config.eval.metrics, str) else [config.eval.metrics],
          "extractor": config.eval.extractor, "extractor_path": config.eval.extractor_path,
          "num_samples": config.eval.num_samples, "seed": config.seed}


def _check_same_evaluation(runs, configs) -> dict[str, Any]:
  setups = [eval_setup(c) for c in configs]
  for run, setup in zip(runs[1:], setups[1:]):
    for key, value in setup.items():
      if value != setups[0][key]:
        raise ConfigError(f"runs {runs[0].name!r} and {run.name!r} would be evaluated differently "
                          f"({key}: {setups[0][key]!r} vs {value!r}): set it for all with --config.<key>")
  return setups[0]


# --- Training and evaluation -------------------------------------------------------------------------------

def _read_json(path: str) -> dict | None:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def run_one(run: Run, config, workdir: str, mesh=None) -> dict[str, Any]:
  """Trains (or resumes) one run to config.train.num_steps and evaluates it; its row."""
  from genjax import modes, train  # pylint: disable=import-outside-toplevel
  record_path = os.path.join(workdir, RUN_FILE)
  metrics = _read_json(os.path.join(workdir, "metrics.json"))
  setup = {"config": json.loads(config.to_json())}
  if metrics is None or metrics.get("step", 0) < config.train.num_steps:
    train.train_and_evaluate(config, workdir, mesh=mesh)
    metrics = _read_json(os.path.join(workdir, "metrics.json"))
    results, steps_per_sec = metrics["eval"], metrics["steps_per_sec"]
  else:
    record = _read_json(record_path) or {}
    steps_per_sec = (record.get("row") or {}).get("steps_per_sec", metrics.get("steps_per_sec"))
    if record.get("setup") == setup:
      results = record["row"]["eval"]
    else:  # trained before, evaluated otherwise: evaluate this checkpoint again
      results = modes.evaluate_checkpoint(config, workdir, mesh=mesh)["eval"]
  row = {"name": run.name, "method": config.method, "config": os.path.relpath(run.config, ROOT),
         "workdir": workdir, "steps": metrics["step"], "steps_per_sec": steps_per_sec, "eval": results,
         "samples": os.path.join(workdir, "samples.png")}
  with open(record_path, "w") as f:
    json.dump({"setup": setup, "row": row}, f, indent=2)
  return row


def compare(runs: Sequence[str | Run], workdir: str, *, dataset: str | None = None, steps: int | None = None,
            extractor: str | None = None, extractor_path: str | None = None, num_samples: int | None = None,
            overrides: dict[str, Any] | Sequence[tuple[str, Any]] = (),
            title: str = "Samples after {steps} steps on {dataset}",
            mesh=None, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
  """Trains and evaluates every run in `workdir/<run name>`; writes comparison.md/.png/.json; the rows.

  Args:
    runs: "method" or "method:preset" strings, or Runs (named configs with their own overrides).
    workdir: where each run's workdir and the comparison files go.
    dataset, steps, extractor, extractor_path, num_samples: data.name, train.num_steps and config.eval
      of every run (None: as the configs say, which must then agree).
    overrides: {dotted key: value} for every config (strings are read as the key's type).
    title: the figure's title; {steps} and {dataset} are filled in.
    mesh: the device mesh (default: all devices).
    log: progress messages.
  """
  runs = [parse_run(r) if isinstance(r, str) else r for r in runs]
  if not runs:
    raise ConfigError("--methods is empty: name at least one method, e.g. --methods=vae,dcgan")
  names = [r.dirname for r in runs]
  if len(set(names)) != len(names):
    raise ConfigError(f"two runs share a name: {', '.join(r.name for r in runs)}")
  shared = shared_overrides(dataset, steps, extractor, extractor_path, num_samples, overrides)
  configs = [build_config(run, shared) for run in runs]
  from genjax import validation  # pylint: disable=import-outside-toplevel
  for config in configs:
    validation.validate(config, num_devices=mesh.size if mesh is not None else None)
  setup = _check_same_evaluation(runs, configs)
  os.makedirs(workdir, exist_ok=True)
  rows = []
  for run, config in zip(runs, configs):
    log(f"{run.name}: {config.train.num_steps} steps in {os.path.join(workdir, run.dirname)}")
    rows.append(run_one(run, config, os.path.join(workdir, run.dirname), mesh))
  table = markdown_table(rows, setup)
  with open(os.path.join(workdir, "comparison.md"), "w") as f:
    f.write(table)
  with open(os.path.join(workdir, "comparison.json"), "w") as f:
    json.dump({"setup": setup, "rows": rows}, f, indent=2)
  figure = samples_figure(rows, title.format(steps=_steps_text(rows), dataset=setup["dataset"]))
  if figure is not None:
    draw.save_png(os.path.join(workdir, "comparison.png"), figure)
  log(table)
  return rows


# --- Table and figure ---------------------------------------------------------------------------------------

def _steps_text(rows) -> str:
  steps = sorted({r["steps"] for r in rows})
  return f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,}–{steps[-1]:,}"


def _number(value) -> str:
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return "—" if value is None else str(value)
  return f"{value:.4g}"


def result_columns(rows) -> list[str]:
  """Evaluation results in every row's order of importance: FIRST, then the methods' own, sorted."""
  keys = {k for r in rows for k in r["eval"]}
  stds = set(WITH_STD.values())
  return [k for k in FIRST if k in keys] + sorted(keys - set(FIRST) - stds)


def markdown_table(rows, setup: dict[str, Any]) -> str:
  columns = result_columns(rows)
  extractor = setup["extractor"]
  how = (f"extractor {extractor}" + (f" ({setup['extractor_path']})" if setup["extractor_path"] else "")
         + f", {setup['num_samples']:,} generated samples") if extractor != "none" else "no feature extractor"
  lines = [f"Dataset {setup['dataset']} ({setup['image_size']}×{setup['image_size']}); evaluation: {how}; "
           f"metrics {', '.join(setup['metrics'])}. Steps/s: training alone, after compilation; "
           "— where not measured (trained before, or a single step).",
           "",
           "| " + " | ".join(["method", "steps", "steps/s"] + columns) + " |",
           "|" + "---|" * (3 + len(columns))]
  for r in rows:
    cells = [r["name"], f"{r['steps']:,}", _number(r["steps_per_sec"])]
    for key in columns:
      value = r["eval"].get(key)
      std = r["eval"].get(WITH_STD.get(key, ""))
      cells.append(_number(value) + (f" ± {_number(std)}" if std is not None and value is not None else ""))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _load_png(path: str) -> np.ndarray | None:
  """A PNG as float RGB in [-1, 1], or None if there is none."""
  from PIL import Image
  if not os.path.isfile(path):
    return None
  with Image.open(path) as image:
    return np.asarray(image.convert("RGB"), np.float32) / 127.5 - 1.0


def samples_figure(rows, title: str, ncols: int = 0) -> np.ndarray | None:
  """Each row's samples.png in one titled panel, labelled with its name (white where it has none); with
  `ncols`, the panels wrap after every ncols and the lines are stacked."""
  grids = [_load_png(r["samples"]) for r in rows]
  if all(g is None for g in grids):
    return None
  h = max(g.shape[0] for g in grids if g is not None)
  w = max(g.shape[1] for g in grids if g is not None)
  ncols = ncols or len(rows)
  lines = []
  for start in range(0, len(rows), ncols):
    cells = np.full((1, ncols, h, w, 3), np.nan, np.float32)
    for i, grid in enumerate(grids[start:start + ncols]):
      if grid is not None:
        cells[0, i, :grid.shape[0], :grid.shape[1]] = grid
    labels = [r["name"] for r in rows[start:start + ncols]]
    lines.append(draw.panel(cells, title if start == 0 else "", col_labels=labels + [""] * (ncols - len(labels)),
                            min_tile=256))
  width = max(line.shape[1] for line in lines)
  return np.concatenate([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255)
                         for line in lines])


# --- Command line -------------------------------------------------------------------------------------------

FLAGS = flags.FLAGS
OVERRIDE_PREFIX = "--config."


def define_flags() -> None:
  """The flags every comparison script shares."""
  flags.DEFINE_string("workdir", None, "Directory of the runs and the comparison files.", required=True)
  flags.DEFINE_string("dataset", None, "data.name of every run (default: each config's own).")
  flags.DEFINE_integer("steps", None, "train.num_steps of every run (default: each config's own).", lower_bound=0)
  flags.DEFINE_enum("extractor", "none", ["none", "classifier", "inception"], "eval.extractor of every run.")
  flags.DEFINE_string("extractor_path", "", "eval.extractor_path: a classifier workdir or inception_fid.npz.")
  flags.DEFINE_integer("num_samples", None, "eval.num_samples of every run (default: each config's own).",
                       lower_bound=1)


_overrides: list[tuple[str, str]] = []


def _parse(argv: list[str]) -> list[str]:
  """absl parsing, with each `--config.<key>=<value>` kept aside as a shared override."""
  for arg in argv[1:]:
    if arg.startswith(OVERRIDE_PREFIX):
      key, eq, value = arg[len(OVERRIDE_PREFIX):].partition("=")
      with user_errors():
        if not eq or not key:
          raise ConfigError(f"{arg!r}: write overrides as --config.<key>=<value>")
      _overrides.append((key, value))
  return parse_flags([a for a in argv if not a.startswith(OVERRIDE_PREFIX)])


def run_cli(make_runs: Callable[[], Sequence[str | Run]], defaults: Sequence[tuple[str, Any]] = (),
            **kwargs) -> None:
  """app.run of a comparison script: `make_runs()` (after flag parsing) gives its runs; `defaults` are
  overrides of every config that --config.<key> flags can override in turn; kwargs go to `compare`."""
  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    with user_errors():
      compare(make_runs(), FLAGS.workdir, dataset=FLAGS.dataset, steps=FLAGS.steps, extractor=FLAGS.extractor,
              extractor_path=FLAGS.extractor_path or None, num_samples=FLAGS.num_samples,
              overrides=list(defaults) + _overrides, log=lambda text: print(text, flush=True), **kwargs)
      print(f"wrote {os.path.join(FLAGS.workdir, 'comparison.md')} and comparison.png", flush=True)
  app.run(main, flags_parser=_parse)


if __name__ == "__main__":
  define_flags()
  flags.DEFINE_list("methods", None, "Methods to compare: method or method:preset, comma-separated.",
                    required=True)
  run_cli(lambda: FLAGS.methods)
