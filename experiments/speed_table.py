"""genjax's train steps against eager PyTorch on this machine: one markdown table, ratios measured in one run.

  pip install torch==2.13.0 into another environment (never a genjax dependency), then
  python experiments/speed_table.py --torch_python=/path/to/torch/env/bin/python --steps=5 --out=runs/speed
  python experiments/speed_table.py --methods=vaegan,dcgan --torch_python=... --repeats=2
  python experiments/speed_table.py --pipeline_only --out=runs/speed      # TFDS pipeline vs in-memory batch
  python experiments/speed_table.py --xla_convs --torch_python=...        # also genjax on XLA's convolutions

For each method it alternates `python -m genjax.bench --config=configs/<m>.py:cifar10 --batch_size=B` and
`experiments/torch_peer.py --method=<m> --batch_size=B` (same networks, losses and per-network updates at
32×32×3), each in its own process, `--repeats` times, and keeps each side's best steps/s (machines are noisy:
the best of alternated runs is the least disturbed). With `--xla_convs` a third side, genjax with
GENJAX_ONEDNN=0 (XLA's convolutions, as without the `cpu` extra), joins the alternation: the oneDNN
extension's gain measured in the same run. discreg's frozen classifier is a one-step
configs/classifier.py:cifar10 run on tfds mock data (speed does not depend on its weights). With
`--pipeline`, every method's offline digits preset is also timed fed by the real TFDS pipeline
(`genjax.bench --pipeline`), whose ratio to an in-memory batch should be ≥ 0.95. Writes
<out>/speed.md and <out>/speed.json and prints the table.

The table also says how much of the machine each side uses: the best float32 matmul rate (XLA's
`jnp.dot` of two `--peak_size` square matrices, which runs at PyTorch's rate on CPU) is the ceiling, and
`torch_pct_of_peak` is the peer's step at XLA's FLOP count against it. A ratio of r needs genjax at r times
the peer's share: above 100 % no float32 implementation of the same work can reach it.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags, logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("vae", "vaegan", "dcgan", "dfm", "began", "atvae", "aae_prior", "aae", "vampprior", "discreg",
           "classifier")


@dataclasses.dataclass(frozen=True)
class Settings:
  """How each side is timed (the command-line flags of the same names)."""
  steps: int = 5                   # timed steps per run, after compilation and warm-up
  batch_size: int = 64             # of both sides
  repeats: int = 1                 # alternated runs per side; the best steps/s is kept
  torch_python: str | None = None  # a Python with torch 2.13; None: genjax only
  xla_convs: bool = False          # also genjax on XLA's convolutions (GENJAX_ONEDNN=0)
  peak_size: int = 2048            # side of the square float32 matmul that measures the machine's peak


def define_flags() -> None:
  """The command line (defined only when run as a script: importing this module defines no flags)."""
  flags.DEFINE_list("methods", list(METHODS), "Methods to time (their cifar10 presets).")
  flags.DEFINE_string("torch_python", None, "A Python with torch 2.13 (the peer's interpreter); without it only "
                      "genjax is timed.")
  flags.DEFINE_integer("steps", 5, "Timed steps per run (after compilation and warm-up).", lower_bound=1)
  flags.DEFINE_integer("batch_size", 64, "Batch size of both sides.", lower_bound=1)
  flags.DEFINE_integer("repeats", 1, "Alternated runs per side; the best steps/s is kept.", lower_bound=1)
  flags.DEFINE_integer("peak_size", 2048, "Side of the square float32 matmul that measures the machine's "
                       "peak FLOP/s (0: skip).", lower_bound=0)
  flags.DEFINE_bool("xla_convs", False, "Also time genjax on XLA's convolutions (GENJAX_ONEDNN=0), alternated "
                    "with the other sides.")
  flags.DEFINE_bool("pipeline", False, "Also time each digits preset on the real TFDS pipeline.")
  flags.DEFINE_bool("pipeline_only", False, "Only the pipeline table.")
  flags.DEFINE_string("out", None, "Directory for speed.md and speed.json (default: print only).")


def last_json(command: list[str], env=None) -> dict:
  """Runs `command` from the repository root and returns its last line of output as JSON."""
  done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
  lines = done.stdout.strip().splitlines()
  if done.returncode or not lines:
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise RuntimeError(f"{' '.join(command[:4])} failed (exit {done.returncode}): {tail}")
  return json.loads(lines[-1])


def mock_classifier(workdir: str) -> str:
  """A one-step configs/classifier.py:cifar10 run on tfds mock data: discreg's frozen feature network."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from genjax import train  # pylint: disable=g-import-not-at-top
  from genjax.config_lib import load_config  # pylint: disable=g-import-not-at-top
  config = load_config(os.path.join(ROOT, "configs", "classifier.py:cifar10"))
  with config.unlocked():
    config.train.num_steps = 1
    config.eval.extractor = "none"
  with tfds.testing.mock_data(num_examples=config.batch_size):
    train.train_and_evaluate(config, workdir)
  return workdir


def genjax_command(method: str, preset: str, extra=()) -> list[str]:
  return [sys.executable, "-m", "genjax.bench", f"--config=configs/{method}.py:{preset}", *extra]


