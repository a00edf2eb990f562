"""The condition s of a learned prior p(z | s) (Wang et al. 2020's conditional variants): where it comes
from, and which networks see it.

  "none"         unconditional
  "label"        supervised: s = the one-hot class of each example
  "categorical"  unsupervised: s ~ Categorical(K), drawn, label-agnostic
  "vector"       any per-example float feature batch["condition"] (text-to-image's sentence embeddings,
                 generalised)

`prior` below is genjax.nets.aae.Prior, the parameter-free description of p(z) kept in the state's models.
A vector-conditioned state keeps the condition vectors of its latest batch (`extra["conditions"]`), so
that generation without a condition samples the conditions the model was trained on.
"""

import jax
import jax.numpy as jnp

from genjax.errors import DataError

BANK = "conditions"
BANK_SIZE = 10  # vector conditions kept from the latest batch: generate's default and the grid's rows


def check_size(condition, size: int, what: str, error=ValueError) -> None:
  if condition.ndim != 2 or condition.shape[-1] != size:
    raise error(f"{what} must be a float array [N, {size}] (model.condition_dim = {size}), "
                f"got shape {tuple(condition.shape)}")


def for_code_discriminator(prior, s):
  """D_C sees s when it comes with the data (label, vector); it is label-agnostic otherwise."""
  return s if prior.condition in ("label", "vector") else None


def for_image_discriminator(prior, s):
  """D_I takes a condition vector as an input; class conditions are scored by its Q head instead."""
  return s if prior.condition == "vector" else None


def twice(s):
  """The condition of a [real; generated] batch: s twice (None stays None)."""
  return None if s is None else jnp.concatenate([s, s])


def from_data(prior, batch):
  """The batch's condition vectors [N, D]; DataError when the dataset has none or of another size."""
  if "condition" not in batch:
    raise DataError(f"model.condition='vector' needs a float feature \"condition\" [N, {prior.condition_dim}] "
                    "in every example, and this dataset has none: pick a dataset that has one, or another "
                    "model.condition")
  check_size(batch["condition"], prior.condition_dim, 'the dataset\'s "condition" feature', DataError)
  return batch["condition"].astype(prior.dtype)


def of_batch(prior, batch, rng: jax.Array):
  """(s [N, D] or None, class index [N] or None) of a training batch."""
  if prior.condition == "label":
    return jax.nn.one_hot(batch["label"], prior.condition_dim, dtype=prior.dtype), batch["label"]
  if prior.condition == "categorical":
    return prior.random_condition(rng, batch["image"].shape[0])
  if prior.condition == "vector":
    return from_data(prior, batch), None
  return None, None


def initial_bank(prior, batch) -> dict:
  """The state's condition bank at init: the example batch's vectors, repeated ({} unless "vector")."""
  if prior.condition != "vector":
    return {}
  return {BANK: jnp.resize(from_data(prior, batch), (BANK_SIZE, prior.condition_dim))}


def latest_bank(state, batch) -> dict:
  """The bank after a training batch: its first BANK_SIZE condition vectors ({} unless "vector")."""
  prior = state.models["prior"]
  if prior.condition != "vector":
    return {}
  kept = jnp.concatenate([from_data(prior, batch), state.extra[BANK]])
  return {BANK: kept[:BANK_SIZE]}


def for_generation(state, rng: jax.Array, num: int, condition):
  """s for generation: given (class indices [num], or one-hot / vectors [num, D]) or drawn: classes and
  categories uniformly, vectors from those of the latest training batch."""
  prior = state.models["prior"]
  if prior.condition == "none":
    return None
  if condition is None:
    if prior.condition == "vector":
      return state.extra[BANK][jax.random.randint(rng, (num,), 0, BANK_SIZE)]
    return prior.random_condition(rng, num)[0]
  condition = jnp.asarray(condition)
  if prior.categorical and condition.ndim == 1:
    return jax.nn.one_hot(condition, prior.condition_dim, dtype=prior.dtype)
  check_size(condition, prior.condition_dim, "generate: condition")
  return condition.astype(prior.dtype)


def grid_rows(state):
  """(grid name, one condition per row): every class or category, or the bank's vectors; None if the prior
  is not conditional."""
  prior = state.models["prior"]
  if not prior.learned or prior.condition == "none":
    return None
  if prior.condition == "vector":
    return "condition_grid", state.extra[BANK]
  return "label_grid", jnp.eye(prior.condition_dim, dtype=prior.dtype)
