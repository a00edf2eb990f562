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


# --- BEGAN's proportional control and Khan et al.'s PID control of the equilibrium weight k -----------
#
# The controller state is {"k", "error_1", "error_2"}: k_{t−1} and the errors e_{t−1}, e_{t−2} of the two
# previous steps, float32 scalars in TrainState.extra. A fresh run starts from k₀ and previous errors 0
# (neither paper says what e_{t−1}, e_{t−2} are before the first step; 0 means the first step's
# derivative terms see a jump from 0 to e_1).


def pid_init(k: float = 0.0) -> dict[str, jax.Array]:
  """Controller state before the first step: k₀ and two previous errors of 0."""
  return {"k": jnp.asarray(k, jnp.float32), "error_1": jnp.zeros((), jnp.float32),
          "error_2": jnp.zeros((), jnp.float32)}


def pid_update(state: dict[str, jax.Array], error: jax.Array,
               gains: tuple[float, float, float]) -> dict[str, jax.Array]:
  """One step of Khan et al.'s PID law (incremental form), then clip to [0, 1] as BEGAN does:

      k_t = clip(k_{t−1} + λ1 e_t + λ2 (e_t − e_{t−1}) + λ3 (e_t + e_{t−2} − 2 e_{t−1}), 0, 1)

  With λ2 = λ3 = 0 this is BEGAN's proportional control k_{t+1} = clip(k_t + λ_k e_t, 0, 1).
  """
  lambda_1, lambda_2, lambda_3 = gains
  e, e_1, e_2 = jnp.asarray(error, jnp.float32), state["error_1"], state["error_2"]
  step = lambda_1 * e + lambda_2 * (e - e_1) + lambda_3 * (e + e_2 - 2.0 * e_1)
  return {"k": jnp.clip(state["k"] + step, 0.0, 1.0), "error_1": e, "error_2": e_1}


def began_error(loss_real: jax.Array, loss_fake: jax.Array, gamma: float) -> jax.Array:
  """BEGAN's balance error γ L(x) − L(G(z)) (Berthelot et al. §3.4)."""
  return gamma * loss_real - loss_fake


def khan_error(loss_real: jax.Array, loss_prior: jax.Array, loss_recon: jax.Array, eta: float,
               alpha: float, printed: bool = False) -> jax.Array:
  """Khan et al.'s error: e_t = η L_d − (L_g + α L_v) (their eq. 10), or with `printed` their eq. 11 as
  printed, e_t = η L_d − L_g + α L_v.

  BEGAN's logic (both fakes are pushed back by k) and the paper's own L_dis = L_d − k (L_g + α L_v)
  say the whole bracket is subtracted, as in eq. 10.
  """
  if printed:
    return eta * loss_real - loss_prior + alpha * loss_recon
  return eta * loss_real - (loss_prior + alpha * loss_recon)


def convergence(loss_real: jax.Array, error: jax.Array) -> jax.Array:
  """M_global = L(x) + |error| (BEGAN §3.4.1; Khan: L_d + |η L_d − L_g − α L_v|)."""
  return loss_real + jnp.abs(error)

