"""Transposed and strided convolutions that XLA:CPU differentiates quickly.

XLA:CPU computes a conv over a zero-dilated input slowly: the gradient of
`lax.conv_transpose` about 10x slower than that of the equivalent sub-pixel
form (one stride-1 conv of the undilated input to s*s*C channels, then
depth-to-space). `ConvTranspose` computes the same function as
`flax.linen.ConvTranspose` with the same parameters, in the sub-pixel form.
The input gradient of a strided conv is such a transposed conv as well, so
`Conv` (same function and parameters as `flax.linen.Conv`) computes that
gradient with the sub-pixel form too.

XLA:CPU also convolves a map smaller than the kernel slowly: a 3×3 conv of a
2×2×256 map to 256 channels (batch 64) takes 175 ms fwd+bwd on one core, 15×
PyTorch's 12 ms. Both layers compute such convs as a patch matrix and one
matmul instead (13 ms): the same sum, in another order.

On CPU, with the `cpu` extra installed (see `onednn.py`), both layers run oneDNN's convolutions
instead, about twice as fast as XLA:CPU's: forward, input and kernel gradients as XLA custom calls
under a `custom_vjp`, the transposed conv as oneDNN's input gradient of a conv. The forms above are
then XLA's fallback, kept for GPU/TPU and wherever oneDNN is not there.

Run `python -m genjax.nets.layers` to time both forms, both paths, and both forms of oneDNN's kernel
gradient.
"""

import functools
import math
import os
import time
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.dtypes import promote_dtype
from flax.linen.linear import canonicalize_padding, default_kernel_init
from jax import lax

from genjax import host_memory
from genjax.nets import onednn

_DN = ("NHWC", "HWIO", "NHWC")


def _lax_padding(k: int, s: int, padding) -> tuple[int, int]:
  """(lo, hi) padding of the dilated input, as `lax.conv_transpose` uses it."""
  if padding == "SAME":
    pad_len = k + s - 2
    lo = k - 1 if s > k - 1 else math.ceil(pad_len / 2)
  elif padding == "VALID":
    pad_len = k + s - 2 + max(k - s, 0)
    lo = k - 1
  else:  # Explicit (lo, hi): lax.conv_transpose uses it as given.
    lo, hi = padding
    return lo, hi
  return lo, pad_len - lo


def _subpixel_plan(n: int, k: int, s: int, lo: int, hi: int):
  """Per-dim plan: tap index array, conv padding and output length.

  With x_dil the input dilated by s and padded by (lo, hi),
  y[s*m + a] = sum_t K[t] x_dil[s*m + a + t]. Tap t of phase a lands on a real
  input row only if (a + t - lo) % s == 0, namely on x[m + d] with
  d = (a + t - lo) // s. The sub-pixel kernel holds tap t at offset d - d_min
  of phase a; index k (a zero row appended to K) marks "no tap".
  """
  out_len = (n - 1) * s + 1 + lo + hi - k + 1
  taps = [(a, t, (a + t - lo) // s)
          for a in range(s) for t in range(k) if (a + t - lo) % s == 0]
  d_min = min(d for _, _, d in taps)
  d_max = max(d for _, _, d in taps)
  idx = np.full((d_max - d_min + 1, s), k, dtype=np.int32)
  for a, t, d in taps:
    idx[d - d_min, a] = t
  m = -(-out_len // s)  # Output rows per phase; the last ones may be cropped.
  return idx, (-d_min, m - 1 + d_max - (n - 1)), out_len


def _smaller_than_kernel(x, kernel) -> bool:
  return x.shape[1] < kernel.shape[0] or x.shape[2] < kernel.shape[1]


def patch_conv(x, kernel, strides, padding, precision=None) -> jax.Array:
  """`lax.conv_general_dilated` (NHWC/HWIO, explicit (lo, hi) padding, may be negative) as a matmul of
  the stacked kernel taps' strided views: cheap for the small maps where XLA:CPU's conv is slow."""
  (kh, kw, cin, cout), (sh, sw) = kernel.shape, strides
  (lo_h, hi_h), (lo_w, hi_w) = padding
  xp = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (lo_h, hi_h, 0), (lo_w, hi_w, 0), (0, 0, 0)))
  oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
  taps = [xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] for i in range(kh) for j in range(kw)]
  return jnp.einsum("nhwtc,tco->nhwo", jnp.stack(taps, axis=3), kernel.reshape(kh * kw, cin, cout),
                    precision=precision)


