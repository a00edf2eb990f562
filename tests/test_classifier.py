"""The Lamb et al. classifier: it learns digits, its features load back from the workdir, bad input is refused."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

import jax
import jax.numpy as jnp

from genjax import pretrained, train, validation
from genjax.checkpoint import Checkpointer
from genjax.errors import CheckpointError, ConfigError
from genjax.methods import classifier
from genjax.nets import classifier as nets
from tests.helpers import assert_trees_close, load_config, one_device, random_batch

PAPER_PRESETS = ("mnist", "svhn", "cifar10", "celeba64")


def small_config(preset="", **data):
  config = load_config("classifier", preset)
  config.unlock()
  config.data.update(data)
  config.lock()
  return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_dir):
  """The default preset on 16×16 digits at width 1/4, a couple of hundred steps through the loop."""
  workdir = str(tmp_path_factory.mktemp("classifier"))
  config = small_config(data_dir=digits_dir, image_size=16)
  config.unlock()
  config.model.update(width=0.25, dropout=0.1)  # dropout 0.5 starves a net this narrow
  config.batch_size = 32
  config.train.update(num_steps=200, log_every=200, checkpoint_every=200, image_every=200)
  config.lock()
  state = train.train_and_evaluate(config, workdir, mesh=one_device())
  return config, state, workdir


def test_reaches_90_percent_test_accuracy_on_digits(trained):
  _, state, workdir = trained
  results = json.loads(open(f"{workdir}/metrics.json").read())
  assert int(state.step) == 200
  assert results["eval"]["accuracy"] >= 0.90, results["eval"]
  assert results["eval"]["loss"] < 0.5


def test_loader_returns_the_trained_network_and_its_features(trained):
  config, state, workdir = trained
  loaded = pretrained.load_classifier(workdir)
  assert loaded.image_shape == (16, 16, 1) and loaded.dataset == "digits"
  assert_trees_close(loaded.variables["params"], state.params["classifier"])
  assert_trees_close(loaded.variables["batch_stats"], state.batch_stats["classifier"])
  images = jnp.asarray(random_batch(size=16)["image"])
  expected = pretrained.features(state.models["classifier"], state.variables("classifier"), images)
  got = loaded.features(images)
  assert sorted(got) == list(nets.FEATURE_LAYERS)
  assert_trees_close(got, expected, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(loaded.logits(images), state.apply("classifier", images), atol=1e-5)


def test_features_are_pre_relu_batch_norm_outputs_in_inference_mode(trained):
  _, state, _ = trained
  images = jnp.asarray(random_batch(size=16)["image"])
  module, variables = state.models["classifier"], state.variables("classifier")
  features = jax.jit(pretrained.features, static_argnums=0)
  full = features(module, variables, images)
  alone = features(module, variables, images[:3])  # population statistics: no batch coupling
  assert_trees_close({k: v[:3] for k, v in full.items()}, alone, atol=1e-5)
  assert all(float(jnp.min(v)) < 0 for v in full.values()), "pre-ReLU features have negative values"
  assert {k: v.shape[1:3] for k, v in full.items()} == {"conv2": (8, 8), "conv4": (4, 4), "conv6": (2, 2)}
  # Training mode uses dropout from the "dropout" rng: two keys, two losses.
  batch = jax.tree.map(jnp.asarray, random_batch(size=16))
  loss = jax.jit(lambda rng: classifier.cross_entropy(state, state.params, batch, rng)[0]["classifier"])
  assert float(loss(jax.random.PRNGKey(1))) != float(loss(jax.random.PRNGKey(2)))


def test_attribute_loss_and_accuracy_match_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(5, 40)).astype(np.float32)
  attributes = (rng.uniform(size=(5, 40)) > 0.5).astype(np.float32)
  loss, accuracy = classifier.loss_and_accuracy(jnp.asarray(logits), {"label": np.zeros(5, np.int32),
                                                                       "attributes": attributes})
  p = 1 / (1 + np.exp(-logits))
  bce = -(attributes * np.log(p) + (1 - attributes) * np.log(1 - p)).sum(-1).mean()
  np.testing.assert_allclose(loss, bce, rtol=1e-5)
  np.testing.assert_allclose(accuracy, ((logits > 0) == (attributes > 0.5)).mean(), rtol=1e-6)
  labels = rng.integers(0, 40, 5)
  loss, accuracy = classifier.loss_and_accuracy(jnp.asarray(logits), {"label": labels})
  log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  np.testing.assert_allclose(loss, -log_softmax[np.arange(5), labels].mean(), rtol=1e-5)
  np.testing.assert_allclose(accuracy, (logits.argmax(-1) == labels).mean())


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_paper_presets_run_one_step_on_mock_data(preset, tmp_path):
  config = load_config("classifier", preset)
  with tfds.testing.mock_data(num_examples=16):  # one device: halves the compile time
    state = train.train_and_evaluate(config, str(tmp_path), mesh=one_device())
  results = json.loads((tmp_path / "metrics.json").read_text())
  assert int(state.step) == 1 and results["dataset"] == config.data.name
  assert 0 <= results["eval"]["accuracy"] <= 1 and np.isfinite(results["eval"]["loss"])
  outputs = 40 if preset == "celeba64" else 10   # CelebA: one logit per attribute
  assert state.params["classifier"]["logits"]["kernel"].shape[-1] == outputs


@pytest.mark.parametrize("padding,size,ok", [
    ("VALID", 16, False), ("VALID", 32, True), ("VALID", 64, True), ("SAME", 16, True),
])
def test_image_sizes_the_unpadded_convs_can_take(padding, size, ok):
  config = small_config(image_size=size)
  config.unlock(); config.model.padding = padding; config.lock()
  if ok:
    validation.validate(config, num_devices=8)
    assert nets.feature_sizes(size, padding)[-1] >= 1
  else:
    with pytest.raises(ConfigError, match=r"data.image_size: image size 16 is too small.*padding 'SAME'"):
      validation.validate(config, num_devices=8)


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.data.update(name="stl10", split="unlabelled"), "split 'unlabelled' of 'stl10' has no labels"),
    (lambda c: c.model.update(padding="FULL"), "model.padding"),
    (lambda c: c.model.update(dropout=1.0), "model.dropout"),
])
def test_bad_values_are_refused(edit, message):
  config = small_config()
  config.unlock()
  edit(config)
  with pytest.raises(ConfigError, match=message):
    validation.validate(config, num_devices=8)


def test_loading_an_empty_or_foreign_workdir_names_the_training_command(trained, tmp_path):
  with pytest.raises(CheckpointError, match=r"no classifier checkpoint in .*: train one with "
                                            r"`python -m genjax.main --config=configs/classifier.py\[:preset\]"):
    pretrained.load_classifier(str(tmp_path / "nothing"))
  _, state, _ = trained
  checkpointer = Checkpointer(str(tmp_path / "vae"), {"method": "vae", "image_shape": [16, 16, 1], "config": {}})
  checkpointer.save(state)
  checkpointer.close()
  with pytest.raises(CheckpointError, match="holds a 'vae' checkpoint, not a classifier"):
    pretrained.load_classifier(str(tmp_path / "vae"))
