"""Discriminative regularization for generative models (Lamb, Dumoulin & Courville 2016).

A VAE whose reconstruction is also judged by a pretrained, frozen classifier C: for each chosen hidden
layer l of C (the BN outputs of its strided convs), the features of x are modelled as Gaussian around
the features of the decoder mean, with their own learned per-element scale:

    L(x) = KL(q(z|x) ‖ N(0, I))                                   (§2, the VAE's prior term)
         − E_q[log N(x | μ_θ(z), σ_x²)]                           (§2, learned per-pixel log σ_x, init 0)
         − Σ_l E_q[log N(C_l(x) | C_l(μ_θ(z)), σ_l²)]             (§3, learned per-element log σ_l, init 0)

Terms are summed with no weight (reference code). C runs in inference mode (population BN statistics,
no dropout); its parameters are constants, held in `state.extra["classifier"]` so that the run's own
checkpoints carry them and no optimizer ever touches them; gradients flow through C into the decoder.
One optimizer slot, "vae", trains encoder, decoder and the log σ's. Pixels are in [-1, 1] and the
decoder ends in tanh (the reference used [0, 1] and a sigmoid): the classifier sees the range it was
trained on. The evaluator's "nll" (vae.log_importance_weights, which reads the same per-pixel log σ) is
−log p(x) of the pixel model alone; the paper finds it worse than the plain VAE's (`discreg.layers=()`).
"""

import functools
import os

import jax
import jax.numpy as jnp

from genjax import config_lib, losses, optim
from genjax.checkpoint import Checkpointer
from genjax.config_lib import scale_width
from genjax.data import registry
from genjax.errors import CheckpointError, ConfigError
from genjax.methods import classifier, common, vae
from genjax.methods.common import decode, encode, generate, reconstruct  # noqa: F401  (the method's API)
from genjax.methods.vae import log_importance_weights  # noqa: F401  (the evaluator's "nll" hook)
from genjax.nets import classifier as nets
from genjax.state import TrainState

CLASSIFIER = "classifier"
PIXEL_SIGMA = vae.SIGMA  # "pixel_log_sigma", per pixel here
FEATURE_SIGMA = "feature_log_sigma"


def validate(config, image_shape) -> None:
  common.check_downsampling(image_shape, len(config.model.encoder_channels))
  layers = tuple(config.discreg.layers)
  unknown = [l for l in layers if l not in nets.FEATURE_LAYERS]
  if unknown or len(set(layers)) != len(layers):
    raise ConfigError(f"discreg.layers must be distinct names from {nets.FEATURE_LAYERS}, got {layers}")
  if layers and not config.discreg.classifier_workdir:
    raise ConfigError("discreg.classifier_workdir is empty: point it at a run of configs/classifier.py")


# --- the frozen classifier ------------------------------------------------------------------------------

def classifier_config(config):
  """The config that trains this run's classifier: discreg.classifier_config on this run's data."""
  cfg = config_lib.load_config(_resolve(config.discreg.classifier_config))
  cfg.unlock()
  cfg.data.update(config.data.to_dict())
  cfg.lock()
  return cfg


def _resolve(spec: str) -> str:
  """A config path as given, else relative to the repository (configs/ sits next to the package)."""
  path, sep, preset = spec.partition(":")
  if not os.path.isfile(path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(root, path)):
      path = os.path.join(root, path)
  return path + sep + preset


def train_command(config, workdir: str | None = None) -> str:
  """The command that trains the classifier this run expects (into discreg.classifier_workdir)."""
  d = config.discreg
  command = f"python -m genjax.main --config={d.classifier_config} --workdir={workdir or d.classifier_workdir}"
  try:
    preset_data = config_lib.load_config(_resolve(d.classifier_config)).data
  except ConfigError:  # an unreadable classifier_config: name the command as configured
    return command
  for key, value in config.data.items():   # the data settings this run adds to that preset
    if preset_data.get(key) != value:
      command += f" --config.data.{key}={value}"
  return command


def load_frozen_classifier(config) -> classifier.TrainedClassifier:
  """The trained classifier of discreg.classifier_workdir, trained there first if asked to and missing."""
  d = config.discreg
  command, hint = train_command(config), " (or set --config.discreg.train_classifier=True)"
  if d.train_classifier:
    cfg = classifier_config(config)
    if (_latest_step(d.classifier_workdir) or 0) < cfg.train.num_steps:
      from genjax import train  # here, not at the top: train imports the methods
      train.train_and_evaluate(cfg, d.classifier_workdir)
  trained = classifier.load_classifier(d.classifier_workdir, command, hint)
  if not trained.fits(config.data):
    raise CheckpointError(
        f"the classifier in {d.classifier_workdir!r} was trained on {trained.dataset} images of shape "
        f"{trained.image_shape}, but this run models {config.data.name} images of shape "
        f"{registry.image_shape(config.data)}: "
        f"train a matching one with `{train_command(config, 'NEW_DIR')}` and set "
        f"--config.discreg.classifier_workdir=NEW_DIR")
  return trained


