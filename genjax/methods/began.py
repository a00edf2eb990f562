"""BEGAN: Boundary Equilibrium Generative Adversarial Networks (Berthelot, Schumm, Metz 2017).

The discriminator D is an autoencoder; the energy of an image is its L1 reconstruction error

    L(v)    = mean |v − D(v)|                                         (eq. 1, η = 1)
    L_D     = L(x) − k_t · L(G(z))        for θ_D                      (§3.4, objective)
    L_G     = L(G(z))                     for θ_G                      (§3.4, objective)
    k_{t+1} = clip(k_t + λ_k (γ L(x) − L(G(z))), 0, 1),   k₀ = 0       (§3.4, proportional control)
    M_global = L(x) + |γ L(x) − L(G(z))|                               (§3.4.1, convergence measure)

with z ~ U(−1, 1). k_t is a constant inside both gradients (read from the state, stop_gradient).

Both networks update simultaneously, as in the paper (§3.4: the two losses are minimised at once):
one forward pass — G(z), then D on [x, G(z)] in one call — and one `jax.vjp` pulling back a one-hot
cotangent per network give ∂L_D/∂θ_D and ∂L_G/∂θ_G from the same parameters; the other network's
parameters are constants in each. Alternating updates would cost a second forward pass per step and
change the game the paper analyses.

The pieces (networks, energies, one-vjp gradients, the controlled step) are shared with Khan et al.'s
adversarially trained VAE (genjax.methods.atvae), whose plain-generator variant is this method with
a PID controller.
"""


import jax
import jax.numpy as jnp

from genjax import config_lib, control, losses, optim
from genjax.errors import ConfigError
from genjax.methods import common
from genjax.nets import began as nets
from genjax.state import TrainState

GENERATOR = "generator"


# --- configuration ----------------------------------------------------------------------------------

def validate(config, image_shape) -> None:
  check_architecture(config, image_shape)
  config_lib.check_nonnegative(config.loss, ("gamma", "lambda_k"))
  check_k_init(config.loss)


def check_architecture(config, image_shape) -> None:
  """An image of side 8·2^s (s ≥ 1) and positive sizes."""
  try:
    nets.num_stages(image_shape)
  except ValueError as e:
    raise ConfigError(f"data.image_size {image_shape[0]} does not fit BEGAN's networks: {e}") from None
  for key in ("filters", "code_dim", "latent_dim"):
    value = config.model[key]
    if not isinstance(value, int) or value < 1:
      raise ConfigError(f"model.{key} must be a positive integer, got {value!r}")


def check_k_init(section) -> None:
  if not 0.0 <= section.k_init <= 1.0:
    raise ConfigError(f"loss.k_init must be in [0, 1], got {section.k_init}")


# --- networks and state -----------------------------------------------------------------------------

def decoder(config, image_shape) -> nets.Decoder:
  """G (BEGAN) or the VAE's decoder (Khan): the discriminator's decoder architecture, own weights."""
  m = config.model
  return nets.Decoder(image_shape=tuple(image_shape), filters=filters(config), latent_dim=m.latent_dim,
                      skip=m.skip, dtype=common.compute_dtype(config))


def discriminator(config, image_shape) -> nets.Autoencoder:
  m = config.model
  return nets.Autoencoder(image_shape=tuple(image_shape), filters=filters(config), code_dim=m.code_dim,
                          skip=m.skip, dtype=common.compute_dtype(config))


def filters(config) -> int:
  return config_lib.scale_width([config.model.filters], config.model.width)[0]


def create_state(config, rng: jax.Array, models, inputs) -> TrainState:
  """Params of `models` (one optimizer slot each, config.optim.<net>) and the controller at k₀."""
  init_rng, state_rng = jax.random.split(rng)
  params, _ = common.init_networks(models, init_rng, inputs)  # no BatchNorm anywhere
  tx = {net: optim.make_optimizer(config.optim[net]) for net in models}
  return TrainState.create(params=params, models=models, tx=tx, rng=state_rng,
                           extra=control.pid_init(config.loss.k_init))


