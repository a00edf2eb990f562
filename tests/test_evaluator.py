"""The evaluator: in-loop metrics and the best checkpoint, --mode=eval/sample, the IWAE NLL, bad input."""

import functools
import glob
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import jax
import jax.numpy as jnp

from genjax import modes, pretrained, train, validation
from genjax.errors import CheckpointError, ConfigError, GenjaxError
from genjax.core import gaussian_ae
from genjax.evaluation import evaluator, likelihood, metrics
from genjax.methods import get_method
from tests.helpers import ROOT, load_config, random_batch

RESULTS = ("fid", "kid", "kid_std", "precision", "recall", "is", "is_std", "recon_mse", "nll", "neg_elbo")


def random_projection_extractor(path, eval_config, data_config):
  """A fixed random projection of the pixels: 8 features, 10 logits (a cheap stand-in for Inception)."""
  del path, eval_config
  dim = int(np.prod(train.data.image_shape(data_config)))
  rng = np.random.default_rng(0)
  features, logits = rng.standard_normal((2, dim, 10)).astype(np.float32) / np.sqrt(dim)
  return metrics.Extractor(lambda images: (images.reshape(len(images), -1) @ features[:, :8],
                                           images.reshape(len(images), -1) @ logits)), None


@pytest.fixture(scope="module")
def random_extractor():
  evaluator.EXTRACTORS["random"] = random_projection_extractor
  yield
  del evaluator.EXTRACTORS["random"]


def eval_config(digits_dir, num_steps=3, **eval_overrides):
  config = load_config("vae", "", num_steps=num_steps)
  config.unlock()
  config.data.update(data_dir=digits_dir, image_size=16)
  config.eval.update(dict(extractor="random", extractor_path="-", every=1, num_samples=40, nll_samples=4,
                          metrics=("fid", "kid", "pr", "is", "recon", "nll"), best_metric="fid"), **eval_overrides)
  config.lock()
  return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_dir, random_extractor):
  """A 3-step VAE run evaluated after every step, keeping the best checkpoint by FID."""
  del random_extractor
  workdir = str(tmp_path_factory.mktemp("vae"))
  config = eval_config(digits_dir)
  train.train_and_evaluate(config, workdir)
  return config, workdir


