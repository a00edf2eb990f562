"""Equilibrium controllers against hand-computed sequences, and their state through a checkpoint."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp
import optax

from genjax import control
from genjax.checkpoint import Checkpointer
from genjax.state import TrainState

# Gains (λ1, λ2, λ3), errors e_1..e_7 and k_1..k_7 worked out by hand from
#   k_t = clip(k_{t−1} + λ1 e_t + λ2 (e_t − e_{t−1}) + λ3 (e_t + e_{t−2} − 2 e_{t−1}), 0, 1),
# k_0 = 0 and e_0 = e_{−1} = 0:
PID_GAINS = (0.1, 0.01, 0.001)
PID_ERRORS = (1.0, 2.0, -1.0, 4.0, -30.0, 50.0, 0.0)
PID_KS = (
    0.111,   # 0.1 + 0.01·1 + 0.001·1
    0.321,   # + 0.2 + 0.01·(2 − 1) + 0.001·(2 + 0 − 2)
    0.187,   # − 0.1 + 0.01·(−3) + 0.001·(−1 + 1 − 4)
    0.645,   # + 0.4 + 0.01·5 + 0.001·(4 + 2 + 2)
    0.0,     # − 3 − 0.34 − 0.039: clipped at 0
    1.0,     # + 5 + 0.8 + 0.114: clipped at 1
    0.37,    # 1 + 0 + 0.01·(0 − 50) + 0.001·(0 − 30 − 100): derivative terms alone pull k down
)
# BEGAN's P control, λ_k = 0.1: k_{t+1} = clip(k_t + 0.1 e_t, 0, 1).
P_ERRORS = (2.0, 3.0, -1.0, -20.0, 5.0, 100.0)
P_KS = (0.2, 0.5, 0.4, 0.0, 0.5, 1.0)


def _run(errors, gains, k0=0.0):
  state, ks = control.pid_init(k0), []
  for e in errors:
    state = control.pid_update(state, jnp.float32(e), gains)
    ks.append(float(state["k"]))
  return state, ks


def test_pid_follows_the_hand_computed_sequence_with_clipping_and_derivative_terms():
  state, ks = _run(PID_ERRORS, PID_GAINS)
  np.testing.assert_allclose(ks, PID_KS, atol=1e-6)
  assert float(state["error_1"]) == PID_ERRORS[-1] and float(state["error_2"]) == PID_ERRORS[-2]


def test_pid_without_derivative_gains_is_began_proportional_control():
  _, ks = _run(P_ERRORS, (0.1, 0.0, 0.0))
  np.testing.assert_allclose(ks, P_KS, atol=1e-6)
  # BEGAN's error e_t = γ L(x) − L(G(z)); with γ = 0.5 and L(G(z)) = 0, L(x) = 2e gives the same errors.
  state = control.pid_init()
  for e, k in zip(P_ERRORS, P_KS):
    error = control.began_error(jnp.float32(2 * e), jnp.float32(0.0), gamma=0.5)
    state = control.pid_update(state, error, (0.1, 0.0, 0.0))
    np.testing.assert_allclose(float(state["k"]), k, atol=1e-6)


def test_the_derivative_gains_change_the_sequence():
  _, pid = _run(PID_ERRORS[:4], PID_GAINS)
  _, p = _run(PID_ERRORS[:4], (PID_GAINS[0], 0.0, 0.0))
  np.testing.assert_allclose(p, [0.1, 0.3, 0.2, 0.6], atol=1e-6)
  assert not np.allclose(pid, p, atol=1e-4)


def test_errors_and_convergence_measures():
  # BEGAN: γ L(x) − L(G(z)); Khan: η L_d − (L_g + α L_v): the whole bracket is subtracted.
  assert float(control.began_error(1.0, 0.2, gamma=0.5)) == pytest.approx(0.3)
  assert float(control.khan_error(1.0, 0.2, 0.5, eta=0.5, alpha=0.3)) == pytest.approx(0.15)
  assert float(control.convergence(1.0, -0.3)) == pytest.approx(1.3)
  assert float(control.convergence(1.0, 0.3)) == pytest.approx(1.3)


def test_controller_runs_jitted_and_starts_at_k0_with_zero_errors():
  state = control.pid_init(0.25)
  assert {k: float(v) for k, v in state.items()} == {"k": 0.25, "error_1": 0.0, "error_2": 0.0}
  assert all(v.dtype == jnp.float32 and v.shape == () for v in state.values())
  new = jax.jit(control.pid_update, static_argnums=2)(state, jnp.float32(1.0), PID_GAINS)
  np.testing.assert_allclose(float(new["k"]), 0.25 + 0.111, atol=1e-6)


def test_controller_state_survives_a_checkpoint_round_trip(tmp_path):
  def state_with(extra):
    params = {"w": jnp.zeros((3,))}
    return TrainState.create(params=params, tx={"w": optax.sgd(0.1)}, models={"w": None},
                             rng=jax.random.PRNGKey(0), extra=extra)

  trained, _ = _run(PID_ERRORS[:4], PID_GAINS)
  meta = {"method": "atvae", "image_shape": [16, 16, 1], "config": {}}
  saver = Checkpointer(str(tmp_path), meta)
  saver.save(state_with(trained).replace(step=jnp.asarray(4, jnp.int32)))
  saver.close()
  loader = Checkpointer(str(tmp_path), meta)
  restored = loader.restore(state_with(control.pid_init()))
  loader.close()
  assert int(restored.step) == 4
  assert {k: float(v) for k, v in restored.extra.items()} == {k: float(v) for k, v in trained.items()}
  # The restored controller continues exactly where the saved one stopped.
  _, ks = _run(PID_ERRORS, PID_GAINS)
  cont = restored.extra
  for e, k in zip(PID_ERRORS[4:], ks[4:]):
    cont = control.pid_update(cont, jnp.float32(e), PID_GAINS)
    np.testing.assert_allclose(float(cont["k"]), k, atol=1e-6)
