"""A supervised image classifier: the feature extractor of discriminative regularization (Lamb et al. 2016)
and of the evaluation's classifier FID.

    L = −log softmax(f(x))_y                                    class labels (digits, MNIST, SVHN, CIFAR-10)
    L = −Σ_a [y_a log σ(f_a(x)) + (1 − y_a) log(1 − σ(f_a(x)))]  CelebA's 40 binary attributes

f is the reference classifier of Lamb et al. (genjax.nets.classifier.Classifier) or, `model.arch="mlp"`,
a two-hidden-layer MLP (the evaluation's second, independent extractor), trained with dropout and batch
statistics; `evaluate` scores it in inference mode (population BN statistics, no dropout), and
genjax.pretrained gives other runs the trained network, frozen, from its workdir. It does not generate.
"""

import jax
import jax.numpy as jnp

from genjax import losses, pretrained
from genjax.core.method import Method
from genjax.core.step import Aux, Phase
from genjax.errors import ConfigError
from genjax.nets import classifier as nets

NET = pretrained.NET


def targets(batch) -> tuple[jax.Array, bool]:
  """(targets, multilabel): CelebA's float 0/1 attributes where the batch has them, else int labels."""
  if "attributes" in batch:
    return batch["attributes"], True
  return batch["label"], False


def validate(config, image_shape) -> None:
  m, data = config.model, config.data
  if not pretrained.num_outputs(data):
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


def loss_and_accuracy(logits: jax.Array, batch) -> tuple[jax.Array, jax.Array]:
  """Cross-entropy and accuracy (CelebA: the mean over the 40 attributes)."""
  y, multilabel = targets(batch)
  if multilabel:
    return losses.multilabel_bce(logits, y), jnp.mean((logits > 0) == (y > 0.5))
  return losses.softmax_cross_entropy(logits, y), jnp.mean(jnp.argmax(logits, -1) == y)


def cross_entropy(state, params, batch, rng: jax.Array):
  """{classifier: its cross-entropy} with dropout from `rng`, and Aux(loss and accuracy, BN statistics)."""
  logits, batch_stats = state.forward(NET, params, batch["image"], rngs={"dropout": rng})
  loss, accuracy = loss_and_accuracy(logits, batch)
  return {NET: loss}, Aux({"loss": loss, "accuracy": accuracy.astype(jnp.float32)}, batch_stats)


def objective(config):
  del config  # everything the step needs is in the state
  return [Phase(cross_entropy, rng="dropout")]


def evaluate(state, batch) -> dict[str, jax.Array]:
  """Test loss and accuracy in inference mode (population BN statistics, no dropout)."""
  loss, accuracy = loss_and_accuracy(state.apply(NET, batch["image"]), batch)
  return {"accuracy": accuracy.astype(jnp.float32), "loss": loss}


METHOD = Method(name="classifier", init_state=pretrained.classifier_state, objective=objective, validate=validate,
                evaluate=evaluate, progress=("loss", "accuracy"))
