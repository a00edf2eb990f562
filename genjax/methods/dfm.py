"""Denoising feature matching (Warde-Farley & Bengio 2017): a GAN whose generator also follows a
denoising autoencoder r trained on the discriminator's features φ (REFERENCES.md §5).

φ(x) is the flattened last conv map of D (2048 = 4·4·128 features on 32×32 images), n_h its size.
r is trained on the features of REAL data only, with additive Gaussian corruption C:

    L_r = E_x ‖φ(x) − r(φ(x) + σ·ε)‖²,  ε ~ N(0, I)                       the DAE; φ(x) is data here
    L_D = −E_x log D(x) − E_z log(1 − D(G(z)))                             the usual GAN loss only
    L_G = λ_denoise·E_z ‖φ(G(z)) − [r(φ(G(z)))]‖² − λ_adv·E_z log D(G(z))  [·] = a fixed target

r(h) − h estimates the direction towards higher density of real features (Alain & Bengio 2014), so the
first term of L_G moves G's features the way r would denoise them; the bracket is a constant: no
gradient reaches r or D through it, and none reaches D from L_r. The paper's λ_denoise = 0.03 / n_h
(loss.denoise_weight = 0.03 is λ_denoise·n_h), λ_adv = 1, σ = 1.

One forward pass as in DCGAN (genjax.core.gan: real and fake images through D in one batch), then r
on the corrupted real features and on φ(G(z)). BatchNorm: r's running statistics follow the corrupted
real features it is trained on; the target r(φ(G(z))) uses the fake batch's own statistics, as a
training-mode graph of the time would.
"""

import jax
import jax.numpy as jnp

from genjax import config_lib, losses, optim
from genjax.core import gan
from genjax.core.method import Method
from genjax.core.networks import compute_dtype, create_state
from genjax.core.step import Aux, Phase
from genjax.errors import ConfigError
from genjax.nets import scale_width
from genjax.nets.dcgan import Denoiser

NETS = ("generator", "discriminator", "denoiser")


def validate(config, image_shape) -> None:
  gan.check_model(config.model, image_shape)
  hidden = config.model.denoiser_hidden
  if min(hidden, default=1) < 1:
    raise ConfigError(f"model.denoiser_hidden must be positive widths, got {hidden}")
  config_lib.check_nonnegative(config.loss, ("denoise_weight", "adv_weight", "noise_std"))


def init_state(config, rng: jax.Array, batch):
  m, dtype = config.model, compute_dtype(config)
  models = gan.networks(m, batch["image"].shape[1:], dtype)
  models["denoiser"] = Denoiser(hidden=scale_width(m.denoiser_hidden, m.width), dtype=dtype)
  n_h = models["discriminator"].num_features(batch["image"].shape[1:])
  inputs = {**gan.example_inputs(config, batch), "denoiser": (jnp.zeros((1, n_h)),)}
  return create_state(rng, models, inputs, {net: optim.make_optimizer(config.optim[net]) for net in NETS})


def network_losses(config):
  """{network: its own loss} and Aux(metrics, BatchNorm statistics), from one forward pass."""
  cfg = config.loss

  def losses_fn(state, params, batch, rng):
    rng_z, rng_c = jax.random.split(rng)
    (real_logits, fake_logits), (h_real, h_fake), batch_stats = gan.forward(state, params, batch["image"], rng_z)
    h_real = jax.lax.stop_gradient(h_real)  # L_r treats φ(x) as data: no gradient into D
    corrupted = h_real + cfg.noise_std * jax.random.normal(rng_c, h_real.shape, h_real.dtype)  # C(φ(x))
    denoised, r_stats = state.forward("denoiser", params, corrupted)
    target, _ = state.forward("denoiser", params, h_fake)  # fake-batch BN statistics, not kept
    target = jax.lax.stop_gradient(target)                 # r(φ(G(z))) is a fixed target

    denoise_loss = losses.squared_error(h_real, denoised)   # L_r
    gen_denoise = losses.squared_error(h_fake, target)      # ‖φ(G(z)) − r(φ(G(z)))‖²
    gen_adv = losses.generator_loss(fake_logits)            # −log D(G(z)), non-saturating
    n_h = h_fake.shape[-1]
    own = {
        "generator": cfg.denoise_weight / n_h * gen_denoise + cfg.adv_weight * gen_adv,  # L_G
        "discriminator": losses.discriminator_loss(real_logits, fake_logits),            # L_D
        "denoiser": denoise_loss,                                                        # L_r
    }
    metrics = {"gen_loss": own["generator"], "dis_loss": own["discriminator"],
               "denoise_loss": denoise_loss, "gen_denoise": gen_denoise, "gen_adv": gen_adv,
               "feature_rms": jnp.sqrt(jnp.mean(jnp.square(h_real))),
               **gan.metrics(real_logits, fake_logits)}
    return own, Aux(metrics, {**batch_stats, **r_stats})
  return losses_fn


def objective(config):
  return [Phase(network_losses(config), rng="z")]


def evaluate(state, batch) -> dict[str, jax.Array]:
  """Held-out D(x), and ‖φ(x) − r(φ(x))‖² on held-out real images (inference-mode BN): the residual the
  generator's term measures on φ(G(z)), here on real data, for comparison with the train `gen_denoise`."""
  _, h = state.apply("discriminator", batch["image"])
  residual = losses.squared_error(h, state.apply("denoiser", h))
  return {**gan.evaluate(state, batch), "real_denoise_residual": residual}


METHOD = Method(name="dfm", init_state=init_state, objective=objective, validate=validate,
                generate=gan.generate, evaluate=evaluate,
                progress=("dis_loss", "gen_adv", "gen_denoise", "denoise_loss"))
