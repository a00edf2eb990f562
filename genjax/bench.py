"""Speed of a method's train step: python -m genjax.bench --config=configs/<method>.py[:preset].

Builds the state and the jitted, sharded, donated step exactly as the loop does, compiles it once (timed),
warms up, then times `--steps` steps on one in-memory batch and (with `--pipeline`) on the real TFDS
pipeline. Prints a readable summary and, last, one line of JSON:

  compile_s, steps_per_sec, images_per_sec, flops_per_step (XLA's cost analysis of the compiled step),
  flops_per_sec, convolutions (which path they take: oneDNN's or XLA's, see genjax/nets/onednn.py), and
  pipeline_steps_per_sec / pipeline_ratio when the pipeline was timed. XLA cannot count the FLOPs of
  oneDNN's custom calls: with them, flops_per_step is the cost analysis of the same step compiled with
  XLA's convolutions (compiled, not just lowered: before its optimisations XLA counts work it then drops,
  413 against 316 GFLOP for the learned-prior AAE's cifar10 step).

Machines are noisy: compare ratios measured in one run, e.g. two configs back to back.
"""

import json
import sys
import time

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from genjax.cli import config_value, parse_flags, user_errors  # first: it quiets TensorFlow's start-up
from genjax import data, host_memory, methods, parallel, progress, validation  # noqa: I001
from genjax.nets import onednn
from genjax.state import count_params
from genjax.train import compile_train_step

_CONFIG = config_flags.DEFINE_config_file("config", None, "Method config file, e.g. configs/vaegan.py:cifar10.",
                                          lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps (after the warm-up).")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps after compilation.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Global batch size (default: the config's).")
_PIPELINE = flags.DEFINE_bool("pipeline", False, "Also time steps fed by the real TFDS pipeline.")
flags.mark_flags_as_required(["config"])


def synthetic_batch(config, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """A batch with the shapes and dtypes the dataset of `config` would give (speed does not depend on values)."""
  rng = np.random.default_rng(seed)
  spec = data.registry.get_spec(config.data.name)
  batch = {"image": rng.uniform(-1, 1, (batch_size,) + data.image_shape(config.data)).astype(np.float32),
           "label": rng.integers(0, max(spec.num_classes, 1), batch_size).astype(np.int32)}
  if spec.attributes:
    batch["attributes"] = rng.integers(0, 2, (batch_size, spec.attributes)).astype(np.float32)
  return batch


def _time_steps(step, state, batches, num_steps: int):
  start, metrics = time.perf_counter(), None
  for _ in range(num_steps):
    state, metrics = step(state, next(batches))
  jax.block_until_ready((state, metrics))
  return state, num_steps / (time.perf_counter() - start)


def _flops(stage) -> float:
  cost = stage.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # a list per device in some versions
  return float(cost.get("flops", 0.0)) if cost else 0.0


def benchmark(config, num_steps: int = 20, warmup: int = 3, pipeline: bool = False) -> dict:
  """Compile time, steps/s, images/s and FLOPs of `config`'s train step on all local devices."""
  mesh = parallel.make_mesh()
  validation.validate(config, num_devices=mesh.size)
  method = methods.get_method(config.method)
  batch = parallel.to_global(synthetic_batch(config, config.batch_size), mesh)
  start = time.perf_counter()
  state = jax.block_until_ready(parallel.replicate(
      method.init_state(config, jax.random.PRNGKey(config.seed), jax.tree.map(lambda x: np.asarray(x[:1]), batch)),
      mesh))
  init_s = time.perf_counter() - start  # building the state: one compiled program (and its compilation)
  start = time.perf_counter()
  compiled = compile_train_step(method, config, mesh, state).lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  flops = _flops(compiled)
  if onednn.available(jax.numpy.dtype(config.dtype)):
    with onednn.disabled():
      flops = _flops(compile_train_step(method, config, mesh, state).lower(state, batch).compile())

  def repeat(x):
    while True:
      yield x

  state, _ = _time_steps(compiled, state, repeat(batch), warmup)
  state, steps_per_sec = _time_steps(compiled, state, repeat(batch), num_steps)
  result = {
      "method": config.method, "dataset": config.data.name, "image_shape": list(data.image_shape(config.data)),
      "batch_size": config.batch_size, "dtype": config.dtype, "devices": mesh.size,
      "platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind,
      "init_s": round(init_s, 2), "compile_s": round(compile_s, 2), "steps_per_sec": round(steps_per_sec, 3),
      "images_per_sec": round(steps_per_sec * config.batch_size, 1),
      "flops_per_step": flops, "flops_per_sec": flops * steps_per_sec, "convolutions": onednn.path(),
      "num_params": {net: count_params(p) for net, p in state.params.items()},
  }
  if pipeline:
    batches = parallel.prefetch(data.create_dataset(config.data, batch_size=config.batch_size // jax.process_count(),
                                                    seed=config.seed), mesh)
    state, _ = _time_steps(compiled, state, batches, warmup)
    _, result["pipeline_steps_per_sec"] = _time_steps(compiled, state, batches, num_steps)
    result["pipeline_ratio"] = round(result["pipeline_steps_per_sec"] / steps_per_sec, 3)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  progress.quiet_libraries(verbose=flags.FLAGS["verbosity"].present)
  config = config_value(_CONFIG, sys.argv)
  with user_errors():
    if _BATCH_SIZE.value:
      with config.unlocked():
        config.batch_size = _BATCH_SIZE.value
    result = benchmark(config, _STEPS.value, _WARMUP.value, _PIPELINE.value)
  print(f"{result['method']} on {result['dataset']} {result['image_shape']}, batch {result['batch_size']}, "
        f"{result['devices']} {result['device_kind']} device(s): init {result['init_s']} s, "
        f"compile {result['compile_s']} s, "
        f"{result['steps_per_sec']} steps/s, {result['images_per_sec']} images/s, "
        f"{result['flops_per_step'] / 1e9:.2f} GFLOP/step, {result['flops_per_sec'] / 1e12:.3f} TFLOP/s; "
        f"convolutions: {result['convolutions']}")
  print(json.dumps(result))


if __name__ == "__main__":
  host_memory.keep_step_memory()  # Before JAX starts its threads: see genjax/host_memory.py.
  app.run(main, flags_parser=parse_flags)
