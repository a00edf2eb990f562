"""Adversarial autoencoder with a learned prior (Wang, Peng, Ko 2020); Makhzani's AAE is its baseline.

An AAE (Makhzani et al. 2016) shapes the codes of a deterministic encoder to a prior p(z) with a code
discriminator D_C and decodes prior samples to generate. Wang et al. learn that prior: a code generator
CG turns simple noise z ~ N(0, I) (and a condition s) into codes z_c = CG(z, s), trained so that the
decoded codes dec(z_c) fool an image discriminator D_I. One train step runs the paper's two phases in
turn, each one gradient update in which every network descends its own loss:

(a) prior improvement: CG and D_I (and, with switch C, the decoder) play a GAN in image space
      L_DI = −log D_I(x) − log(1 − D_I(dec z_c))  [+ λ·L_I]      D_I's side of Goodfellow eq. 1
      L_CG = −log D_I(dec z_c)                    [+ λ·L_I]      non-saturating, Goodfellow §3
    with a categorical s (a class label or a random category), InfoGAN's bound on I(s; dec z_c):
      L_I = −E log Q(s | dec z_c)                  Q = a softmax head on D_I's trunk (Chen et al. eq. 5)
    minimised by both players: CG (and the decoder with C) and D_I with its Q head, as in InfoGAN's
    eq. 5 (min over G and Q) and its official trainer (openai/InfoGAN infogan_trainer.py subtracts
    λ·MI from both the discriminator's and the generator's loss). With class labels, `loss.q_on_real`
    (not in Wang et al.) also trains Q on real images, λ·(−E log Q(y | x)) in L_DI (AC-GAN's L_C),
    which ties category s to the dataset's class s.
(b) AAE phase: CG is fixed and its codes are the "real" samples of D_C; e = enc(x), x̃ = dec(e)
      L_DC  = −log D_C(z_c, s) − log(1 − D_C(e, s))                 Makhzani's regularisation phase
      L_rec = ‖F(x̃) − F(x)‖² / dim F                                F = D_I's last conv features (B)
      θ_enc ← −∇(w_rec·L_rec − w_adv·log D_C(e, s))                 reconstruction + encoder-as-generator
      θ_dec ← −∇(w_rec·L_rec)
    D_I is a constant in L_rec; D_C sees s only when s comes with the data (label, vector).

Switches (Wang Table 3):  A `model.learned_prior` (off: p(z) is fixed — Gaussian, mixture or
categorical+Gaussian — and the step is phase (b) alone: Makhzani's AAE, whose reconstruction,
code-discriminator and encoder-as-generator updates are here one simultaneous update);
B `loss.perceptual` (off: F = pixels); C `loss.decoder_in_prior_phase` (the decoder also descends
L_CG in phase (a)). BatchNorm statistics of a network move only in the phases that train it.

Conditions (`model.condition`): "none"; "label" (supervised: s = the one-hot class, CG(z, s), D_C gets
s, plus L_I); "categorical" (unsupervised: s ~ Categorical(K), D_C label-agnostic, plus L_I);
"vector" (text-to-image generalised: s = batch["condition"], fed to CG, D_I and D_C). A vector-conditioned
state keeps the condition vectors of its latest batch (`extra["conditions"]`): `generate` without a
condition and the condition × noise grid sample with those.
"""

import jax
import jax.numpy as jnp

from genjax import config_lib, data, losses, optim
from genjax.config_lib import scale_width
from genjax.errors import ConfigError, DataError
from genjax.methods import common
from genjax.nets import aae as nets
from genjax.state import TrainState

PRIOR_NETS = ("code_generator", "image_discriminator")  # + decoder with switch C
AAE_NETS = ("encoder", "decoder", "code_discriminator")
GRID_COLUMNS = 8    # noise samples per row of the label (condition) × noise grid
CONDITION_BANK = 10  # vector conditions kept from the latest batch: generate's default and the grid's rows


# --- Config -------------------------------------------------------------------------------------------

def condition_dim(config) -> int:
  """Size of the condition s: classes, categories, vector size, or 0."""
  m = config.model
  return {"none": 0, "label": data.num_classes(config.data.name), "categorical": m.num_categories,
          "vector": m.condition_dim}[m.condition]


