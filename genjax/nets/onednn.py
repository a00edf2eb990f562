"""oneDNN's convolutions for XLA:CPU: the `cpu` extra, built on first use.

XLA:CPU's convolution kernels run at about half the speed of oneDNN's, which PyTorch calls on CPU.
`pip install -e ".[cpu]"` installs oneDNN from PyPI (`onednn-cpu-gomp`, the CPU-only build, and its
headers); the first CPU convolution then compiles `onednn_conv.cc` (three XLA FFI custom calls:
forward, backward-data, backward-weights) with the system C++ compiler, in a few seconds, into
$GENJAX_CACHE_DIR (default ~/.cache/genjax), once per source, oneDNN and jaxlib. `layers.py` takes
these calls on CPU and XLA's convolutions everywhere else: without the extra, without a compiler,
on GPU/TPU, for dtypes other than float32 (and bfloat16 where the CPU has it), or with
GENJAX_ONEDNN=0. genjax logs once which path it takes.

  python -m genjax.nets.onednn      # builds the extension and says which path convolutions take

The calls run oneDNN single-threaded on batch chunks spread over XLA's own intra-op thread pool (the
kernel gradient of an output map of at most 16 pixels: one matmul per kernel tap over the whole batch,
the taps spread over the pool); under SPMD sharding they keep the batch sharded (the kernel gradient is
summed over the batch axes).
"""

import contextlib
import ctypes
import functools
import hashlib
import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec as P

SOURCE = pathlib.Path(__file__).with_name("onednn_conv.cc")
RUNTIME, HEADERS = "onednn-cpu-gomp", "onednn-devel-cpu-gomp"  # The `cpu` extra's two packages.
_TARGETS = ("fwd", "bwd_data", "bwd_weights")
_TURNED_OFF = os.environ.get("GENJAX_ONEDNN", "1") == "0"
_disabled = [False]  # A stack: disabled() pushes True while code inside is traced.


class Unavailable(Exception):
  """Why the extension cannot be used here (said once in the log)."""


def _package_file(package: str, suffix: str) -> pathlib.Path:
  try:
    files = importlib.metadata.files(package) or []
  except importlib.metadata.PackageNotFoundError:
    raise Unavailable(f"{package} is not installed (pip install -e '.[cpu]')") from None
  for file in files:
    if str(file).endswith(suffix):
      return pathlib.Path(file.locate()).resolve()
  raise Unavailable(f"{package} has no {suffix}")


def _cache_dir() -> pathlib.Path:
  default = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "genjax"
  return pathlib.Path(os.environ.get("GENJAX_CACHE_DIR", default))


