"""The README's "calling a train step from your own JAX code" snippet runs verbatim, outside the repository."""

import os
import re
import subprocess
import sys

from tests.helpers import ROOT

SETUP = '''
import numpy as np
from sklearn.datasets import load_digits
digits = load_digits().images.astype(np.float32) / 8.0 - 1.0
images = np.repeat(np.repeat(digits[:16], 4, axis=1), 4, axis=2)[..., None]   # [16, 32, 32, 1] in [-1, 1]
labels = load_digits().target[:16].astype(np.int32)
stacked_batches = {"image": np.stack([images] * 2), "label": np.stack([labels] * 2)}
'''
CHECK = '''
assert int(state.step) == 3 and samples.shape == (16, 32, 32, 1) and codes.shape[0] == 16
assert history["kl"].shape == (2,)
print("ok")
'''


def test_train_step_snippet_runs_verbatim_from_another_directory(tmp_path):
  readme = open(os.path.join(ROOT, "README.md")).read()
  section = readme.split("## Calling a train step from your own JAX code", 1)[1]
  snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  script = tmp_path / "snippet.py"
  script.write_text(SETUP + snippet + CHECK)
  env = {**os.environ, "XLA_FLAGS": "--xla_backend_optimization_level=0"}
  env.pop("PYTHONPATH", None)  # genjax as installed, configs found by method name
  result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("ok")
