"""A supervised image classifier: the feature extractor of discriminative regularization (Lamb et al. 2016).

    L = −log softmax(f(x))_y                                    class labels (digits, MNIST, SVHN, CIFAR-10)
    L = −Σ_a [y_a log σ(f_a(x)) + (1 − y_a) log(1 − σ(f_a(x)))]  CelebA's 40 binary attributes

f is the reference classifier (genjax.nets.classifier.Classifier), trained with dropout and batch
statistics; `evaluate` scores it in inference mode (population BN statistics, no dropout) and
`load_classifier` gives another method the trained network, frozen, from its workdir.
The classifier does not generate: it has no `generate`.
"""

import dataclasses
import functools
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genjax import losses, optim
from genjax.checkpoint import Checkpointer
from genjax.config_lib import scale_width
from genjax.data import registry
from genjax.errors import CheckpointError, ConfigError
from genjax.methods import common
from genjax.nets import classifier as nets
from genjax.state import TrainState

NET = "classifier"
COMMAND = "python -m genjax.main --config=configs/classifier.py{preset} --workdir={workdir}"


def num_outputs(data_config) -> int:
  """Logits the dataset needs: one per attribute (CelebA), else one per class; 0 if it has neither."""
  spec = registry.get_spec(data_config.name)
  return spec.attributes or spec.num_classes


def targets(batch) -> tuple[jax.Array, bool]:
  """(targets, multilabel): CelebA's float 0/1 attributes where the batch has them, else int labels."""
  if "attributes" in batch:
    return batch["attributes"], True
  return batch["label"], False


def validate(config, image_shape) -> None:
  m, data = config.model, config.data
  if not num_outputs(data):
    raise ConfigError(f"dataset {data.name!r} has no labels or attributes to classify: set data.name to a "
                      "labelled dataset")
  if "unlabel" in data.split:
    raise ConfigError(f"split {data.split!r} of {data.name!r} has no labels: set data.split to a labelled split")
  if m.arch not in nets.ARCHITECTURES:
    raise ConfigError(f"model.arch must be one of {nets.ARCHITECTURES}, got {m.arch!r}")
  if m.padding not in nets.PADDINGS:
    raise ConfigError(f"model.padding must be one of {nets.PADDINGS}, got {m.padding!r}")
  if not 0 <= m.dropout < 1:
    raise ConfigError(f"model.dropout must be in [0, 1), got {m.dropout}")
  if len(m.channels) != len(nets.CONV_SPECS):
    raise ConfigError(f"model.channels must list {len(nets.CONV_SPECS)} conv widths, got {tuple(m.channels)}")
  try:
    nets.feature_sizes(min(image_shape[:2]), m.padding)
  except ValueError as e:
    raise ConfigError(f"data.image_size: {e}") from None


def build(config) -> nets.Classifier | nets.MLPClassifier:
  """The config's classifier (works on a config rebuilt from a checkpoint's JSON too)."""
  m = config.model
  if m.get("arch", "lamb") == "mlp":
    return nets.MLPClassifier(num_outputs=num_outputs(config.data), hidden=scale_width([m.hidden], m.width)[0],
                              dropout_rate=m.dropout, dtype=common.compute_dtype(config))
  return nets.Classifier(num_outputs=num_outputs(config.data),
                         channels=scale_width(m.channels, m.width), hidden=scale_width([m.hidden], m.width)[0],
                         padding=m.padding, dropout_rate=m.dropout, dtype=common.compute_dtype(config))


def init_state(config, rng: jax.Array, batch) -> TrainState:
  init_rng, state_rng = jax.random.split(rng)
  models = {NET: build(config)}
  params, batch_stats = common.init_networks(models, init_rng, {NET: (jnp.asarray(batch["image"][:1]),)})
  return TrainState.create(params=params, batch_stats=batch_stats, models=models,
                           tx={NET: optim.make_optimizer(config.optim[NET])}, rng=state_rng)


def loss_and_accuracy(logits: jax.Array, batch) -> tuple[jax.Array, jax.Array]:
  """Cross-entropy and accuracy (CelebA: the mean over the 40 attributes)."""
  y, multilabel = targets(batch)
  if multilabel:
    return losses.multilabel_bce(logits, y), jnp.mean((logits > 0) == (y > 0.5))
  return losses.softmax_cross_entropy(logits, y), jnp.mean(jnp.argmax(logits, -1) == y)


