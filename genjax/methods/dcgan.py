"""DCGAN: unsupervised representation learning with deep convolutional GANs (Radford et al. 2016).

A GAN (Goodfellow et al. 2014) whose generator G and discriminator D are all-convolutional with batch
normalisation; z ~ N(0, I). Each network descends its own side of the minimax game (Goodfellow eq. 1):

    L_D = −E_x log D(x) − E_z log(1 − D(G(z)))       the discriminator's side of eq. 1
    L_G = −E_z log D(G(z))                           non-saturating generator loss (Goodfellow §3)

Both losses come from ONE forward pass (genjax.core.gan.forward: real and generated images through D
in one concatenated batch, so BatchNorm sees them together); D's parameters are constants in L_G, G's
in L_D.
"""

import jax

from genjax import losses, optim
from genjax.core import gan
from genjax.core.method import Method
from genjax.core.networks import compute_dtype, create_state
from genjax.core.step import Aux, Phase

NETS = ("generator", "discriminator")


def validate(config, image_shape) -> None:
  gan.check_model(config.model, image_shape)


def init_state(config, rng: jax.Array, batch):
  models = gan.networks(config.model, batch["image"].shape[1:], compute_dtype(config))
  return create_state(rng, models, gan.example_inputs(config, batch),
                      {net: optim.make_optimizer(config.optim[net]) for net in NETS})


def network_losses(config):
  """{network: its own loss} and Aux(metrics, BatchNorm statistics), from one forward pass."""
  del config  # no weights: the minimax game as written

  def losses_fn(state, params, batch, rng):
    (real_logits, fake_logits), _, batch_stats = gan.forward(state, params, batch["image"], rng)
    own = {"generator": losses.generator_loss(fake_logits),                       # L_G, Goodfellow §3
           "discriminator": losses.discriminator_loss(real_logits, fake_logits)}  # L_D, Goodfellow eq. 1
    metrics = {"gen_loss": own["generator"], "dis_loss": own["discriminator"],
               **gan.metrics(real_logits, fake_logits)}
    return own, Aux(metrics, batch_stats)
  return losses_fn


def objective(config):
  return [Phase(network_losses(config), rng="z")]


METHOD = Method(name="dcgan", init_state=init_state, objective=objective, validate=validate,
                generate=gan.generate, evaluate=gan.evaluate, progress=("dis_loss", "gen_loss", "d_real", "d_fake"))