def validate(config, image_shape) -> None:
  m, cfg = config.model, config.loss
  try:
    nets.check_image_shape(image_shape)
  except ValueError as e:
    raise ConfigError(f"data.image_size: {e}") from None
  if m.condition not in nets.CONDITIONS:
    raise ConfigError(f"model.condition must be one of {nets.CONDITIONS}, got {m.condition!r}")
  if m.condition == "label" and condition_dim(config) == 0:
    raise ConfigError(f"model.condition='label' needs class labels, but dataset {config.data.name!r} has "
                      "none: use a labelled dataset or model.condition='vector'/'categorical'/'none'")
  if m.condition == "categorical" and m.num_categories < 2:
    raise ConfigError(f"model.num_categories must be >= 2, got {m.num_categories}")
  if m.condition == "vector" and m.condition_dim < 1:
    raise ConfigError(f"model.condition_dim must be >= 1 for model.condition='vector', got {m.condition_dim}")
  if not m.learned_prior:
    for key, on in (("loss.perceptual", cfg.perceptual), ("loss.decoder_in_prior_phase", cfg.decoder_in_prior_phase),
                    ("model.condition", m.condition != "none")):
      if on:
        raise ConfigError(f"{key} needs model.learned_prior=True (Wang Table 3 adds A before B and C; "
                          "conditions enter through the code generator)")
  _validate_fixed_prior(m)
  needed = AAE_NETS + (PRIOR_NETS if m.learned_prior else ())
  missing = [net for net in needed if net not in config.optim]
  if missing:
    raise ConfigError(f"config.optim has no slot for {', '.join(missing)}: model.learned_prior=True trains "
                      "a code generator and an image discriminator too (start from configs/aae_prior.py)")
  for key in ("latent_dim", "noise_dim"):
    if m[key] < 1:
      raise ConfigError(f"model.{key} must be >= 1, got {m[key]}")
  config_lib.check_nonnegative(cfg, ("reconstruction_weight", "adversarial_weight", "info_weight"), "loss")


def _validate_fixed_prior(m) -> None:
  if m.prior not in nets.FIXED_PRIORS:
    raise ConfigError(f"model.prior must be one of {nets.FIXED_PRIORS}, got {m.prior!r}")
  config_lib.check_nonnegative(m, ("prior_scale", "prior_component_std"), "model")
  if m.prior != "gaussian" and m.prior_components < 1:
    raise ConfigError(f"model.prior_components must be >= 1, got {m.prior_components}")
  if m.prior == "mixture" and m.latent_dim < 2:
    raise ConfigError(f"model.prior='mixture' places its means in 2 dims: model.latent_dim must be >= 2")
  if m.prior == "categorical_gaussian" and m.prior_components >= m.latent_dim:
    raise ConfigError(f"model.prior_components ({m.prior_components}) must be < model.latent_dim "
                      f"({m.latent_dim}) for model.prior='categorical_gaussian'")


# --- Networks and state -------------------------------------------------------------------------------

def networks(config, image_shape) -> dict:
  """The modules of `config` at its width: the AAE, D_C and p(z); CG and D_I with a learned prior."""
  m, dtype = config.model, common.compute_dtype(config)
  fixed_categorical = not m.learned_prior and m.prior == "categorical_gaussian"
  prior = nets.Prior(learned=m.learned_prior, code_dim=m.latent_dim, noise_dim=m.noise_dim,
                     condition=m.condition, condition_dim=condition_dim(config), kind=m.prior,
                     scale=m.prior_scale, components=m.prior_components,
                     component_std=m.prior_component_std)
  width = lambda c: scale_width(c, m.width)
  models = {
      "encoder": nets.Encoder(code_dim=m.latent_dim, stem=width([m.encoder_stem])[0],
                              channels=width(m.encoder_channels),
                              softmax_dims=m.prior_components if fixed_categorical else 0, dtype=dtype),
      "decoder": nets.Decoder(image_shape=tuple(image_shape), stem=width([m.decoder_stem])[0],
                              channels=width(m.decoder_channels), dtype=dtype),
      "code_discriminator": nets.CodeDiscriminator(hidden=width(m.code_discriminator_hidden), dtype=dtype),
      "prior": prior,
  }
  if m.learned_prior:
    models["code_generator"] = nets.CodeGenerator(code_dim=m.latent_dim, dtype=dtype)
    models["image_discriminator"] = nets.ImageDiscriminator(
        channels=width(m.image_discriminator_channels), hidden=width([m.image_discriminator_hidden])[0],
        num_classes=prior.condition_dim if prior.categorical else 0, dtype=dtype)
  return models


