"""A preempted, killed or diverging run loses nothing but the steps since its last checkpoint."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from genjax import train
from genjax.interrupt import Interrupted
from genjax.methods import vae
from tests.helpers import ROOT, assert_trees_close, load_config
from tests.test_without_tensorflow import without_tensorflow_env

STATE_FIELDS = ("step", "params", "batch_stats", "opt_state", "rng", "extra")


def _config(digits_dir, **train_overrides):
  config = load_config("vae", "", **train_overrides)
  config.unlock()
  config.data.update(data_dir=digits_dir, image_size=16)
  config.lock()
  return config


def _assert_same_state(a, b):
  for field in STATE_FIELDS:
    assert_trees_close(getattr(a, field), getattr(b, field))  # bit for bit


def test_sigkill_at_a_random_moment_then_resume_equals_an_uninterrupted_run(digits_dir, tmp_path):
  steps = 12
  overrides = dict(num_steps=steps, checkpoint_every=1, log_every=1, image_every=100)
  killed = tmp_path / "killed"
  args = ["--config=configs/vae.py", f"--workdir={killed}", "--config.model.width=0.0625",
          "--config.model.latent_dim=8", "--config.batch_size=8", "--config.data.image_size=16",
          f"--config.data.data_dir={digits_dir}", "--config.train.num_image_samples=4",
          *[f"--config.train.{k}={v}" for k, v in overrides.items()]]
  process = subprocess.Popen([sys.executable, "-m", "genjax.main", *args], cwd=ROOT, env=without_tensorflow_env(one_device=False),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # the TensorFlow-free path
  deadline = time.time() + 600
  while not (killed / "checkpoints" / "2").exists() and process.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  time.sleep(random.uniform(0.0, 0.3))  # anywhere: mid-step or mid-write of an asynchronous checkpoint
  process.send_signal(signal.SIGKILL)
  process.wait()

  resumed = train.train_and_evaluate(_config(digits_dir, **overrides), str(killed))
  straight = train.train_and_evaluate(_config(digits_dir, **overrides), str(tmp_path / "straight"))
  assert int(resumed.step) == steps
  _assert_same_state(resumed, straight)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_finish_the_step_checkpoint_and_return(signum, digits_dir, tmp_path, monkeypatch):
  compile_step = train.compile_train_step

  def step_that_is_interrupted_at_step_3(method, config, mesh, state):
    step = compile_step(method, config, mesh, state)
    def interrupted(state, batch):
      if int(state.step) == 2:
        os.kill(os.getpid(), signum)  # arrives while step 3 runs
      return step(state, batch)
    return interrupted

  monkeypatch.setattr(train, "compile_train_step", step_that_is_interrupted_at_step_3)
  handler_before = signal.getsignal(signum)  # pytest-xdist workers may start with SIGINT ignored
  state = train.train_and_evaluate(_config(digits_dir, num_steps=50, checkpoint_every=100, log_every=100),
                                   str(tmp_path))
  assert int(state.step) == 3
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["3"]
  assert (tmp_path / "metrics.json").exists()
  assert signal.getsignal(signum) == handler_before  # handlers given back


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_saved_checkpoint(digits_dir, tmp_path, monkeypatch, capsys):
  """Ctrl-C says at once what happens next; a second one ends the run without saving, and the checkpoint
  already written resumes."""
  compile_step = train.compile_train_step

  def step_that_gets_two_ctrl_c(method, config, mesh, state):
    step = compile_step(method, config, mesh, state)
    def interrupted(state, batch):
      if int(state.step) == 2:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # the first is handled: it only asks the loop to stop after this step
        assert "SIGINT: finishing step 3 and saving a checkpoint; press Ctrl-C again" in capsys.readouterr().err
        os.kill(os.getpid(), signal.SIGINT)
      return step(state, batch)
    return interrupted

  monkeypatch.setattr(train, "compile_train_step", step_that_gets_two_ctrl_c)
  config = _config(digits_dir, num_steps=50, checkpoint_every=2, log_every=100)
  with pytest.raises(Interrupted):
    train.train_and_evaluate(config, str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2"] and not (tmp_path / "metrics.json").exists()
  monkeypatch.setattr(train, "compile_train_step", compile_step)
  resumed = train.train_and_evaluate(_config(digits_dir, num_steps=4, checkpoint_every=2, log_every=100),
                                     str(tmp_path))
  assert int(resumed.step) == 4


def test_skip_option_drops_a_non_finite_update_and_counts_it(digits_dir):
  config = _config(digits_dir, on_nonfinite="skip")
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(0), (8, 16, 16, 1), minval=-1, maxval=1),
           "label": jnp.zeros((8,), jnp.int32)}
  state = vae.init_state(config, jax.random.PRNGKey(0), batch)
  step = jax.jit(train.skip_nonfinite(vae.METHOD.make_train_step(config)))
  poisoned = {**batch, "image": batch["image"].at[0, 0, 0, 0].set(jnp.nan)}
  after_nan, bad = step(state, poisoned)
  assert int(after_nan.step) == 1 and float(bad[train.SKIPPED]) == 1.0
  for field in ("params", "batch_stats", "opt_state"):
    assert_trees_close(getattr(after_nan, field), getattr(state, field))
  after_good, good = step(after_nan, batch)
  assert float(good[train.SKIPPED]) == 0.0
  assert not np.allclose(after_good.params["decoder"]["Dense_0"]["kernel"], state.params["decoder"]["Dense_0"]["kernel"])
  # The logged averages leave the skipped step out instead of stopping the run on its NaN.
  summary = train.checked_summary(train.accumulate(train.accumulate(None, bad), good), step=2)
  assert summary[train.SKIPPED] == 0.5 and summary["loss"] == pytest.approx(float(good["loss"]))


def test_same_seed_same_parameters_other_seed_other_parameters(digits_dir):
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(0), (8, 16, 16, 1), minval=-1, maxval=1),
           "label": jnp.zeros((8,), jnp.int32)}

  def two_steps(seed):
    config = _config(digits_dir)
    state = vae.init_state(config, jax.random.PRNGKey(seed), batch)
    step = jax.jit(vae.METHOD.make_train_step(config))
    for _ in range(2):
      state, _ = step(state, batch)
    return state

  assert_trees_close(two_steps(0).params, two_steps(0).params)
  assert not np.allclose(two_steps(0).params["encoder"]["Dense_1"]["kernel"],
                         two_steps(1).params["encoder"]["Dense_1"]["kernel"])
