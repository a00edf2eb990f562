"""Learned-prior AAE (Wang, Peng, Ko 2020) and Makhzani's AAE: gradients per network and phase, the
switches, the InfoGAN term, conditions (a synthetic condition vector included), fixed priors, bad
input, every preset end to end, and a short digits run.

The references below are written from the paper's two phases directly on the modules, with one
`jax.grad` per network; the method computes each phase from one forward pass and one vjp.
"""

import contextlib
import importlib.util
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import jax
import jax.numpy as jnp

from genjax import config_lib, data, train, validation
from genjax.errors import ConfigError, DataError
from genjax.core import conditions
from genjax.core import step as step_lib
from genjax.methods import aae_prior
from genjax.nets import aae as nets
from tests.helpers import (ROOT, assert_trees_close, digits_batches, load_config, one_device, random_batch,
                           to_float64)

PRESETS = {"aae_prior": ("", "fashion", "supervised_digits", "unsupervised_digits", "mnist", "svhn", "cifar10",
                         "cifar10_2000d", "supervised_cifar10", "unsupervised_cifar10"),
           "aae": ("", "fashion", "mnist", "cifar10")}
CONDITIONAL = ("supervised_digits", "unsupervised_digits", "supervised_cifar10", "unsupervised_cifar10")


def _config(method="aae_prior", preset="", **changes):
  """A tiny config: 16×16 images, no residual blocks (stem conv and FC layers only), one conv in D_I,
  one hidden layer in D_C, one learning rate. Nothing tested here depends on depth, XLA:CPU compiles
  every layer of a two-phase step, and presets that differ only in names and rates then share their
  compiled programs (the paper's depth: test_networks_have_the_paper_shapes). `changes` maps
  "section.key" to a value."""
  config = load_config(method, preset)
  config.unlock()
  config.data.update(image_size=16, eval_split="test[:16]")  # two held-out batches of 8
  config.model.update(encoder_channels=(), decoder_channels=(), noise_dim=8,
                      image_discriminator_channels=(64,), code_discriminator_hidden=(1000,))
  for slot in config.optim:
    config.optim[slot].lr = 2e-4
  for key, value in changes.items():
    section, name = key.split(".")
    config[section][name] = value
  config.lock()
  return config


def _batch(condition_dim=0, channels=1):
  batch = random_batch(size=16, channels=channels)
  if condition_dim:
    batch["condition"] = np.random.default_rng(1).normal(size=(8, condition_dim)).astype(np.float32)
  return jax.tree.map(jnp.asarray, batch)


def _setup(method="aae_prior", preset="", condition_dim=0, channels=1, **changes):
  config, batch = _config(method, preset, **changes), _batch(condition_dim, channels)
  return config, aae_prior.init_state(config, jax.random.PRNGKey(0), batch), batch