def init_state(config, rng: jax.Array, batch) -> TrainState:
  models = networks(config, batch["image"].shape[1:])
  prior = models["prior"]
  trained = {net: module for net, module in models.items() if net != "prior"}
  tx = {net: optim.make_optimizer(config.optim[net]) for net in trained}
  # A vector condition's feature is checked here, before anything is compiled or trained.
  conditions = data_condition(prior, batch) if prior.condition == "vector" else None

  @jax.jit  # networks, optimizer states and method state in one program
  def create(rng, x, conditions):
    init_rng, state_rng = jax.random.split(rng)
    code = jnp.zeros((1, prior.code_dim))
    s = jnp.zeros((1, prior.condition_dim)) if prior.condition != "none" else None
    inputs = {"encoder": (x,), "decoder": (code,), "code_discriminator": (code, _code_condition(prior, s)),
              "code_generator": (jnp.zeros((1, prior.noise_dim)), s),
              "image_discriminator": (x, _image_condition(prior, s))}
    params, batch_stats = common.init_networks(trained, init_rng, {net: inputs[net] for net in trained})
    extra = {} if conditions is None else {
        "conditions": jnp.resize(conditions, (CONDITION_BANK, prior.condition_dim))}
    return TrainState.create(params=params, batch_stats=batch_stats, models=models, tx=tx, rng=state_rng,
                             extra=extra)

  return create(rng, batch["image"][:1], conditions)


# --- Conditions -----------------------------------------------------------------------------------------

def _check_condition_size(condition, size: int, what: str, error=ValueError) -> None:
  if condition.ndim != 2 or condition.shape[-1] != size:
    raise error(f"{what} must be a float array [N, {size}] (model.condition_dim = {size}), "
                f"got shape {tuple(condition.shape)}")


def _code_condition(prior, s):
  """D_C sees s when it comes with the data (label, vector); it is label-agnostic otherwise."""
  return s if prior.condition in ("label", "vector") else None


def _image_condition(prior, s):
  """D_I takes a condition vector as an input; class conditions are scored by its Q head instead."""
  return s if prior.condition == "vector" else None


def _pair(s):
  """The condition of a [real; generated] batch: s twice (None stays None)."""
  return None if s is None else jnp.concatenate([s, s])


def data_condition(prior, batch):
  """The batch's condition vectors [N, D]; DataError when the dataset has none or of another size."""
  if "condition" not in batch:
    raise DataError(f"model.condition='vector' needs a float feature \"condition\" [N, {prior.condition_dim}] "
                    "in every example, and this dataset has none: pick a dataset that has one, or another "
                    "model.condition")
  _check_condition_size(batch["condition"], prior.condition_dim, 'the dataset\'s "condition" feature', DataError)
  return batch["condition"].astype(prior.dtype)


def batch_condition(prior, batch, rng: jax.Array):
  """(s [N, D] or None, class index [N] or None) of a training batch."""
  if prior.condition == "label":
    return jax.nn.one_hot(batch["label"], prior.condition_dim, dtype=prior.dtype), batch["label"]
  if prior.condition == "categorical":
    return prior.random_condition(rng, batch["image"].shape[0])
  if prior.condition == "vector":
    return data_condition(prior, batch), None
  return None, None


def prior_codes(state: TrainState, params, rng: jax.Array, s, num: int, train: bool = True):
  """Codes from p(z): z_c = CG(z, s) (and new CG statistics), or fixed-prior samples."""
  prior = state.models["prior"]
  if not prior.learned:
    return prior.fixed_sample(rng, num), {}
  return state.forward("code_generator", params, prior.noise(rng, num), s, train=train)


# --- The two phases -----------------------------------------------------------------------------------

def prior_trained(config) -> tuple[str, ...]:
  return PRIOR_NETS + (("decoder",) if config.loss.decoder_in_prior_phase else ())