def loss_fn(state: TrainState, params, batch, rng: jax.Array):
  logits, batch_stats = state.forward(NET, params, batch["image"], rngs={"dropout": rng})
  loss, accuracy = loss_and_accuracy(logits, batch)
  return loss, ({"loss": loss, "accuracy": accuracy.astype(jnp.float32)}, batch_stats)


def make_train_step(config):
  del config  # everything the step needs is in the state
  return common.gradient_step(loss_fn, "dropout")


def evaluate(state: TrainState, batch) -> dict[str, jax.Array]:
  """Test loss and accuracy in inference mode (population BN statistics, no dropout)."""
  loss, accuracy = loss_and_accuracy(state.apply(NET, batch["image"]), batch)
  return {"accuracy": accuracy.astype(jnp.float32), "loss": loss}


def features(module: nets.Classifier, variables, images: jax.Array) -> dict[str, jax.Array]:
  """{layer: BN output of that strided conv} in inference mode; differentiable in `images`."""
  return module.apply(variables, images, train=False, features=True)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainedClassifier:
  """A trained classifier, frozen: the module, its variables {"params", "batch_stats"} and its run's meta."""
  module: nets.Classifier | nets.MLPClassifier
  variables: dict[str, Any]
  meta: dict[str, Any]
  accuracy: float | None = None  # test accuracy from its run's metrics.json (None if unknown)

  @property
  def image_shape(self) -> tuple[int, ...]:
    return tuple(self.meta["image_shape"])

  @property
  def dataset(self) -> str:
    return self.meta["config"]["data"]["name"]

  def fits(self, data_config) -> bool:
    """Whether it was trained on this data config's images: same TFDS dataset, same shape."""
    return (self.image_shape == registry.image_shape(data_config)
            and registry.get_spec(self.dataset).tfds_name == registry.get_spec(data_config.name).tfds_name)

  def features(self, images) -> dict[str, jax.Array]:
    return _jit_features(self.module, self.variables, jnp.asarray(images))

  def logits(self, images) -> jax.Array:
    return _jit_logits(self.module, self.variables, jnp.asarray(images))

  def embed(self, images) -> tuple[jax.Array, jax.Array]:
    """(embedding, logits): the last hidden layer (the evaluation's feature space) and the logits."""
    return _jit_embed(self.module, self.variables, jnp.asarray(images))


_jit_features = jax.jit(features, static_argnums=0)
_jit_logits = jax.jit(lambda module, variables, images: module.apply(variables, images, train=False),
                      static_argnums=0)
_jit_embed = jax.jit(lambda module, variables, images: module.apply(variables, images, train=False, embedding=True),
                     static_argnums=0)


def load_classifier(workdir: str, command: str | None = None, hint: str = "") -> TrainedClassifier:
  """The classifier of `workdir`'s latest checkpoint.

  Raises CheckpointError when there is none or when the workdir belongs to another method, naming
  `command`, the one that trains it (plus `hint`).
  """
  command = f"`{command or COMMAND.format(preset='[:preset]', workdir=workdir)}`{hint}"
  checkpointer = Checkpointer(workdir, meta={})
  try:
    meta = checkpointer.latest_meta()
    if meta is None:
      raise CheckpointError(f"no classifier checkpoint in {workdir!r}: train one with {command}")
    if meta.get("method") != NET:
      raise CheckpointError(f"{workdir!r} holds a {meta.get('method')!r} checkpoint, not a classifier: "
                            f"train one with {command}")
    config = ml_collections.ConfigDict(meta["config"])
    example = {"image": np.zeros((1, *meta["image_shape"]), np.float32)}
    template = jax.eval_shape(lambda: init_state(config, jax.random.PRNGKey(0), example))  # shapes only
    checkpointer.meta = meta
    state = checkpointer.restore(template)
  finally:
    checkpointer.close()
  variables = {"params": state.params[NET], "batch_stats": state.batch_stats[NET]}
  return TrainedClassifier(module=state.models[NET], variables=variables, meta=meta,
                           accuracy=_test_accuracy(workdir, int(jax.device_get(state.step))))


def _test_accuracy(workdir: str, step: int) -> float | None:
  """The test accuracy its run recorded in metrics.json at this checkpoint's step (None if it has none)."""
  try:
    with open(os.path.join(workdir, "metrics.json")) as f:
      results = json.load(f)
  except (OSError, ValueError):
    return None
  accuracy = results.get("eval", {}).get("accuracy")
  return accuracy if results.get("step") == step else None
