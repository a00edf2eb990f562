"""Optimizers for the named slots of a TrainState, built with optax from `config.optim.<slot>` (whose
fields genjax.config_lib.optimizer_config lists)."""

import jax.numpy as jnp
import optax

from genjax.errors import ConfigError

OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULES = ("constant", "exponential", "step_halving")


def learning_rate(cfg) -> optax.Schedule | float:
  if cfg.schedule == "constant":
    return cfg.lr
  if cfg.schedule == "exponential":
    return optax.exponential_decay(cfg.lr, cfg.decay_steps, cfg.decay_rate, end_value=cfg.end_lr or None)
  if cfg.schedule == "step_halving":  # BEGAN: halve every decay_steps, never below end_lr
    halving = optax.exponential_decay(cfg.lr, cfg.decay_steps, 0.5, staircase=True)
    return lambda step: jnp.maximum(halving(step), cfg.end_lr)
  raise ConfigError(f"unknown schedule {cfg.schedule!r}; choose one of {SCHEDULES}")


def make_optimizer(cfg) -> optax.GradientTransformation:
  """optax transform of one slot."""
  lr = learning_rate(cfg)
  if cfg.name == "adam":
    opt = optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  elif cfg.name == "rmsprop":
    opt = optax.rmsprop(lr, decay=cfg.decay, eps=cfg.eps, momentum=cfg.momentum or None)
  elif cfg.name == "sgd":
    opt = optax.sgd(lr, momentum=cfg.momentum or None)
  else:
    raise ConfigError(f"unknown optimizer {cfg.name!r}; choose one of {OPTIMIZERS}")
  if cfg.grad_clip > 0:
    opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), opt)
  return opt
