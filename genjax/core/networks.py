"""Building a method's networks and its TrainState in one compiled program."""

from typing import Any

import jax
import jax.numpy as jnp

from genjax.state import TrainState


def compute_dtype(config) -> Any:
  """The dtype networks compute in (parameters, optimizer states and losses stay float32)."""
  return jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32


def init_networks(models: dict[str, Any], rng: jax.Array, inputs: dict[str, tuple]) -> tuple[dict, dict]:
  """(params, batch_stats) of each named module on its example inputs, each with its own key.

  One jit for all networks: XLA:CPU compiles one program much faster than one per network.
  """
  @jax.jit
  def init_all(rng):
    variables = {name: module.init(jax.random.fold_in(rng, i), *inputs[name], train=False)
                 for i, (name, module) in enumerate(models.items())}
    params = {name: v["params"] for name, v in variables.items()}
    batch_stats = {name: v["batch_stats"] for name, v in variables.items() if "batch_stats" in v}
    return params, batch_stats
  return init_all(rng)


def create_state(rng: jax.Array, models: dict[str, Any], inputs: dict[str, tuple], tx: dict[str, Any], *,
                 slots=None, extra=None, params=None, trained=None) -> TrainState:
  """A TrainState at step 0: the networks of `trained` (default: every model) initialised on their
  example inputs with the first half of `rng`, plus `params` given as arrays (learned scales, pseudo-
  inputs); the second half of `rng` is the state's base key. One compiled program builds it all:
  networks, optimizer states and method state."""
  trained = models if trained is None else {net: models[net] for net in trained}

  @jax.jit
  def create(rng, inputs, params, extra):
    init_rng, state_rng = jax.random.split(rng)
    net_params, batch_stats = init_networks(trained, init_rng, inputs)
    return TrainState.create(params={**net_params, **params}, batch_stats=batch_stats, models=models,
                             tx=tx, slots=slots, extra=extra, rng=state_rng)
  return create(rng, {net: inputs[net] for net in trained}, dict(params or {}), dict(extra or {}))