def matmul_peak_gflops(size: int, repeats: int = 20) -> float:
  """The best GFLOP/s of a float32 `size`×`size` matmul on the default device: the machine's ceiling."""
  import jax  # pylint: disable=g-import-not-at-top
  a = jax.random.normal(jax.random.key(0), (size, size))
  matmul = jax.jit(lambda a: a @ a)
  matmul(a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best / 1e9


def time_method(method: str, classifier: str, settings: Settings) -> dict:
  extra = [f"--batch_size={settings.batch_size}", f"--steps={settings.steps}"]
  if method == "discreg":
    extra.append(f"--config.discreg.classifier_workdir={classifier}")
  sides = {"genjax": (genjax_command(method, "cifar10", extra), None)}
  if settings.xla_convs:
    sides["genjax_xla"] = (genjax_command(method, "cifar10", extra), dict(os.environ, GENJAX_ONEDNN="0"))
  if settings.torch_python:
    sides["torch"] = ([settings.torch_python, "experiments/torch_peer.py", f"--method={method}",
                       f"--batch_size={settings.batch_size}", f"--steps={settings.steps}"], None)
  best = dict.fromkeys(sides)
  for _ in range(settings.repeats):
    for side, (command, env) in sides.items():
      result = last_json(command, env)
      if not best[side] or result["steps_per_sec"] > best[side]["steps_per_sec"]:
        best[side] = result
  ours, xla, peer = best["genjax"], best.get("genjax_xla"), best.get("torch")
  row = {"method": method, "batch_size": settings.batch_size, "convolutions": ours["convolutions"].split(" ")[0],
         "compile_s": ours["compile_s"], "genjax_steps_per_sec": ours["steps_per_sec"],
         "genjax_images_per_sec": ours["images_per_sec"], "gflop_per_step": round(ours["flops_per_step"] / 1e9, 1),
         "genjax_gflop_per_sec": round(ours["flops_per_sec"] / 1e9, 1)}
  if xla:
    row.update(xla_compile_s=xla["compile_s"], genjax_xla_steps_per_sec=xla["steps_per_sec"],
               onednn_gain=round(ours["steps_per_sec"] / xla["steps_per_sec"], 2))
  if peer:
    row.update(torch_steps_per_sec=peer["steps_per_sec"],
               ratio=round(ours["steps_per_sec"] / peer["steps_per_sec"], 2))
    if xla:
      row["xla_ratio"] = round(xla["steps_per_sec"] / peer["steps_per_sec"], 2)
  return row


def speed_rows(methods, settings: Settings) -> list[dict]:
  peak = matmul_peak_gflops(settings.peak_size) if settings.peak_size else None
  with tempfile.TemporaryDirectory() as tmp:
    classifier = mock_classifier(os.path.join(tmp, "classifier")) if "discreg" in methods else ""
    rows = []
    for method in methods:
      rows.append(time_method(method, classifier, settings))
      print(json.dumps(rows[-1]), flush=True)
  if peak:  # the best of before and after: the machine's clock moves with its other tenants
    peak = max(peak, matmul_peak_gflops(settings.peak_size))
    for row in rows:
      row["peak_gflop_per_sec"] = round(peak, 1)
      row["genjax_pct_of_peak"] = round(100 * row["genjax_gflop_per_sec"] / peak)
      if "torch_steps_per_sec" in row:
        row["torch_pct_of_peak"] = round(100 * row["torch_steps_per_sec"] * row["gflop_per_step"] / peak)
  return rows


def pipeline_rows(methods, steps: int) -> list[dict]:
  rows = []
  for method in methods:
    # discreg's digits preset needs runs/classifier; the pipeline is the same as every other method's.
    if method == "discreg":
      continue
    # Longer than the speed runs: the warm-up also covers the first pass over a small cached split.
    result = last_json(genjax_command(method, "", [f"--steps={steps * 12}", f"--warmup={steps * 6}", "--pipeline"]))
    rows.append({"method": method, "image_shape": result["image_shape"], "batch_size": result["batch_size"],
                 "steps_per_sec": result["steps_per_sec"],
                 "pipeline_steps_per_sec": round(result["pipeline_steps_per_sec"], 3),
                 "pipeline_ratio": result["pipeline_ratio"]})
    print(json.dumps(rows[-1]), flush=True)
  return rows


def markdown(rows: list[dict]) -> str:
  columns = list(dict.fromkeys(key for row in rows for key in row))
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  f = flags.FLAGS
  unknown = sorted(set(f.methods) - set(METHODS))
  if unknown:
    raise app.UsageError(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
  logging.set_verbosity(logging.WARNING)  # the mock classifier's training would log every step
  tables = {}
  if not f.pipeline_only:
    tables["speed"] = speed_rows(f.methods, Settings(f.steps, f.batch_size, f.repeats, f.torch_python,
                                                        f.xla_convs, f.peak_size))
  if f.pipeline or f.pipeline_only:
    tables["pipeline"] = pipeline_rows(f.methods, f.steps)
  text = "\n\n".join(f"### {name}\n\n{markdown(rows)}" for name, rows in tables.items())
  print(text)
  if f.out:
    os.makedirs(f.out, exist_ok=True)
    with open(os.path.join(f.out, "speed.md"), "w") as file:
      file.write(text + "\n")
    with open(os.path.join(f.out, "speed.json"), "w") as file:
      json.dump(tables, file, indent=2)


if __name__ == "__main__":
  define_flags()
  app.run(main)
