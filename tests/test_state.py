"""TrainState slots and gating, and the orbax checkpoint round trip."""

import numpy as np
import pytest

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from genjax.checkpoint import Checkpointer
from genjax.errors import CheckpointError
from genjax.state import TrainState


def _state(lr_a=0.1, lr_b=0.5):
  model = nn.Dense(2)
  params = {"a": model.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))["params"],
            "b": {"w": jnp.ones(3)}, "c": {"w": jnp.ones(2)}}
  return TrainState.create(params=params, tx={"ab": optax.adam(lr_a), "c": optax.sgd(lr_b)},
                           slots={"ab": ("a", "b"), "c": ("c",)}, models={"a": model},
                           rng=jax.random.PRNGKey(1), extra={"k": jnp.zeros(())})


def _grads(state):
  return jax.tree.map(jnp.ones_like, state.params)


def test_each_slot_applies_its_own_optimizer():
  state = _state()
  new = state.apply_gradients(_grads(state))
  assert int(new.step) == 0  # the train step counts steps (genjax.core.step), not each update
  np.testing.assert_allclose(new.params["c"]["w"], 1.0 - 0.5)          # sgd: w − lr·g
  np.testing.assert_allclose(new.params["b"]["w"], 1.0 - 0.1, rtol=1e-4)  # adam's first step: −lr·sign(g)
  updates, _ = optax.adam(0.1).update({"a": _grads(state)["a"], "b": _grads(state)["b"]},
                                      state.opt_state["ab"], {"a": state.params["a"], "b": state.params["b"]})
  expected = optax.apply_updates(state.params["a"], updates["a"])
  jax.tree.map(np.testing.assert_allclose, new.params["a"], expected)


def test_inactive_slot_keeps_params_and_optimizer_state():
  state = _state()
  new = jax.jit(lambda s, g: s.apply_gradients(g, active={"ab": jnp.asarray(False)}))(state, _grads(state))
  jax.tree.map(np.testing.assert_array_equal, new.params["a"], state.params["a"])
  jax.tree.map(np.testing.assert_array_equal, new.opt_state["ab"], state.opt_state["ab"])
  assert not np.allclose(new.params["c"]["w"], state.params["c"]["w"])


def test_slots_must_cover_transforms_once():
  with pytest.raises(ValueError):
    TrainState.create(params={"a": {}, "b": {}}, tx={"x": optax.sgd(1.0), "y": optax.sgd(1.0)},
                      slots={"x": ("a", "b"), "y": ("a",)}, models={}, rng=jax.random.PRNGKey(0))


def test_step_rng_depends_on_step_and_name():
  state = _state()
  keys = [state.step_rng(), state.step_rng("z"), state.replace(step=state.step + 1).step_rng()]
  assert len({tuple(np.asarray(k)) for k in keys}) == 3
  np.testing.assert_array_equal(state.step_rng("z"), _state().step_rng("z"))


def test_checkpoint_round_trip_restores_every_field(tmp_path):
  meta = {"method": "toy", "image_shape": [4, 4, 1]}
  trained = _state()
  for _ in range(3):
    trained = trained.apply_gradients(_grads(trained), extra={"k": trained.extra["k"] + 1})
    trained = trained.replace(step=trained.step + 1)
  ckpt = Checkpointer(str(tmp_path), meta)
  ckpt.save(trained)
  ckpt.close()
  reader = Checkpointer(str(tmp_path), meta)
  restored = reader.restore(_state())
  reader.close()
  assert int(restored.step) == 3 and float(restored.extra["k"]) == 3
  jax.tree.map(np.testing.assert_array_equal, restored.params, trained.params)
  jax.tree.map(np.testing.assert_array_equal, restored.opt_state, trained.opt_state)
  assert type(restored.opt_state["ab"]) is type(trained.opt_state["ab"])


def test_checkpoint_of_another_method_is_refused(tmp_path):
  ckpt = Checkpointer(str(tmp_path), {"method": "toy", "image_shape": [4, 4, 1]})
  ckpt.save(_state())
  ckpt.close()
  other = Checkpointer(str(tmp_path), {"method": "other", "image_shape": [4, 4, 1]})
  with pytest.raises(CheckpointError, match="method='toy'"):
    other.check_compatible()
  other.close()


def test_checkpoint_of_another_shape_is_refused(tmp_path):
  meta = {"method": "toy", "image_shape": [4, 4, 1]}
  ckpt = Checkpointer(str(tmp_path), meta)
  ckpt.save(_state())
  ckpt.close()
  reader = Checkpointer(str(tmp_path), meta)
  # Read from the metadata before any array: no half-done restore.
  with pytest.raises(CheckpointError, match=r"networks: params/c/w is \(2,\) there and \(5,\) here"):
    reader.restore(_state().replace(params={**_state().params, "c": {"w": jnp.ones(5)}}))
  reader.close()


def _save_steps(directory, meta, steps):
  state, ckpt = _state(), Checkpointer(directory, meta, keep=5)
  for _ in range(steps):
    state = state.apply_gradients(_grads(state), extra={"k": state.extra["k"] + 1})
    state = state.replace(step=state.step + 1)
    ckpt.save(state)
  ckpt.close()


def _truncate_arrays(step_dir):
  for path in step_dir.rglob("*"):
    if path.is_file() and "state" in path.parts:
      path.write_bytes(b"")


def test_a_corrupt_checkpoint_is_reported_set_aside_and_the_previous_one_used(tmp_path):
  meta = {"method": "toy", "image_shape": [4, 4, 1]}
  _save_steps(str(tmp_path), meta, 3)
  _truncate_arrays(tmp_path / "checkpoints" / "3")  # e.g. a machine lost while the files were written
  reader = Checkpointer(str(tmp_path), meta)
  restored = reader.restore(_state())
  reader.close()
  assert int(restored.step) == 2 and float(restored.extra["k"]) == 2
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2", "unreadable-3"]


def test_when_no_checkpoint_restores_nothing_is_moved_and_the_error_names_the_step(tmp_path):
  meta = {"method": "toy", "image_shape": [4, 4, 1]}
  _save_steps(str(tmp_path), meta, 2)
  for step in ("1", "2"):
    _truncate_arrays(tmp_path / "checkpoints" / step)
  reader = Checkpointer(str(tmp_path), meta)
  with pytest.raises(CheckpointError, match="checkpoint at step 2 .* (is unreadable|cannot be restored)"):
    reader.restore(_state())
  reader.close()
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2"]
