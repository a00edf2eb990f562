"""Adversarial autoencoder with a learned prior (Wang, Peng, Ko 2020).

  python -m genjax.main --config=configs/aae_prior.py --workdir=runs/aae_prior         # offline digits, CPU minutes
  python -m genjax.main --config=configs/aae_prior.py:fashion --workdir=runs/aae_prior_fashion   # one core
  python -m genjax.main --config=configs/aae_prior.py:supervised_digits --workdir=runs/aae_prior_sup_digits
  python -m genjax.main --config=configs/aae_prior.py:unsupervised_digits --workdir=runs/aae_prior_unsup_digits
  python -m genjax.main --config=configs/aae_prior.py:mnist --workdir=runs/aae_prior_mnist
  python -m genjax.main --config=configs/aae_prior.py:svhn --workdir=runs/aae_prior_svhn
  python -m genjax.main --config=configs/aae_prior.py:cifar10 --workdir=runs/aae_prior_cifar10
  python -m genjax.main --config=configs/aae_prior.py:cifar10_2000d --workdir=runs/aae_prior_cifar10_2000d
  python -m genjax.main --config=configs/aae_prior.py:supervised_cifar10 --workdir=runs/aae_prior_sup_cifar10
  python -m genjax.main --config=configs/aae_prior.py:unsupervised_cifar10 --workdir=runs/aae_prior_unsup_cifar10

Every preset has the paper's full model (Table 3: A learned prior + B perceptual loss + C decoder
updated in both phases); switch them off to run the ablation, e.g.
`--config.loss.decoder_in_prior_phase=False --config.loss.perceptual=False`. With
`--config.model.learned_prior=False` as well it is Makhzani's AAE (configs/aae.py: the same presets with
all three off).
The paper reports Inception Scores on CIFAR-10 (64-D code) of 6.52 (Table 1), 7.31 generation,
6.52 supervised and 6.02 unsupervised (results page; AAE baselines 6.37, 6.2, 5.73).

Conditional presets write a label × noise grid (label_grid.png). Text-to-image (200-D sentence
embeddings, 100-D noise) generalises to any condition vector: on a dataset whose examples carry a
float feature "condition", set `--config.model.condition=vector --config.model.condition_dim=200
--config.model.noise_dim=100` (a dataset without that feature, or with another size, stops the run at
start with one line naming it). generate(state, rng, num, condition) takes the vectors; without them it
samples with those of the latest training batch, as samples.png and condition_grid.png do. No dataset
registered here carries one (oxford_flowers102 has no captions in TFDS), so there is no preset.

Not published: optimisers, learning rates, batch size, step counts, noise size of the unconditional
CG. Chosen: Adam 2e-4, β₁ 0.5 (the DCGAN/InfoGAN setting) for all five networks, batch 64, noise =
code size.
"""

import ml_collections

from genjax import config_lib

SLOTS = ("encoder", "decoder", "code_generator", "image_discriminator", "code_discriminator")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """The paper's model on 32×32 images, then preset `arg`; configs/aae.py builds on it."""
  config = config_lib.base_config("aae_prior")
  config.model = ml_collections.ConfigDict(dict(
      latent_dim=64,                 # code size (Table 1: 64; cifar10_2000d: 2000)
      noise_dim=64,                  # N(0, I) input of the code generator (supervised 54, unsupervised 90)
      learned_prior=True,            # switch A: the code generator; False = a fixed prior (Makhzani)
      condition="none",              # "none" | "label" (supervised) | "categorical" (unsupervised) | "vector"
      num_categories=10,             # "categorical": K of s ~ Categorical(K)
      condition_dim=0,               # "vector": size of batch["condition"]
      prior="gaussian",              # fixed prior (learned_prior=False): gaussian | mixture | categorical_gaussian
      prior_scale=1.0,               # its std (gaussian parts) or the radius of the mixture's means
      prior_components=10,           # mixture components or categories
      prior_component_std=0.5,       # std of each mixture component
      encoder_stem=64, encoder_channels=(64, 128, 256, 512),
      decoder_stem=512, decoder_channels=(256, 128, 64),
      image_discriminator_channels=(64, 128, 256), image_discriminator_hidden=1000,
      code_discriminator_hidden=(1000, 500, 200),
      width=1.0,                     # multiplies every channel count and hidden width above
  ))
  config.loss = ml_collections.ConfigDict(dict(
      perceptual=True,               # switch B: reconstruct D_I's last conv features; False = pixels
      decoder_in_prior_phase=True,   # switch C: the decoder also fools D_I in the prior phase
      reconstruction_weight=1.0,     # w_rec of ‖F(x̃) − F(x)‖² / dim F (not published)
      adversarial_weight=1.0,        # w_adv of the encoder's −log D_C(enc x) (not published)
      info_weight=1.0,               # λ of InfoGAN's L_I for label/categorical conditions (InfoGAN: 1)
      q_on_real=False,               # label condition: Q also classifies real images (AC-GAN; not in the paper)
  ))
  config_lib.set_optimizers(config, SLOTS, "adam", lr=2e-4, b1=0.5)
  return config_lib.select_preset(arg, config, PRESETS)


