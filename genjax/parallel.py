"""One 1-D "data" mesh over all devices: batches sharded along it, the train state replicated.

Under `jax.jit` with these shardings, BatchNorm statistics of a sharded global batch are global: XLA
inserts the cross-device reductions that pmap-era code wrote by hand.
"""

import collections
from typing import Any, Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from genjax.errors import ConfigError

AXIS = "data"


def initialize_processes(coordinator_address: str | None = None, num_processes: int | None = None,
                         process_id: int | None = None) -> None:
  """JAX's multi-process runtime (jax.distributed.initialize): with these arguments, or (all None) with
  what the cluster provides (TPU pods, SLURM, ...). CPU processes exchange their collectives over gloo."""
  if coordinator_address and (num_processes is None or process_id is None):
    raise ConfigError("--coordinator_address needs --num_processes and --process_id")
  if process_id is not None and num_processes is not None and process_id >= num_processes:
    raise ConfigError(f"--process_id {process_id} is not below --num_processes {num_processes}")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address, num_processes, process_id)


def make_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
  return jax.device_put(tree, replicated(mesh))


def to_global(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This host's part of a batch → global arrays sharded over the mesh (multi-host ready)."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}


def prefetch(local_batches: Iterator[dict[str, np.ndarray]], mesh: Mesh, size: int = 2):
  """Keeps `size` batches already transferred, so the step never waits for host→device copies."""
  queue = collections.deque()
  for batch in local_batches:
    queue.append(to_global(batch, mesh))
    if len(queue) > size:
      yield queue.popleft()
  while queue:
    yield queue.popleft()
