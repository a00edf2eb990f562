"""Frozen networks trained by another genjax run, loaded from its workdir.

A classifier run (configs/classifier.py) gives two other parts their feature extractor: discriminative
regularization's feature terms (genjax.methods.discreg) and the evaluation's classifier FID
(genjax.evaluation.evaluator). Both load it here, by workdir, frozen: inference-mode BatchNorm, no
dropout, parameters that no optimizer touches.
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

from genjax import optim
from genjax.checkpoint import Checkpointer
from genjax.core.networks import compute_dtype, create_state
from genjax.data import registry
from genjax.errors import CheckpointError
from genjax.nets import classifier as nets
from genjax.nets import scale_width

NET = "classifier"
COMMAND = "python -m genjax.main --config=configs/classifier.py{preset} --workdir={workdir}"


def num_outputs(data_config) -> int:
  """Logits the dataset needs: one per attribute (CelebA), else one per class; 0 if it has neither."""
  spec = registry.get_spec(data_config.name)
  return spec.attributes or spec.num_classes


def classifier_network(config) -> nets.Classifier | nets.MLPClassifier:
  """The config's classifier (works on a config rebuilt from a checkpoint's JSON too)."""
  m = config.model
  if m.get("arch", "lamb") == "mlp":
    return nets.MLPClassifier(num_outputs=num_outputs(config.data), hidden=scale_width([m.hidden], m.width)[0],
                              dropout_rate=m.dropout, dtype=compute_dtype(config))
  return nets.Classifier(num_outputs=num_outputs(config.data), channels=scale_width(m.channels, m.width),
                         hidden=scale_width([m.hidden], m.width)[0], padding=m.padding, dropout_rate=m.dropout,
                         dtype=compute_dtype(config))


def classifier_state(config, rng: jax.Array, batch):
  """A classifier run's TrainState at step 0 (also the template its checkpoints restore into)."""
  x = jnp.asarray(batch["image"][:1])
  return create_state(rng, {NET: classifier_network(config)}, {NET: (x,)},
                      {NET: optim.make_optimizer(config.optim[NET])})


def features(module: nets.Classifier, variables, images: jax.Array) -> dict[str, jax.Array]:
  """{layer: BN output of that strided conv} in inference mode; differentiable in `images`."""
  return module.apply(variables, images, train=False, features=True)


@dataclasses.dataclass(frozen=True, eq=False)
class TrainedClassifier:
  """A trained classifier, frozen: the module, its variables {"params", "batch_stats"}, its run's meta and
  the test accuracy its run recorded (None if unknown)."""
  module: nets.Classifier | nets.MLPClassifier
  variables: dict[str, Any]
  meta: dict[str, Any]
  accuracy: float | None = None

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


def latest_step(workdir: str) -> int | None:
  """The step of `workdir`'s latest checkpoint (None if it has none)."""
  checkpointer = Checkpointer(workdir, meta={})
  try:
    return checkpointer.latest_step()
  finally:
    checkpointer.close()


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
    template = jax.eval_shape(functools.partial(classifier_state, config, jax.random.PRNGKey(0), example))
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
