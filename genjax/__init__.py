"""genjax: perceptual and adversarial hybrids of VAEs and GANs in JAX/Flax."""

from genjax import host_memory

__version__ = "0.1.0"

host_memory.keep_step_memory()  # Before JAX's threads allocate: see genjax/host_memory.py.