def tensorboard_scalars(workdir, tag):
  values = {}
  for path in glob.glob(os.path.join(workdir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          values[event.step] = float(tf.make_ndarray(value.tensor))
  return values


def test_in_loop_evaluation_writes_tensorboard_metrics_json_and_the_best_checkpoint(trained):
  config, workdir = trained
  results = json.loads(open(os.path.join(workdir, "metrics.json")).read())
  assert set(RESULTS) <= set(results["eval"]) and all(math.isfinite(results["eval"][k]) for k in RESULTS)
  assert results["eval_setup"] == {"extractor": "random", "extractor_path": "-", "num_real": 40,
                                   "num_generated": 40, "nll_samples": 4, "classifier_features": None,
                                   "extractor_accuracy": None}
  fids = tensorboard_scalars(workdir, "eval/fid")
  assert sorted(fids) == [1, 2, 3]  # every step, the last one once
  assert fids[3] == pytest.approx(results["eval"]["fid"], rel=1e-6)
  best_step = min(fids, key=fids.get)
  assert results["best"]["step"] == best_step and results["best"]["value"] == pytest.approx(fids[best_step], rel=1e-6)
  assert os.listdir(os.path.join(workdir, "best")) == [str(best_step)]
  assert len(set(fids.values())) == 3  # so that a reversed comparison would pick another step


def test_eval_mode_reproduces_the_best_checkpoints_evaluation(trained):
  config, workdir = trained
  results = json.loads(open(os.path.join(workdir, "metrics.json")).read())
  out = modes.evaluate_checkpoint(config, workdir, "best")
  assert out == json.loads(open(os.path.join(workdir, "eval.json")).read())
  assert out["step"] == results["best"]["step"] and out["checkpoint"] == "best"
  assert out["eval"]["fid"] == pytest.approx(results["best"]["value"], rel=1e-6)  # fixed noise, same reals
  assert set(RESULTS) <= set(out["eval"])


def test_sample_mode_writes_a_png_grid_and_an_npz(trained):
  config, workdir = trained
  paths = modes.sample_checkpoint(config, workdir, 10)
  assert paths["npz"].endswith("samples_latest_3.npz")
  images = np.load(paths["npz"])["images"]
  assert images.shape == (10, 16, 16, 1) and images.dtype == np.float32 and np.abs(images).max() <= 1
  assert np.std(images[0] - images[1]) > 0  # distinct draws
  grid = tf.io.decode_png(tf.io.read_file(paths["png"])).numpy()
  assert grid.shape == (3 * 17 + 1, 4 * 17 + 1, 1)  # 10 images, 4 columns, 1-pixel borders


def test_missing_checkpoints_are_one_readable_error(tmp_path, trained):
  config, _ = trained
  with pytest.raises(CheckpointError, match=r"no best checkpoint \(kept when eval.best_metric is set\)"):
    modes.evaluate_checkpoint(config, str(tmp_path), "best")
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  empty = tmp_path / "empty"
  result = subprocess.run([sys.executable, "-m", "genjax.main", "--config=configs/vae.py", f"--workdir={empty}",
                           "--mode=eval", f"--config.data.data_dir={config.data.data_dir}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("genjax: error: no latest checkpoint in ") and "Traceback" not in result.stderr
  assert not empty.exists()


# --- the classifier extractor ---------------------------------------------------------------------------

def test_classifier_extractor_uses_its_embedding_or_its_logits_and_checks_the_image_shape(monkeypatch):
  config = load_config("classifier")
  config.unlock(); config.data.image_size = 16; config.lock()
  state = pretrained.classifier_state(config, jax.random.PRNGKey(0), random_batch(n=1))
  trained = pretrained.TrainedClassifier(
      module=state.models["classifier"], meta={"image_shape": [16, 16, 1], "config": {"data": {"name": "digits"}}},
      variables={"params": state.params["classifier"], "batch_stats": state.batch_stats["classifier"]},
      accuracy=0.93)
  monkeypatch.setattr(pretrained, "load_classifier", lambda path, command=None: trained)
  images = random_batch(n=5)["image"]
  extractor, accuracy = evaluator.classifier_extractor("runs/classifier", config.eval, config.data)
  features = extractor.features(images)
  embedding, logits = trained.embed(images)
  assert accuracy == 0.93 and features["pool"].shape == embedding.shape == (5, state.models["classifier"].hidden)
  np.testing.assert_allclose(features["pool"], embedding, rtol=1e-6)   # the last hidden layer (FID, KID, P/R)
  np.testing.assert_allclose(features["logits"], trained.logits(images), rtol=1e-5)  # IS, class histogram
  np.testing.assert_allclose(logits, trained.logits(images), rtol=1e-5)
  with config.unlocked():
    config.eval.classifier_features = "logits"  # TF-GAN's MNIST convention: the logits as the features
  extractor, _ = evaluator.classifier_extractor("runs/classifier", config.eval, config.data)
  np.testing.assert_allclose(extractor.features(images)["pool"], trained.logits(images), rtol=1e-6)
  config.unlock(); config.data.image_size = 32; config.lock()
  with pytest.raises(metrics.EvaluationError, match=r"shape \(16, 16, 1\).*shape \(32, 32, 1\)"):
    evaluator.classifier_extractor("runs/classifier", config.eval, config.data)


# --- importance-sampled likelihood -----------------------------------------------------------------------
# A linear Gaussian model with a known marginal: z ~ N(0, I₂), x | z ~ N(Wz + b, s² I₃), W with orthogonal
# columns so that the posterior is diagonal: p(x) = N(b, WWᵀ + s²I), q*(z|x) = N(S Wᵀ(x − b) / s², S),
# S = (I + WᵀW / s²)⁻¹.

W = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
B = np.array([0.5, -1.0, 0.2])
S2 = 0.25


def linear_gaussian(x):
  cov_x = W @ W.T + S2 * np.eye(3)
  diff = x - B
  log_px = -0.5 * (np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov_x), diff)
                   + np.linalg.slogdet(cov_x)[1] + 3 * np.log(2 * np.pi))
  post_var = 1.0 / (1.0 + np.diag(W.T @ W) / S2)
  post_mean = (diff @ W / S2) * post_var
  log_joint = lambda z: (likelihood.diagonal_gaussian_log_density(x, z @ W.T + B, np.log(S2))
                         + likelihood.diagonal_gaussian_log_density(z, 0.0, 0.0))
  return log_px, post_mean, np.log(post_var) * np.ones_like(post_mean), log_joint


def test_iwae_with_the_exact_posterior_is_the_exact_log_likelihood():
  x = np.random.default_rng(0).standard_normal((6, 3))
  log_px, mean, logvar, log_joint = linear_gaussian(x)
  with jax.enable_x64(True):
    for k in (1, 7):
      log_w = likelihood.log_importance_weights(jax.random.PRNGKey(k), mean, logvar, log_joint, k)
      assert log_w.shape == (k, 6)
      np.testing.assert_allclose(likelihood.iwae_bound(log_w), log_px, rtol=1e-10)
      np.testing.assert_allclose(likelihood.elbo(log_w), log_px, rtol=1e-10)


def test_iwae_bound_starts_at_the_elbo_and_rises_with_k_towards_log_p():
  x = np.random.default_rng(1).standard_normal((4, 3))
  log_px, mean, logvar, log_joint = linear_gaussian(x)
  q_mean, q_logvar = mean + 0.7, logvar - 0.5  # a poor posterior
  post_var, q_var = np.exp(logvar), np.exp(q_logvar)
  kl = 0.5 * np.sum(q_var / post_var + (q_mean - mean) ** 2 / post_var - 1 + logvar - q_logvar, axis=1)
  with jax.enable_x64(True):
    bound = lambda k, reps: np.mean(jax.vmap(lambda key: likelihood.iwae_bound(likelihood.log_importance_weights(
        key, q_mean, q_logvar, log_joint, k)))(jax.random.split(jax.random.PRNGKey(k), reps)), axis=0)
    l1, l8, l64 = (np.asarray(bound(k, reps)) for k, reps in ((1, 4000), (8, 500), (64, 100)))
  np.testing.assert_allclose(l1, log_px - kl, atol=0.06)  # E[L_1] = ELBO = log p(x) − KL(q ‖ p(z|x))
  assert np.all(l1 < l8) and np.all(l8 < l64) and np.all(l64 < log_px)


def test_vae_hook_elbo_matches_an_independent_elbo_and_iwae_exceeds_it():
  config = load_config("vae")
  config.unlock(); config.data.image_size = 16; config.lock()
  vae = get_method("vae")
  batch = random_batch(n=4)
  state = vae.init_state(config, jax.random.PRNGKey(0), batch)
  state = state.replace(params={**state.params, gaussian_ae.PIXEL_LOG_SIGMA: jnp.asarray(-0.3)})  # σ_x ≠ 1
  x = batch["image"]
  hook = functools.partial(vae.log_importance_weights, num_samples=1024)
  log_w = jax.jit(hook)(state, x, jax.random.PRNGKey(1))
  # Independent: E_q[log N(x | dec(z), σ_x²)] by Monte Carlo − KL(q ‖ N(0, I)) in closed form.
  mean, logvar = state.apply("encoder", x)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(jax.random.PRNGKey(2), (1024,) + mean.shape)
  rec = jax.vmap(lambda zk: state.apply("decoder", zk))(z)
  log_px = -0.5 * jnp.square((x - rec) / jnp.exp(-0.3)) + 0.3 - 0.5 * np.log(2 * np.pi)
  kl = 0.5 * jnp.sum(jnp.exp(logvar) + mean ** 2 - 1 - logvar, axis=1)
  elbo = jnp.mean(jnp.sum(log_px.reshape(1024, 4, -1), -1), 0) - kl
  np.testing.assert_allclose(likelihood.elbo(log_w), elbo, rtol=2e-3)
  chunks = log_w.reshape(16, 64, 4)  # 16 independent K=64 bounds per image
  assert np.all(np.mean(jax.vmap(likelihood.iwae_bound)(chunks), 0) > likelihood.elbo(log_w))


# --- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("edit,message", [
    (dict(metrics=("fid", "fud")), "eval.metrics: unknown metric 'fud'"),
    (dict(extractor="vgg"), "eval.extractor must be one of"),
    (dict(extractor="inception"), "eval.extractor_path is empty"),
    (dict(best_metric="fid"), "needs an eval.extractor"),
    (dict(metrics=("is",), extractor="inception", extractor_path="w.npz", num_samples=5), "too few for 'is'"),
    (dict(best_metric="recon_mse"), "needs 'recon' in eval.metrics"),
    (dict(best_metric="accuracy"), "not a result this run computes"),
    (dict(best_mode="lowest"), "eval.best_mode"),
    (dict(batch_size=12), "eval.batch_size 12 is not divisible by the 8 devices"),
])
def test_bad_eval_config_is_refused(edit, message):
  config = load_config("vae")
  config.unlock(); config.eval.update(edit); config.lock()
  with pytest.raises(ConfigError, match=message):
    validation.validate(config, num_devices=8)


def test_missing_or_malformed_inception_weights_and_too_few_real_images(tmp_path, digits_dir, random_extractor):
  del random_extractor
  vae = get_method("vae")
  config = eval_config(digits_dir, extractor="inception", extractor_path=str(tmp_path / "none.npz"))
  with pytest.raises(GenjaxError, match="Inception weights file not found"):
    evaluator.Evaluator(vae, config)
  from genjax.evaluation import inception
  name, shape = next(iter(inception.parameter_shapes().items()))
  np.savez(tmp_path / "bad.npz", **{name: np.zeros(shape[:-1] + (shape[-1] + 1,), np.float32)})
  config = eval_config(digits_dir, extractor="inception", extractor_path=str(tmp_path / "bad.npz"))
  with pytest.raises(GenjaxError, match=f"{name} has shape"):
    evaluator.Evaluator(vae, config)
  config = eval_config(digits_dir, metrics=("fid", "pr"))
  config.unlock(); config.data.eval_split = "test[:3]"; config.lock()
  with pytest.raises(metrics.EvaluationError, match=r"'pr' needs at least 4 real images.*has 3"):
    evaluator.Evaluator(vae, config)
