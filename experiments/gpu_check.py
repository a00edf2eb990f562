"""One command for a GPU machine: every train step at 64×64 against PyTorch on CUDA, and a Fashion-MNIST run.

  # here, once, with PyPI reachable: the wheels the GPU image lacks and Fashion-MNIST's idx files
  python experiments/gpu_check.py --prepare=.gpu          # (.gpu is git-ignored; ~40 MB)
  # there (the device tool's `run`, carrying .gpu), under 8 minutes:
  python3 experiments/gpu_check.py --carried=.gpu --out=$OUT
  # here: every stage on CPU at toy size (batch 2, one step; torch.compile for one method)
  python experiments/gpu_check.py --dry_run --torch_python=/path/to/torch/env/bin/python --out=/tmp/gpu_check

Stages, each written to <out>/gpu_check.json and gpu_check.md as soon as it is measured (a run cut short
keeps what it has; each stage is skipped once --budget_s is spent, and says so):
  1. install   the carried wheels (ml-collections, tensorflow-datasets and the pieces of theirs the GPU
               image lacks; `pip install --no-index --no-deps`), unless they import already.
  2. peak      the GPU's measured matmul rate in bfloat16 and float32 (XLA, two square matrices of
               --peak_size): the ceiling that MFU is taken against.
  3. genjax    `genjax.bench`'s measurement of every method's cifar10 preset at --image_size (64) and
               --batch_size (256), in float32 and in bfloat16 (`config.dtype`): step time, images/s, XLA's
               FLOPs of the compiled step, MFU; and each network's parameter count.
  4. pytorch   experiments/torch_peer.py's same networks and losses at the same size and batch on CUDA, eager
               for every method and under torch.compile for --compile_methods (default: the heavier steps),
               float32 and bfloat16 autocast; its parameter counts must equal genjax's ("params" column).
  5. fashion   `python -m genjax.main --config=configs/<--fashion_config>` at paper width (model.width=1) for
               --fashion_steps on the carried Fashion-MNIST files: its samples.png, reconstructions.png and
               metrics.json come back in <out>.
The table's ratios are genjax's images/s over each PyTorch variant's, measured in one run; MFU is XLA's
FLOP count of the step over its time, against the measured bfloat16 matmul rate (for both dtypes, so that
float32 rows show what bfloat16 would leave on the table). Goal (issue 15): genjax ≥ 2× PyTorch eager and
≥ torch.compile in images/s, ≥ 35 % MFU in bfloat16 for vaegan, began, atvae and aae_prior.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # genjax from this checkout (nothing is installed on the GPU machine)
sys.path.insert(0, os.path.join(ROOT, "experiments"))

METHODS = ("vae", "vaegan", "dcgan", "dfm", "began", "atvae", "aae_prior", "aae", "vampprior", "discreg",
           "classifier")
HEAVY = ("vaegan", "began", "atvae", "aae_prior")  # the MFU goal; torch.compile by default
# What the GPU image lacks of genjax's imports (its package list: /work/.library/device/KINDS.md), pinned to
# the versions genjax is tested with; downloaded for CPython 3.12 on x86-64 Linux.
WHEELS = ("ml-collections==1.1.0", "tensorflow-datasets==4.9.10", "array-record", "dm-tree", "immutabledict",
          "promise", "simple-parsing", "docstring-parser", "tensorflow-metadata", "googleapis-common-protos",
          "termcolor", "toml")
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz")


def log(text: str) -> None:
  print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


# --- 0. prepare (here) and 1. install (there) --------------------------------------------------------------

def prepare(directory: str, fashion_dir: str) -> None:
  """Downloads the wheels (no dependencies resolved: exactly WHEELS) and copies Fashion-MNIST's idx files."""
  wheels = os.path.join(directory, "wheels")
  os.makedirs(wheels, exist_ok=True)
  command = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", wheels, "--python-version", "3.12",
             "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64", "--only-binary=:all:",
             *[w for w in WHEELS if w != "promise"]]
  subprocess.run(command, check=True)
  # promise publishes only a source archive: pip builds it there (setuptools is in the image)
  subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "--dest", wheels,
                  "promise"], check=True)
  target = os.path.join(directory, "fashion_mnist")
  os.makedirs(target, exist_ok=True)
  for name in FASHION_FILES:
    shutil.copy(os.path.join(fashion_dir, name), target)
  size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(directory, "**", "*"), recursive=True)
             if os.path.isfile(p))
  log(f"prepared {directory}: {len(os.listdir(wheels))} wheels/archives and Fashion-MNIST, {size / 2**20:.1f} MiB")


