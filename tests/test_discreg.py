"""Discriminative regularization (Lamb et al. 2016): the VAE slot gets exactly ∂(regularized −ELBO), the
classifier stays frozen in inference mode, and a missing or mismatched classifier is refused clearly.

The reference loss below is written from the reference code (train_celeba_vae.py): Gaussian NLLs with
log 2π, learned per-pixel and per-element log σ, summed over elements, averaged over the batch.
"""

import functools
import json
import math

import numpy as np
import pytest
import tensorflow_datasets as tfds

import jax
import jax.numpy as jnp

from genjax import data, pretrained, train
from genjax.checkpoint import Checkpointer
from genjax.errors import CheckpointError
from genjax.methods import classifier, discreg
from tests.helpers import assert_trees_close, load_config, network_gradients, one_device, random_batch, to_float64

PAPER_PRESETS = ("svhn", "cifar10", "celeba64")
LAYERS = ("conv2", "conv4", "conv6")


def random_values(shapes, seed):
  """Numpy values for a tree of jax.ShapeDtypeStructs, so that a network is tested without compiling its
  initializer: LeCun-normal kernels, BN statistics unlike any one batch's, log σ's far from 0, small
  other floats (biases, BN shifts and means: ReLUs stay alive), zero integers."""
  rng = np.random.default_rng(seed)

  def value(path, s):
    name = jax.tree_util.keystr(path)
    if not jnp.issubdtype(s.dtype, jnp.floating):
      return np.zeros(s.shape, s.dtype)
    if name.endswith("['kernel']"):
      v = rng.normal(size=s.shape) / np.sqrt(np.prod(s.shape[:-1]))
    elif name.endswith("['var']"):
      v = 0.5 + rng.uniform(size=s.shape)
    elif name.endswith("['scale']"):
      v = 1 + 0.1 * rng.normal(size=s.shape)
    elif "log_sigma" in name:  # so that a σ misplaced in an NLL shows
      v = 0.3 * rng.normal(size=s.shape)
    else:
      v = 0.02 * rng.normal(size=s.shape)
    return jnp.asarray(v, s.dtype)
  return jax.tree_util.tree_map_with_path(value, shapes)


def classifier_workdir(path, config, method="classifier", step=1) -> str:
  """A classifier run's workdir as the loop leaves it at `step` (`method` names the run's method), with
  random weights built without compiling anything."""
  shape = data.image_shape(config.data)
  example = {"image": np.zeros((1, *shape), np.float32)}
  template = jax.eval_shape(lambda: pretrained.classifier_state(config, jax.random.PRNGKey(0), example))
  checkpointer = Checkpointer(str(path), {"method": method, "image_shape": list(shape),
                                          "config": json.loads(config.to_json())})
  checkpointer.save(random_values(template, seed=0).replace(step=np.int32(step)))
  checkpointer.close()
  return str(path)


def discreg_config(preset="", workdir="", layers=None, **data):
  config = load_config("discreg", preset)
  config.unlock()
  config.data.update(data)
  config.discreg.classifier_workdir = workdir
  if layers is not None:
    config.discreg.layers = layers
  config.lock()
  return config


@pytest.fixture(scope="module")
def frozen():
  """A 16×16 classifier as load_classifier returns it."""
  config = load_config("classifier")
  config.unlock(); config.data.image_size = 16; config.lock()
  module = pretrained.classifier_network(config)
  shapes = jax.eval_shape(functools.partial(module.init, train=False), jax.random.PRNGKey(0),
                          jnp.zeros((1, 16, 16, 1)))
  return pretrained.TrainedClassifier(module, dict(random_values(shapes, seed=1)), {})


@pytest.fixture(scope="module")
def small(frozen):
  """A one-stage discreg state on 16×16 images with `frozen` as its classifier, and a batch."""
  config = discreg_config(image_size=16)
  config.unlock(); config.model.encoder_channels = (32,); config.lock()  # one stage: a quarter of the compile
  batch = jax.tree.map(jnp.asarray, random_batch(size=16))
  shapes = jax.eval_shape(lambda: discreg.create_state_with(config, jax.random.PRNGKey(0), batch, frozen))
  state = random_values(shapes, seed=2)
  return state.replace(extra={"classifier": frozen.variables}), batch


def _reference_loss(state, params, batch, rng, weights):
  """KL + pixel NLL + Σ_l w_l · feature NLL of layer l (w_l = 1 in the paper), spelled out as in the
  reference code; returns (loss, terms)."""
  def run(net, inputs):
    variables = {"params": params[net], "batch_stats": state.batch_stats[net]}
    return state.models[net].apply(variables, inputs, train=True, mutable=["batch_stats"])[0]

  def nll(a, b, log_sigma):  # −log N(a | b, exp(log σ)²), summed per example, batch mean
    per = 0.5 * (math.log(2 * math.pi) + 2 * log_sigma + (a - b) ** 2 / jnp.exp(2 * log_sigma))
    return jnp.mean(jnp.sum(per.reshape(len(a), -1), -1))

  x = batch["image"]
  mean, logvar = run("encoder", x)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape, mean.dtype)
  mu = run("decoder", z)
  net, frozen_variables = state.models["classifier"], state.extra["classifier"]
  d = net.apply(frozen_variables, x, train=False, features=True)
  d_hat = net.apply(frozen_variables, mu, train=False, features=True)
  terms = {"kl": jnp.mean(jnp.sum(0.5 * (jnp.exp(logvar) + mean ** 2 - 1 - logvar), -1)),
           "pixel_nll": nll(x, mu, params[discreg.PIXEL_LOG_SIGMA]),
           **{f"feature_nll/{l}": nll(d[l], d_hat[l], params[discreg.FEATURE_SIGMA][l]) for l in LAYERS}}
  loss = terms["kl"] + terms["pixel_nll"] + sum(w * terms[f"feature_nll/{l}"] for l, w in weights.items())
  return loss, terms


