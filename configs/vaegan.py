"""VAE/GAN: autoencoding beyond pixels (Larsen et al. 2016).

  python -m genjax.main --config=configs/vaegan.py --workdir=runs/vaegan            # offline digits, CPU minutes
  python -m genjax.main --config=configs/vaegan.py:fashion --workdir=runs/vaegan_fashion   # one CPU core
  python -m genjax.main --config=configs/vaegan.py:mnist --workdir=runs/vaegan_mnist
  python -m genjax.main --config=configs/vaegan.py:cifar10 --workdir=runs/vaegan_cifar10
  python -m genjax.main --config=configs/vaegan.py:celeba64 --workdir=runs/vaegan_celeba64

The paper presets use the reference code's settings: RMSProp, batch 64, γ = 1e-6 (CelebA) / 1e-5
(CIFAR), latent 128 (256 on CIFAR), equilibrium gating 0.68 ± 0.35, feature layer = 4th conv pre-BN.
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.base_config("vaegan")
  config.model = ml_collections.ConfigDict(dict(
      latent_dim=128,
      encoder_channels=(64, 128, 256), encoder_hidden=1024,
      decoder_channels=(192, 128, 32),               # 32×32 decoder; celeba64: (256, 128, 32)
      discriminator_channels=(32, 128, 256, 256), discriminator_hidden=512,
      feature_layer=4,                               # Dis_l: output of the 4th conv, before its BN
      width=1.0,                                     # multiplies every channel count above
  ))
  config.loss = ml_collections.ConfigDict(dict(
      gamma=1e-5,            # weight of L_llike against L_GAN in the decoder's loss
      kl_weight=1.0,
      recon_in_gan=True,     # reconstructions are fakes of the GAN too (Larsen eq. 6 and aegan.py); False: prior samples only
      gating=True,           # equilibrium gating of the reference code
      equilibrium=0.68, margin=0.35,
  ))
  # Reference code: RMSProp; its lr is 3e-4 in the maintained PyTorch ports, decayed per epoch.
  config_lib.set_optimizers(config, ("encoder", "decoder", "discriminator"), "rmsprop", lr=3e-4, decay=0.9)
  return config_lib.select_preset(arg, config, PRESETS)


def _digits(config):  # ≤ 10 minutes on a 2-core CPU
  config.model.update(latent_dim=32, width=0.125)
  # Small images, few features: reconstruction needs more weight. Showing reconstructions to the GAN
  # (the paper's equation, on in every preset) is what keeps these tiny networks from collapsing (README).
  config.loss.update(gamma=1e-2)
  config_lib.update_optimizers(config, name="adam", lr=3e-4, b1=0.5)
  config.train.update(num_steps=2_000, log_every=100, image_every=500, checkpoint_every=500)


def _fashion(config):  # ≤ 15 minutes on one core: configs/vae.py:fashion's networks and budget
  config.data.update(name="fashion_mnist", image_size=32)
  config.model.update(latent_dim=32, width=0.25)
  config.loss.update(gamma=1e-2)  # as the digits preset: these small features need more weight
  config_lib.update_optimizers(config, name="adam", lr=3e-4, b1=0.5)
  config.train.update(num_steps=1_500, log_every=100, image_every=500, checkpoint_every=500)


def _paper(config, train_examples, **data):
  config.data.update(**data)
  config_lib.update_optimizers(config, schedule="exponential", decay_steps=train_examples // config.batch_size,
                               decay_rate=0.75, end_lr=1e-5)  # ×0.75 per epoch, as the PyTorch ports
  config.train.update(num_steps=100_000, log_every=200, image_every=2_000, checkpoint_every=5_000)


def _mnist(config):
  _paper(config, 60_000, name="mnist", image_size=32)


def _cifar10(config):
  _paper(config, 50_000, name="cifar10", image_size=32)
  config.model.update(latent_dim=256)


def _celeba64(config):
  _paper(config, 162_770, name="celeb_a", image_size=64, eval_split="validation")
  config.model.update(decoder_channels=(256, 128, 32))
  config.loss.update(gamma=1e-6)


PRESETS = {"": _digits, "fashion": _fashion, "mnist": _mnist, "cifar10": _cifar10, "celeba64": _celeba64}
