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
Conditions (`model.condition`: none, label, categorical, vector) are genjax.core.conditions'.
"""

import jax
import jax.numpy as jnp

from genjax import config_lib, data, losses, optim
from genjax.core import conditions
from genjax.core.method import Method
from genjax.core.networks import compute_dtype, create_state
from genjax.core.step import Aux, Phase
from genjax.errors import ConfigError
from genjax.nets import aae as nets
from genjax.nets import scale_width

PRIOR_NETS = ("code_generator", "image_discriminator")  # + decoder with switch C
AAE_NETS = ("encoder", "decoder", "code_discriminator")
GRID_COLUMNS = 8    # noise samples per row of the label (condition) × noise grid


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
    raise ConfigError("model.prior='mixture' places its means in 2 dims: model.latent_dim must be >= 2")
  if m.prior == "categorical_gaussian" and m.prior_components >= m.latent_dim:
    raise ConfigError(f"model.prior_components ({m.prior_components}) must be < model.latent_dim "
                      f"({m.latent_dim}) for model.prior='categorical_gaussian'")


# --- Networks and state -------------------------------------------------------------------------------

def networks(config, image_shape) -> dict:
  """The modules of `config` at its width: the AAE, D_C and p(z); CG and D_I with a learned prior."""
  m, dtype = config.model, compute_dtype(config)
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


def init_state(config, rng: jax.Array, batch):
  models = networks(config, batch["image"].shape[1:])
  prior, x = models["prior"], batch["image"][:1]
  trained = tuple(net for net in models if net != "prior")  # p(z) itself has no parameters
  code = jnp.zeros((1, prior.code_dim))
  s = jnp.zeros((1, prior.condition_dim)) if prior.condition != "none" else None
  inputs = {"encoder": (x,), "decoder": (code,),
            "code_discriminator": (code, conditions.for_code_discriminator(prior, s)),
            "code_generator": (jnp.zeros((1, prior.noise_dim)), s),
            "image_discriminator": (x, conditions.for_image_discriminator(prior, s))}
  # A vector condition's feature is checked here, before anything is compiled or trained.
  return create_state(rng, models, inputs, {net: optim.make_optimizer(config.optim[net]) for net in trained},
                      trained=trained, extra=conditions.initial_bank(prior, batch))


def prior_codes(state, params, rng: jax.Array, s, num: int, train: bool = True):
  """Codes from p(z): z_c = CG(z, s) (and new CG statistics), or fixed-prior samples."""
  prior = state.models["prior"]
  if not prior.learned:
    return prior.fixed_sample(rng, num), {}
  return state.forward("code_generator", params, prior.noise(rng, num), s, train=train)


# --- The two phases -----------------------------------------------------------------------------------

def prior_losses(config):
  """Phase (a): {CG, D_I (, decoder): own loss} and Aux(metrics, BatchNorm statistics)."""
  cfg = config.loss

  def losses_fn(state, params, batch, rng):
    prior = state.models["prior"]
    x, n = batch["image"], batch["image"].shape[0]
    rng_s, rng_z = jax.random.split(rng)
    s, index = conditions.of_batch(prior, batch, rng_s)
    z_c, cg_stats = prior_codes(state, params, rng_z, s, n)
    fake, dec_stats = state.forward("decoder", params, z_c)
    (logits, _, q_logits), di_stats = state.forward(
        "image_discriminator", params, jnp.concatenate([x, fake]), conditions.twice(conditions.for_image_discriminator(prior, s)))
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
    return own, Aux(metrics, {**cg_stats, **dec_stats, **di_stats})
  return losses_fn


def reconstruction_loss(state, params, x, x_rec, s, perceptual: bool):
  """Phase (b)'s ‖F(x̃) − F(x)‖² / dim F, F = D_I's last conv features (switch B) or the pixels.

  D_I sees [x; x̃] in one call with batch statistics; its parameters are constants here.
  """
  if perceptual:
    cond = conditions.twice(conditions.for_image_discriminator(state.models["prior"], s))
    (_, features, _), _ = state.forward("image_discriminator", params, jnp.concatenate([x, x_rec]), cond)
    x, x_rec = jnp.split(features, 2)
  return jnp.mean(jnp.square(x_rec - x))


def aae_losses(config):
  """Phase (b): {encoder, decoder, D_C: own loss} and Aux(metrics, BatchNorm statistics)."""
  cfg = config.loss

  def losses_fn(state, params, batch, rng):
    prior = state.models["prior"]
    x, n = batch["image"], batch["image"].shape[0]
    rng_s, rng_z = jax.random.split(rng)
    s, _ = conditions.of_batch(prior, batch, rng_s)
    z_c, _ = prior_codes(state, state.params, rng_z, s, n)  # CG fixed: the state's, not the differentiated params
    e, enc_stats = state.forward("encoder", params, x)
    x_rec, dec_stats = state.forward("decoder", params, e)
    rec = reconstruction_loss(state, params, x, x_rec, s, cfg.perceptual)
    logits, _ = state.forward("code_discriminator", params, jnp.concatenate([z_c, e]),
                              conditions.twice(conditions.for_code_discriminator(prior, s)))
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
    return own, Aux(metrics, {**enc_stats, **dec_stats})
  return losses_fn


def keep_latest_conditions(state, batch, metrics):
  """A vector-conditioned state keeps the batch's first condition vectors (generation's defaults)."""
  del metrics
  return conditions.latest_bank(state, batch), {}


def objective(config):
  """Phase (a) with a learned prior (its networks only), then phase (b) (the AAE's networks only)."""
  aae_phase = Phase(aae_losses(config), rng="aae_phase", trains=AAE_NETS, update=keep_latest_conditions)
  if not config.model.learned_prior:
    return [aae_phase]
  trains = PRIOR_NETS + (("decoder",) if config.loss.decoder_in_prior_phase else ())
  return [Phase(prior_losses(config), rng="prior_phase", trains=trains, name="prior_phase"), aae_phase]


# --- Using a trained model ----------------------------------------------------------------------------

def sample_codes(state, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """`num` codes from p(z) (inference-mode BatchNorm in CG)."""
  rng_s, rng_z = jax.random.split(rng)
  s = conditions.for_generation(state, rng_s, num, condition) if state.models["prior"].learned else None
  return prior_codes(state, state.params, rng_z, s, num, train=False)[0]


def generate(state, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """dec(z_c) for `num` codes z_c ~ p(z | s). `condition`: class indices [num] or one-hot [num, K]
  (label, categorical), vectors [num, D] (vector); None draws it (genjax.core.conditions.for_generation)."""
  return decode(state, sample_codes(state, rng, num, condition))


def sample_grids(state, rng: jax.Array) -> dict:
  """A conditional prior's grid: one class or category ("label_grid") or one condition vector of the latest
  batch ("condition_grid") per row, the same GRID_COLUMNS noise vectors down the columns."""
  grid = conditions.grid_rows(state)
  if grid is None:
    return {}
  name, rows = grid
  k = rows.shape[0]
  noise = jnp.tile(state.models["prior"].noise(rng, GRID_COLUMNS), (k, 1))
  images = decode(state, state.apply("code_generator", noise, jnp.repeat(rows, GRID_COLUMNS, axis=0)))
  return {name: images.reshape((k, GRID_COLUMNS) + images.shape[1:])}


def encode(state, images: jax.Array) -> jax.Array:
  return state.apply("encoder", images)


def decode(state, codes: jax.Array) -> jax.Array:
  return state.apply("decoder", codes)


def reconstruct(state, images: jax.Array) -> jax.Array:
  return decode(state, encode(state, images))


def evaluate(state, batch) -> dict:
  """Held-out pixel MSE of reconstructions and D_C's mean output on their codes (0.5 = matched)."""
  prior, codes = state.models["prior"], encode(state, batch["image"])
  s = conditions.for_code_discriminator(prior, conditions.of_batch(prior, batch, state.rng)[0])
  logits = state.apply("code_discriminator", codes, s)
  return {"pixel_mse": jnp.mean(jnp.square(decode(state, codes) - batch["image"])),
          "code_dis_encoder": jnp.mean(jax.nn.sigmoid(logits))}


METHOD = Method(
    name="aae_prior", init_state=init_state, objective=objective, validate=validate, generate=generate,
    encode=encode, decode=decode, reconstruct=reconstruct, sample_codes=sample_codes, sample_grids=sample_grids,
    evaluate=evaluate, progress=("reconstruction", "code_dis_encoder", "image_dis_real", "image_dis_fake"))
