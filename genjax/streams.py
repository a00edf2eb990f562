"""The random streams of a run outside its train steps, by name, in one place.

Train steps draw `state.step_rng(name)`; everything else a run samples (the fixed-noise grids, the
evaluation's generated images and importance samples, --mode=sample) draws from `key(seed, name)`, so
each use sees the same noise at every evaluation, in every process, and in a resumed run. (The
values are the seed offsets genjax has always used, so results stay comparable with earlier runs.)
"""

import jax

_OFFSETS = {
    "sample_grid": 1,    # the loop's fixed-noise sample grids, genjax.figures' samples.png
    "eval_samples": 2,   # the evaluator's generated images (FID, IS, KID, precision/recall, classes)
    "eval_nll": 3,       # the evaluator's importance samples ("nll")
    "sample_mode": 4,    # --mode=sample
    "figure_codes": 2,   # genjax.figures' prior codes for the t-SNE (drawn as the evaluation's samples)
}
NAMES = tuple(_OFFSETS)


def key(seed: int, name: str) -> jax.Array:
  """The PRNG key of stream `name` of a run with `seed`."""
  return jax.random.PRNGKey(seed + _OFFSETS[name])
