"""Every test sees 8 simulated CPU devices, so sharded code paths run for real without accelerators."""

import os

# Tiny test networks compile 3-4x faster without LLVM's optimisation passes; numerics are unchanged.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
                           " --xla_backend_optimization_level=0").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


import tempfile  # noqa: E402

import jax  # noqa: E402

# Many tests build the same tiny networks: compile each program once per session.
jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="genjax-jax-cache-"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
  """One TFDS data_dir for the session: the embedded digits dataset is prepared there once."""
  return str(tmp_path_factory.mktemp("tfds"))
