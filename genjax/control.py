"""Equilibrium controllers as pure functions of the current losses (and their own state).

Each returns plain arrays so it can live inside a jitted train step; its state is carried in
`TrainState.extra` and therefore checkpointed with everything else.
"""

import jax
import jax.numpy as jnp


def larsen_gates(real_bce: jax.Array, fake_bce: jax.Array, equilibrium: float = 0.68,
                 margin: float = 0.35) -> tuple[jax.Array, jax.Array]:
  """Which of (discriminator, decoder) may update this step, Larsen et al.'s reference code.

  The discriminator rests when it is too good (either BCE below equilibrium − margin), the decoder rests
  when the discriminator is too bad (either BCE above equilibrium + margin); if both would rest, both
  update.
  """
  train_dis = jnp.logical_not((real_bce < equilibrium - margin) | (fake_bce < equilibrium - margin))
  train_dec = jnp.logical_not((real_bce > equilibrium + margin) | (fake_bce > equilibrium + margin))
  neither = jnp.logical_not(train_dis | train_dec)
  return train_dis | neither, train_dec | neither
