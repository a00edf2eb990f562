"""genjax.host_memory: on CPU a step's large temporaries stop costing fresh pages every step."""

import json
import os
import subprocess
import sys

import pytest

from genjax import host_memory

# Each call sorts 16 MiB, for which XLA:CPU allocates 64-80 MiB of temporaries; prints the page faults of
# the last calls, once glibc's heap has settled.
_FAULTS_PER_CALL = """
import json, resource, sys
from genjax import host_memory
applied = host_memory.keep_step_memory()  # before JAX starts its threads
import jax, jax.numpy as jnp
sort_sum = jax.jit(lambda x: (jnp.sort(x) * x).sum())
x = jnp.ones(1 << 22)
faults = []
for _ in range(16):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  sort_sum(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": faults[6:]}))
"""
_ARRAY_PAGES = (4 << 22) // 4096  # the sorted array, 16 MiB, in 4 KiB pages


def _faults(**env):
  done = subprocess.run([sys.executable, "-c", _FAULTS_PER_CALL], capture_output=True, text=True, check=True,
                        env={**os.environ, "JAX_PLATFORMS": "cpu", **env})
  return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_steps_temporaries_stop_faulting_in_fresh_pages():
  kept, default = _faults(), _faults(GENJAX_MALLOC="default")
  assert kept["applied"] and not default["applied"]
  # glibc's defaults: a fresh mmap, so every page of the temporaries faults, on every call (measured:
  # 4-5 arrays' pages per call).
  assert min(default["faults"]) >= 3 * _ARRAY_PAGES
  # Kept: the heap has grown to hold them, calls fault in nothing, and at most a few calls one array's pages
  # (measured: 0 in most calls; with other processes busy on the cores, 16 MiB in up to 4 of 10).
  assert min(kept["faults"]) < _ARRAY_PAGES // 20
  assert sum(kept["faults"]) <= sum(default["faults"]) / 4


def test_only_where_jax_runs_on_the_cpu():
  assert host_memory._runs_on_cpu("cpu") and host_memory._runs_on_cpu("cpu,tpu")
  assert not host_memory._runs_on_cpu("tpu") and not host_memory._runs_on_cpu("cuda,cpu")
  assert host_memory._runs_on_cpu("")  # this machine: no GPU or TPU plugin installed
