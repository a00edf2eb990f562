"""genjax: perceptual and adversarial hybrids of VAEs and GANs in JAX/Flax."""

__version__ = "0.1.0"
