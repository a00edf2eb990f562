"""Many processes, one run: 2 local processes with 4 CPU devices each train what 1 process with 8 does.

The two processes talk through JAX's distributed runtime (`--coordinator_address/--num_processes/
--process_id`, CPU collectives over gloo); each reads only its rows of every global batch, the checkpoint is
written once and restored by both.
"""

import os
import socket
import subprocess
import sys

import jax

from genjax import modes, parallel, train
from tests.helpers import ROOT, assert_trees_close, load_config

TINY = {"model.width": 0.0625, "model.latent_dim": 8, "batch_size": 16, "data.image_size": 16,
        "train.num_image_samples": 4, "train.checkpoint_every": 2, "train.log_every": 1,
        "eval.extractor": "none"}


def _config(steps):
  config = load_config("vae", "", num_steps=steps, checkpoint_every=2, image_every=100)
  config.unlock()
  config.batch_size, config.data.image_size = TINY["batch_size"], TINY["data.image_size"]
  config.lock()
  return config


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _two_processes(workdir, steps):
  """`python -m genjax.main` as process 0 and 1 of a 2-process run, 4 CPU devices each."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace("device_count=8", "device_count=4")
  address = f"localhost:{_free_port()}"
  args = ["--config=configs/vae.py", f"--workdir={workdir}", f"--config.train.num_steps={steps}",
          *[f"--config.{k}={v}" for k, v in TINY.items()], f"--coordinator_address={address}", "--num_processes=2"]
  processes = [subprocess.Popen([sys.executable, "-m", "genjax.main", *args, f"--process_id={i}"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=600)[0] for p in processes]
  for i, (p, out) in enumerate(zip(processes, outputs)):
    useful = "\n".join(line for line in out.splitlines() if not line.startswith("Extension modules"))
    assert p.returncode == 0, f"process {i}:\n{useful[-8000:]}"  # an abort ends with a long module list
  return outputs


def test_two_processes_of_four_devices_train_what_one_of_eight_does_and_resume(tmp_path):
  assert jax.device_count() == 8
  one, two = str(tmp_path / "one"), str(tmp_path / "two")
  mesh = parallel.make_mesh()
  for steps in (2, 4):  # the second round restarts both from the step-2 checkpoint
    reference = train.train_and_evaluate(_config(steps), one)
    outputs = _two_processes(two, steps)
    _, state = modes.restore_checkpoint(_config(steps), two, mesh=mesh)
    assert int(state.step) == int(reference.step) == steps
    # Float tolerance: the cross-process reductions sum in another order. Far below one Adam step (~1e-3 per
    # parameter), so a process reading other rows, or a gradient not reduced over both, fails it.
    for field in ("params", "batch_stats", "opt_state", "rng"):
      assert_trees_close(getattr(state, field), getattr(reference, field), rtol=1e-4, atol=1e-5)
  assert f"{steps}/{steps}" in outputs[0] and outputs[1].count("vae ") == 0  # one progress display
  assert sorted(os.listdir(os.path.join(two, "checkpoints"))) == ["2", "4"]
