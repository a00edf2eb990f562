"""Small configs and batches shared by the tests."""

import json
import os
from types import SimpleNamespace

import numpy as np
import tensorflow_datasets as tfds

import jax
import jax.numpy as jnp

from genjax import config_lib, data, methods, parallel, train
from genjax.core import step as step_lib

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
  cast = lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x
  if hasattr(tree, "models"):
    tree = tree.replace(models={k: m.clone(dtype=jnp.float64) for k, m in tree.models.items()})
  return jax.tree.map(cast, tree)


def tiny_config(method: str, preset: str = "", lr: float | None = None, **sections):
  """load_config at 16×16 with `sections` = {"loss": {...}, ...} applied; `lr` sets every optimizer slot
  to that constant rate. One config for most tests of a method, so their programs compile once."""
  config = load_config(method, preset)
  config.unlock()
  config.data.image_size = 16
  if lr is not None:
    for slot in config.optim:
      config.optim[slot].update(lr=lr, schedule="constant")
  for name, values in sections.items():
    config[name].update(values)
  config.lock()
  return config


def one_device():
  """A one-device mesh: preset runs test the presets, tests/test_train.py the sharding (and a program for
  8 simulated devices takes longer to compile)."""
  return parallel.make_mesh(jax.devices()[:1])


# --- gradients against an independent reference ---------------------------------------------------------

def run_module(state, params, net, inputs):
  """Network `net` in training mode (batch statistics), as the paper's training graph runs it."""
  if net not in state.batch_stats:
    return state.models[net].apply({"params": params[net]}, inputs, train=True)
  variables = {"params": params[net], "batch_stats": state.batch_stats[net]}
  return state.models[net].apply(variables, inputs, train=True, mutable=["batch_stats"])[0]


def reference_gradients(reference_losses, state, batch, rng, nets=None):
  """{net: jax.grad of reference_losses(state, params, batch, rng)[net] in params[net] alone}, every network
  in one program."""
  nets = tuple(nets or state.params)

  def all_grads(params, batch):
    return {net: jax.grad(lambda p, net=net: reference_losses(state, {**params, net: p}, batch, rng)[net])(
        params[net]) for net in nets}
  return jax.jit(all_grads)(state.params, batch)


def check_own_gradients(grads, state, batch, rng, reference_losses, nets=None):
  """Each network's gradient equals jax.grad of its own reference loss in its own params alone (1e-6:
  call with float64 state and batch, so the tolerance tests the routing, not round-off)."""
  expected = reference_gradients(reference_losses, state, batch, rng, nets)
  assert set(grads) == set(expected), (set(grads), set(expected))
  assert_trees_close(grads, expected, atol=1e-6, rtol=1e-6)


def network_gradients(module, state, batch, rng, config, phase=0):
  """(grads, metrics, new BatchNorm statistics) of phase `phase` of the method's objective, with noise `rng`:
  each network's gradient of its own loss, as the train step computes it."""
  grads, aux = step_lib.phase_gradients(module.objective(config)[phase], state, batch, rng)
  return grads, aux.metrics, aux.batch_stats


def method_gradients(module):
  """`network_gradients` under one jit whose loss weights are arguments: one compile per method.

  The step reads its weights from `config.loss` only, so a namespace of (traced) values stands in.
  """
  def grads(state, batch, rng, loss):
    grads, metrics, _ = network_gradients(module, state, batch, rng, SimpleNamespace(loss=SimpleNamespace(**loss)))
    return grads, metrics
  return jax.jit(grads)


def float64_setup(module, method, **loss):
  """A tiny state and batch in float64, so 1e-6 tests the routing of the gradients, not round-off.

  Call inside `with jax.enable_x64(True)`.
  """
  config = tiny_config(method, loss=loss) if loss else tiny_config(method)
  batch = jax.tree.map(jnp.asarray, random_batch(size=16))
  state = module.init_state(config, jax.random.PRNGKey(0), batch)
  return to_float64(state), to_float64(batch)


# --- runs through the loop --------------------------------------------------------------------------------

