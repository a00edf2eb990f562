"""genjax's train steps against eager PyTorch on this machine: one markdown table, ratios measured in one run.

  pip install torch==2.13.0 into another environment (never a genjax dependency), then
  python experiments/speed_table.py --torch_python=/path/to/torch/env/bin/python --steps=5 --out=runs/speed
  python experiments/speed_table.py --methods=vaegan,dcgan --torch_python=... --repeats=2
  python experiments/speed_table.py --pipeline_only --out=runs/speed      # TFDS pipeline vs in-memory batch

For each method it alternates `python -m genjax.bench --config=configs/<m>.py:cifar10 --batch_size=B` and
`experiments/torch_peer.py --method=<m> --batch_size=B` (same networks, losses and per-network updates at
32×32×3), each in its own process, `--repeats` times, and keeps each side's best steps/s (machines are noisy:
the best of alternated runs is the least disturbed). discreg's frozen classifier is a one-step
configs/classifier.py:cifar10 run on tfds mock data (speed does not depend on its weights). With
`--pipeline`, every method's offline digits preset is also timed fed by the real TFDS pipeline
(`genjax.bench --pipeline`), whose ratio to an in-memory batch should be ≥ 0.95. Writes
<out>/speed.md and <out>/speed.json and prints the table.
"""

import json
import os
import subprocess
import sys
import tempfile

from absl import app, flags, logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("vae", "vaegan", "dcgan", "dfm", "began", "atvae", "aae_prior", "aae", "vampprior", "discreg",
           "classifier")

_METHODS = flags.DEFINE_list("methods", list(METHODS), "Methods to time (their cifar10 presets).")
_TORCH = flags.DEFINE_string("torch_python", None, "A Python with torch 2.13 (the peer's interpreter); "
                             "without it only genjax is timed.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per run (after compilation and warm-up).", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 64, "Batch size of both sides.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 1, "Alternated runs per side; the best steps/s is kept.",
                                lower_bound=1)
_PIPELINE = flags.DEFINE_bool("pipeline", False, "Also time each digits preset on the real TFDS pipeline.")
_PIPELINE_ONLY = flags.DEFINE_bool("pipeline_only", False, "Only the pipeline table.")
_OUT = flags.DEFINE_string("out", None, "Directory for speed.md and speed.json (default: print only).")


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


def time_method(method: str, classifier: str) -> dict:
  extra = [f"--batch_size={_BATCH.value}", f"--steps={_STEPS.value}"]
  if method == "discreg":
    extra.append(f"--config.discreg.classifier_workdir={classifier}")
  best = {"genjax": None, "torch": None}
  for _ in range(_REPEATS.value):
    result = last_json(genjax_command(method, "cifar10", extra))
    if not best["genjax"] or result["steps_per_sec"] > best["genjax"]["steps_per_sec"]:
      best["genjax"] = result
    if _TORCH.value:
      peer = last_json([_TORCH.value, "experiments/torch_peer.py", f"--method={method}",
                        f"--batch_size={_BATCH.value}", f"--steps={_STEPS.value}"])
      if not best["torch"] or peer["steps_per_sec"] > best["torch"]["steps_per_sec"]:
        best["torch"] = peer
  ours, peer = best["genjax"], best["torch"]
  row = {"method": method, "batch_size": _BATCH.value, "compile_s": ours["compile_s"],
         "genjax_steps_per_sec": ours["steps_per_sec"], "genjax_images_per_sec": ours["images_per_sec"],
         "gflop_per_step": round(ours["flops_per_step"] / 1e9, 1),
         "genjax_gflop_per_sec": round(ours["flops_per_sec"] / 1e9, 1)}
  if peer:
    row.update(torch_steps_per_sec=peer["steps_per_sec"],
               ratio=round(ours["steps_per_sec"] / peer["steps_per_sec"], 2))
  return row


def speed_rows(methods) -> list[dict]:
  with tempfile.TemporaryDirectory() as tmp:
    classifier = mock_classifier(os.path.join(tmp, "classifier")) if "discreg" in methods else ""
    rows = []
    for method in methods:
      rows.append(time_method(method, classifier))
      print(json.dumps(rows[-1]), flush=True)
  return rows


def pipeline_rows(methods) -> list[dict]:
  rows = []
  for method in methods:
    # discreg's digits preset needs runs/classifier; the pipeline is the same as every other method's.
    if method == "discreg":
      continue
    # Longer than the speed runs: the warm-up also covers the first pass over a small cached split.
    result = last_json(genjax_command(method, "", [f"--steps={_STEPS.value * 12}", f"--warmup={_STEPS.value * 6}",
                                                   "--pipeline"]))
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
  unknown = sorted(set(_METHODS.value) - set(METHODS))
  if unknown:
    raise app.UsageError(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
  logging.set_verbosity(logging.WARNING)  # the mock classifier's training would log every step
  tables = {}
  if not _PIPELINE_ONLY.value:
    tables["speed"] = speed_rows(_METHODS.value)
  if _PIPELINE.value or _PIPELINE_ONLY.value:
    tables["pipeline"] = pipeline_rows(_METHODS.value)
  text = "\n\n".join(f"### {name}\n\n{markdown(rows)}" for name, rows in tables.items())
  print(text)
  if _OUT.value:
    os.makedirs(_OUT.value, exist_ok=True)
    with open(os.path.join(_OUT.value, "speed.md"), "w") as f:
      f.write(text + "\n")
    with open(os.path.join(_OUT.value, "speed.json"), "w") as f:
      json.dump(tables, f, indent=2)


if __name__ == "__main__":
  app.run(main)