def init_state(config, rng: jax.Array, batch) -> TrainState:
  image_shape = batch["image"].shape[1:]
  models = {GENERATOR: decoder(config, image_shape), "discriminator": discriminator(config, image_shape)}
  inputs = {GENERATOR: (jnp.zeros((1, config.model.latent_dim)),), "discriminator": (batch["image"][:1],)}
  return create_state(config, rng, models, inputs)


def uniform_prior(rng: jax.Array, num: int, latent_dim: int, dtype=jnp.float32) -> jax.Array:
  """z ~ U(−1, 1)."""
  return jax.random.uniform(rng, (num, latent_dim), dtype, minval=-1.0, maxval=1.0)


def generate(state: TrainState, rng: jax.Array, num: int, condition=None) -> jax.Array:
  del condition  # unconditional
  z = uniform_prior(rng, num, state.models[GENERATOR].latent_dim)
  return jnp.clip(state.apply(GENERATOR, z), -1.0, 1.0)


# --- losses and gradients ---------------------------------------------------------------------------

def energies(state: TrainState, params, *groups):
  """L(v) = mean |v − D(v)| of each group of images and D's encoder codes, from one D call (eq. 1)."""
  (recon, codes), _ = state.forward("discriminator", params, jnp.concatenate(groups))
  splits = [sum(len(g) for g in groups[:i + 1]) for i in range(len(groups) - 1)]
  recons, codes = jnp.split(recon, splits), jnp.split(codes, splits)
  return [losses.mean_absolute_error(v, r) for v, r in zip(groups, recons)], codes


def equilibrium_k(state: TrainState) -> jax.Array:
  """k_t as a constant of this step's gradients."""
  return jax.lax.stop_gradient(state.extra["k"])


def network_losses(state: TrainState, params, batch, rng: jax.Array, config=None, generator=GENERATOR):
  """{network: its own loss} (§3.4) and the terms to log; `generator` names G's network."""
  del config  # k comes from the state, z's size from G
  x = batch["image"]
  z = uniform_prior(rng, x.shape[0], state.models[generator].latent_dim, x.dtype)
  fake, _ = state.forward(generator, params, z)
  (loss_real, loss_fake), _ = energies(state, params, x, fake)
  dis_loss = loss_real - equilibrium_k(state) * loss_fake
  own = {"discriminator": dis_loss, generator: loss_fake}
  return own, {"loss_real": loss_real, "loss_fake": loss_fake, "dis_loss": dis_loss, "gen_loss": loss_fake}


def network_gradients(state: TrainState, batch, rng: jax.Array, config, losses_fn=network_losses):
  """(grads, terms): each network's gradient of its own loss, from one forward pass."""
  return common.own_gradients(lambda p: losses_fn(state, p, batch, rng, config), state.params)


# --- the step ---------------------------------------------------------------------------------------

def controlled_step(config, losses_fn, error_fn, gains):
  """Simultaneous updates of every network with its own gradient, then k's controller.

  `error_fn(terms)` is the controller's error e_t; `gains` = (λ1, λ2, λ3) of `control.pid_update`.
  """
  def train_step(state: TrainState, batch):
    grads, terms = network_gradients(state, batch, state.step_rng("z"), config, losses_fn)
    error = error_fn(terms)
    metrics = {**terms, "k": state.extra["k"], "control_error": error,
               "convergence": control.convergence(terms["loss_real"], error), **common.grad_norms(grads)}
    state = state.apply_gradients(grads, extra=control.pid_update(state.extra, error, gains))
    return state, {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
  return train_step


def make_train_step(config):
  cfg = config.loss
  error_fn = lambda t: control.began_error(t["loss_real"], t["loss_fake"], cfg.gamma)
  return controlled_step(config, network_losses, error_fn, (cfg.lambda_k, 0.0, 0.0))  # P control
