"""genjax.bench measures the loop's own compiled step and reports XLA's FLOP count."""

import json
import os
import subprocess
import sys

from genjax import bench
from genjax.nets import onednn
from tests.helpers import ROOT, load_config


def test_benchmark_reports_speed_flops_and_pipeline_ratio(tmp_path):
  config = load_config("vae")
  config.unlock(); config.data.update(image_size=16, data_dir=str(tmp_path)); config.lock()
  result = bench.benchmark(config, num_steps=2, warmup=1, pipeline=True)
  assert result["steps_per_sec"] > 0 and result["compile_s"] > 0
  assert result["images_per_sec"] == round(result["steps_per_sec"] * 8, 1)
  assert result["flops_per_step"] > 1e5  # conv layers of a VAE step, counted by XLA (with XLA's convs)
  assert result["convolutions"] == onednn.path()
  assert 0 < result["pipeline_ratio"]
  assert result["devices"] == 8
  assert set(result["num_params"]) == {"encoder", "decoder", "pixel_log_sigma"}
  assert result["num_params"]["pixel_log_sigma"] == 1 and result["num_params"]["encoder"] > 1000


def test_command_line_prints_one_json_line_and_refuses_bad_configs():
  env = {**os.environ, "XLA_FLAGS": "--xla_backend_optimization_level=0"}
  bad = subprocess.run([sys.executable, "-m", "genjax.bench", "--config=configs/vae.py:nope"], cwd=ROOT,
                       capture_output=True, text=True, env=env)
  assert bad.returncode == 2 and "unknown preset 'nope'" in bad.stderr.splitlines()[-1]
  good = subprocess.run([sys.executable, "-m", "genjax.bench", "--config=configs/vae.py", "--steps=1",
                         "--warmup=0", "--batch_size=8", "--config.model.width=0.0625",
                         "--config.data.image_size=16"], cwd=ROOT, capture_output=True, text=True, env=env)
  assert good.returncode == 0, good.stderr[-2000:]
  assert json.loads(good.stdout.strip().splitlines()[-1])["batch_size"] == 8