def build() -> pathlib.Path:
  """Compiles onednn_conv.cc against the installed oneDNN and jaxlib (once; cached) and returns the library."""
  library = _package_file(RUNTIME, "/libdnnl.so.3")
  include = _package_file(HEADERS, "include/dnnl.hpp").parent
  compiler = os.environ.get("CXX", "g++")
  command = [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-Wno-return-type",  # jaxlib's FFI headers
             str(SOURCE),
             f"-I{jax.ffi.include_dir()}", f"-I{include}", f"-L{library.parent}", f"-l:{library.name}",
             "-lgomp", f"-Wl,-rpath,{library.parent}"]
  key = hashlib.sha256("\0".join(command + [SOURCE.read_text(), importlib.metadata.version(RUNTIME),
                                            importlib.metadata.version("jaxlib")]).encode()).hexdigest()
  target = _cache_dir() / f"onednn_conv-{key[:16]}.so"
  if not target.exists():
    if not shutil.which(compiler):
      raise Unavailable(f"no C++ compiler ({compiler}) to build {SOURCE.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # Then an atomic rename: builds may race.
      built = pathlib.Path(tmp) / target.name
      done = subprocess.run(command + ["-o", str(built)], capture_output=True, text=True)
      if done.returncode:
        raise Unavailable(f"building {SOURCE.name} failed: {done.stderr.strip()[-2000:]}")
      os.replace(built, target)
  return target


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
  """The loaded extension with its FFI targets registered, or None; and a line saying which path it is."""
  try:
    lib = ctypes.CDLL(str(build()))
  except (Unavailable, OSError) as e:
    return None, f"XLA's ({e})"
  for name in _TARGETS:
    jax.ffi.register_ffi_target(f"genjax_onednn_conv_{name}", jax.ffi.pycapsule(
        getattr(lib, f"genjax_onednn_conv_{name}")), platform="cpu")
  lib.genjax_onednn_version.restype = ctypes.c_char_p
  bf16 = "float32 and bfloat16" if lib.genjax_onednn_has_bf16() else "float32 (this CPU lacks bfloat16)"
  return lib, f"oneDNN {lib.genjax_onednn_version().decode()}'s on CPU for {bf16}"


@functools.cache
def path() -> str:
  """Which convolutions genjax runs in this process (logged once)."""
  if jax.default_backend() != "cpu":
    line = f"XLA's (the default backend is {jax.default_backend()})"
  elif _TURNED_OFF:
    line = "XLA's (GENJAX_ONEDNN=0)"
  else:
    line = _load()[1]
  logging.info("genjax convolutions: %s", line)
  return line


def available(dtype) -> bool:
  """Whether convolutions of `dtype` take oneDNN's calls here."""
  if _disabled[0] or not path().startswith("oneDNN"):
    return False
  lib = _load()[0]
  return dtype == jnp.float32 or (dtype == jnp.bfloat16 and bool(lib.genjax_onednn_has_bf16()))


@contextlib.contextmanager
def disabled():
  """XLA's convolutions for what is traced inside (tests and benchmarks compare both paths in one process).
  A function jitted before keeps the path it was traced with: jit caches by function and shapes."""
  _disabled.insert(0, True)
  try:
    yield
  finally:
    _disabled.pop(0)


@contextlib.contextmanager
def split_batch(chunks: int):
  """Runs every oneDNN call inside on at least `chunks` batch chunks (as on that many threads), so that
  tests check the split and the kernel gradient's sum on any machine. The setting holds while calls run:
  wait for their results inside (jax.block_until_ready), as JAX dispatches asynchronously."""
  lib = _load()[0]
  lib.genjax_onednn_set_min_chunks(ctypes.c_int64(chunks))
  try:
    yield
  finally:
    lib.genjax_onednn_set_min_chunks(ctypes.c_int64(1))


@contextlib.contextmanager
def kernel_gradient(by_taps: bool, block_bytes: int | None = None):
  """Runs every kernel gradient inside tap by tap (`by_taps`) or by oneDNN's direct kernel whatever the
  output map's size, and the tap matmuls over `block_bytes` of input rows at a time: tests check both
  forms and the sum over blocks on any shape (wait for results inside, as for split_batch). Outside, each
  call picks by its output map (onednn_conv.cc)."""
  lib = _load()[0]
  lib.genjax_onednn_set_tap_block_bytes.restype = ctypes.c_int64
  mode = lib.genjax_onednn_set_weights_by_taps(ctypes.c_int(int(by_taps)))
  block = lib.genjax_onednn_set_tap_block_bytes(ctypes.c_int64(block_bytes or 0))
  try:
    yield
  finally:
    lib.genjax_onednn_set_weights_by_taps(ctypes.c_int(mode))
    lib.genjax_onednn_set_tap_block_bytes(ctypes.c_int64(block))


def pool_threads() -> int:
  """The threads of XLA's intra-op pool that the last oneDNN call was split over (0: none ran yet)."""
  lib = _load()[0]
  lib.genjax_onednn_pool_threads.restype = ctypes.c_int64
  return lib.genjax_onednn_pool_threads()


# --- The three passes, as custom calls that keep a sharded batch sharded ------------------------------

def _attrs(strides, padding) -> dict:
  return dict(strides=np.asarray(strides, np.int64),
              padding_lo=np.asarray([lo for lo, _ in padding], np.int64),
              padding_hi=np.asarray([hi for _, hi in padding], np.int64))


def _call(name, out_shape, out_dtype, a, b, strides, padding):
  return jax.ffi.ffi_call(f"genjax_onednn_conv_{name}", jax.ShapeDtypeStruct(out_shape, out_dtype))(
      a, b, **_attrs(strides, padding))


def _batch_axes(sharding):
  return sharding.spec[0] if len(sharding.spec) else None


def _partitioned(name: str, reduce_batch: bool):
  """The pass `name` as custom_partitioning over its first operand's dim 0, the batch: each device runs
  the pass on its own rows, everything else replicated. `reduce_batch`: both operands carry the batch and
  the result (the kernel gradient) is their sum over it, so each device's sum is summed across devices."""

  def local(a, b, out_shape, strides, padding):
    return _call(name, out_shape, a.dtype, a, b, strides, padding)

  def partition(out_shape, strides, padding, mesh, arg_shapes, result_shape):
    axes = _batch_axes(arg_shapes[0].sharding)
    batch, whole = NamedSharding(mesh, P(axes)), NamedSharding(mesh, P())

    def lower(a, b):
      if not reduce_batch:
        return local(a, b, (a.shape[0], *out_shape[1:]), strides, padding)
      out = local(a, b, out_shape, strides, padding)
      return jax.lax.psum(out, axes) if axes else out

    return mesh, lower, whole if reduce_batch else batch, (batch, batch if reduce_batch else whole)

  def infer(out_shape, strides, padding, mesh, arg_shapes, result_shape):
    return NamedSharding(mesh, P() if reduce_batch else P(_batch_axes(arg_shapes[0].sharding)))

  op = custom_partitioning(local, static_argnums=(2, 3, 4))
  rule = "n h w c, n p q o -> i j k l" if reduce_batch else "n h w c, i j k l -> n p q o"
  op.def_partition(partition, infer_sharding_from_operands=infer, sharding_rule=rule,
                   reduction_factors=("n",) if reduce_batch else (),
                   need_replication_factors=tuple(dict.fromkeys(  # In the rule's order, as Shardy wants.
                       f for f in rule.replace(",", " ").replace("->", " ").split() if f != "n")))
  return op


def _batched(op, reduce_batch: bool):
  """`op` under jax.vmap: a vmapped axis on the activations alone joins their batch (one call); any other
  case (a vmapped kernel, or the kernel gradient, whose sum over the batch must stay per vmapped row) is
  a lax.map of calls."""

  def call(a, b, out_shape, strides, padding):
    @jax.custom_batching.custom_vmap
    def run(a, b):
      return op(a, b, out_shape, strides, padding)

    @run.def_vmap
    def rule(axis_size, in_batched, a, b):
      if in_batched == [True, False] and not reduce_batch:
        rows = a.reshape(-1, *a.shape[2:])
        out = call(rows, b, (rows.shape[0], *out_shape[1:]), strides, padding)
        return out.reshape(axis_size, -1, *out.shape[1:]), True
      a, b = (x if batched else jnp.broadcast_to(x, (axis_size, *x.shape))
              for x, batched in zip((a, b), in_batched))
      return jax.lax.map(lambda ab: call(*ab, out_shape, strides, padding), (a, b)), True

    return run(a, b)

  return call


_forward = _batched(_partitioned("fwd", reduce_batch=False), reduce_batch=False)
_backward_data = _batched(_partitioned("bwd_data", reduce_batch=False), reduce_batch=False)
_backward_weights = _batched(_partitioned("bwd_weights", reduce_batch=True), reduce_batch=True)


def _static(strides, padding):
  return tuple(strides), tuple(tuple(p) for p in padding)


def conv(x, w, strides, padding):
  """y = lax.conv_general_dilated(x, w, strides, padding) for NHWC x, HWIO w, (lo, hi) ≥ 0 padding."""
  strides, padding = _static(strides, padding)
  out = [(n + lo + hi - k) // s + 1 for n, k, s, (lo, hi) in zip(x.shape[1:3], w.shape[:2], strides, padding)]
  return _forward(x, w, (x.shape[0], *out, w.shape[3]), strides, padding)


def conv_backward_data(dy, w, x_shape, strides, padding):
  """∂⟨dy, conv(x, w)⟩/∂x, for x of shape `x_shape`: a transposed convolution of dy."""
  return _backward_data(dy, w, tuple(x_shape), *_static(strides, padding))


def conv_backward_weights(x, dy, w_shape, strides, padding):
  """∂⟨dy, conv(x, w)⟩/∂w, for w of shape `w_shape`, summed over the batch."""
  return _backward_weights(x, dy, tuple(w_shape), *_static(strides, padding))


def main() -> None:
  print(f"genjax convolutions: {path()}")
  if _load()[0] is None and jax.default_backend() == "cpu":
    sys.exit(1)  # So that an install step that asked for the extension fails when it is not there.


if __name__ == "__main__":
  main()