def install(directory: str) -> str:
  """Installs the carried wheels unless genjax's imports already work; returns what it did."""
  probe = [sys.executable, "-c", "import ml_collections, tensorflow_datasets"]
  if subprocess.run(probe, capture_output=True).returncode == 0:
    return "nothing to install"
  archives = sorted(glob.glob(os.path.join(directory, "wheels", "*")))
  if not archives:
    raise SystemExit(f"--carried={directory}: no wheels in {directory}/wheels (run --prepare here first)")
  subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
                  "--quiet", *archives], check=True)
  done = subprocess.run(probe, capture_output=True, text=True)
  if done.returncode:
    raise SystemExit(f"the carried wheels do not import: {done.stderr.strip().splitlines()[-1]}")
  return f"installed {len(archives)} carried archives"


# --- 2. peak ---------------------------------------------------------------------------------------------------

def matmul_tflops(dtype: str, size: int, repeats: int = 10) -> float:
  """The best TFLOP/s of a `size`² matmul in `dtype` on the default device (XLA)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.dtype(dtype))
  b = jax.random.normal(jax.random.key(1), (size, size), jnp.dtype(dtype))
  matmul = jax.jit(lambda a, b: a @ b)
  matmul(a, b).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best / 1e12


# --- 3. genjax ---------------------------------------------------------------------------------------------------

def genjax_config(method: str, image_size: int, batch_size: int, dtype: str, classifier_dir: str):
  from genjax.config_lib import load_config  # pylint: disable=import-outside-toplevel
  config = load_config(os.path.join(ROOT, "configs", f"{method}.py:cifar10"))
  with config.unlocked():
    config.data.image_size, config.batch_size, config.dtype = image_size, batch_size, dtype
    if method == "discreg":
      config.discreg.classifier_workdir = classifier_dir
  return config


def frozen_classifier(workdir: str, image_size: int) -> str:
  """discreg's frozen classifier: a one-step configs/classifier.py:cifar10 run at `image_size` on tfds mock
  data (speed does not depend on its weights)."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from genjax import train  # pylint: disable=import-outside-toplevel
  from genjax.config_lib import load_config  # pylint: disable=import-outside-toplevel
  config = load_config(os.path.join(ROOT, "configs", "classifier.py:cifar10"))
  with config.unlocked():
    config.train.num_steps, config.eval.extractor, config.data.image_size = 1, "none", image_size
  with tfds.testing.mock_data(num_examples=config.batch_size):
    train.train_and_evaluate(config, workdir)
  return workdir


def genjax_row(method: str, dtype: str, args, classifier_dir: str) -> dict:
  from genjax import bench  # pylint: disable=import-outside-toplevel
  config = genjax_config(method, args.image_size, args.batch_size, dtype, classifier_dir)
  result = bench.benchmark(config, args.steps, args.warmup)
  return {"compile_s": result["compile_s"], "steps_per_sec": result["steps_per_sec"],
          "images_per_sec": result["images_per_sec"], "flops_per_step": result["flops_per_step"],
          "device_kind": result["device_kind"], "params": result["num_params"]}


# --- 4. PyTorch ----------------------------------------------------------------------------------------------

def torch_rows(args, methods, dtype: str, compile_: bool, timeout: float) -> list[dict]:
  """One torch_peer.py process for `methods` in one variant: a JSON line each."""
  command = [args.torch_python, os.path.join(ROOT, "experiments", "torch_peer.py"), f"--method={','.join(methods)}",
             f"--image_size={args.image_size}", f"--batch_size={args.batch_size}", f"--steps={args.steps}",
             f"--device={args.torch_device}"] + (["--bf16"] if dtype == "bfloat16" else []) + (
                 ["--compile"] if compile_ else [])
  done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 1))
  rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
  if done.returncode:
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    rows.append({"error": f"torch_peer.py exit {done.returncode}: {tail}"})
  return rows


# --- 5. Fashion-MNIST ----------------------------------------------------------------------------------------

