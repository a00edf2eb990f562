"""Tests for genjax.nets: the sub-pixel ConvTranspose and the Larsen nets."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genjax.nets import (Conv, ConvTranspose, Decoder, Discriminator,
                         Encoder, check_image_shape, layers)

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


# --- ConvTranspose ----------------------------------------------------------


@functools.partial(jax.jit, static_argnames="models")
def _outputs_and_vjps(params, x, cotangent, models):
  """Each model's output and VJP w.r.t. (params, x), in one compiled call."""
  results = []
  for model in models:
    y, vjp = jax.vjp(model.apply, params, x)
    results.append((y, vjp(cotangent)))
  return results


def _compare_to_flax(x_shape, padding="SAME", ours_cls=ConvTranspose,
                     ref_cls=nn.ConvTranspose, **kw):
  ours = ours_cls(padding=padding, precision=HIGHEST, **kw)
  ref = ref_cls(padding=padding, precision=HIGHEST, **kw)
  x = jnp.zeros(x_shape)
  y, params = jax.eval_shape(ref.init_with_output, jax.random.key(1), x)
  assert jax.eval_shape(ours.init, jax.random.key(1), x) == params
  # Host-side random data: jax.random would cost a compile per shape.
  rng = np.random.default_rng(0)
  params, x, cotangent = jax.tree_util.tree_map(  # Also a non-zero bias.
      lambda a: rng.normal(size=a.shape).astype(np.float32), (params, x, y))
  got, want = _outputs_and_vjps(params, x, cotangent, (ours, ref))
  assert got[0].shape == want[0].shape
  for g, w in zip(_leaves(got), _leaves(want)):
    np.testing.assert_allclose(g, w, **TOL)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_conv_transpose_matches_flax(k, stride):
  for hw in [(5, 4), (4, 7)]:  # Odd and even sizes, non-square.
    _compare_to_flax((2, *hw, 3), features=4, kernel_size=(k, k),
                     strides=(stride, stride))


@pytest.mark.parametrize("padding", ["VALID", ((1, 2), (0, 3)), 1])
def test_conv_transpose_other_paddings(padding):
  _compare_to_flax((1, 5, 4, 2), padding, features=3, kernel_size=(4, 3),
                   strides=(2, 3))


def test_conv_transpose_stride_above_kernel_and_no_bias():
  _compare_to_flax((1, 3, 4, 2), features=3, kernel_size=(2, 2), strides=3,
                   use_bias=False)


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
def test_conv_matches_flax_with_gradients(k, stride):
  for hw in [(9, 8), (8, 11)]:  # Odd and even sizes, non-square.
    _compare_to_flax((2, *hw, 3), features=4, kernel_size=(k, k),
                     strides=(stride, stride), **_CONV)


@pytest.mark.parametrize("padding", ["VALID", ((1, 2), (0, 3)), 1])
def test_conv_other_paddings(padding):
  _compare_to_flax((1, 9, 8, 2), padding, features=3, kernel_size=(4, 3),
                   strides=(2, 3), use_bias=False, **_CONV)


@pytest.mark.parametrize("hw, k, stride, padding", [
    ((2, 2), 3, 1, "SAME"), ((1, 3), 3, 1, "SAME"), ((2, 3), 4, 2, ((1, 2), (1, 1))), ((3, 2), 4, 1, 2)])
def test_conv_of_maps_smaller_than_the_kernel(hw, k, stride, padding):
  # These take the patch-matrix path (XLA:CPU's conv is slow there); same values and gradients as flax.
  _compare_to_flax((2, *hw, 5), padding, features=4, kernel_size=(k, k), strides=(stride, stride), **_CONV)


def test_conv_transpose_of_a_map_smaller_than_its_sub_pixel_kernel():
  _compare_to_flax((2, 1, 2, 5), features=4, kernel_size=(5, 5), strides=(2, 2))  # 3×3 sub-kernel on 1×2


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
  assert "conv_general_dilated" in jaxpr and "bf16[" in jaxpr


def test_check_image_shape():
  check_image_shape((64, 32, 3), 3)
  for bad in [(30, 32, 3), (32, 12, 1), (0, 0, 3), (4, 4, 1), (32, 32)]:
    with pytest.raises(ValueError, match="multiples of 8"):
      check_image_shape(bad, 3)
  with pytest.raises(ValueError, match="multiples of 8"):
    _abstract_init(Decoder((30, 30, 3)), jnp.zeros((1, 128)))
  with pytest.raises(ValueError, match="multiples of 8"):
    _abstract_init(Encoder(), jnp.zeros((1, 30, 30, 3)))