def conv2d(x, kernel, strides, padding, precision=None) -> jax.Array:
  """`lax.conv_general_dilated` (NHWC/HWIO, explicit padding); patch_conv for maps smaller than the kernel."""
  if _smaller_than_kernel(x, kernel):
    return patch_conv(x, kernel, strides, padding, precision)
  return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DN, precision=precision)


def conv_transpose_subpixel(x, kernel, strides, padding="SAME",
                            precision=None) -> jax.Array:
  """`lax.conv_transpose(x, kernel, strides, padding)` for NHWC/HWIO, 2-D."""
  (kh, kw, cin, cout), (sh, sw) = kernel.shape, strides
  pads = canonicalize_padding(padding, 2)
  if isinstance(pads, str):
    pads = [pads, pads]
  plans = [_subpixel_plan(n, k, s, *_lax_padding(k, s, p))
           for n, k, s, p in zip(x.shape[1:3], (kh, kw), strides, pads)]
  (idx_h, pad_h, out_h), (idx_w, pad_w, out_w) = plans
  # Gather the sub-pixel kernel W[dy, dx, cin, (a, b, cout)] from K plus a
  # zero row/column; the gather's gradient scatters back into K.
  k_ext = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  w = k_ext[idx_h[:, :, None, None], idx_w[None, None, :, :]]  # Th,sh,Tw,sw,..
  w = w.transpose(0, 2, 4, 1, 3, 5).reshape(
      idx_h.shape[0], idx_w.shape[0], cin, sh * sw * cout)
  z = conv2d(x, w, (1, 1), (pad_h, pad_w), precision)  # Negative padding crops.
  # Depth-to-space: channel (a, b, c) of z[m, l] is y[sh*m + a, sw*l + b, c].
  nb, mh, mw, _ = z.shape
  y = z.reshape(nb, mh, mw, sh, sw, cout).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(nb, mh * sh, mw * sw, cout)[:, :out_h, :out_w]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def strided_conv(x, kernel, strides, padding, precision=None):
  """`lax.conv_general_dilated` (NHWC/HWIO, explicit padding) with a sub-pixel input gradient."""
  return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DN, precision=precision)


def _strided_conv_fwd(x, kernel, strides, padding, precision):
  return strided_conv(x, kernel, strides, padding, precision), (x, kernel)


def _strided_conv_bwd(strides, padding, precision, residuals, g):
  x, kernel = residuals
  _, kernel_vjp = jax.vjp(  # XLA:CPU's kernel gradient of a strided conv is fast: keep it
      lambda k: lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=_DN, precision=precision),
      kernel)
  # ∂x is the transposed conv of g with the spatially flipped, in/out-swapped kernel; its padding is
  # the one jax uses for this gradient (lax's _conv_general_vjp_lhs_padding).
  pads = []
  for n, k, s, (lo, _), m in zip(x.shape[1:3], kernel.shape[:2], strides, padding, g.shape[1:3]):
    before = k - lo - 1
    pads.append((before, n + k - 1 - ((m - 1) * s + 1) - before))
  flipped = jnp.flip(kernel, (0, 1)).swapaxes(2, 3)
  dx = conv_transpose_subpixel(g, flipped, strides, pads, precision)
  return dx.astype(x.dtype), kernel_vjp(g)[0]


strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