def _digits(config):  # ≤ 8 minutes on a 2-core CPU (batch 32: 2.2× the steps/s of batch 64)
  config.batch_size = 32
  config.model.update(latent_dim=32, noise_dim=32, width=0.125)
  # At 2e-4 these tiny networks let D_I win (D_I(fake) 0.21 after 2,000 steps) and samples blur into
  # a few shapes; 1e-4 keeps the image GAN near equilibrium and gives diverse digits.
  config.optim.image_discriminator.lr = 1e-4
  config.train.update(num_steps=2_500, log_every=100, image_every=500, checkpoint_every=500)


def _fashion(config):  # ≤ 15 minutes on one core: configs/vae.py:fashion's code size and budget
  config.data.update(name="fashion_mnist", image_size=32)
  config.model.update(latent_dim=32, noise_dim=32, width=0.25)
  config.optim.image_discriminator.lr = 1e-4  # as the digits preset: keeps the image GAN near equilibrium
  config.train.update(num_steps=1_500, log_every=100, image_every=500, checkpoint_every=500)


def _supervised(config, num_classes=10):
  """10-D one-hot + 54-D noise → 64-D code; D_C sees the label; InfoGAN's L_I."""
  config.model.update(condition="label", latent_dim=64, noise_dim=64 - num_classes)


def _unsupervised(config):
  """s ~ Categorical(10), 10-D + 90-D noise; the code is as large as the input, as in the supervised
  case (the paper gives the inputs only); D_C label-agnostic; InfoGAN's L_I."""
  config.model.update(condition="categorical", num_categories=10, latent_dim=100, noise_dim=90)


def _supervised_digits(config):
  _digits(config)
  _supervised(config)
  # With L_I alone, 2,500 steps give label-grid rows that are each one digit, but not the row's (row 0
  # drew 2s, row 2 0s): L_I makes s consistent, and D_C ties s to the class only slowly. Q also
  # classifying real digits (AC-GAN's term, not in Wang et al.) ties row y to digit y.
  config.loss.q_on_real = True


def _unsupervised_digits(config):
  _digits(config)
  _unsupervised(config)


def _paper(config, name):
  config.data.update(name=name, image_size=32)
  config.train.update(num_steps=100_000, log_every=200, image_every=2_000, checkpoint_every=5_000)


def _mnist(config):
  _paper(config, "mnist")


def _svhn(config):
  _paper(config, "svhn_cropped")


def _cifar10(config):
  _paper(config, "cifar10")


def _cifar10_2000d(config):  # Table 2's large code
  _paper(config, "cifar10")
  config.model.update(latent_dim=2000, noise_dim=2000)


def _supervised_cifar10(config):
  _paper(config, "cifar10")
  _supervised(config)


def _unsupervised_cifar10(config):
  _paper(config, "cifar10")
  _unsupervised(config)


PRESETS = {
    "": _digits,
    "fashion": _fashion,
    "supervised_digits": _supervised_digits,
    "unsupervised_digits": _unsupervised_digits,
    "mnist": _mnist,
    "svhn": _svhn,
    "cifar10": _cifar10,
    "cifar10_2000d": _cifar10_2000d,
    "supervised_cifar10": _supervised_cifar10,
    "unsupervised_cifar10": _unsupervised_cifar10,
}