def fashion_run(args, timeout: float) -> dict:
  """A short genjax.main run at paper width; its figures and metrics are copied into --out."""
  workdir = os.path.join(args.out, "fashion_run")
  command = [sys.executable, "-m", "genjax.main", f"--config=configs/{args.fashion_config}", f"--workdir={workdir}",
             f"--config.train.num_steps={args.fashion_steps}", "--config.model.width=1.0",
             "--config.eval.extractor=none", f"--config.train.image_every={args.fashion_steps}",
             f"--config.train.checkpoint_every={args.fashion_steps}"]
  if args.fashion_dir:
    command.append(f"--config.data.manual_dir={args.fashion_dir}")
  start = time.perf_counter()
  done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 1))
  seconds = time.perf_counter() - start
  if done.returncode:
    return {"error": (done.stderr.strip().splitlines() or ["(no output)"])[-1], "seconds": round(seconds, 1)}
  for name in ("samples.png", "reconstructions.png", "metrics.json"):
    if os.path.isfile(os.path.join(workdir, name)):
      shutil.copy(os.path.join(workdir, name), os.path.join(args.out, f"fashion_{name}"))
  shutil.rmtree(workdir)  # the checkpoint and events stay behind: only the files above come back
  with open(os.path.join(args.out, "fashion_metrics.json")) as f:
    metrics = json.load(f)
  return {"config": args.fashion_config, "steps": metrics.get("step"), "seconds": round(seconds, 1),
          "steps_per_sec": metrics.get("steps_per_sec"), "train": metrics.get("train")}


# --- the table -----------------------------------------------------------------------------------------------

def rows_of(results: dict) -> list[dict]:
  """One row per method and dtype: genjax's numbers, each PyTorch variant's images/s, ratios and MFU."""
  peak = (results.get("peak") or {}).get("bfloat16_tflops")
  rows = []
  for key, ours in results["genjax"].items():
    method, dtype = key.split("/")
    row = {"method": method, "dtype": dtype}
    if "error" in ours:
      rows.append({**row, "error": ours["error"]})
      continue
    row.update(images_per_sec=ours["images_per_sec"], step_ms=round(1e3 / ours["steps_per_sec"], 2),
               gflop_per_step=round(ours["flops_per_step"] / 1e9, 1), compile_s=ours["compile_s"])
    if peak:
      row["mfu_pct"] = round(100 * ours["flops_per_step"] * ours["steps_per_sec"] / (peak * 1e12), 1)
    peers = {v: results["torch"].get(f"{method}/{dtype}/{v}") for v in ("eager", "compile")}
    peers = {v: peer for v, peer in peers.items() if peer and "images_per_sec" in peer}
    for variant, peer in peers.items():
      row[f"torch_{variant}_images_per_sec"] = peer["images_per_sec"]
      row[f"ratio_{variant}"] = round(ours["images_per_sec"] / peer["images_per_sec"], 2)
    differing = [f"torch {v}: {peer['params']}" for v, peer in peers.items()
                 if not same_networks(ours["params"], peer["params"])]
    if peers:  # the peer's networks are genjax's only if every network's parameter count is
      row["params"] = f"differ: genjax {ours['params']}, " + ", ".join(differing) if differing else "equal"
    rows.append(row)
  return rows


def same_networks(genjax: dict, torch: dict) -> bool:
  """Each network's parameter count equal (discreg's frozen classifier is state.extra in genjax, no network)."""
  return genjax == {k: v for k, v in torch.items() if k != "classifier(frozen)"}


def markdown(results: dict) -> str:
  peak = results.get("peak") or {}
  lines = [f"{results.get('device', '?')}; images {results['image_size']}×{results['image_size']}×3, batch "
           f"{results['batch_size']}, {results['steps']} timed steps; measured matmul peak: "
           f"{peak.get('bfloat16_tflops', float('nan')):.0f} TFLOP/s bfloat16, "
           f"{peak.get('float32_tflops', float('nan')):.0f} float32 (MFU is against the bfloat16 rate).", ""]
  rows = rows_of(results)
  columns = list(dict.fromkeys(k for row in rows for k in row))
  lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
  if results.get("fashion"):
    lines += ["", f"Fashion-MNIST run: {json.dumps(results['fashion'])}"]
  errors = [f"{key}: {value['error']}" for key, value in results["torch"].items() if "error" in value]
  if errors:
    lines += ["", "PyTorch errors: " + "; ".join(errors)]
  if results.get("skipped"):
    lines += ["", "Skipped (out of --budget_s): " + ", ".join(results["skipped"])]
  return "\n".join(lines) + "\n"


