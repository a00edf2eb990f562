"""The README's "Adding a method" walkthrough works as written: its three files, copied into a scratch tree,
give a method genjax finds by name, a test that passes, and a config the loop trains."""

import os
import re
import subprocess
import sys

from tests.helpers import ROOT


def _walkthrough_files() -> dict[str, str]:
  """{path: code} of the README's code blocks that start with a `# <path>` line, in its walkthrough."""
  readme = open(os.path.join(ROOT, "README.md")).read()
  section = readme.split("### Adding a method", 1)[1].split("\n## ", 1)[0]
  blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", section, re.S)
  return {path: code for path, code in blocks}


def test_readme_walkthrough_adds_a_method_in_three_files(tmp_path, digits_dir):
  files = _walkthrough_files()
  assert sorted(files) == ["configs/beta_vae.py", "genjax/methods/beta_vae.py", "tests/test_beta_vae.py"]
  for path, code in files.items():
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(code)
  env = {**os.environ, "GENJAX_METHODS_PATH": str(tmp_path / "genjax" / "methods"), "PYTHONPATH": ROOT,
         "XLA_FLAGS": "--xla_backend_optimization_level=0"}
  test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                         "tests/test_beta_vae.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
  assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
  assert "1 passed" in test.stdout
  run = subprocess.run([sys.executable, "-m", "genjax.main", "--config=configs/beta_vae.py",
                        f"--workdir={tmp_path / 'runs'}", "--config.train.num_steps=3", "--config.train.log_every=1",
                        "--config.data.image_size=16", "--config.batch_size=8", f"--config.data.data_dir={digits_dir}"],
                       cwd=tmp_path, env=env, capture_output=True, text=True)
  assert run.returncode == 0, run.stderr[-3000:]
  assert (tmp_path / "runs" / "metrics.json").exists() and (tmp_path / "runs" / "samples.png").exists()
