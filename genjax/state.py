"""TrainState: the one pytree every method trains.

Flax's own TrainState holds one optimizer; a hybrid of a VAE and a GAN has several, so this is the fork
its docstring recommends (cf. magvit's VQGANTrainState): named networks, named optimizer slots, static
optax transforms and modules, and free-form method state in `extra`. The pytree field names are the
checkpoint schema.
"""

import zlib
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax
from flax import struct


class TrainState(struct.PyTreeNode):
  """Parameters, optimizer states and method state of one training run.

  Attributes:
    step: number of train steps taken (int32 scalar).
    params: {network name: params}, e.g. {"encoder": ..., "decoder": ..., "discriminator": ...}.
    batch_stats: {network name: BatchNorm statistics} (networks without BN are absent).
    opt_state: {slot name: optax state}; a slot optimizes one or several networks.
    rng: base PRNG key; the key of step t is `fold_in(rng, t)` so a resumed run draws the same noise.
    extra: method state that is not trained by gradients (controller values, gates, ...).
    tx: {slot name: optax transform} (static).
    slots: {slot name: tuple of network names it updates} (static).
    models: {network name: flax module} (static), so `generate(state, ...)` needs no config.
  """
  step: jax.Array
  params: dict[str, Any]
  batch_stats: dict[str, Any]
  opt_state: dict[str, Any]
  rng: jax.Array
  extra: dict[str, Any]
  tx: dict[str, optax.GradientTransformation] = struct.field(pytree_node=False)
  slots: dict[str, tuple[str, ...]] = struct.field(pytree_node=False)
  models: dict[str, Any] = struct.field(pytree_node=False)

  @classmethod
  def create(cls, *, params, tx, models, rng, batch_stats=None, slots=None, extra=None):
    """Builds a state at step 0; by default each network is its own optimizer slot."""
    slots = slots or {name: (name,) for name in tx}
    _check_slots(slots, tx, params)
    opt_state = {s: tx[s].init(_select(params, nets)) for s, nets in slots.items()}
    return cls(step=jnp.zeros((), jnp.int32), params=dict(params), batch_stats=dict(batch_stats or {}),
               opt_state=opt_state, rng=rng, extra=dict(extra or {}), tx=dict(tx),
               slots=_freeze_slots(slots), models=dict(models))

  def apply_gradients(self, grads: Mapping[str, Any], active: Mapping[str, jax.Array] | None = None,
                      batch_stats: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None):
    """One optimizer update per slot. The step counter is the train step's (genjax.core.step), not this
    update's: a step of several phases updates several times and counts once.

    Args:
      grads: {network name: gradient}; every network of an updated slot must be present.
      active: optional {slot name: bool scalar}; a slot whose flag is False keeps its params and
        optimizer state unchanged this step (equilibrium gating). Missing slots are active.
      batch_stats: new BatchNorm statistics to store (merged over the old ones).
      extra: new method state (merged over the old one).
    """
    params, opt_state = dict(self.params), dict(self.opt_state)
    for slot, nets in self.slots.items():
      if not all(n in grads for n in nets):
        continue
      old = _select(self.params, nets)
      updates, new_opt = self.tx[slot].update(_select(grads, nets), self.opt_state[slot], old)
      new = optax.apply_updates(old, updates)
      if active is not None and slot in active:
        keep = jnp.logical_not(active[slot])
        new, new_opt = _where(keep, (old, self.opt_state[slot]), (new, new_opt))
      params.update(new)
      opt_state[slot] = new_opt
    return self.replace(params=params, opt_state=opt_state,
                        batch_stats={**self.batch_stats, **(batch_stats or {})},
                        extra={**self.extra, **(extra or {})})

  def step_rng(self, name: str = "") -> jax.Array:
    """The key of this step (and of `name`, so separate uses draw independent noise)."""
    key = jax.random.fold_in(self.rng, self.step)
    return jax.random.fold_in(key, _stable_hash(name)) if name else key

  def variables(self, net: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Flax variables {"params", "batch_stats"} of one network, for `module.apply`."""
    variables = {"params": (self.params if params is None else params)[net]}
    if net in self.batch_stats:
      variables["batch_stats"] = self.batch_stats[net]
    return variables

  def forward(self, net: str, params: Mapping[str, Any], *args, train: bool = True, **kwargs):
    """Runs network `net` with the given (differentiated) params.

    Returns (output, new_batch_stats) where new_batch_stats is {net: stats} for a BN network in train
    mode and {} otherwise, ready to merge into `apply_gradients(batch_stats=...)`.
    """
    variables = self.variables(net, params)
    if train and "batch_stats" in variables:
      out, updates = self.models[net].apply(variables, *args, train=True, mutable=["batch_stats"], **kwargs)
      return out, {net: updates["batch_stats"]}
    return self.models[net].apply(variables, *args, train=train, **kwargs), {}

  def apply(self, net: str, *args, **kwargs):
    """Runs network `net` in inference mode (running BN statistics)."""
    return self.models[net].apply(self.variables(net), *args, train=False, **kwargs)


def _select(tree: Mapping[str, Any], names) -> dict[str, Any]:
  return {n: tree[n] for n in names}


def _where(keep, old, new):
  return jax.tree.map(lambda o, n: jnp.where(keep, o, n), old, new)


def _stable_hash(name: str) -> int:
  """A per-name integer that is the same in every process (unlike hash())."""
  return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _freeze_slots(slots):
  return {s: tuple(nets) for s, nets in slots.items()}


def _check_slots(slots, tx, params):
  if set(slots) != set(tx):
    raise ValueError(f"optimizer slots {sorted(slots)} and transforms {sorted(tx)} differ")
  owned = [n for nets in slots.values() for n in nets]
  if sorted(owned) != sorted(set(owned)) or not set(owned) <= set(params):
    raise ValueError(f"each network must belong to at most one slot: {slots}")


def count_params(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))
