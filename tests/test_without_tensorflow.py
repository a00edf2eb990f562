"""genjax where TensorFlow is not installed: train, resume, evaluate, sample, figures and bench on digits.

Each command runs in a fresh Python whose path finder hides TensorFlow (tests/no_tensorflow/sitecustomize.py):
`import tensorflow` fails there exactly as in an environment that never installed it.
"""

import json
import os
import subprocess
import sys

import numpy as np

from genjax.figures import draw
from tests.helpers import ROOT

HIDE_TENSORFLOW = os.path.join(ROOT, "tests", "no_tensorflow")
TINY = ["--config=configs/vae.py", "--config.model.width=0.0625", "--config.model.latent_dim=8",
        "--config.batch_size=8", "--config.data.image_size=16", "--config.train.num_image_samples=4",
        "--config.train.checkpoint_every=1", "--config.train.log_every=1", "--config.eval.num_samples=40",
        "--config.eval.extractor=none"]


def without_tensorflow_env(one_device: bool = True) -> dict[str, str]:
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  if one_device:
    env.pop("XLA_FLAGS", None)  # as a user would have, not the tests' 8 simulated devices
  env["PYTHONPATH"] = os.pathsep.join(p for p in (HIDE_TENSORFLOW, env.get("PYTHONPATH")) if p)
  return env


def _run(*args):
  result = subprocess.run([sys.executable, *args], cwd=ROOT, env=without_tensorflow_env(), capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def test_tensorflow_is_hidden():
  result = subprocess.run([sys.executable, "-c", "import importlib.util, sys; "
                           "assert importlib.util.find_spec('tensorflow') is None; import tensorflow"],
                          env=without_tensorflow_env(), capture_output=True, text=True, timeout=60)
  assert result.returncode != 0 and "No module named 'tensorflow'" in result.stderr


def test_train_resume_evaluate_sample_and_figures_without_tensorflow(tmp_path):
  workdir = str(tmp_path / "run")
  _run("-m", "genjax.main", f"--workdir={workdir}", *TINY, "--config.train.num_steps=2")
  _run("-m", "genjax.main", f"--workdir={workdir}", *TINY, "--config.train.num_steps=4")  # resumes at step 2
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints")))[-1] == "4"
  metrics = json.load(open(os.path.join(workdir, "metrics.json")))
  assert metrics["step"] == 4 and np.isfinite(metrics["train"]["loss"])

  steps, losses = draw.read_scalars(workdir)["loss"]  # TensorBoard events written without TensorFlow
  assert list(steps) == [1, 2, 3, 4] and np.isfinite(losses).all()

  _run("-m", "genjax.main", f"--workdir={workdir}", *TINY, "--config.train.num_steps=4", "--mode=eval",
       "--config.eval.metrics=('recon',)")
  assert "recon_mse" in json.load(open(os.path.join(workdir, "eval.json")))["eval"]
  _run("-m", "genjax.main", f"--workdir={workdir}", *TINY, "--config.train.num_steps=4", "--mode=sample",
       "--num_samples=6")
  assert any(f.startswith("samples_") and f.endswith(".npz") for f in os.listdir(workdir))
  _run("-m", "genjax.figures", f"--workdir={workdir}", *TINY, "--config.train.num_steps=4",
       f"--out={tmp_path / 'figures'}", "--num_codes=40")
  assert any(f.endswith(".png") for f in os.listdir(tmp_path / "figures"))


def test_bench_without_tensorflow():
  result = _run("-m", "genjax.bench", *TINY[:5], "--steps=2", "--warmup=1", "--pipeline")
  bench = json.loads(result.stdout.strip().splitlines()[-1])
  assert bench["steps_per_sec"] > 0 and bench["pipeline_ratio"] > 0