def test_feature_terms_match_a_hand_computed_gaussian_nll():
  rng = np.random.default_rng(0)
  real = {"conv2": rng.normal(size=(4, 3, 3, 2)), "conv6": rng.normal(size=(4, 1, 1, 5))}
  decoded = {k: rng.normal(size=v.shape) for k, v in real.items()}
  log_sigma = {"conv2": rng.normal(size=(3, 3, 2)), "conv6": rng.normal(size=(1, 1, 5))}
  got = discreg.feature_terms(real, decoded, log_sigma)
  for layer in real:
    s = log_sigma[layer]
    per_element = 0.5 * np.log(2 * np.pi) + s + 0.5 * (real[layer] - decoded[layer]) ** 2 / np.exp(2 * s)
    np.testing.assert_allclose(got[layer], per_element.reshape(4, -1).sum(-1).mean(), rtol=1e-5)


def test_the_vae_slot_gets_exactly_the_gradient_of_the_regularized_elbo(small):
  state, batch = small
  rng = jax.random.PRNGKey(7)
  with jax.enable_x64(True):  # float64 on both sides, so 1e-6 tests the terms, not round-off
    state, batch = to_float64(state), to_float64(batch)
    grads, metrics, _ = jax.jit(lambda s, b: network_gradients(discreg, s, b, rng, None))(state, batch)
    # Row 0 weighs every term 1 (the loss); row 1 drops conv6's, to show that a missing term is seen.
    weights = {l: jnp.array([1.0, float(l != "conv6")], jnp.float64) for l in LAYERS}
    reference = jax.grad(lambda p, w: _reference_loss(state, p, batch, rng, w), has_aux=True)
    expected, terms = jax.jit(jax.vmap(reference, in_axes=(None, 0)))(state.params, weights)
    without_conv6 = jax.tree.map(lambda g: g[1], expected)
    expected = jax.tree.map(lambda g: g[0], expected)
    assert set(grads) == set(state.params) == {"encoder", "decoder", discreg.PIXEL_LOG_SIGMA, discreg.FEATURE_SIGMA}
    assert_trees_close(grads, expected, atol=1e-6, rtol=1e-6)
    for name, value in terms.items():  # the learned-σ Gaussian NLLs and the KL, term by term
      np.testing.assert_allclose(metrics[name], value[0], rtol=1e-9, err_msg=name)
    np.testing.assert_allclose(metrics["loss"], sum(v[0] for v in terms.values()), rtol=1e-9)
    # Dropping one feature layer moves the decoder's gradient far beyond 1e-6: the classifier passes the
    # feature terms' gradients back to the decoder.
    moved = jax.tree.map(lambda a, b: np.max(np.abs(a - b)), grads["decoder"], without_conv6["decoder"])
    assert max(jax.tree.leaves(moved)) > 1e-4


def test_the_classifier_runs_in_inference_mode(small):
  state, batch = small
  features = jax.jit(discreg.classifier_features)
  full, part = features(state, batch["image"]), features(state, batch["image"][:3])
  assert_trees_close({k: v[:3] for k, v in full.items()}, part, atol=1e-5)  # population BN statistics
  assert_trees_close(full, features(state, batch["image"]), atol=0)        # no dropout


def test_no_layers_is_the_plain_vae_without_a_classifier(tmp_path):
  config = discreg_config(layers=(), workdir=str(tmp_path / "absent"), image_size=16)
  state = jax.eval_shape(lambda: discreg.init_state(config, jax.random.PRNGKey(0), random_batch(size=16)))
  assert "classifier" not in state.models and discreg.FEATURE_SIGMA not in state.params
  assert set(state.slots["vae"]) == {"encoder", "decoder", discreg.PIXEL_LOG_SIGMA}


