"""The method contract: one frozen record per method, exported by its module as `METHOD`.

Required: how to build the state, and the objective the train step descends. Optional hooks are None
when a method cannot do that (a classifier does not generate; a GAN has no encoder), and every caller
asks `method.generate is not None` rather than probing the module. tests/test_contract.py checks every
registered method against this record.
"""

import dataclasses
import functools
from typing import Any, Callable, Mapping, Sequence

import jax

from genjax.core import step as step_lib
from genjax.data import registry
from genjax.errors import DataError
from genjax.state import TrainState

Images = jax.Array


@dataclasses.dataclass(frozen=True)
class Prerequisite:
  """A run another run needs first (discreg's frozen classifier): its config and workdir."""
  what: str
  config: Any
  workdir: str


@dataclasses.dataclass(frozen=True)
class Method:
  """Everything the loop, the evaluator and the figures may call on a method.

  Attributes:
    name: the `config.method` it answers to.
    init_state: (config, rng, batch) -> TrainState; batch: one real example with every feature.
    objective: config -> the phases of its train step (genjax.core.step.Phase).
    validate: (config, image_shape) -> None; raises ConfigError for values the method cannot take.
    generate: (state, rng, num, condition=None) -> images in [-1, 1].
    encode: (state, images) -> codes;  decode: (state, codes) -> images;  reconstruct: (state, images)
      -> images.
    sample_codes: (state, rng, num, condition=None) -> codes of the prior (t-SNE against encoder codes).
    sample_grids: (state, rng) -> {name: images [rows, cols, H, W, C]}, extra grids (label × noise).
    evaluate: (state, batch) -> {name: mean over the batch}; the loop averages it over the eval split.
    log_importance_weights: (state, images, rng, num_samples) -> log w [K, N] (the evaluator's "nll").
    prerequisites: config -> runs to train first (Prerequisite), e.g. discreg's classifier.
    progress: the metrics the progress line shows, besides steps/s and ETA.
  """
  name: str
  init_state: Callable[[Any, jax.Array, Any], TrainState]
  objective: Callable[[Any], Sequence[step_lib.Phase]]
  validate: Callable[[Any, tuple[int, ...]], None] | None = None
  generate: Callable[..., Images] | None = None
  encode: Callable[[TrainState, Images], jax.Array] | None = None
  decode: Callable[[TrainState, jax.Array], Images] | None = None
  reconstruct: Callable[[TrainState, Images], Images] | None = None
  sample_codes: Callable[..., jax.Array] | None = None
  sample_grids: Callable[[TrainState, jax.Array], dict[str, Images]] | None = None
  evaluate: Callable[[TrainState, Any], dict[str, jax.Array]] | None = None
  log_importance_weights: Callable[[TrainState, Images, jax.Array, int], jax.Array] | None = None
  prerequisites: Callable[[Any], Sequence[Prerequisite]] | None = None
  progress: tuple[str, ...] = ()

  def __post_init__(self):
    object.__setattr__(self, "init_state", _checking_the_batch(self.init_state))

  def make_train_step(self, config):
    """The pure train step (state, batch) -> (state, metrics) of `config`: jit it, scan it, shard it."""
    return step_lib.build_train_step(self.objective(config))


def _checking_the_batch(init_state):
  """`init_state` that first checks the example batch against the config: networks size themselves from
  the batch, so 8×8 images under `data.image_size=32` would otherwise train an 8×8 model silently."""
  if getattr(init_state, "checks_the_batch", False):
    return init_state

  @functools.wraps(init_state)
  def checked(config, rng, batch):
    expected = registry.image_shape(config.data)
    got = tuple(getattr(batch.get("image"), "shape", ())[1:]) if isinstance(batch, Mapping) else ()
    if got != tuple(expected):
      raise DataError(f"the example batch's images are {got or 'missing'} per example, but the config asks for "
                      f"{tuple(expected)} (data.image_size and {config.data.name}'s channels): pass a batch "
                      f'{{"image": float32 [B, {", ".join(map(str, expected))}] in [-1, 1], ...}} or set '
                      "--config.data.image_size (and data.name) to match your images")
    return init_state(config, rng, batch)
  checked.checks_the_batch = True
  return checked
