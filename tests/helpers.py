"""Small configs and batches shared by the tests."""

import os

import numpy as np

import jax

from genjax import config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(method: str, preset: str = "", **train):
  """configs/<method>.py:preset, shrunk to tiny widths and batches so a step compiles in seconds."""
  config = config_lib.load_config(f"{os.path.join(ROOT, 'configs', method)}.py:{preset}")
  config.unlock()
  config.model.width = 1 / 16
  if "latent_dim" in config.model:
    config.model.latent_dim = 8
  config.batch_size = 8
  config.train.update(dict(num_steps=1, log_every=1, image_every=1, checkpoint_every=1,
                           num_image_samples=4), **train)
  config.lock()
  return config


def random_batch(n=8, size=16, channels=1, seed=0):
  rng = np.random.default_rng(seed)
  return {"image": rng.uniform(-1, 1, (n, size, size, channels)).astype(np.float32),
          "label": rng.integers(0, 10, n).astype(np.int32)}


def assert_trees_close(a, b, atol=0.0, rtol=0.0):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=rtol), a, b)


def to_float64(tree):
  """A TrainState (modules computing in float64) or a batch, with floating arrays cast to float64.

  Call inside `with jax.enable_x64(True)`.
  """
  import jax.numpy as jnp
  cast = lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x
  if hasattr(tree, "models"):
    tree = tree.replace(models={k: m.clone(dtype=jnp.float64) for k, m in tree.models.items()})
  return jax.tree.map(cast, tree)