@pytest.mark.parametrize("size", [16, 32, 64])
def test_networks_have_the_paper_shapes(size):
  """The appendix's networks at full width (shapes only: nothing is compiled)."""
  config = config_lib.load_config(os.path.join(ROOT, "configs", "aae_prior.py:supervised_cifar10"))
  models = aae_prior.networks(config, (size, size, 3))
  x, code, noise, s = (jnp.zeros((2, size, size, 3)), jnp.zeros((2, 64)), jnp.zeros((2, 54)), jnp.zeros((2, 10)))

  def out(net, *inputs):
    return jax.eval_shape(lambda: models[net].init_with_output(jax.random.PRNGKey(0), *inputs, train=False))

  code_out, variables = out("encoder", x)
  assert code_out.shape == (2, 64)
  assert len([k for k in variables["params"] if k.startswith("ResidualBlock")]) == 4
  image, variables = out("decoder", code)
  assert image.shape == (2, size, size, 3)
  assert len([k for k in variables["params"] if k.startswith("UpResidual")]) == 3
  assert out("code_generator", noise, s)[0].shape == (2, 64)
  (logit, features, q), variables = out("image_discriminator", x, None)
  assert logit.shape == (2,) and q.shape == (2, 10) and features.shape == (2, size // 8, size // 8, 256)
  assert variables["params"]["Dense_0"]["kernel"].shape[1] == 1000
  assert out("code_discriminator", code, s)[0].shape == (2,)
  stages = {16: [1, 2], 32: [2, 3], 64: [3, 3]}[size]  # stride-2 blocks: to 4×4, and up from 4×4 (8×8 at 64)
  assert [nets.encoder_downsamples(size), nets.decoder_upsamples(size, 3)] == stages
  with pytest.raises(ValueError, match="must be square"):
    nets.check_image_shape((48, 48, 3))


# --- References from the paper ---------------------------------------------------------------------------

def _run(state, params, net, *inputs):
  """A network in train mode (batch statistics), its new statistics dropped."""
  variables = {"params": params[net]}
  if net in state.batch_stats:
    variables["batch_stats"] = state.batch_stats[net]
    return state.models[net].apply(variables, *inputs, train=True, mutable=["batch_stats"])[0]
  return state.models[net].apply(variables, *inputs, train=True)


def _condition(prior, batch, rng):
  """s and its class index: the one-hot label (supervised), a random category (unsupervised), a vector."""
  n = batch["image"].shape[0]
  if prior.condition == "label":
    return jax.nn.one_hot(batch["label"], prior.condition_dim), batch["label"]
  if prior.condition == "categorical":
    index = jax.random.randint(rng, (n,), 0, prior.condition_dim)
    return jax.nn.one_hot(index, prior.condition_dim), index
  if prior.condition == "vector":
    return batch["condition"], None
  return None, None


def _codes(state, params, batch, rng):
  """z_c = CG(z, s), z ~ N(0, I) (or a fixed-prior sample), and s."""
  prior, n = state.models["prior"], batch["image"].shape[0]
  rng_s, rng_z = jax.random.split(rng)
  s, index = _condition(prior, batch, rng_s)
  if not prior.learned:
    return prior.fixed_sample(rng_z, n), s, index
  z = jax.random.normal(rng_z, (n, prior.noise_dim), jnp.float64)
  return _run(state, params, "code_generator", z, s), s, index


def _log_softmax_at(logits, index):
  return jnp.take_along_axis(jax.nn.log_softmax(logits), index[:, None], axis=1)[:, 0]


def _twice(s):
  return None if s is None else jnp.concatenate([s, s])


def _reference_prior_phase(state, params, batch, rng, config):
  """Phase (a): D_I ascends log D_I(x) + log(1 − D_I(dec z_c)); CG (+ dec) descend −log D_I(dec z_c);
  with a class or category s both also descend λ·(−E log Q(s | dec z_c)) (InfoGAN eq. 5), and with
  q_on_real D_I also descends λ·(−E log Q(y | x)) on real images."""
  x, n, prior = batch["image"], batch["image"].shape[0], state.models["prior"]
  z_c, s, index = _codes(state, params, batch, rng)
  fake = _run(state, params, "decoder", z_c)
  s_image = _twice(s) if prior.condition == "vector" else None
  logits, _, q = _run(state, params, "image_discriminator", jnp.concatenate([x, fake]), s_image)
  d_real, d_fake = jax.nn.sigmoid(logits[:n]), jax.nn.sigmoid(logits[n:])
  l_dis = -jnp.mean(jnp.log(d_real)) - jnp.mean(jnp.log(1 - d_fake))
  l_gen = -jnp.mean(jnp.log(d_fake))
  if index is not None:
    l_info = -jnp.mean(_log_softmax_at(q[n:], index))
    l_dis, l_gen = l_dis + config.loss.info_weight * l_info, l_gen + config.loss.info_weight * l_info
  if prior.condition == "label" and config.loss.q_on_real:  # Q classifies real images too (D_I only)
    l_dis = l_dis - config.loss.info_weight * jnp.mean(_log_softmax_at(q[:n], index))
  return {"code_generator": l_gen, "image_discriminator": l_dis, "decoder": l_gen}


def _reference_aae_phase(state, params, batch, rng, config):
  """Phase (b): D_C tells z_c (real) from enc(x) (fake); the encoder reconstructs and fools D_C; the
  decoder reconstructs, in D_I's last conv features (B) or pixels."""
  cfg, x, n, prior = config.loss, batch["image"], batch["image"].shape[0], state.models["prior"]
  z_c, s, _ = _codes(state, state.params, batch, rng)  # CG fixed
  e = _run(state, params, "encoder", x)
  x_rec = _run(state, params, "decoder", e)
  if cfg.perceptual:
    s_image = _twice(s) if prior.condition == "vector" else None
    _, f, _ = _run(state, params, "image_discriminator", jnp.concatenate([x, x_rec]), s_image)
    rec = jnp.mean(jnp.square(f[n:] - f[:n]))
  else:
    rec = jnp.mean(jnp.square(x_rec - x))
  s_code = _twice(s) if prior.condition in ("label", "vector") else None
  d = jax.nn.sigmoid(_run(state, params, "code_discriminator", jnp.concatenate([z_c, e]), s_code))
  l_dc = -jnp.mean(jnp.log(d[:n])) - jnp.mean(jnp.log(1 - d[n:]))
  return {"encoder": cfg.reconstruction_weight * rec - cfg.adversarial_weight * jnp.mean(jnp.log(d[n:])),
          "decoder": cfg.reconstruction_weight * rec, "code_discriminator": l_dc}


def _gradients(state, batch, rng, config):
  """{phase: (the method's grads, {net: jax.grad of its reference loss alone})}, in one program."""
  objective = aae_prior.objective(config)  # [prior phase,] AAE phase
  phases = {"aae": (objective[-1], _reference_aae_phase)}
  if config.model.learned_prior:
    phases["prior"] = (objective[0], _reference_prior_phase)

  def all_grads(state, batch):
    out = {}
    for phase, (method, reference) in phases.items():
      grads = step_lib.phase_gradients(method, state, batch, rng)[0]
      out[phase] = grads, {net: jax.grad(lambda p, net=net, ref=reference: ref(
          state, {**state.params, net: p}, batch, rng, config)[net])(state.params[net]) for net in grads}
    return out
  return jax.jit(all_grads)(state, batch)


VECTOR = {"model.condition": "vector", "model.condition_dim": 3, "loss.decoder_in_prior_phase": False}
VARIANTS = {  # (config, preset, changes, condition vector size, image channels): every switch on and off,
    # every condition, colour and grayscale
    "unsupervised_ABC": ("aae_prior", "unsupervised_digits",
                         {"loss.reconstruction_weight": 2.0, "loss.adversarial_weight": 0.3}, 0, 1),
    "supervised_A": ("aae_prior", "supervised_digits",
                     {"loss.perceptual": False, "loss.decoder_in_prior_phase": False, "loss.info_weight": 0.7,
                      "loss.q_on_real": True}, 0, 1),
    "vector_AB": ("aae_prior", "", VECTOR, 3, 3),
    "makhzani_mixture": ("aae", "", {"model.prior": "mixture"}, 0, 1),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_network_gets_exactly_its_own_gradient_in_each_phase(variant):
  method, preset, changes, condition_dim, channels = VARIANTS[variant]
  config, state, batch = _setup(method, preset, condition_dim, channels, **changes)
  with jax.enable_x64(True):  # float64 on both sides, so 1e-6 tests the routing, not round-off
    grads = _gradients(to_float64(state), to_float64(batch), jax.random.PRNGKey(7), config)
  # The AAE phase gives CG and D_I nothing (CG fixed, D_I a constant in the perceptual loss); the prior
  # phase gives the encoder and D_C nothing, and the decoder nothing from D_I unless switch C is on.
  expected = {"aae": set(aae_prior.AAE_NETS)}
  if config.model.learned_prior:
    expected["prior"] = set(aae_prior.PRIOR_NETS) | ({"decoder"} if config.loss.decoder_in_prior_phase else set())
  assert {phase: set(g) for phase, (g, _) in grads.items()} == expected
  for method_grads, reference_grads in grads.values():
    assert_trees_close(method_grads, reference_grads, atol=1e-6, rtol=1e-6)


def test_mutual_information_term_is_the_cross_entropy_of_q():
  """With Q's kernel zeroed, Q(s | ·) = softmax(bias) for every image: L_I = −mean log softmax(b)[label]."""
  config, state, batch = _setup("aae_prior", "supervised_digits")
  bias = np.linspace(-1.0, 2.0, 10).astype(np.float32)
  d_i = dict(state.params["image_discriminator"])
  d_i["Q"] = {"kernel": jnp.zeros_like(d_i["Q"]["kernel"]), "bias": jnp.asarray(bias)}
  params = {**state.params, "image_discriminator": d_i}
  own, (metrics, _) = jax.jit(lambda p: aae_prior.prior_losses(config)(state, p, batch, jax.random.PRNGKey(1)))(
      params)
  log_q = bias - np.log(np.sum(np.exp(bias)))
  expected = -np.mean(log_q[np.asarray(batch["label"])])
  np.testing.assert_allclose(metrics["info_cross_entropy"], expected, rtol=1e-6)
  np.testing.assert_allclose(own["code_generator"] - metrics["image_gen_loss"], expected, rtol=1e-5)
  # The preset's q_on_real: D_I's Q also classifies the real digits, the same constant cross-entropy.
  assert config.loss.q_on_real and config.loss.info_weight == 1.0
  np.testing.assert_allclose(metrics["q_real_cross_entropy"], expected, rtol=1e-6)
  np.testing.assert_allclose(own["image_discriminator"] - metrics["image_dis_loss"], 2 * expected, rtol=1e-5)


def _adam_counts(state):
  return {net: int(opt[0].count) for net, opt in state.opt_state.items()}


def test_synthetic_condition_vector_trains_generates_and_with_c_off_updates_the_decoder_once():
  """One step with a 3-D condition per colour image (switch C off): CG, D_I, encoder, D_C and the decoder
  are each updated once (the prior phase leaves the decoder alone), the state keeps the batch's conditions,
  and samples follow the condition they are given."""
  config, state, batch = _setup("aae_prior", "", 3, 3, **VECTOR)
  new, metrics = jax.jit(aae_prior.METHOD.make_train_step(config))(state, {**batch, "condition": -batch["condition"]})
  assert _adam_counts(new) == {net: 1 for net in (*aae_prior.AAE_NETS, *aae_prior.PRIOR_NETS)}
  assert int(new.step) == 1 and all(np.isfinite(float(v)) for v in metrics.values())
  assert "grad_norm/decoder_prior_phase" not in metrics
  kept = np.concatenate([-batch["condition"], state.extra["conditions"]])[:conditions.BANK_SIZE]
  np.testing.assert_array_equal(new.extra["conditions"], kept)

  @jax.jit
  def samples(state, rng):  # given conditions, the kept ones (as the loop's samples), the grid
    generate = lambda condition: aae_prior.generate(state, rng, 8, condition)
    return (generate(batch["condition"]), generate(-batch["condition"]), generate(None),
            aae_prior.sample_grids(state, rng)["condition_grid"])

  a, b, kept_conditions, grid = samples(new, jax.random.PRNGKey(0))
  assert a.shape == kept_conditions.shape == (8, 16, 16, 3) and not np.allclose(a, b)
  assert np.all(np.isfinite(kept_conditions))
  assert grid.shape == (conditions.BANK_SIZE, aae_prior.GRID_COLUMNS, 16, 16, 3)


@pytest.mark.parametrize("condition,message", [
    (np.zeros((8, 7), np.float32), r'"condition" feature must be a float array \[N, 3\] .* got shape \(8, 7\)'),
    (None, r'needs a float feature "condition" \[N, 3\] in every example, and this dataset has none'),
])
def test_a_condition_of_the_wrong_size_or_none_is_refused(condition, message):
  config, state, batch = _setup("aae_prior", "", 3, 3, **VECTOR)
  wrong = {"image": batch["image"], "label": batch["label"], **({} if condition is None else {"condition": condition})}
  with pytest.raises(DataError, match=message):
    aae_prior.init_state(config, jax.random.PRNGKey(0), wrong)
  with pytest.raises(DataError, match=message):
    aae_prior.METHOD.make_train_step(config)(state, wrong)
  with pytest.raises(ValueError, match=r"generate: condition must be a float array \[N, 3\]"):
    aae_prior.generate(state, jax.random.PRNGKey(0), 8, jnp.zeros((8, 7)))


def test_a_vector_condition_on_a_dataset_without_one_stops_before_training(digits_dir, tmp_path):
  """Through the loop: the error names the missing feature, and no checkpoint or result is written."""
  config = _config("aae_prior", "", **VECTOR, **{"data.data_dir": digits_dir})
  with pytest.raises(DataError, match='needs a float feature "condition"'):
    train.train_and_evaluate(config, str(tmp_path), mesh=one_device())
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("spec,edit,message", [
    ("aae_prior.py:supervised_digits", lambda c: c.data.update(name="celeb_a"),
     "model.condition='label' needs class labels, but dataset 'celeb_a'"),
    ("aae_prior.py", lambda c: c.model.update(condition="text"), "model.condition must be one of"),
    ("aae_prior.py", lambda c: c.model.update(condition="vector"), "model.condition_dim must be >= 1"),
    ("aae_prior.py", lambda c: c.model.update(num_categories=1, condition="categorical"),
     "model.num_categories must be >= 2"),
    ("aae_prior.py", lambda c: c.data.update(image_size=24), "data.image_size: image shape"),
    ("aae_prior.py:supervised_digits", lambda c: c.model.update(learned_prior=False), "model.learned_prior=True"),
    ("aae_prior.py", lambda c: c.model.update(noise_dim=0), "model.noise_dim must be >= 1"),
    ("aae_prior.py", lambda c: c.loss.update(info_weight=-1.0), "loss.info_weight"),
    ("aae_prior.py", lambda c: c.model.update(prior="uniform"), "model.prior must be one of"),
    ("aae.py", lambda c: c.loss.update(perceptual=True), "loss.perceptual needs model.learned_prior=True"),
    ("aae.py", lambda c: c.model.update(learned_prior=True), "config.optim has no slot for code_generator"),
    ("aae.py", lambda c: c.model.update(prior="categorical_gaussian", prior_components=40),
     "must be < model.latent_dim"),
    ("aae.py", lambda c: c.model.update(prior="mixture", prior_scale=-1.0), "model.prior_scale"),
])
def test_bad_values_are_refused_naming_the_key(spec, edit, message):
  config = config_lib.load_config(os.path.join(ROOT, "configs", spec))
  config.unlock()
  edit(config)
  with pytest.raises(ConfigError, match=message):
    validation.validate(config, num_devices=8)


def test_the_baseline_is_the_learned_prior_preset_with_the_switches_off():
  for preset in PRESETS["aae"]:
    aae = config_lib.load_config(os.path.join(ROOT, "configs", f"aae.py:{preset}"))
    full = config_lib.load_config(os.path.join(ROOT, "configs", f"aae_prior.py:{preset}"))
    assert (aae.method, aae.model.learned_prior, aae.loss.perceptual, aae.loss.decoder_in_prior_phase) == (
        "aae", False, False, False)
    assert (aae.data, aae.train, aae.model.latent_dim) == (full.data, full.train, full.model.latent_dim)
    assert set(full.optim) - set(aae.optim) == {"code_generator", "image_discriminator"}
  with pytest.raises(ConfigError, match="unknown preset 'svhn' for method 'aae'"):
    config_lib.load_config(os.path.join(ROOT, "configs", "aae.py:svhn"))


def test_fixed_priors_have_the_structure_makhzani_describes():
  mixture = nets.Prior(learned=False, code_dim=4, kind="mixture", scale=3.0, components=4, component_std=0.01)
  cat = nets.Prior(learned=False, code_dim=6, kind="categorical_gaussian", scale=2.0, components=3)
  gauss = nets.Prior(learned=False, code_dim=3, kind="gaussian", scale=5.0)
  z_mixture, z_cat, z_gauss = map(np.asarray, jax.jit(lambda rng: [p.fixed_sample(rng, 4000) for p in (
      mixture, cat, gauss)])(jax.random.PRNGKey(0)))
  radius, angle = np.hypot(z_mixture[:, 0], z_mixture[:, 1]), np.arctan2(z_mixture[:, 1], z_mixture[:, 0])
  np.testing.assert_allclose(radius, 3.0, atol=0.05)
  assert np.all(np.abs(z_mixture[:, 2:]) < 0.06)
  assert set(np.round(np.mod(angle, 2 * np.pi) / (np.pi / 2)).astype(int) % 4) == {0, 1, 2, 3}
  assert set(map(tuple, z_cat[:, :3])) == {(1, 0, 0), (0, 1, 0), (0, 0, 1)}
  np.testing.assert_allclose(z_cat[:, 3:].std(), 2.0, rtol=0.05)
  np.testing.assert_allclose(z_gauss.std(), 5.0, rtol=0.05)


# --- End to end --------------------------------------------------------------------------------------------
# Every preset, two ways that share the work. THROUGH_THE_LOOP: one step through train_and_evaluate, shrunk as
# `_config` shrinks it (digits with no condition and with labels, Makhzani's AAE, and mnist, which then
# shares digits' programs). AT_FULL_SIZE: one step at the preset's own size, as shapes (jax.eval_shape), on a
# batch from its own data pipeline, which also checks what shrinking hides (cifar10_2000d's 2000-D code).
# Numerically, colour images (vector_AB) and the categorical prior (unsupervised_ABC) go through every network
# in test_each_network_gets_exactly_its_own_gradient_in_each_phase.

THROUGH_THE_LOOP = [("aae_prior", p) for p in ("", "supervised_digits", "mnist")] + [("aae", p) for p in ("", "mnist")]
AT_FULL_SIZE = [("aae_prior", p) for p in ("fashion", "unsupervised_digits", "svhn", "cifar10", "cifar10_2000d",
                                           "supervised_cifar10", "unsupervised_cifar10")] + [("aae", p) for p in
                                                                                             ("fashion", "cifar10")]


def test_the_end_to_end_tests_cover_every_preset():
  for method, presets in PRESETS.items():
    spec = importlib.util.spec_from_file_location(f"test_aae_{method}", os.path.join(ROOT, "configs", f"{method}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.PRESETS) == set(presets), method
  assert sorted(THROUGH_THE_LOOP + AT_FULL_SIZE) == sorted((m, p) for m, presets in PRESETS.items() for p in presets)


def _preset(method, preset):
  return config_lib.load_config(os.path.join(ROOT, "configs", f"{method}.py:{preset}"))


@pytest.mark.parametrize("method,preset", THROUGH_THE_LOOP, ids=lambda v: v or "default")
def test_presets_train_one_step_end_to_end(method, preset, digits_dir, tmp_path):
  """Through train_and_evaluate on one device (mock data for mnist)."""
  config = _config(method, preset, **{"data.data_dir": digits_dir})
  with contextlib.nullcontext() if config.data.name == "digits" else tfds.testing.mock_data(num_examples=16):
    state = train.train_and_evaluate(config, str(tmp_path), mesh=one_device())
  results = json.loads((tmp_path / "metrics.json").read_text())
  assert (results["method"], results["dataset"], results["step"]) == (method, _preset(method, preset).data.name, 1)
  assert all(np.isfinite(v) for v in results["train"].values())
  assert set(results["eval"]) == {"pixel_mse", "code_dis_encoder"}
  # One step: each network once per phase that trains it (switch C: the decoder in both).
  learned = method == "aae_prior"
  assert _adam_counts(state) == {"encoder": 1, "code_discriminator": 1, "decoder": 2 if learned else 1,
                                 **({"code_generator": 1, "image_discriminator": 1} if learned else {})}
  for png in ("samples.png", "reconstructions.png"):
    assert (tmp_path / png).stat().st_size > 100
  assert (tmp_path / "label_grid.png").exists() == (preset in CONDITIONAL)
  if preset in CONDITIONAL:  # 10 classes × 8 noise vectors of 16×16 images, 1-pixel padding
    grid = tf.io.decode_png(tf.io.read_file(str(tmp_path / "label_grid.png")))
    assert grid.shape[:2] == (10 * 17 + 1, aae_prior.GRID_COLUMNS * 17 + 1)


@pytest.mark.parametrize("method,preset", AT_FULL_SIZE)
def test_presets_take_one_full_size_step_on_their_data_pipeline(method, preset, digits_dir):
  config = _preset(method, preset)
  validation.validate(config, num_devices=1)
  data_config = config.data.copy_and_resolve_references()
  data_config.data_dir = digits_dir
  with contextlib.nullcontext() if config.data.name == "digits" else tfds.testing.mock_data(num_examples=16):
    batch = next(iter(data.create_dataset(data_config, batch_size=8, seed=0)))

  def one_step():
    state = aae_prior.init_state(config, jax.random.PRNGKey(0), batch)
    state, metrics = aae_prior.METHOD.make_train_step(config)(state, batch)
    rng = jax.random.PRNGKey(1)
    return state, metrics, aae_prior.generate(state, rng, 4), aae_prior.sample_grids(state, rng)

  state, metrics, images, grids = jax.eval_shape(one_step)
  m, shape = config.model, data.image_shape(config.data)
  assert batch["image"].shape == (8, *shape) and images.shape == (4, *shape)
  assert state.params["decoder"]["Dense_0"]["kernel"].shape[0] == m.latent_dim
  assert all(v.shape == () and v.dtype == jnp.float32 for v in metrics.values())
  assert {"reconstruction", "code_dis_encoder", "grad_norm/encoder"} <= set(metrics)
  assert ({"image_gen_loss", "grad_norm/decoder_prior_phase"} <= set(metrics)) == (method == "aae_prior")
  assert {k: v.shape for k, v in grids.items()} == (
      {"label_grid": (10, aae_prior.GRID_COLUMNS, *shape)} if preset in CONDITIONAL else {})


# --- A short digits run --------------------------------------------------------------------------------------

def test_short_digits_run_moves_the_code_discriminator_toward_chance(digits_dir):
  """Makhzani's AAE on real digits: D_C learns to tell enc(x) from z ~ p(z), and the encoder, descending
  −log D_C(enc x) (the regularisation phase), pulls D_C's output on its codes back toward ½. The control
  run (adversarial weight 0, the same compiled step) shows what D_C does to unregularised codes."""
  config = _config("aae", "")
  config.unlock()
  for slot in config.optim:  # the preset's 2e-4 needs more than a test's hundred steps
    config.optim[slot].lr = 1e-3
  config.lock()
  batches = digits_batches(config, digits_dir, num=40, batch_size=16)

  @jax.jit
  def step(state, batch, adversarial_weight):
    loss = SimpleNamespace(**{**config.loss.to_dict(), "adversarial_weight": adversarial_weight})
    return aae_prior.METHOD.make_train_step(SimpleNamespace(model=config.model, loss=loss))(state, batch)

  def code_dis_on_encoder_codes(adversarial_weight, steps=100):
    state, outputs = aae_prior.init_state(config, jax.random.PRNGKey(0), batches[0]), []
    for i in range(steps):
      state, metrics = step(state, batches[i % len(batches)], adversarial_weight)
      outputs.append(metrics["code_dis_encoder"])
    return float(np.mean(jax.device_get(outputs)[-30:]))

  regularised, control = code_dis_on_encoder_codes(1.0), code_dis_on_encoder_codes(0.0)
  assert control < 0.3, f"D_C failed to separate unregularised codes: {control:.3f}"
  assert abs(regularised - 0.5) < abs(control - 0.5) - 0.15, (regularised, control)