def save(results: dict, out: str) -> None:
  with open(os.path.join(out, "gpu_check.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(out, "gpu_check.md"), "w") as f:
    f.write(markdown(results))


# --- the command -------------------------------------------------------------------------------------------

def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--out", help="directory of gpu_check.json/.md and the Fashion run's files")
  p.add_argument("--prepare", help="(here) download the wheels and copy Fashion-MNIST into this directory")
  p.add_argument("--fashion_source", default="/usr/share/datasets/fashion-mnist",
                 help="(with --prepare) where Fashion-MNIST's idx files are")
  p.add_argument("--carried", help="(there) the --prepare directory: install its wheels, read its Fashion-MNIST")
  p.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods (their cifar10 presets)")
  p.add_argument("--dtypes", default="float32,bfloat16")
  p.add_argument("--image_size", type=int, default=64)
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--peak_size", type=int, default=8192)
  p.add_argument("--torch_python", default=sys.executable, help="a Python with torch ('' : no PyTorch stage)")
  p.add_argument("--torch_device", default="cuda")
  p.add_argument("--compile_methods", default=",".join(HEAVY), help="methods also timed under torch.compile")
  p.add_argument("--fashion_config", default="aae_prior.py:fashion")
  p.add_argument("--fashion_steps", type=int, default=1500)
  p.add_argument("--budget_s", type=float, default=450, help="stages start only while this much time is left")
  p.add_argument("--dry_run", action="store_true", help="every stage on CPU at toy size: batch 2, one step, "
                 "64-pixel peak matmul, torch.compile for the first method only, 2 Fashion steps, an hour's budget")
  args = p.parse_args(argv)
  if args.dry_run:
    args.batch_size, args.steps, args.warmup, args.peak_size = 2, 1, 0, 64
    args.torch_device, args.fashion_steps, args.budget_s = "cpu", 2, 3600
    args.compile_methods = args.methods.split(",")[0]
  unknown = [m for m in args.methods.split(",") + args.compile_methods.split(",") if m and m not in METHODS]
  if unknown:
    p.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
  if not args.prepare and not args.out:
    p.error("--out is required (or --prepare)")
  args.fashion_dir = os.path.join(args.carried, "fashion_mnist") if args.carried else ""
  return args


def main(argv=None):
  args = parse_args(argv)
  if args.prepare:
    prepare(args.prepare, args.fashion_source)
    return
  deadline = time.monotonic() + args.budget_s
  left = lambda: deadline - time.monotonic()
  os.makedirs(args.out, exist_ok=True)
  if args.dry_run:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
  results = {"image_size": args.image_size, "batch_size": args.batch_size, "steps": args.steps, "genjax": {},
             "torch": {}, "skipped": []}
  results["install"] = install(args.carried) if args.carried else "not asked (--carried)"
  log(f"install: {results['install']}")

  import jax  # pylint: disable=import-outside-toplevel  (after the install)
  results["device"] = f"{jax.device_count()}× {jax.devices()[0].device_kind}"
  results["peak"] = {f"{d}_tflops": round(matmul_tflops(d, args.peak_size), 3) for d in ("bfloat16", "float32")}
  log(f"peak on {results['device']}: {results['peak']}")
  save(results, args.out)

  methods, dtypes = args.methods.split(","), args.dtypes.split(",")
  with tempfile.TemporaryDirectory() as tmp:
    classifier = frozen_classifier(os.path.join(tmp, "classifier"), args.image_size) if "discreg" in methods else ""
    for method in methods:
      for dtype in dtypes:
        key = f"{method}/{dtype}"
        if left() < 60:
          results["skipped"].append(f"genjax {key}")
          continue
        try:
          results["genjax"][key] = genjax_row(method, dtype, args, classifier)
        except Exception as e:  # pylint: disable=broad-except  (one method's failure is a row, not the end)
          results["genjax"][key] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        log(f"genjax {key}: {json.dumps(results['genjax'][key])}")
        save(results, args.out)

  if args.torch_python:
    compiled = [m for m in args.compile_methods.split(",") if m in methods]
    for variant, names in (("eager", methods), ("compile", compiled)):
      for dtype in dtypes:
        if not names:
          continue
        if left() < 60:
          results["skipped"].append(f"pytorch {variant} {dtype}")
          continue
        try:
          rows = torch_rows(args, names, dtype, variant == "compile", left() - 30)
        except subprocess.TimeoutExpired:
          rows = [{"error": "out of time"}]
        for row in rows:
          if "method" in row:
            results["torch"][f"{row['method']}/{dtype}/{variant}"] = row
          else:
            results["torch"][f"error/{dtype}/{variant}"] = row
        log(f"pytorch {variant} {dtype}: {len(rows)} rows")
        save(results, args.out)

  if args.fashion_steps and left() > 30:
    try:
      results["fashion"] = fashion_run(args, left())
    except subprocess.TimeoutExpired:
      results["fashion"] = {"error": "out of time"}
    log(f"fashion: {json.dumps(results['fashion'])[:300]}")
  elif args.fashion_steps:
    results["skipped"].append("fashion")
  save(results, args.out)
  print(markdown(results))


if __name__ == "__main__":
  main()
