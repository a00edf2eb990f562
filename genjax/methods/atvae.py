"""Adversarially trained VAE with PID equilibrium (Khan, Hayat, Barnes, WACV 2018; no public code).

The generator is a VAE (encoder q(z|x), decoder Dec); the discriminator D is BEGAN's autoencoder
(genjax.core.energy), whose encoder code z_d = D_enc(x) also gives a perceptual distance. With
x_v = Dec(z), z ~ q(z|x) (the VAE's reconstruction) and x_g = Dec(z_p), z_p ~ N(0, I) (a prior sample),
the paper's eqs. 2–15 are

    L_e   = |x − x_v|₁ / |x|                   VAE content loss, an L1 mean
    L_n   = KL(q(z|x) ‖ N(0, I)) / dim z       the VAE's prior term
    L_d   = |x − D(x)|₁,  L_g = |x_g − D(x_g)|₁,  L_v = |x_v − D(x_v)|₁     (L1 means, as BEGAN's L)
    L_s   = |z_d − z'_v|₁ / |z_d|,  z_d = D_enc(x), z'_v = D_enc(x_v)       perceptual guidance
    L_dis = L_d − k_{t−1} (L_g + α L_v)        for θ_D
    L_gen = L_g + α L_v + β L_s + γ L_e        for θ_Dec
    L_enc = w L_n + β L_s + γ L_e              for θ_Enc   (w = loss.kl_weight, 1 in the paper)

and the PID controller (genjax.control) on the equilibrium error

    eq. 10 (`loss.error="eq10"`, every preset):  e_t = η L_d − (L_g + α L_v)
    eq. 11 as printed (`loss.error="eq11"`):     e_t = η L_d − L_g + α L_v
    k_t = clip(k_{t−1} + λ1 e_t + λ2 (e_t − e_{t−1}) + λ3 (e_t + e_{t−2} − 2 e_{t−1}), 0, 1)

with the convergence measure L_d + |e_t|. The paper's two equations disagree on the sign of α L_v. The
presets take eq. 10's: k weighs both fakes in L_dis, so balance means η L_d = L_g + α L_v (BEGAN's
γ L(x) = L(G(z)) with the reconstructions among the fakes); under eq. 11 worse reconstructions (a larger
L_v) would raise k and push them further from D's real-data energy. The paper normalises the L1 terms by
their size; it does not say how L_n is normalised: here the KL is averaged over the latent dimensions
too. The two previous errors start at 0 (not in the paper; see genjax.control).

Each network descends its own loss only: L_s and L_e reach the encoder and the decoder with D's
parameters constant; D never sees L_s, L_e or L_n; L_v reaches the decoder, not the encoder (L_enc).
One forward pass — Enc(x); Dec on [z, z_p]; D on [x, x_v, x_g] — gives all three losses; the three
networks update simultaneously, as in BEGAN.

Switches reproduce the paper's ablation: `loss.control` "pid" (BEGAN*, the paper) or "p" (BEGAN's
λ2 = λ3 = 0); `loss.similarity` turns L_s on or off; `model.vae` False drops the encoder, and with it
L_v, L_s, L_e and L_n: the decoder is then BEGAN's generator (z ~ U(−1, 1)) and the method is BEGAN with
the PID controller.
"""

import jax
import jax.numpy as jnp

from genjax import config_lib, control, losses, optim
from genjax.core import energy, gaussian_ae
from genjax.core.method import Method
from genjax.core.networks import compute_dtype, create_state
from genjax.core.step import Aux, Phase
from genjax.errors import ConfigError
from genjax.nets import began as nets

CONTROLS = ("pid", "p")
ERRORS = ("eq10", "eq11")
WEIGHTS = ("alpha", "beta", "gamma", "eta", "kl_weight", "lambda_1", "lambda_2", "lambda_3")


def validate(config, image_shape) -> None:
  energy.check_architecture(config, image_shape)
  config_lib.check_nonnegative(config.loss, WEIGHTS)
  energy.check_k_init(config.loss)
  if config.loss.control not in CONTROLS:
    raise ConfigError(f"loss.control must be one of {CONTROLS}, got {config.loss.control!r}")
  if config.loss.error not in ERRORS:
    raise ConfigError(f"loss.error must be one of {ERRORS}, got {config.loss.error!r}")