def _latest_step(workdir: str):
  checkpointer = Checkpointer(workdir, meta={})
  try:
    return checkpointer.latest_step()
  finally:
    checkpointer.close()


def classifier_features(state: TrainState, images: jax.Array) -> dict[str, jax.Array]:
  """C_l(images) for every feature layer: inference mode, constant parameters, differentiable in images."""
  variables = jax.lax.stop_gradient(state.extra[CLASSIFIER])
  return classifier.features(state.models[CLASSIFIER], variables, images)


# --- the method ---------------------------------------------------------------------------------------

def autoencoder(config, image_shape) -> dict:
  """The reference VAE's encoder and decoder at the config's width."""
  m, dtype = config.model, common.compute_dtype(config)
  channels = scale_width(m.encoder_channels, m.width)
  hidden = scale_width([m.hidden], m.width)[0]
  return {"encoder": nets.Encoder(channels=channels, hidden=hidden, latent_dim=m.latent_dim, dtype=dtype),
          "decoder": nets.Decoder(image_shape=tuple(image_shape), channels=channels[::-1], hidden=hidden,
                                  latent_dim=m.latent_dim, dtype=dtype)}


def init_state(config, rng: jax.Array, batch) -> TrainState:
  trained = load_frozen_classifier(config) if config.discreg.layers else None
  return create_state(config, rng, batch, trained)


def create_state(config, rng: jax.Array, batch, trained) -> TrainState:
  """init_state with the classifier given (a TrainedClassifier, or None when no layer is used)."""
  x = jnp.asarray(batch["image"][:1])
  init_rng, state_rng = jax.random.split(rng)
  models = autoencoder(config, x.shape[1:])
  params, batch_stats = common.init_networks(
      models, init_rng, {"encoder": (x,), "decoder": (jnp.zeros((1, config.model.latent_dim)),)})
  params[PIXEL_SIGMA] = jnp.zeros(x.shape[1:], jnp.float32)
  nets_trained, extra = ("encoder", "decoder", PIXEL_SIGMA), {}
  if config.discreg.layers:
    models[CLASSIFIER], extra[CLASSIFIER] = trained.module, trained.variables
    shapes = jax.eval_shape(functools.partial(classifier.features, trained.module), trained.variables, x)
    params[FEATURE_SIGMA] = {l: jnp.zeros(shapes[l].shape[1:], jnp.float32) for l in config.discreg.layers}
    nets_trained += (FEATURE_SIGMA,)
  return TrainState.create(params=params, batch_stats=batch_stats, models=models, extra=extra,
                           tx={"vae": optim.make_optimizer(config.optim.vae)}, slots={"vae": nets_trained},
                           rng=state_rng)


def feature_terms(real: dict, decoded: dict, log_sigmas: dict) -> dict[str, jax.Array]:
  """−log N(C_l(x) | C_l(μ_θ(z)), σ_l²) per layer l of `log_sigmas`: sum over elements, batch mean (§3)."""
  return {l: losses.gaussian_nll(real[l], decoded[l], log_sigma) for l, log_sigma in log_sigmas.items()}


def loss_fn(state: TrainState, params, batch, rng: jax.Array):
  """The regularized negative ELBO of the batch and (metrics, new BatchNorm statistics)."""
  x = batch["image"]
  (mean, logvar), enc_stats = state.forward("encoder", params, x)
  z = losses.reparameterize(rng, mean, logvar)
  x_mean, dec_stats = state.forward("decoder", params, z)
  kl = losses.gaussian_kl(mean, logvar)                                 # §2
  pixel_nll = losses.gaussian_nll(x, x_mean, params[PIXEL_SIGMA])      # §2, per-pixel σ
  terms = {}
  if FEATURE_SIGMA in params:  # one classifier call: inference-mode BN makes each example independent
    feats = classifier_features(state, jnp.concatenate([x, x_mean]))
    real, decoded = ({l: f[:len(x)] for l, f in feats.items()}, {l: f[len(x):] for l, f in feats.items()})
    terms = feature_terms(real, decoded, params[FEATURE_SIGMA])         # §3
  loss = kl + pixel_nll + sum(terms.values())
  metrics = {"loss": loss, "kl": kl, "pixel_nll": pixel_nll, "pixel_mse": jnp.mean(jnp.square(x - x_mean)),
             "pixel_sigma": jnp.mean(jnp.exp(params[PIXEL_SIGMA])),
             **{f"feature_nll/{l}": t for l, t in terms.items()}}
  return loss, (metrics, {**enc_stats, **dec_stats})


def make_train_step(config):
  del config  # the loss has no hyper-parameters: terms are summed, scales are learned
  return common.gradient_step(loss_fn, "z")
