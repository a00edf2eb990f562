"""End to end through train_and_evaluate: every preset, resume, 1 vs 8 devices, the step inside scan."""

import glob
import json
import os

import numpy as np
import pytest
from sklearn.datasets import load_digits
import tensorflow_datasets as tfds

import jax
import jax.numpy as jnp

from genjax import parallel, train
from genjax.errors import NonFiniteError
from genjax.methods import get_method
from tests.helpers import assert_trees_close, load_config

METHODS = ("vae", "vaegan")
DOWNLOAD_ONLY_PRESETS = ("mnist", "cifar10", "celeba64")


def _digits_config(method, digits_dir, **train_overrides):
  config = load_config(method, "", **train_overrides)
  config.unlock()
  config.data.update(data_dir=digits_dir, image_size=16)
  config.lock()
  return config


@pytest.mark.parametrize("method", METHODS)
def test_default_preset_trains_and_writes_every_output(method, digits_dir, tmp_path):
  config = _digits_config(method, digits_dir, num_steps=2, checkpoint_every=1)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 2
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  assert glob.glob(str(tmp_path / "events.out.tfevents.*"))
  for png in ("samples.png", "reconstructions.png"):
    assert (tmp_path / png).stat().st_size > 100
  results = json.loads((tmp_path / "metrics.json").read_text())
  assert results["step"] == 2 and results["method"] == method
  assert all(np.isfinite(v) for v in results["train"].values())
  memory = results["host_memory_mb"]  # resident memory at the first and last log, and the peak
  assert memory["last_log_step"] == 2 and 0 < memory["first_log"] <= memory["peak"]


@pytest.mark.parametrize("preset", DOWNLOAD_ONLY_PRESETS)
@pytest.mark.parametrize("method", METHODS)
def test_paper_presets_run_one_step_on_mock_data(method, preset, tmp_path):
  config = load_config(method, preset)
  with tfds.testing.mock_data(num_examples=16):
    state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 1
  size = config.data.image_size
  assert state.models["decoder"].image_shape[:2] == (size, size)
  assert json.loads((tmp_path / "metrics.json").read_text())["dataset"] == config.data.name


def test_resume_equals_uninterrupted_run(digits_dir, tmp_path):
  def run(workdir, steps):
    config = _digits_config("vaegan", digits_dir, num_steps=steps, checkpoint_every=2, log_every=2)
    return train.train_and_evaluate(config, str(workdir))

  run(tmp_path / "resumed", 3)
  resumed = run(tmp_path / "resumed", 6)
  uninterrupted = run(tmp_path / "straight", 6)
  assert int(resumed.step) == int(uninterrupted.step) == 6
  for field in ("params", "batch_stats", "opt_state", "rng", "extra"):
    assert_trees_close(getattr(resumed, field), getattr(uninterrupted, field))


def test_one_device_and_eight_devices_agree(digits_dir, tmp_path):
  assert jax.device_count() == 8, "tests/conftest.py simulates 8 CPU devices"
  config = _digits_config("vaegan", digits_dir, num_steps=3, checkpoint_every=3, log_every=3, image_every=3)
  one = train.train_and_evaluate(config, str(tmp_path / "one"), mesh=parallel.make_mesh(jax.devices()[:1]))
  eight = train.train_and_evaluate(config, str(tmp_path / "eight"))
  assert_trees_close(one.params, eight.params, atol=1e-5)
  assert_trees_close(one.batch_stats, eight.batch_stats, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_train_step_runs_inside_your_own_scan(method):
  """The step is a pure function: lax.scan over it equals calling it step by step."""
  config = load_config(method)
  config.unlock(); config.data.image_size = 16; config.lock()
  module = get_method(method)
  images = jax.random.uniform(jax.random.PRNGKey(0), (3, 8, 16, 16, 1), minval=-1, maxval=1)
  batches = {"image": images, "label": jnp.zeros((3, 8), jnp.int32)}
  state = module.init_state(config, jax.random.PRNGKey(0), jax.tree.map(lambda x: x[0], batches))
  step = module.make_train_step(config)
  scanned, metrics = jax.jit(lambda s, b: jax.lax.scan(step, s, b))(state, batches)
  looped = state
  for i in range(3):
    looped, _ = jax.jit(step)(looped, jax.tree.map(lambda x: x[i], batches))
  assert int(scanned.step) == 3 and all(v.shape == (3,) for v in metrics.values())
  assert_trees_close(scanned.params, looped.params, atol=1e-5)


def test_bfloat16_compute_keeps_float32_params_and_finite_losses():
  config = load_config("vaegan")
  config.unlock(); config.update(dtype="bfloat16"); config.data.image_size = 16; config.lock()
  module = get_method("vaegan")
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(0), (8, 16, 16, 1), minval=-1, maxval=1),
           "label": jnp.zeros((8,), jnp.int32)}
  state = module.init_state(config, jax.random.PRNGKey(0), batch)
  new, metrics = jax.jit(module.make_train_step(config))(state, batch)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(new.params))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert not np.allclose(new.params["decoder"]["Dense_0"]["kernel"], state.params["decoder"]["Dense_0"]["kernel"])


def test_non_finite_metrics_stop_the_run_naming_term_network_and_step():
  pending = train.accumulate(None, {"kl": jnp.asarray(1.0), "grad_norm/decoder": jnp.asarray(2.0)})
  pending = train.accumulate(pending, {"kl": jnp.asarray(1.0), "grad_norm/decoder": jnp.asarray(np.nan)})
  with pytest.raises(NonFiniteError, match=r"grad_norm/decoder = nan in the gradient of network 'decoder' by step 7"):
    train.checked_summary(pending, 7)
  assert train.checked_summary(train.accumulate(None, {"kl": jnp.asarray(3.0)}), 7) == {"kl": 3.0}


def test_optional_hooks_evaluate_and_sample_grids_reach_metrics_and_pngs(digits_dir, tmp_path, monkeypatch):
  """A method's `evaluate` is averaged over the whole eval split; its `sample_grids` become PNGs."""
  import dataclasses
  hooked = dataclasses.replace(
      get_method("vae"), evaluate=lambda state, batch: {"mean_label": jnp.mean(batch["label"].astype(jnp.float32))},
      sample_grids=lambda state, rng: {"pairs": jnp.zeros((2, 3, 16, 16, 1))}, generate=None)
  monkeypatch.setattr(train.methods, "get_method", lambda name: hooked)
  config = _digits_config("vae", digits_dir)
  train.train_and_evaluate(config, str(tmp_path))
  results = json.loads((tmp_path / "metrics.json").read_text())
  np.testing.assert_allclose(results["eval"]["mean_label"], load_digits().target[1500:].mean(), rtol=1e-6)
  assert (tmp_path / "pairs.png").exists()
  assert not (tmp_path / "samples.png").exists()  # no generate: no sample grid
