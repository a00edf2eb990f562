"""Variational autoencoder (Kingma & Welling 2014) with the Larsen et al. 2016 encoder/decoder.

  python -m genjax.main --config=configs/vae.py --workdir=runs/vae              # offline digits, CPU minutes
  python -m genjax.main --config=configs/vae.py:fashion --workdir=runs/vae_fashion   # Fashion-MNIST, one CPU core
  python -m genjax.main --config=configs/vae.py:mnist --workdir=runs/vae_mnist
  python -m genjax.main --config=configs/vae.py:cifar10 --workdir=runs/vae_cifar10
  python -m genjax.main --config=configs/vae.py:celeba64 --workdir=runs/vae_celeba64

Presets "mnist", "cifar10", "celeba64" are the VAE baseline of Larsen et al. at paper width (GPU/TPU).
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.base_config("vae")
  config.model = ml_collections.ConfigDict(dict(
      latent_dim=128,
      encoder_channels=(64, 128, 256), encoder_hidden=1024,
      decoder_channels=(192, 128, 32),   # the 32×32 decoder; celeba64 uses (256, 128, 32)
      width=1.0,                         # multiplies every channel count above
  ))
  config.loss = ml_collections.ConfigDict(dict(
      beta=1.0,           # KL weight (1 = the ELBO)
      learn_sigma=True,   # one learned pixel log σ shared by all pixels; False keeps log_sigma fixed
      log_sigma=0.0,      # its initial (or fixed) value
  ))
  config.optim.vae = config_lib.optimizer_config("adam", lr=1e-3, b1=0.9)
  return config_lib.select_preset(arg, config, PRESETS)


def _digits(config):  # ≤ 10 minutes on a 2-core CPU
  config.model.update(latent_dim=32, width=0.125)
  config.train.update(num_steps=4_000, log_every=100, image_every=500, checkpoint_every=1_000)


def _fashion(config):  # ≤ 15 minutes on one core; the budget of every Fashion-MNIST VAE/AAE-family preset
  config.data.update(name="fashion_mnist", image_size=32)
  config.model.update(latent_dim=32, width=0.25)
  config.train.update(num_steps=1_500, log_every=100, image_every=500, checkpoint_every=500)


def _mnist(config):
  config.data.update(name="mnist", image_size=32)
  config.train.update(num_steps=50_000, log_every=200, image_every=2_000, checkpoint_every=5_000)


def _cifar10(config):
  config.data.update(name="cifar10", image_size=32)
  config.model.update(latent_dim=256)
  config.train.update(num_steps=100_000, log_every=200, image_every=2_000, checkpoint_every=5_000)


def _celeba64(config):
  config.data.update(name="celeb_a", image_size=64, eval_split="validation")
  config.model.update(decoder_channels=(256, 128, 32))
  config.train.update(num_steps=100_000, log_every=200, image_every=2_000, checkpoint_every=5_000)


PRESETS = {"": _digits, "fashion": _fashion, "mnist": _mnist, "cifar10": _cifar10, "celeba64": _celeba64}
