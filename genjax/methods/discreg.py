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
trained on. The evaluator's "nll" (the Gaussian autoencoder's IWAE weights, with this per-pixel σ) is
−log p(x) of the pixel model alone; the paper finds it worse than the plain VAE's (`discreg.layers=()`).

The classifier is a prerequisite: a run of `discreg.classifier_config` in `discreg.classifier_workdir`,
which the loop trains first when `discreg.train_classifier` is set and otherwise asks for by command.
"""

import functools

import jax
import jax.numpy as jnp

from genjax import config_lib, losses, optim, pretrained
from genjax.core import gaussian_ae
from genjax.core.gaussian_ae import PIXEL_LOG_SIGMA
from genjax.core.method import Method, Prerequisite
from genjax.core.networks import compute_dtype, create_state
from genjax.core.step import Aux, Phase
from genjax.data import registry
from genjax.errors import CheckpointError, ConfigError
from genjax.nets import classifier as classifier_nets
from genjax.nets import discreg as nets
from genjax.nets import scale_width

CLASSIFIER = "classifier"
FEATURE_SIGMA = "feature_log_sigma"


def validate(config, image_shape) -> None:
  gaussian_ae.check_downsampling(image_shape, len(config.model.encoder_channels))
  layers = tuple(config.discreg.layers)
  unknown = [l for l in layers if l not in classifier_nets.FEATURE_LAYERS]
  if unknown or len(set(layers)) != len(layers):
    raise ConfigError(f"discreg.layers must be distinct names from {classifier_nets.FEATURE_LAYERS}, got {layers}")
  if layers and not config.discreg.classifier_workdir:
    raise ConfigError("discreg.classifier_workdir is empty: point it at a run of configs/classifier.py")


# --- the frozen classifier ------------------------------------------------------------------------------

def classifier_config(config):
  """The config that trains this run's classifier: discreg.classifier_config on this run's data."""
  cfg = config_lib.load_config(config.discreg.classifier_config)
  cfg.unlock()
  cfg.data.update(config.data.to_dict())
  cfg.lock()
  return cfg


def train_command(config, workdir: str | None = None) -> str:
  """The command that trains the classifier this run expects (into discreg.classifier_workdir)."""
  d = config.discreg
  command = f"python -m genjax.main --config={d.classifier_config} --workdir={workdir or d.classifier_workdir}"
  try:
    preset_data = config_lib.load_config(d.classifier_config).data
  except ConfigError:  # an unreadable classifier_config: name the command as configured
    return command
  for key, value in config.data.items():   # the data settings this run adds to that preset
    if preset_data.get(key) != value:
      command += f" --config.data.{key}={value}"
  return command


def prerequisites(config) -> list[Prerequisite]:
  """The classifier run, when a feature layer is used."""
  if not config.discreg.layers:
    return []
  d = config.discreg
  return [Prerequisite(what=f"the classifier of discreg's feature terms (`{train_command(config)}`)",
                       config=classifier_config(config) if d.train_classifier else None,
                       workdir=d.classifier_workdir)]


def load_frozen_classifier(config) -> pretrained.TrainedClassifier:
  """The trained classifier of discreg.classifier_workdir; CheckpointError naming the command if it is
  missing, not a classifier, or trained on other images."""
  d = config.discreg
  trained = pretrained.load_classifier(d.classifier_workdir, train_command(config),
                                       " (or set --config.discreg.train_classifier=True)")
  if not trained.fits(config.data):
    raise CheckpointError(
        f"the classifier in {d.classifier_workdir!r} was trained on {trained.dataset} images of shape "
        f"{trained.image_shape}, but this run models {config.data.name} images of shape "
        f"{registry.image_shape(config.data)}: train a matching one with `{train_command(config, 'NEW_DIR')}` "
        f"and set --config.discreg.classifier_workdir=NEW_DIR")
  if trained.meta["config"]["model"].get("arch", "lamb") != "lamb":
    raise CheckpointError(f"the classifier in {d.classifier_workdir!r} is an MLP, which has no conv feature "
                          f"layers: train Lamb et al.'s with `{train_command(config)}`")
  return trained


def classifier_features(state, images: jax.Array) -> dict[str, jax.Array]:
  """C_l(images) for every feature layer: inference mode, constant parameters, differentiable in images."""
  variables = jax.lax.stop_gradient(state.extra[CLASSIFIER])
  return pretrained.features(state.models[CLASSIFIER], variables, images)


# --- the method ---------------------------------------------------------------------------------------

def autoencoder(config, image_shape) -> dict:
  """The reference VAE's encoder and decoder at the config's width."""
  m, dtype = config.model, compute_dtype(config)
  channels = scale_width(m.encoder_channels, m.width)
  hidden = scale_width([m.hidden], m.width)[0]
  return {"encoder": nets.Encoder(channels=channels, hidden=hidden, latent_dim=m.latent_dim, dtype=dtype),
          "decoder": nets.Decoder(image_shape=tuple(image_shape), channels=channels[::-1], hidden=hidden,
                                  latent_dim=m.latent_dim, dtype=dtype)}


def init_state(config, rng: jax.Array, batch):
  trained = load_frozen_classifier(config) if config.discreg.layers else None
  return create_state_with(config, rng, batch, trained)


def create_state_with(config, rng: jax.Array, batch, trained):
  """init_state with the classifier given (a TrainedClassifier, or None when no layer is used)."""
  x = jnp.asarray(batch["image"][:1])
  models = autoencoder(config, x.shape[1:])
  inputs = {"encoder": (x,), "decoder": (jnp.zeros((1, config.model.latent_dim)),)}
  params, slot, extra = {PIXEL_LOG_SIGMA: jnp.zeros(x.shape[1:], jnp.float32)}, ("encoder", "decoder", PIXEL_LOG_SIGMA), {}
  if config.discreg.layers:
    models[CLASSIFIER], extra[CLASSIFIER] = trained.module, trained.variables
    shapes = jax.eval_shape(functools.partial(pretrained.features, trained.module), trained.variables, x)
    params[FEATURE_SIGMA] = {l: jnp.zeros(shapes[l].shape[1:], jnp.float32) for l in config.discreg.layers}
    slot += (FEATURE_SIGMA,)
  return create_state(rng, models, inputs, {"vae": optim.make_optimizer(config.optim.vae)}, slots={"vae": slot},
                      params=params, extra=extra, trained=("encoder", "decoder"))


def feature_terms(real: dict, decoded: dict, log_sigmas: dict) -> dict[str, jax.Array]:
  """−log N(C_l(x) | C_l(μ_θ(z)), σ_l²) per layer l of `log_sigmas`: sum over elements, batch mean (§3)."""
  return {l: losses.gaussian_nll(real[l], decoded[l], log_sigma) for l, log_sigma in log_sigmas.items()}


def regularized_elbo(state, params, batch, rng: jax.Array):
  """{"vae": the regularized negative ELBO of the batch} and Aux(metrics, new BatchNorm statistics)."""
  x = batch["image"]
  (mean, logvar), enc_stats = state.forward("encoder", params, x)
  z = losses.reparameterize(rng, mean, logvar)
  x_mean, dec_stats = state.forward("decoder", params, z)
  kl = losses.gaussian_kl(mean, logvar)                                 # §2
  pixel_nll = losses.gaussian_nll(x, x_mean, params[PIXEL_LOG_SIGMA])   # §2, per-pixel σ
  terms = {}
  if FEATURE_SIGMA in params:  # one classifier call: inference-mode BN makes each example independent
    feats = classifier_features(state, jnp.concatenate([x, x_mean]))
    real, decoded = ({l: f[:len(x)] for l, f in feats.items()}, {l: f[len(x):] for l, f in feats.items()})
    terms = feature_terms(real, decoded, params[FEATURE_SIGMA])         # §3
  loss = kl + pixel_nll + sum(terms.values())
  metrics = {"loss": loss, "kl": kl, "pixel_nll": pixel_nll, "pixel_mse": jnp.mean(jnp.square(x - x_mean)),
             "pixel_sigma": jnp.mean(jnp.exp(params[PIXEL_LOG_SIGMA])),
             **{f"feature_nll/{l}": t for l, t in terms.items()}}
  return {"vae": loss}, Aux(metrics, {**enc_stats, **dec_stats})


def objective(config):
  del config  # the loss has no hyper-parameters: terms are summed, scales are learned
  return [Phase(regularized_elbo, rng="z")]


METHOD = Method(
    name="discreg", init_state=init_state, objective=objective, validate=validate,
    generate=gaussian_ae.generate, encode=gaussian_ae.encode, decode=gaussian_ae.decode,
    reconstruct=gaussian_ae.reconstruct, log_importance_weights=gaussian_ae.importance_weights,
    prerequisites=prerequisites, progress=("loss", "kl", "pixel_mse"))
