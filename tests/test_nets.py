"""Tests for genjax.nets: Conv and ConvTranspose on both paths (oneDNN's, XLA's) and the Larsen nets."""

import contextlib
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genjax.nets import (Conv, ConvTranspose, Decoder, Discriminator,
                         Encoder, check_image_shape, layers, onednn)

HIGHEST = lax.Precision.HIGHEST  # So the comparisons also hold on GPU/TPU.
TOL = dict(rtol=1e-5, atol=1e-5)

# Jitted with the module static: one compile per (module, shapes) across tests,
# far cheaper than op-by-op dispatch.
jit_static = functools.partial(jax.jit, static_argnames=("model", "train"))


@jit_static
def _init(model, x, train=False):
  # rbg keys: XLA:CPU compiles threefry-based inits 3x slower.
  return model.init(jax.random.key(1, impl="rbg"), x, train=train)


@jit_static
def _apply(model, variables, x, train=False):
  return model.apply(variables, x, train=train)


def _abstract_init(model, x):
  """init_with_output's (output, variables) as shapes only: no FLOPs spent."""
  init = functools.partial(model.init_with_output, train=False)
  return jax.eval_shape(init, jax.random.key(0), x)


def _num_params(model, x):
  params = _abstract_init(model, x)[1]["params"]
  return sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params))


def _leaves(tree):
  return jax.tree_util.tree_leaves(tree)


# --- Both convolution paths ---------------------------------------------------
# With the `cpu` extra, layers.py runs oneDNN's convolutions on CPU; XLA's (sub-pixel, patch-matrix)
# forms stay the fallback. Each exactness test runs on both paths against flax's own layers.

ONEDNN = onednn.available(jnp.float32)
_NEEDS_ONEDNN = pytest.mark.skipif(not ONEDNN, reason=onednn.path())
# "onednn": each kernel gradient by the form its output map picks. "onednn_split": every batch in 3
# chunks at least, as on 3 threads (uneven), and every kernel gradient by oneDNN's direct kernel (the
# chunks' partial sums summed). "onednn_taps": every kernel gradient tap by tap, over a few rows at a time.
PATHS = [pytest.param(path, marks=_NEEDS_ONEDNN)
         for path in ("onednn", "onednn_split", "onednn_taps")] + ["xla"]


@contextlib.contextmanager
def _on_path(path):
  """Traces and runs what is inside on `path`: block on results inside, as the oneDNN settings apply when
  a call runs, and JAX dispatches asynchronously."""
  with contextlib.ExitStack() as stack:
    if path == "xla":
      stack.enter_context(onednn.disabled())
    elif path == "onednn_split":
      stack.enter_context(onednn.split_batch(3))
      stack.enter_context(onednn.kernel_gradient(by_taps=False))
    elif path == "onednn_taps":
      stack.enter_context(onednn.kernel_gradient(by_taps=True, block_bytes=64))  # 64 B: a few pixels' rows
    yield


@pytest.fixture(params=PATHS)
def path(request):
  return request.param


@functools.partial(jax.jit, static_argnames=("models", "xla"))
def _outputs_and_vjps(params, x, cotangent, models, xla):
  """Each model's output and VJP w.r.t. (params, x), in one compiled call; on XLA's convolutions or not."""
  results = []
  with onednn.disabled() if xla else contextlib.nullcontext():
    for model in models:
      y, vjp = jax.vjp(model.apply, params, x)
      results.append((y, vjp(cotangent)))
  return results