def _crop_negative_padding(x, padding):
  """x cropped where the (lo, hi) padding is negative, and the padding that is left (≥ 0)."""
  if all(lo >= 0 and hi >= 0 for lo, hi in padding):
    return x, padding
  crops = [(min(lo, 0), min(hi, 0), 0) for lo, hi in padding]
  x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *crops, (0, 0, 0)])
  return x, tuple((max(lo, 0), max(hi, 0)) for lo, hi in padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def onednn_conv(x, kernel, strides, padding):
  """`lax.conv_general_dilated` (NHWC/HWIO, explicit (lo, hi) ≥ 0 padding) by oneDNN."""
  return onednn.conv(x, kernel, strides, padding)


def _onednn_conv_fwd(x, kernel, strides, padding):
  return onednn_conv(x, kernel, strides, padding), (x, kernel)


def _onednn_conv_bwd(strides, padding, residuals, g):
  x, kernel = residuals
  return (onednn.conv_backward_data(g, kernel, x.shape, strides, padding),
          onednn.conv_backward_weights(x, g, kernel.shape, strides, padding))


onednn_conv.defvjp(_onednn_conv_fwd, _onednn_conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def onednn_conv_input_grad(dy, kernel, x_shape, strides, padding):
  """The input gradient of `onednn_conv` as a linear function of dy: a transposed convolution."""
  return onednn.conv_backward_data(dy, kernel, x_shape, strides, padding)


def _onednn_conv_input_grad_fwd(dy, kernel, x_shape, strides, padding):
  return onednn_conv_input_grad(dy, kernel, x_shape, strides, padding), (dy, kernel)


def _onednn_conv_input_grad_bwd(x_shape, strides, padding, residuals, g):
  dy, kernel = residuals  # Its adjoint in dy is the conv itself; in the kernel, the conv's kernel gradient.
  return (onednn.conv(g, kernel, strides, padding),
          onednn.conv_backward_weights(g, dy, kernel.shape, strides, padding))


onednn_conv_input_grad.defvjp(_onednn_conv_input_grad_fwd, _onednn_conv_input_grad_bwd)


def onednn_conv_transpose(x, kernel, strides, padding="SAME") -> jax.Array:
  """`lax.conv_transpose(x, kernel, strides, padding)` for NHWC/HWIO, 2-D, by oneDNN.

  lax.conv_transpose convolves x dilated by s and padded by (lo, hi) with K. That is the input
  gradient of a stride-s conv with the flipped, in/out-swapped kernel and padding (k-1-lo, k-1-hi),
  once lo and hi lie in [0, k-1]; beyond that range the output gains zero rows or loses rows.
  """
  pads = canonicalize_padding(padding, 2)
  pads = [pads, pads] if isinstance(pads, str) else pads
  lax_pads = [_lax_padding(k, s, p) for k, s, p in zip(kernel.shape[:2], strides, pads)]
  inside = [(min(max(lo, 0), k - 1), min(max(hi, 0), k - 1)) for (lo, hi), k in zip(lax_pads, kernel.shape)]
  conv_pads = tuple((k - 1 - lo, k - 1 - hi) for (lo, hi), k in zip(inside, kernel.shape))
  out = [(n - 1) * s + k - lo - hi
         for n, k, s, (lo, hi) in zip(x.shape[1:3], kernel.shape[:2], strides, conv_pads)]
  flipped = jnp.flip(kernel, (0, 1)).swapaxes(2, 3)
  y = onednn_conv_input_grad(x, flipped, (x.shape[0], *out, kernel.shape[3]), tuple(strides), conv_pads)
  rest = [(lo - lo_in, hi - hi_in, 0) for (lo, hi), (lo_in, hi_in) in zip(lax_pads, inside)]
  return lax.pad(y, jnp.zeros((), y.dtype), [(0, 0, 0), *rest, (0, 0, 0)])


class _Conv2D(nn.Module):
  """Fields, parameters and dtype handling shared with flax's 2-D Conv and ConvTranspose."""
  features: int
  kernel_size: Sequence[int]
  strides: int | Sequence[int] | None = (1, 1)
  padding: Any = "SAME"
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None
  kernel_init: Any = default_kernel_init
  bias_init: Any = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    name = type(self).__name__
    if x.ndim != 4:
      raise ValueError(f"{name} takes NHWC inputs, got shape {x.shape}")
    if self.padding == "CIRCULAR":
      raise ValueError(f"{name} does not support CIRCULAR padding")
    # An int kernel_size would mean 1-D in flax, so refuse it.
    if isinstance(self.kernel_size, int) or len(self.kernel_size) != 2:
      raise ValueError(f"kernel_size must be (kh, kw), got {self.kernel_size}")
    strides = self.strides or 1
    strides = (strides,) * 2 if isinstance(strides, int) else tuple(strides)
    kernel = self.param("kernel", self.kernel_init, tuple(self.kernel_size) + (x.shape[-1], self.features),
                        self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = self.convolve(x, kernel, strides)
    return y if bias is None else y + bias


class Conv(_Conv2D):
  """Drop-in for 2-D `nn.Conv` (no dilation or groups) whose strided input gradient is sub-pixel.

  Same parameters (`kernel` (kh, kw, in, out), `bias` (out,)) and outputs.
  """

  def convolve(self, x, kernel, strides):
    padding = canonicalize_padding(self.padding, 2)
    if isinstance(padding, str):
      padding = lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides, padding)
    padding = tuple(tuple(p) for p in padding)
    if onednn.available(x.dtype):
      x, padding = _crop_negative_padding(x, padding)
      return onednn_conv(x, kernel, strides, padding)
    if strides == (1, 1) or _smaller_than_kernel(x, kernel):
      return conv2d(x, kernel, strides, padding, self.precision)
    return strided_conv(x, kernel, strides, padding, self.precision)


class ConvTranspose(_Conv2D):
  """Drop-in for 2-D `nn.ConvTranspose` (default `transpose_kernel=False`).

  Same parameters (`kernel` (kh, kw, in, out), `bias` (out,)) and outputs, in
  the sub-pixel form. Takes NHWC inputs; `padding` is 'SAME', 'VALID' or
  explicit (lo, hi) pairs as in `lax.conv_transpose`.
  """

  def convolve(self, x, kernel, strides):
    if onednn.available(x.dtype):
      return onednn_conv_transpose(x, kernel, strides, self.padding)
    return conv_transpose_subpixel(x, kernel, strides, self.padding, self.precision)


def _time_alternated(steps: dict, repeats: int) -> dict:
  """Best and median seconds of each jitted (step, args), run in turn so that load hits all alike."""
  for step, args in steps.values():
    jax.block_until_ready(step(*args))  # Warm up.
  times = {name: [] for name in steps}
  for _ in range(repeats):
    for name, (step, args) in steps.items():
      start = time.perf_counter()
      jax.block_until_ready(step(*args))
      times[name].append(time.perf_counter() - start)
  for name, runs in times.items():
    print(f"{name:>32}: best {min(runs) * 1e3:7.1f} ms, median {np.median(runs) * 1e3:7.1f} ms ({repeats} runs)")
  return {name: min(runs) for name, runs in times.items()}


def _fwd_bwd(layer, x):
  """The layer's fwd+bwd, compiled now: on the convolution path in force here."""
  loss = lambda p, x: jnp.sum(layer.apply(p, x) ** 2)
  args = (layer.init(jax.random.key(1), x), x)
  return jax.jit(jax.grad(loss, argnums=(0, 1))).lower(*args).compile(), args


def benchmark(batch: int = 64, size: int = 8, cin: int = 256,
              cout: int = 128, repeats: int = 10) -> None:
  """Prints fwd+bwd time of nn.ConvTranspose vs ConvTranspose (5x5, stride 2) on XLA's convolutions."""
  x = jax.random.normal(jax.random.key(0), (batch, size, size, cin))
  kw = dict(features=cout, kernel_size=(5, 5), strides=(2, 2))
  with onednn.disabled():
    best = _time_alternated({"nn.ConvTranspose": _fwd_bwd(nn.ConvTranspose(**kw), x),
                             "sub-pixel ConvTranspose": _fwd_bwd(ConvTranspose(**kw), x)}, repeats)
  print(f"{jax.default_backend()}: batch {batch}, {size}x{size}x{cin} -> "
        f"{2 * size}x{2 * size}x{cout}, fwd+bwd speed-up "
        f"{best['nn.ConvTranspose'] / best['sub-pixel ConvTranspose']:.1f}x")


def benchmark_paths(repeats: int = 5) -> None:
  """Prints fwd+bwd time of Larsen et al.'s discriminator conv (16×16×128 → 8×8×256 on 192 images) and
  decoder transposed conv (8×8×256 → 16×16×128 on 64 images), 5×5 stride 2, on XLA's and oneDNN's
  convolutions, and the threads of XLA's pool that oneDNN ran on."""
  if not onednn.available(jnp.float32):
    print(f"convolutions: {onednn.path()}: nothing to compare")
    return
  cases = {"Conv": (Conv(256, (5, 5), strides=(2, 2)), (192, 16, 16, 128)),
           "ConvTranspose": (ConvTranspose(128, (5, 5), strides=(2, 2)), (64, 8, 8, 256))}
  steps = {}
  for name, (layer, shape) in cases.items():
    x = jax.random.normal(jax.random.key(0), shape)
    with onednn.disabled():
      steps[(name, "XLA")] = _fwd_bwd(layer, x)
    steps[(name, "oneDNN")] = _fwd_bwd(layer, x)
  best = _time_alternated({f"{name} on {path}": step for (name, path), step in steps.items()}, repeats)
  for name in cases:
    print(f"{name}: oneDNN at {best[f'{name} on XLA'] / best[f'{name} on oneDNN']:.2f}x XLA's speed")
  print(f"oneDNN ran on {onednn.pool_threads()} thread(s) of XLA's intra-op pool; {os.cpu_count()} CPUs, "
        f"{len(os.sched_getaffinity(0))} usable by this process")


def benchmark_kernel_gradients(repeats: int = 5) -> None:
  """Prints the time of oneDNN's direct kernel gradient and of the tap-by-tap one on three preset layers
  (5×5 stride 2 unless said; 128 images as DCGAN's discriminator sees at batch 64), alternated. Each call
  outside the benchmark goes tap by tap where its output map has at most 16 pixels (onednn_conv.cc)."""
  if not onednn.available(jnp.float32):
    print(f"convolutions: {onednn.path()}: nothing to compare")
    return
  cases = {"DCGAN D 8x8x256 -> 4x4x512": ((128, 8, 8, 256), (5, 5, 256, 512), (2, 2), ((1, 2), (1, 2))),
           "AAE 4x4x512 -> 4x4x512 (3x3)": ((64, 4, 4, 512), (3, 3, 512, 512), (1, 1), ((1, 1), (1, 1))),
           "DCGAN D 16x16x128 -> 8x8x256": ((128, 16, 16, 128), (5, 5, 128, 256), (2, 2), ((1, 2), (1, 2)))}
  for name, (x_shape, w_shape, strides, padding) in cases.items():
    x = jax.random.normal(jax.random.key(0), x_shape)
    dy = jax.random.normal(jax.random.key(1), (x_shape[0], *[
        (n + lo + hi - k) // s + 1 for n, k, s, (lo, hi) in zip(x_shape[1:3], w_shape[:2], strides, padding)],
        w_shape[3]))
    gradient = jax.jit(lambda x, dy: onednn.conv_backward_weights(x, dy, w_shape, strides, padding))

    def form(by_taps):
      def run(x, dy):
        with onednn.kernel_gradient(by_taps):
          return jax.block_until_ready(gradient(x, dy))  # Inside: the setting holds while the call runs.
      return run, (x, dy)
    print(f"{name}, {x_shape[0]} images:")
    best = _time_alternated({"direct": form(False), "tap by tap": form(True)}, repeats)
    print(f"  tap by tap at {best['direct'] / best['tap by tap']:.2f}x the direct kernel's speed")


if __name__ == "__main__":
  host_memory.keep_step_memory()  # As genjax.main and genjax.bench run: see genjax/host_memory.py.
  benchmark()
  benchmark_paths()
  benchmark_kernel_gradients()