def check_results(workdir, config, state):
  """metrics.json of a finished run: its step, finite train metrics, a samples grid at the image size."""
  results = json.loads((workdir / "metrics.json").read_text())
  assert results["dataset"] == config.data.name and results["step"] == config.train.num_steps
  assert all(np.isfinite(v) for v in results["train"].values())
  assert (workdir / "samples.png").stat().st_size > 100
  generate = methods.get_method(config.method).generate
  generated = jax.eval_shape(lambda: generate(state, jax.random.PRNGKey(0), 1))
  assert generated.shape[1:3] == (config.data.image_size,) * 2
  return results


def train_on_digits(method, workdir, digits_dir, steps, lr=None):
  """The default preset through train_and_evaluate at 16×16 (batch 16, one device); metrics.json's
  "train" is the mean over the last steps/2 steps."""
  config = load_config(method, "", num_steps=steps, log_every=steps // 2, image_every=steps,
                       checkpoint_every=steps)
  config.unlock()
  config.data.update(data_dir=digits_dir, image_size=16)
  config.batch_size = 16
  for slot in config.optim:
    config.optim[slot].lr = lr or config.optim[slot].lr
  config.lock()
  state = train.train_and_evaluate(config, str(workdir), mesh=one_device())
  return check_results(workdir, config, state), state


def run_paper_preset(method, preset, workdir):
  """One step of a paper preset through train_and_evaluate on mock data (one device)."""
  config = load_config(method, preset)
  with tfds.testing.mock_data(num_examples=16):
    state = train.train_and_evaluate(config, str(workdir), mesh=one_device())
  return check_results(workdir, config, state), state


def digits_batches(config, digits_dir, num=12, batch_size=8):
  """`num` real digits batches of `config`'s image size through the data pipeline."""
  config = config.copy_and_resolve_references()
  config.data.data_dir = digits_dir
  it = data.create_dataset(config.data, batch_size=batch_size, seed=0)
  return [jax.tree.map(jnp.asarray, next(it)) for _ in range(num)]


def short_run(module, config, batches, steps=100):
  """`steps` jitted train steps cycling over `batches`; the per-step metrics as numpy arrays."""
  state = module.init_state(config, jax.random.PRNGKey(0), batches[0])
  step = jax.jit(module.METHOD.make_train_step(config))
  history = []
  for i in range(steps):
    state, metrics = step(state, batches[i % len(batches)])
    history.append(metrics)
  return state, {k: np.array([float(m[k]) for m in history]) for k in history[0]}


# --- GAN diagnostics ----------------------------------------------------------------------------------------

LOG2 = float(np.log(2.0))


def assert_discriminator_at_chance(metrics):
  """At init D(·) ≈ ½: weights from N(0, 0.02) make every logit nearly 0."""
  for key in ("dis_real_bce", "dis_fake_bce"):
    assert abs(float(metrics[key]) - LOG2) < 0.1, (key, metrics[key])


def assert_discriminator_left_chance(summary):
  """D(·) starts at ½ (each BCE log 2); it learns to tell digits from samples."""
  assert summary["dis_loss"] < 0.6 * 2 * LOG2, summary
  assert summary["d_real"] > summary["d_fake"] + 0.2, summary
  assert summary["gen_loss"] > LOG2 + 0.2, summary  # so G's −log D(G(z)) rose from log 2


def k_derivative(module, config, state, batch):
  """d(sum of every network's own loss)/dk_t, forward mode: 0 when k_t is a constant in the gradients."""
  def total(k):
    s = state.replace(extra={**state.extra, "k": k})
    own, _ = module.objective(config)[0].losses(s, s.params, batch, jax.random.PRNGKey(1))
    return sum(own.values())
  return float(jax.jvp(total, (jnp.float32(0.3),), (jnp.float32(1.0),))[1])


def check_equilibrium(state, history):
  """k_t leaves 0 and stays in [0, 1]; the convergence measure falls (BEGAN §3.4.1)."""
  ks = np.append(history["k"][1:], float(state.extra["k"]))
  assert ks.max() > 0.0, "k_t never left 0"
  assert np.all((ks >= 0.0) & (ks <= 1.0))
  m = history["convergence"]
  assert np.all(np.isfinite(m))
  assert m[-30:].mean() < m[:30].mean(), (m[:30].mean(), m[-30:].mean())
