"""One way to write a train step: losses → each network's own gradient → one update.

A method states its objective as phases. A phase is one gradient update in which every network it
trains descends its own loss:

    losses(state, params, batch, rng) -> (own, Aux(metrics, batch_stats))

`own` maps a network (or an optimizer slot, for the networks it owns together, e.g. a VAE's encoder,
decoder and σ) to its loss. One forward pass and one `jax.vjp` give every gradient: pulling back a
one-hot cotangent on own[k] yields ∂own[k]/∂params of k's networks, the other networks' parameters being
constants in it; the other parts of each pull-back are dead code that XLA drops. So a network never
receives a gradient of another network's loss (pythae's VAEGAN trainer does; REFERENCES.md §2).

Around the gradients a phase may
  gate      rest optimizer slots this step (Larsen's equilibrium gating): gates(metrics) -> {slot: bool}
  update    method state after the gradients (BEGAN's and Khan's k_t controllers, a condition bank):
            update(state, batch, metrics) -> (extra updates, more metrics)
and a multi-phase step (Wang et al.'s prior and AAE phases) runs its phases in turn, each seeing the
previous one's parameters. The step counter moves once per train step, here and nowhere else, so the
per-step noise `state.step_rng(name)` is the same whoever calls the step: the loop, `lax.scan`, a user.
"""

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from genjax.state import TrainState

Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]


class Aux(NamedTuple):
  """What a losses function returns besides the losses: terms to log, and new BatchNorm statistics."""
  metrics: Metrics
  batch_stats: dict[str, Any] = {}


LossesFn = Callable[[TrainState, dict[str, Any], Batch, jax.Array], tuple[dict[str, jax.Array], Aux]]


@dataclasses.dataclass(frozen=True)
class Phase:
  """One gradient update: `losses` gives each trained network (or slot) its own loss.

  Attributes:
    losses: (state, params, batch, rng) -> (own losses, Aux); params are the differentiated ones.
    rng: name of the step's noise stream it draws from (`state.step_rng(rng)`).
    trains: the networks it differentiates and whose BatchNorm statistics it keeps; None: every network
      (the rest are constants of the phase).
    gates: metrics -> {slot: bool}; a False slot keeps its parameters and optimizer state this step.
    update: (state, batch, metrics) -> (extra updates, more metrics), after the gradients.
    name: suffix of its gradient-norm metrics when a step has several phases.
  """
  losses: LossesFn
  rng: str = "z"
  trains: tuple[str, ...] | None = None
  gates: Callable[[Metrics], dict[str, jax.Array]] | None = None
  update: Callable[[TrainState, Batch, Metrics], tuple[dict[str, Any], Metrics]] | None = None
  name: str = ""


def own_gradients(losses_fn, params: dict[str, Any], slots: Mapping[str, Sequence[str]]):
  """{network: ∂own[k]/∂params[network]} for each key k of `losses_fn(params) -> (own, aux)`, k being a
  network or a slot (then each of its networks); returns (grads, aux). One forward pass, one vjp."""
  own, vjp_fn, aux = jax.vjp(losses_fn, params, has_aux=True)
  grads = {}
  for key in own:
    one_hot = {k: jnp.asarray(k == key, v.dtype) for k, v in own.items()}
    pulled = vjp_fn(one_hot)[0]
    for net in networks_of(key, slots, params):
      grads[net] = pulled[net]
  return grads, aux


def networks_of(key: str, slots: Mapping[str, Sequence[str]], params) -> tuple[str, ...]:
  """The networks a loss key trains: a network itself, or every network of a slot."""
  if key in params:
    return (key,)
  if key in slots:
    return tuple(slots[key])
  raise KeyError(f"loss {key!r} names neither a network ({', '.join(params)}) nor a slot ({', '.join(slots)})")


def phase_gradients(phase: Phase, state: TrainState, batch: Batch, rng: jax.Array | None = None):
  """(grads, Aux) of one phase: each trained network's gradient of its own loss at `state`, with the
  step's noise (or `rng`)."""
  rng = state.step_rng(phase.rng) if rng is None else rng
  if phase.trains is None:
    return own_gradients(lambda p: phase.losses(state, p, batch, rng), state.params, state.slots)
  trained = {net: state.params[net] for net in phase.trains}
  grads, (metrics, stats) = own_gradients(
      lambda p: phase.losses(state, {**state.params, **p}, batch, rng), trained, state.slots)
  return grads, Aux(metrics, {net: s for net, s in stats.items() if net in phase.trains})


def grad_norms(grads: Mapping[str, Any], slots: Mapping[str, Sequence[str]], suffix: str = "") -> Metrics:
  """grad_norm/<network> of every updated network, and grad_norm/<slot> of a slot of several."""
  norms = {f"grad_norm/{net}{suffix}": optax.global_norm(g) for net, g in grads.items()}
  for slot, nets in slots.items():
    if len(nets) > 1 and all(n in grads for n in nets):
      norms[f"grad_norm/{slot}{suffix}"] = optax.global_norm({n: grads[n] for n in nets})
  return norms


def apply_phase(phase: Phase, state: TrainState, batch: Batch, suffix: str = "") -> tuple[TrainState, Metrics]:
  """One phase's update of `state` (the step counter stays): gradients, gates, the method's update."""
  grads, aux = phase_gradients(phase, state, batch)
  metrics = dict(aux.metrics)
  active, extra = None, {}
  if phase.gates is not None:
    active = phase.gates(metrics)
    metrics.update({f"gate/{slot}": flag.astype(jnp.float32) for slot, flag in active.items()})
  if phase.update is not None:
    extra, more = phase.update(state, batch, metrics)
    metrics.update(more)
  metrics.update(grad_norms(grads, state.slots, suffix))
  return state.apply_gradients(grads, active=active, batch_stats=aux.batch_stats, extra=extra), metrics


def build_train_step(phases: Sequence[Phase]):
  """train_step(state, batch) -> (state, metrics) running `phases` in turn, then step + 1. Pure: jit it,
  scan it, shard it."""
  phases = tuple(phases)

  def train_step(state: TrainState, batch: Batch):
    metrics = {}
    for phase in phases:
      suffix = f"_{phase.name}" if phase.name and len(phases) > 1 else ""
      state, phase_metrics = apply_phase(phase, state, batch, suffix)
      metrics.update(phase_metrics)
    return state.replace(step=state.step + 1), metrics

  return train_step
