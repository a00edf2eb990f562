"""Keeps a CPU step's working memory mapped between steps (glibc's malloc), for long CPU runs.

XLA:CPU allocates each execution's temporaries as one block on its worker threads (the VampPrior's
`cifar10` step: 312 MB). glibc serves a block that large on a worker thread with a fresh mmap and
returns it with munmap when the step ends, so the kernel maps and zeroes every page again on the next
step: 76,000 page faults and 0.14 CPU-seconds of a 0.83 s step on the 2-core CI machine, where PyTorch,
allocating on its main thread, pays almost none. With one arena, no mmap and no trimming of the heap's
free top below TRIM_THRESHOLD, the freed block stays in the heap and the next step reuses it: no page
faults once the heap has grown. The costs: the process keeps its peak heap until it exits, as caching
allocators do, and a few blocks more while it settles (that step: 1.7 GB resident after 20 steps against
1.2 GB, then flat); and XLA's compiler, whose threads now share one arena, compiles about a quarter
slower (the learned-prior AAE's step: 12–15 s against 10–12 s).

`python -m genjax.main` and `python -m genjax.bench` call keep_step_memory() first; code that runs
genjax's train steps itself calls it before JAX starts (it only takes effect for threads that have not
allocated yet). It does nothing unless JAX will run on the CPU (JAX_PLATFORMS=cpu, or no GPU/TPU plugin
installed: on an accelerator host the input pipeline's threads keep their own arenas), with
GENJAX_MALLOC=default, or with another C library (musl, macOS).
"""

import ctypes
import importlib.metadata
import importlib.util
import os
import pkgutil
import sys

# glibc's <malloc.h> mallopt parameters.
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: up to 2 GiB of free heap top stay mapped.

_applied: list[bool] = []


def _platforms() -> str:
  """JAX's platform setting, read without starting JAX (that starts its threads)."""
  platforms = os.environ.get("JAX_PLATFORMS") or os.environ.get("JAX_PLATFORM_NAME") or ""
  if "jax" in sys.modules:
    platforms = sys.modules["jax"].config.jax_platforms or platforms
  return platforms


def _runs_on_cpu(platforms: str) -> bool:
  """Whether JAX's default backend will be the CPU: the first platform named, or no GPU/TPU plugin installed."""
  if platforms:
    return platforms.split(",")[0].strip().lower() == "cpu"
  spec = importlib.util.find_spec("jax_plugins")  # Where JAX finds GPU plugins (see xla_bridge).
  plugins = list(pkgutil.iter_modules(spec.submodule_search_locations)) if spec else []
  plugins += list(importlib.metadata.entry_points(group="jax_plugins"))
  return not plugins and importlib.util.find_spec("libtpu") is None


def keep_step_memory() -> bool:
  """One malloc arena, no mmap, no heap trimming below TRIM_THRESHOLD; whether it was applied (once)."""
  if not _applied:
    _applied.append(os.environ.get("GENJAX_MALLOC", "") != "default" and _runs_on_cpu(_platforms()) and _mallopt())
  return _applied[0]


def _mallopt() -> bool:
  try:
    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version  # noqa: B018 (glibc only)
  except (OSError, AttributeError):
    return False
  return all(libc.mallopt(param, value) == 1 for param, value in (
      (M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)))
