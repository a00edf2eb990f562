"""A genjax train step in your own JAX program: no genjax loop, data pipeline or checkpointing.

Trains VAE/GAN on scikit-learn's digits held in memory, 50 steps per `jax.lax.scan` dispatch, and
writes a grid of samples. Any method works the same way (`--config=configs/vae.py`).

  python experiments/train_step_in_scan.py --steps 500 --out samples_scan.png
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

from genjax import config_lib, methods
from genjax.figures import draw


def digits_32x32() -> np.ndarray:
  """[1797, 32, 32, 1] images in [-1, 1] (nearest-neighbour upscaling of the 8×8 originals)."""
  images = load_digits().images.astype(np.float32) / 16.0 * 2.0 - 1.0
  return np.repeat(np.repeat(images, 4, axis=1), 4, axis=2)[..., None]


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="configs/vaegan.py")
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--steps_per_scan", type=int, default=50)
  parser.add_argument("--out", default="samples_scan.png")
  args = parser.parse_args()

  config = config_lib.load_config(args.config)
  method = methods.get_method(config.method)
  images = jnp.asarray(digits_32x32())
  batch_size = config.batch_size

  def batches(key):  # your own data: random minibatches, stacked for one scan
    idx = jax.random.randint(key, (args.steps_per_scan, batch_size), 0, images.shape[0])
    return {"image": images[idx], "label": jnp.zeros(idx.shape, jnp.int32)}

  state = method.init_state(config, jax.random.PRNGKey(0), {"image": images[:batch_size]})
  step = method.make_train_step(config)
  train_many = jax.jit(lambda state, batch: jax.lax.scan(step, state, batch), donate_argnums=0)

  start = time.perf_counter()
  for i in range(args.steps // args.steps_per_scan):
    state, metrics = train_many(state, batches(jax.random.PRNGKey(100 + i)))
    summary = {k: round(float(v.mean()), 4) for k, v in metrics.items() if not k.startswith("grad_norm")}
    print(f"step {int(state.step)}: {summary}", flush=True)
  print(f"{int(state.step) / (time.perf_counter() - start):.2f} steps/s (including compilation)")
  draw.save_png(args.out, draw.image_grid(method.generate(state, jax.random.PRNGKey(1), 64)))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