def test_default_preset_runs_one_step_and_leaves_the_classifier_as_loaded(digits_dir, tmp_path):
  classifier_config = load_config("classifier")
  classifier_config.unlock(); classifier_config.data.update(image_size=16, data_dir=digits_dir); classifier_config.lock()
  config = discreg_config(workdir=classifier_workdir(tmp_path / "classifier", classifier_config),
                          data_dir=digits_dir, image_size=16)
  state = train.train_and_evaluate(config, str(tmp_path / "vae"), mesh=one_device())
  assert int(state.step) == 1
  # The VAE step left the classifier exactly as loaded: parameters and BN statistics.
  assert "classifier" not in state.params and "classifier" not in state.batch_stats
  assert_trees_close(state.extra["classifier"], pretrained.load_classifier(str(tmp_path / "classifier")).variables)
  results = json.loads((tmp_path / "vae" / "metrics.json").read_text())
  expected = {"loss", "kl", "pixel_nll", "pixel_mse", "feature_nll/conv2", "feature_nll/conv4",
              "feature_nll/conv6", "grad_norm/encoder", "grad_norm/decoder", "grad_norm/pixel_log_sigma",
              "grad_norm/feature_log_sigma"}
  assert expected <= set(results["train"]) and all(np.isfinite(v) for v in results["train"].values())
  assert (tmp_path / "vae" / "samples.png").exists() and (tmp_path / "vae" / "reconstructions.png").exists()


def test_train_classifier_trains_a_missing_classifier_first_then_reuses_it(tmp_path, monkeypatch):
  calls = []

  def fake_training(cfg, workdir, mesh=None):  # leaves what a finished run of the loop leaves
    calls.append(cfg)
    classifier_workdir(workdir, cfg, step=cfg.train.num_steps)
  monkeypatch.setattr(train, "train_and_evaluate", fake_training)
  config = discreg_config(workdir=str(tmp_path / "classifier"), image_size=16, data_dir="/data")
  config.unlock(); config.discreg.train_classifier = True; config.lock()
  for _ in range(2):  # the loop trains the prerequisite first (not the method's init), then finds it trained
    train.train_prerequisites(discreg.METHOD, config)
  trained = discreg.load_frozen_classifier(config)
  assert len(calls) == 1, "trained once, then loaded"
  assert calls[0].method == "classifier" and calls[0].data.to_dict() == config.data.to_dict()
  assert trained.image_shape == (16, 16, 1)


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_paper_presets_run_one_step_on_mock_data(preset, tmp_path):
  workdir = classifier_workdir(tmp_path / "classifier", load_config("classifier", preset))
  config = discreg_config(preset, workdir=workdir)
  with tfds.testing.mock_data(num_examples=16):
    state = train.train_and_evaluate(config, str(tmp_path / "vae"), mesh=one_device())
  assert int(state.step) == 1 and state.models["decoder"].image_shape[0] == config.data.image_size
  assert json.loads((tmp_path / "vae" / "metrics.json").read_text())["dataset"] == config.data.name


def test_the_classifier_config_is_the_preset_on_this_runs_data():
  config = discreg_config("svhn", workdir="runs/classifier_svhn", data_dir="/data")
  cfg = discreg.classifier_config(config)
  assert cfg.method == "classifier" and cfg.model.padding == "SAME"
  assert cfg.data.to_dict() == config.data.to_dict()
  assert discreg.train_command(config) == ("python -m genjax.main --config=configs/classifier.py:svhn "
                                           "--workdir=runs/classifier_svhn --config.data.data_dir=/data")


def test_a_missing_classifier_names_the_command_that_trains_it(digits_dir, tmp_path):
  config = discreg_config(workdir=str(tmp_path / "none"), data_dir=digits_dir, image_size=16)
  with pytest.raises(CheckpointError, match=(
      rf"^no classifier checkpoint in '{tmp_path}/none': train one with `python -m genjax.main "
      rf"--config=configs/classifier.py --workdir={tmp_path}/none --config.data.data_dir={digits_dir} "
      r"--config.data.image_size=16` \(or set --config.discreg.train_classifier=True\)$")):
    train.train_and_evaluate(config, str(tmp_path / "vae"), mesh=one_device())
  assert not (tmp_path / "vae" / "checkpoints").exists() and not (tmp_path / "none").exists()


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.data.update(image_size=32), r"trained on digits images of shape \(32, 32, 1\), but this run "
                                             r"models digits images of shape \(16, 16, 1\)"),
    (lambda c: c.data.update(name="mnist"), "trained on mnist images"),
])
def test_a_mismatched_classifier_is_refused(edit, message, tmp_path):
  classifier_config = load_config("classifier")
  classifier_config.unlock(); classifier_config.data.image_size = 16; edit(classifier_config); classifier_config.lock()
  config = discreg_config(workdir=classifier_workdir(tmp_path, classifier_config), image_size=16)
  with pytest.raises(CheckpointError, match=message) as error:
    discreg.init_state(config, jax.random.PRNGKey(0), random_batch(size=16))
  assert str(error.value).endswith("`python -m genjax.main --config=configs/classifier.py --workdir=NEW_DIR "
                                   "--config.data.image_size=16` and set --config.discreg.classifier_workdir=NEW_DIR")


def test_a_workdir_of_another_method_is_refused(tmp_path):
  classifier_config = load_config("classifier")
  classifier_config.unlock(); classifier_config.data.image_size = 16; classifier_config.lock()
  config = discreg_config(workdir=classifier_workdir(tmp_path, classifier_config, "discreg"), image_size=16)
  with pytest.raises(CheckpointError, match="holds a 'discreg' checkpoint, not a classifier"):
    discreg.init_state(config, jax.random.PRNGKey(0), random_batch(size=16))