def init_state(config, rng: jax.Array, batch):
  image_shape = batch["image"].shape[1:]
  x, m = batch["image"][:1], config.model
  models = {"decoder": energy.decoder(config, image_shape), "discriminator": energy.discriminator(config, image_shape)}
  inputs = {"decoder": (jnp.zeros((1, m.latent_dim)),), "discriminator": (x,)}
  if m.vae:
    models["encoder"] = nets.GaussianEncoder(filters=energy.filters(config), latent_dim=m.latent_dim,
                                             dtype=compute_dtype(config))
    inputs["encoder"] = (x,)
  return create_state(rng, models, inputs, {net: optim.make_optimizer(config.optim[net]) for net in models},
                      extra=control.pid_init(config.loss.k_init))


def network_losses(config):
  """{network: its own loss} (L_enc, L_gen, L_dis) and Aux(the terms to log)."""
  cfg = config.loss

  def losses_fn(state, params, batch, rng):
    x = batch["image"]
    (mean, logvar), decoded, _ = gaussian_ae.reconstructions_and_prior_samples(state, params, x, rng)
    x_v, x_g = jnp.split(decoded, 2)
    (l_d, l_v, l_g), (z_d, z_v, _) = energy.energies(state, params, x, x_v, x_g)
    l_s = losses.mean_absolute_error(z_d, z_v) if cfg.similarity else jnp.zeros((), x.dtype)
    l_e = losses.mean_absolute_error(x, x_v)
    l_n = losses.gaussian_kl(mean, logvar) / mean.shape[-1]
    fakes = l_g + cfg.alpha * l_v
    own = {
        "discriminator": l_d - energy.equilibrium_k(state) * fakes,             # L_dis
        "decoder": fakes + cfg.beta * l_s + cfg.gamma * l_e,                     # L_gen
        "encoder": cfg.kl_weight * l_n + cfg.beta * l_s + cfg.gamma * l_e,       # L_enc
    }
    terms = {"loss_real": l_d, "loss_fake": l_g, "loss_recon": l_v, "code_l1": l_s, "pixel_l1": l_e,
             "kl": l_n, "dis_loss": own["discriminator"], "gen_loss": own["decoder"], "enc_loss": own["encoder"]}
    return own, Aux(terms)
  return losses_fn


def controller_gains(config) -> tuple[float, float, float]:
  cfg = config.loss
  if cfg.control == "p":
    return (cfg.lambda_1, 0.0, 0.0)
  return (cfg.lambda_1, cfg.lambda_2, cfg.lambda_3)


def equilibrium_error(config):
  """e_t of the terms: eq. 10 or eq. 11 (L_v = 0 without the VAE, where both are BEGAN's)."""
  cfg = config.loss

  def error_fn(terms):
    return control.khan_error(terms["loss_real"], terms["loss_fake"], terms.get("loss_recon", 0.0),
                              cfg.eta, cfg.alpha, printed=cfg.error == "eq11")
  return error_fn


def objective(config):
  if config.model.vae:
    losses_fn = network_losses(config)
  else:  # BEGAN*: BEGAN's losses, the decoder as its generator
    losses_fn = lambda state, params, batch, rng: energy.generator_losses(state, params, batch, rng, "decoder")
  return [Phase(losses_fn, rng="z", update=energy.k_controller(equilibrium_error(config), controller_gains(config)))]


def generate(state, rng: jax.Array, num: int, condition=None) -> jax.Array:
  """Decodes prior draws: N(0, I) for the VAE's decoder, U(−1, 1) for a plain BEGAN generator."""
  del condition  # unconditional
  dim = state.models["decoder"].latent_dim
  sample = gaussian_ae.prior_sample if "encoder" in state.models else energy.uniform_prior
  return energy.generate_clipped(state, "decoder", sample(rng, num, dim))


def decode(state, codes: jax.Array) -> jax.Array:
  """Dec(codes) in the image range (interpolations)."""
  return energy.generate_clipped(state, "decoder", codes)


def reconstruct(state, images: jax.Array) -> jax.Array:
  """Dec(posterior mean); without an encoder, the discriminator's autoencoding D(x)."""
  if "encoder" not in state.models:
    return jnp.clip(state.apply("discriminator", images)[0], -1.0, 1.0)
  return decode(state, gaussian_ae.encode(state, images))


def encode(state, images: jax.Array) -> jax.Array:
  """Posterior means (VAE generator only)."""
  return gaussian_ae.encode(state, images)


METHOD = Method(name="atvae", init_state=init_state, objective=objective, validate=validate, generate=generate,
                encode=encode, decode=decode, reconstruct=reconstruct,
                progress=("loss_real", "loss_fake", "loss_recon", "k", "convergence"))