def prior_losses(state: TrainState, params, batch, rng: jax.Array, config):
  """Phase (a): {CG, D_I (, decoder): own loss} and (metrics, BatchNorm statistics)."""
  cfg, prior = config.loss, state.models["prior"]
  x, n = batch["image"], batch["image"].shape[0]
  rng_s, rng_z = jax.random.split(rng)
  s, index = batch_condition(prior, batch, rng_s)
  z_c, cg_stats = prior_codes(state, params, rng_z, s, n)
  fake, dec_stats = state.forward("decoder", params, z_c)
  (logits, _, q_logits), di_stats = state.forward("image_discriminator", params, jnp.concatenate([x, fake]),
                                                  _pair(_image_condition(prior, s)))
  real_logits, fake_logits = logits[:n], logits[n:]
  dis_loss = losses.discriminator_loss(real_logits, fake_logits)  # Goodfellow eq. 1, D_I's side
  gen_loss = losses.generator_loss(fake_logits)                   # non-saturating, Goodfellow §3
  metrics = {"image_dis_loss": dis_loss, "image_gen_loss": gen_loss,
             "image_dis_real": jnp.mean(jax.nn.sigmoid(real_logits)),
             "image_dis_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}
  if prior.categorical:  # InfoGAN eq. 5: both players minimise λ·L_I
    info = losses.softmax_cross_entropy(q_logits[n:], index)
    dis_loss, gen_loss = dis_loss + cfg.info_weight * info, gen_loss + cfg.info_weight * info
    metrics.update(info_cross_entropy=info, info_accuracy=jnp.mean(jnp.argmax(q_logits[n:], -1) == index))
  if prior.condition == "label" and cfg.q_on_real:  # AC-GAN's L_C on real images (Odena et al. eq. 2)
    q_real = losses.softmax_cross_entropy(q_logits[:n], index)
    dis_loss = dis_loss + cfg.info_weight * q_real
    metrics["q_real_cross_entropy"] = q_real
  own = {"code_generator": gen_loss, "image_discriminator": dis_loss}
  if cfg.decoder_in_prior_phase:
    own["decoder"] = gen_loss
  return own, (metrics, {**cg_stats, **dec_stats, **di_stats})


def reconstruction_loss(state: TrainState, params, x, x_rec, s, perceptual: bool):
  """Phase (b)'s ‖F(x̃) − F(x)‖² / dim F, F = D_I's last conv features (switch B) or the pixels.

  D_I sees [x; x̃] in one call with batch statistics; its parameters are constants here.
  """
  if perceptual:
    cond = _pair(_image_condition(state.models["prior"], s))
    (_, features, _), _ = state.forward("image_discriminator", params, jnp.concatenate([x, x_rec]), cond)
    x, x_rec = jnp.split(features, 2)
  return jnp.mean(jnp.square(x_rec - x))


def aae_losses(state: TrainState, params, batch, rng: jax.Array, config):
  """Phase (b): {encoder, decoder, D_C: own loss} and (metrics, BatchNorm statistics)."""
  cfg, prior = config.loss, state.models["prior"]
  x, n = batch["image"], batch["image"].shape[0]
  rng_s, rng_z = jax.random.split(rng)
  s, _ = batch_condition(prior, batch, rng_s)
  z_c, _ = prior_codes(state, state.params, rng_z, s, n)  # CG fixed: the state's, not the differentiated params
  e, enc_stats = state.forward("encoder", params, x)
  x_rec, dec_stats = state.forward("decoder", params, e)
  rec = reconstruction_loss(state, params, x, x_rec, s, cfg.perceptual)
  logits, _ = state.forward("code_discriminator", params, jnp.concatenate([z_c, e]), _pair(_code_condition(prior, s)))
  real_logits, fake_logits = logits[:n], logits[n:]
  code_dis_loss = losses.discriminator_loss(real_logits, fake_logits)  # Makhzani: D_C's update
  encoder_adv = losses.generator_loss(fake_logits)                    # Makhzani: encoder as generator
  own = {"encoder": cfg.reconstruction_weight * rec + cfg.adversarial_weight * encoder_adv,
         "decoder": cfg.reconstruction_weight * rec,
         "code_discriminator": code_dis_loss}
  metrics = {"reconstruction": rec, "pixel_mse": jnp.mean(jnp.square(x_rec - x)),
             "code_dis_loss": code_dis_loss, "encoder_adv_loss": encoder_adv,
             "code_dis_prior": jnp.mean(jax.nn.sigmoid(real_logits)),
             "code_dis_encoder": jnp.mean(jax.nn.sigmoid(fake_logits))}  # → 0.5 as enc(x) matches p(z)
  return own, (metrics, {**enc_stats, **dec_stats})


def phase_gradients(losses_fn, state: TrainState, batch, rng: jax.Array, config, trained):
  """(grads, metrics, BatchNorm statistics) of one phase: ∂(own loss)/∂(own params) of each network in
  `trained`, from one forward pass and one vjp; every other network's parameters are constants."""
  grads, (metrics, stats) = common.own_gradients(
      lambda p: losses_fn(state, {**state.params, **p}, batch, rng, config),
      {net: state.params[net] for net in trained})
  return grads, metrics, {net: s for net, s in stats.items() if net in trained}


def prior_phase_gradients(state: TrainState, batch, rng: jax.Array, config):
  return phase_gradients(prior_losses, state, batch, rng, config, prior_trained(config))


def aae_phase_gradients(state: TrainState, batch, rng: jax.Array, config):
  return phase_gradients(aae_losses, state, batch, rng, config, AAE_NETS)


def make_train_step(config):
  def train_step(state: TrainState, batch):
    metrics = {}
    if config.model.learned_prior:
      grads, metrics, stats = prior_phase_gradients(state, batch, state.step_rng("prior_phase"), config)
      metrics.update({k + ("_prior_phase" if k == "grad_norm/decoder" else ""): v
                      for k, v in common.grad_norms(grads).items()})
      # Both phases make one train step: the step counter moves once, after phase (b).
      state = state.apply_gradients(grads, batch_stats=stats).replace(step=state.step)
    grads, aae_metrics, stats = aae_phase_gradients(state, batch, state.step_rng("aae_phase"), config)
    metrics.update(aae_metrics)
    metrics.update(common.grad_norms(grads))
    return state.apply_gradients(grads, batch_stats=stats, extra=_latest_conditions(state, batch)), metrics

  return train_step


def _latest_conditions(state: TrainState, batch) -> dict:
  """A vector-conditioned state keeps the batch's first CONDITION_BANK condition vectors."""
  prior = state.models["prior"]
  if prior.condition != "vector":
    return {}
  kept = jnp.concatenate([data_condition(prior, batch), state.extra["conditions"]])
  return {"conditions": kept[:CONDITION_BANK]}


# --- Using a trained model ----------------------------------------------------------------------------

def _generation_condition(state: TrainState, rng: jax.Array, num: int, condition):
  """s for generation: given (class indices [num], or one-hot / vectors [num, D]) or drawn: classes and
  categories uniformly, vectors from those of the latest training batch."""
  prior = state.models["prior"]
  if prior.condition == "none":
    return None
  if condition is None:
    if prior.condition == "vector":
      return state.extra["conditions"][jax.random.randint(rng, (num,), 0, CONDITION_BANK)]
    return prior.random_condition(rng, num)[0]
  condition = jnp.asarray(condition)
  if prior.categorical and condition.ndim == 1:
    return jax.nn.one_hot(condition, prior.condition_dim, dtype=prior.dtype)
  _check_condition_size(condition, prior.condition_dim, "generate: condition")
  return condition.astype(prior.dtype)


def sample_codes(state: TrainState, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """`num` codes from p(z) (inference-mode BatchNorm in CG)."""
  rng_s, rng_z = jax.random.split(rng)
  s = _generation_condition(state, rng_s, num, condition) if state.models["prior"].learned else None
  return prior_codes(state, state.params, rng_z, s, num, train=False)[0]


def generate(state: TrainState, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """dec(z_c) for `num` codes z_c ~ p(z | s). `condition`: class indices [num] or one-hot [num, K]
  (label, categorical), vectors [num, D] (vector); None draws it (see `_generation_condition`)."""
  return decode(state, sample_codes(state, rng, num, condition))


def sample_grids(state: TrainState, rng: jax.Array) -> dict:
  """A conditional prior's grid: one class or category ("label_grid") or one condition vector of the latest
  batch ("condition_grid") per row, the same GRID_COLUMNS noise vectors down the columns."""
  prior = state.models["prior"]
  if not prior.learned or prior.condition == "none":
    return {}
  if prior.condition == "vector":
    name, rows = "condition_grid", state.extra["conditions"]
  else:
    name, rows = "label_grid", jnp.eye(prior.condition_dim, dtype=prior.dtype)
  k = rows.shape[0]
  noise = jnp.tile(prior.noise(rng, GRID_COLUMNS), (k, 1))
  images = decode(state, state.apply("code_generator", noise, jnp.repeat(rows, GRID_COLUMNS, axis=0)))
  return {name: images.reshape((k, GRID_COLUMNS) + images.shape[1:])}


def encode(state: TrainState, images: jax.Array) -> jax.Array:
  return state.apply("encoder", images)


def decode(state: TrainState, codes: jax.Array) -> jax.Array:
  return state.apply("decoder", codes)


def reconstruct(state: TrainState, images: jax.Array) -> jax.Array:
  return decode(state, encode(state, images))


def evaluate(state: TrainState, batch) -> dict:
  """Held-out pixel MSE of reconstructions and D_C's mean output on their codes (0.5 = matched)."""
  prior, codes = state.models["prior"], encode(state, batch["image"])
  logits = state.apply("code_discriminator", codes, _code_condition(prior, batch_condition(prior, batch, state.rng)[0]))
  return {"pixel_mse": jnp.mean(jnp.square(decode(state, codes) - batch["image"])),
          "code_dis_encoder": jnp.mean(jax.nn.sigmoid(logits))}