def _random_like(tree, seed=0):
  """Host-side random data (jax.random would cost a compile per shape); also a non-zero bias."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(lambda a: rng.normal(size=a.shape).astype(np.float32), tree)


def _compare_to_flax(x_shape, padding="SAME", ours_cls=ConvTranspose,
                     ref_cls=nn.ConvTranspose, path="xla", **kw):
  ours = ours_cls(padding=padding, precision=HIGHEST, **kw)
  ref = ref_cls(padding=padding, precision=HIGHEST, **kw)
  x = jnp.zeros(x_shape)
  y, params = jax.eval_shape(ref.init_with_output, jax.random.key(1), x)
  assert jax.eval_shape(ours.init, jax.random.key(1), x) == params
  params, x, cotangent = _random_like((params, x, y))
  with _on_path(path):
    got, want = jax.block_until_ready(_outputs_and_vjps(params, x, cotangent, (ours, ref), path == "xla"))
  assert got[0].shape == want[0].shape
  for g, w in zip(_leaves(got), _leaves(want)):
    np.testing.assert_allclose(g, w, **TOL)
  with _on_path(path):  # The path asked for is the one taken.
    hlo = jax.jit(jax.grad(lambda p, x: jnp.sum(ours.apply(p, x)))).lower(params, x).as_text()
  assert ("genjax_onednn_conv" in hlo) == (path != "xla")


# --- ConvTranspose ----------------------------------------------------------


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_conv_transpose_matches_flax(k, stride, path):
  for hw in [(5, 4), (4, 7)]:  # Odd and even sizes, non-square.
    _compare_to_flax((2, *hw, 3), features=4, kernel_size=(k, k),
                     strides=(stride, stride), path=path)


@pytest.mark.parametrize("padding", ["VALID", ((1, 2), (0, 3)), 1, ((5, -1), (0, 4))])
def test_conv_transpose_other_paddings(padding, path):
  # ((5, -1), (0, 4)): beyond the kernel's reach (rows of zeros) and negative (rows cropped).
  _compare_to_flax((1, 5, 4, 2), padding, features=3, kernel_size=(4, 3),
                   strides=(2, 3), path=path)


def test_conv_transpose_stride_above_kernel_and_no_bias(path):
  _compare_to_flax((1, 3, 4, 2), features=3, kernel_size=(2, 2), strides=3,
                   use_bias=False, path=path)


def test_conv_transpose_compute_dtype():
  x = jnp.ones((1, 4, 4, 8))
  layer = ConvTranspose(4, (5, 5), strides=(2, 2), dtype=jnp.bfloat16)
  y, variables = jax.eval_shape(layer.init_with_output, jax.random.key(0), x)
  assert y.dtype == jnp.bfloat16 and y.shape == (1, 8, 8, 4)
  assert all(p.dtype == jnp.float32 for p in _leaves(variables))


def test_conv_transpose_rejects_int_kernel_size():
  # nn.ConvTranspose reads an int as a 1-D kernel; we are 2-D only.
  with pytest.raises(ValueError, match="kernel_size"):
    ConvTranspose(4, 5).init(jax.random.key(0), jnp.ones((1, 4, 4, 8)))


# --- Conv (sub-pixel input gradient) -----------------------------------------

_CONV = dict(ours_cls=Conv, ref_cls=nn.Conv)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_conv_matches_flax_with_gradients(k, stride, path):
  for hw in [(9, 8), (8, 11)]:  # Odd and even sizes, non-square.
    _compare_to_flax((2, *hw, 3), features=4, kernel_size=(k, k),
                     strides=(stride, stride), path=path, **_CONV)


@pytest.mark.parametrize("padding", ["VALID", ((1, 2), (0, 3)), 1, ((-1, 2), (1, -2))])
def test_conv_other_paddings(padding, path):
  _compare_to_flax((1, 9, 8, 2), padding, features=3, kernel_size=(4, 3),
                   strides=(2, 3), use_bias=False, path=path, **_CONV)


@pytest.mark.parametrize("hw, k, stride, padding", [
    ((2, 2), 3, 1, "SAME"), ((1, 3), 3, 1, "SAME"), ((2, 3), 4, 2, ((1, 2), (1, 1))), ((3, 2), 4, 1, 2)])
def test_conv_of_maps_smaller_than_the_kernel(hw, k, stride, padding, path):
  # XLA's path takes the patch matrix here (XLA:CPU's conv is slow there); same values and gradients as flax.
  _compare_to_flax((2, *hw, 5), padding, features=4, kernel_size=(k, k), strides=(stride, stride), path=path,
                   **_CONV)


def test_conv_transpose_of_a_map_smaller_than_its_sub_pixel_kernel(path):
  _compare_to_flax((2, 1, 2, 5), features=4, kernel_size=(5, 5), strides=(2, 2), path=path)  # 3×3 sub-kernel


# Every (kernel, stride, padding) of the presets' networks (larsen, began, dcgan, aae, classifier), at
# a batch of 3 (a multiple of nothing); input sizes as they meet them, down to maps the size of the kernel.
PRESET_CONVS = [(5, 1, "SAME", 8), (5, 2, "SAME", 8), (3, 1, "SAME", 4), (3, 2, "SAME", 8),
                (1, 1, "SAME", 4), (1, 2, "SAME", 8), (4, 2, "SAME", 8), (4, 1, "VALID", 8),
                (3, 2, "VALID", 7), (3, 2, "VALID", 3), (3, 1, "SAME", 2), (3, 1, "SAME", 1)]
PRESET_CONV_TRANSPOSES = [(5, 2, 4), (5, 1, 4), (4, 2, 4), (2, 2, 4), (5, 2, 1)]


@pytest.mark.parametrize("k, stride, padding, size", PRESET_CONVS)
def test_preset_convs_match_flax(k, stride, padding, size, path):
  _compare_to_flax((3, size, size + 1, 6), padding, features=5, kernel_size=(k, k), strides=(stride, stride),
                   path=path, **_CONV)


@pytest.mark.parametrize("k, stride, size", PRESET_CONV_TRANSPOSES)
def test_preset_conv_transposes_match_flax(k, stride, size, path):
  _compare_to_flax((3, size, size + 1, 6), features=5, kernel_size=(k, k), strides=(stride, stride), path=path)


def _conv_and_transpose(x):
  """One Conv and one ConvTranspose (stride 2, non-square kernels), as a function of their params."""
  conv = Conv(5, (5, 3), strides=(2, 2))
  deconv = ConvTranspose(3, (3, 4), strides=(2, 2))
  ref_conv, ref_deconv = nn.Conv(5, (5, 3), strides=(2, 2)), nn.ConvTranspose(3, (3, 4), strides=(2, 2))
  params = _random_like(jax.eval_shape(lambda: {"conv": ref_conv.init(jax.random.key(0), x),
                                                "deconv": ref_deconv.init(jax.random.key(0), jnp.zeros(
                                                    (x.shape[0], 4, 3, 5)))}), seed=1)

  def apply(params, x, ours=True):
    c, d = (conv, deconv) if ours else (ref_conv, ref_deconv)
    return d.apply(params["deconv"], jnp.tanh(c.apply(params["conv"], x)))
  return params, apply


@pytest.mark.parametrize("path", PATHS)
def test_convs_inside_scan_match_flax(path):
  # A few SGD steps in lax.scan: values and gradients flow through the carry on both paths.
  x = jnp.asarray(_random_like(jnp.zeros((3, 8, 6, 2)), seed=2))
  params, apply = _conv_and_transpose(x)

  def train(params, ours):
    def step(p, _):
      loss, g = jax.value_and_grad(lambda p: jnp.sum(apply(p, x, ours)[:, :8, :6, :2] * x))(p)
      return jax.tree.map(lambda a, b: a - 1e-3 * b, p, g), loss
    return lax.scan(step, params, None, length=3)

  with _on_path(path):
    got = jax.block_until_ready(jax.jit(train, static_argnums=1)(params, True))
    assert ("genjax_onednn" in jax.jit(train, static_argnums=1).lower(params, True).as_text()) == (path != "xla")
  want = jax.jit(train, static_argnums=1)(params, False)
  for g, w in zip(_leaves(got), _leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("path", PATHS)
def test_convs_under_vmap_match_flax(path):
  # vmap over the images alone (oneDNN: folded into the batch), over params and images (oneDNN: a map
  # of calls), and the gradient of a vmapped loss.
  x = jnp.asarray(_random_like(jnp.zeros((2, 3, 8, 6, 2)), seed=6))
  params, apply = _conv_and_transpose(x[0])
  stacked = jax.tree.map(lambda a: jnp.stack([a, -0.5 * a]), params)
  loss = lambda p, x, ours: jnp.sum(jnp.sin(apply(p, x, ours)))
  cases = {"images": (lambda p, x, ours: jax.vmap(lambda x: apply(p, x, ours))(x), params),
           "params and images": (lambda p, x, ours: jax.vmap(jax.grad(loss, argnums=(0, 1)), (0, 0, None))(
               p, x, ours), stacked),
           "grad of vmap": (lambda p, x, ours: jax.grad(lambda p: jnp.sum(jax.vmap(
               loss, (None, 0, None))(p, x, ours)))(p), params)}
  for name, (f, p) in cases.items():
    with _on_path(path):
      got = jax.block_until_ready(jax.jit(f, static_argnums=2)(p, x, True))
    want = jax.jit(f, static_argnums=2)(p, x, False)
    for g, w in zip(_leaves(got), _leaves(want)):
      np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("path", PATHS)
def test_convs_with_the_batch_sharded_over_8_devices(path):
  # Values and gradients of a batch sharded over the 8 simulated devices equal flax's on one device,
  # and oneDNN's calls keep the batch sharded: no device gathers another's activations.
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
  assert mesh.size == 8
  x = jnp.asarray(_random_like(jnp.zeros((16, 8, 6, 2)), seed=3))
  params, apply = _conv_and_transpose(x)
  loss = lambda p, x, ours: jnp.sum(jnp.sin(apply(p, x, ours)))
  grads = jax.value_and_grad(loss, argnums=(0, 1))
  shardings = (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
               jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data")))
  with _on_path(path):
    sharded = jax.jit(grads, static_argnums=2, in_shardings=shardings).lower(params, x, True).compile()
    got = jax.block_until_ready(sharded(params, x))
  want = jax.jit(grads, static_argnums=2)(params, x, False)
  for g, w in zip(_leaves(got), _leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
  hlo = sharded.as_text()
  if path != "xla":
    assert "genjax_onednn_conv_bwd_weights" in hlo and "all-gather" not in hlo


@pytest.mark.skipif(not onednn.available(jnp.bfloat16), reason="no bfloat16 oneDNN convolutions here")
def test_onednn_bfloat16_matches_xla():
  x = jnp.asarray(_random_like(jnp.zeros((3, 8, 6, 4)), seed=4))
  layers_ = (Conv(5, (5, 5), strides=(2, 2), dtype=jnp.bfloat16),
             ConvTranspose(5, (5, 5), strides=(2, 2), dtype=jnp.bfloat16))
  for layer in layers_:
    params = _random_like(jax.eval_shape(layer.init, jax.random.key(0), x), seed=5)
    f = jax.jit(jax.value_and_grad(lambda p, x: jnp.sum(layer.apply(p, x).astype(jnp.float32) ** 2),
                                   argnums=(0, 1)))
    got = f(params, x)
    with onednn.disabled():
      want = jax.jit(f.__wrapped__)(params, x)
    for g, w in zip(_leaves(got), _leaves(want)):
      scale = float(jnp.max(jnp.abs(w)))
      np.testing.assert_allclose(g, w, rtol=0, atol=0.05 * scale)


def test_convolution_path_is_said_once():
  said = onednn.path()
  assert said.startswith("oneDNN" if ONEDNN else "XLA's")
  assert onednn.path() is said  # Decided and logged once per process.
  with onednn.disabled():
    assert not onednn.available(jnp.float32)
    hlo = jax.jit(lambda x: Conv(2, (3, 3)).init_with_output(jax.random.key(0), x)[0]).lower(
        jnp.ones((1, 4, 4, 1))).as_text()
  assert "convolution" in hlo and "genjax_onednn" not in hlo


def test_without_the_extension_xla_is_said(monkeypatch):
  # What a default install (no `cpu` extra) or a machine without a C++ compiler sees.
  monkeypatch.setattr(onednn, "RUNTIME", "no-such-onednn-package")
  assert onednn._load.__wrapped__() == (None, "XLA's (no-such-onednn-package is not installed "
                                              "(pip install -e '.[cpu]'))")
  monkeypatch.undo()
  monkeypatch.setenv("CXX", "no-such-compiler")
  lib, line = onednn._load.__wrapped__()
  assert lib is None and line.startswith("XLA's (") and ("no C++ compiler" in line or "not installed" in line)


def test_patch_conv_is_lax_conv_with_negative_padding_and_strides():
  rng = np.random.default_rng(0)
  x, kernel = rng.normal(size=(2, 7, 6, 3)), rng.normal(size=(3, 2, 3, 4))
  padding = ((-1, 2), (1, -1))
  want = lax.conv_general_dilated(x, kernel, (2, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                  precision=HIGHEST)
  got = layers.patch_conv(jnp.asarray(x), jnp.asarray(kernel), (2, 1), padding, precision=HIGHEST)
  np.testing.assert_allclose(got, want, **TOL)


def test_conv_compute_dtype_and_bf16_gradient():
  x = jnp.ones((1, 8, 8, 3))
  layer = Conv(4, (5, 5), strides=(2, 2), dtype=jnp.bfloat16)
  variables = layer.init(jax.random.key(0), x)
  grad = jax.grad(lambda x: jnp.sum(layer.apply(variables, x).astype(
      jnp.float32)))(x)
  assert layer.apply(variables, x).dtype == jnp.bfloat16
  assert grad.dtype == jnp.float32 and grad.shape == x.shape


# --- Larsen et al. networks -------------------------------------------------

# Tiny nets for the behavioural tests; the paper sizes are checked by shape.
IMAGE = (16, 16, 1)
ENCODER = Encoder(channels=(8, 8, 8), hidden=16, latent_dim=4)
DECODER = Decoder(IMAGE, channels=(8, 8, 8), latent_dim=4)
DISCRIMINATOR = Discriminator(channels=(8, 8, 8, 8), hidden=16)


def _images(n=3):
  return jax.random.uniform(jax.random.key(0), (n, *IMAGE), minval=-1.0)


@pytest.mark.parametrize("hwc", [(64, 64, 3), (32, 32, 1), (16, 16, 1)])
def test_output_shapes(hwc):
  x = jnp.zeros((2, *hwc))
  mean, logvar = _abstract_init(Encoder(), x)[0]
  assert mean.shape == logvar.shape == (2, 128)
  image = _abstract_init(Decoder(hwc), mean)[0]
  assert image.shape == (2, *hwc) and image.dtype == jnp.float32
  logits, features = _abstract_init(Discriminator(), x)[0]
  assert logits.shape == (2,)
  assert features.shape == (2, hwc[0] // 8, hwc[1] // 8, 256)
  # The paper's 32x32 decoder.
  if hwc[0] == 32:
    decoder = Decoder(hwc, channels=(192, 128, 32))
    assert _abstract_init(decoder, mean)[0].shape == (2, *hwc)


@pytest.mark.parametrize("layer", [1, 3])
def test_features_are_pre_batch_norm_conv_output(layer):
  dis = DISCRIMINATOR.clone(feature_layer=layer)
  x = _images()
  apply = jax.jit(functools.partial(dis.apply, train=False,
                                    capture_intermediates=True))
  (_, features), state = apply(_init(dis, x), x)
  conv_out = state["intermediates"][f"Conv_{layer - 1}"]["__call__"][0]
  assert features.shape == (3, *{1: (16, 16), 3: (4, 4)}[layer], 8)
  np.testing.assert_array_equal(features, conv_out)


def test_feature_layer_out_of_range():
  with pytest.raises(ValueError, match="feature_layer"):
    _abstract_init(DISCRIMINATOR.clone(feature_layer=5), _images())


def test_paper_parameter_counts():
  x, z = jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 128))
  bn = lambda c: 2 * c  # Scale + shift; the layers they follow have no bias.
  encoder = (5 * 5 * 3 * 64 + bn(64)
             + 5 * 5 * 64 * 128 + bn(128)
             + 5 * 5 * 128 * 256 + bn(256)
             + 8 * 8 * 256 * 1024 + bn(1024)
             + 1024 * 2 * 128 + 2 * 128)
  decoder = (128 * 8 * 8 * 256 + bn(8 * 8 * 256)
             + 5 * 5 * 256 * 256 + bn(256)
             + 5 * 5 * 256 * 128 + bn(128)
             + 5 * 5 * 128 * 32 + bn(32)
             + 5 * 5 * 32 * 3 + 3)
  discriminator = (5 * 5 * 3 * 32 + 32
                   + 5 * 5 * 32 * 128 + bn(128)
                   + 5 * 5 * 128 * 256 + bn(256)
                   + 5 * 5 * 256 * 256 + bn(256)
                   + 8 * 8 * 256 * 512 + bn(512)
                   + 512 * 1 + 1)
  assert _num_params(Encoder(), x) == encoder == 18_071_360
  assert _num_params(Decoder((64, 64, 3)), z) == decoder == 4_693_155
  assert _num_params(Discriminator(), x) == discriminator == 10_953_857


def test_decoder_range_and_determinism():
  z = 10.0 * jax.random.normal(jax.random.key(0), (3, 4))  # Saturates tanh.
  variables = _init(DECODER, z)
  image = _apply(DECODER, variables, z)
  assert image.dtype == jnp.float32
  assert jnp.all(jnp.abs(image) <= 1.0)
  np.testing.assert_array_equal(image, _apply(DECODER, variables, z))
  again = _apply(DECODER, _init(DECODER, z), z)
  np.testing.assert_array_equal(image, again)


def test_eval_uses_running_averages():
  x = _images()
  variables = _init(ENCODER, x)
  mean = _apply(ENCODER, variables, x)[0]  # No mutable collections needed.
  # Per-example in eval mode: independent of the rest of the batch.
  other = x.at[1:].set(jnp.flip(x[1:], axis=1))
  np.testing.assert_allclose(_apply(ENCODER, variables, other)[0][0], mean[0],
                             **TOL)
  # ... and driven by the stored statistics.
  shifted = jax.tree_util.tree_map(lambda s: s + 1.0,
                                   variables["batch_stats"])
  moved = _apply(ENCODER, {**variables, "batch_stats": shifted}, x)[0]
  assert not np.allclose(moved, mean)
  # Training mode updates the statistics.
  train = jax.jit(functools.partial(ENCODER.apply, train=True,
                                    mutable=["batch_stats"]))
  stats = train(variables, x)[1]["batch_stats"]
  assert not np.allclose(stats["BatchNorm_0"]["mean"],
                         variables["batch_stats"]["BatchNorm_0"]["mean"])


@pytest.mark.parametrize("model, make_input", [
    (ENCODER, _images),
    (DECODER, lambda: jax.random.normal(jax.random.key(0), (3, 4))),
    (DISCRIMINATOR, _images),
])
def test_bfloat16_compute_keeps_float32_params_and_outputs(model, make_input):
  x = make_input()
  bf16 = model.clone(dtype=jnp.bfloat16)
  variables = _init(model, x)
  bf16_variables = jax.eval_shape(_init, bf16, x)
  assert bf16_variables == jax.eval_shape(lambda: variables)  # All float32.
  out, ref = _apply(bf16, variables, x), _apply(model, variables, x)
  for o, r in zip(_leaves(out), _leaves(ref)):
    assert o.dtype == jnp.float32
    np.testing.assert_allclose(o, r, rtol=0.1, atol=0.1)
  assert any(not np.array_equal(o, r) for o, r in zip(_leaves(out),
                                                      _leaves(ref)))
  jaxpr = str(jax.make_jaxpr(lambda v: bf16.apply(v, x, train=False))(
      variables))
  convs = "custom_partitioning" if onednn.available(jnp.bfloat16) else "conv_general_dilated"
  assert convs in jaxpr and "bf16[" in jaxpr


def test_check_image_shape():
  check_image_shape((64, 32, 3), 3)
  for bad in [(30, 32, 3), (32, 12, 1), (0, 0, 3), (4, 4, 1), (32, 32)]:
    with pytest.raises(ValueError, match="multiples of 8"):
      check_image_shape(bad, 3)
  with pytest.raises(ValueError, match="multiples of 8"):
    _abstract_init(Decoder((30, 30, 3)), jnp.zeros((1, 128)))
  with pytest.raises(ValueError, match="multiples of 8"):
    _abstract_init(Encoder(), jnp.zeros((1, 30, 30, 3)))
