"""DCGAN (Radford, Metz, Chintala 2016): the all-convolutional BN GAN baseline.

  python -m genjax.main --config=configs/dcgan.py --workdir=runs/dcgan                    # offline digits, CPU minutes
  python -m genjax.main --config=configs/dcgan.py:fashion --workdir=runs/dcgan_fashion    # Fashion-MNIST, one core
  python -m genjax.main --config=configs/dcgan.py:cifar10 --workdir=runs/dcgan_cifar10
  python -m genjax.main --config=configs/dcgan.py:celeba64 --workdir=runs/dcgan_celeba64

Paper settings: z ~ N(0, I) of 100 dims, Adam lr 2e-4 with β₁ = 0.5, batch 128, weights from
N(0, 0.02); generator 4×4×1024 → 512 → 256 → 128 → 3 at 64×64 (one stride-2 stage fewer at 32×32),
discriminator mirrored, LeakyReLU 0.2, no BN on its first conv. 5×5 kernels as in the authors' code.
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.base_config("dcgan")
  config.model = ml_collections.ConfigDict(dict(
      latent_dim=100,
      generator_channels=(512, 256, 128),    # [0]: the projected 4×4 map; then one stride-2 stage each
      generator_output_stride=2,             # the output layer is a stride-2 transposed conv to 3 maps
      discriminator_channels=(128, 256, 512),  # stride-2 convs 32 → 16 → 8 → 4, then the FC logit
      discriminator_batch_norm_first=False,  # no BN on the discriminator's first conv
      kernel_size=5,
      width=1.0,                             # multiplies every channel count above
  ))
  config_lib.set_optimizers(config, ("generator", "discriminator"), "adam", lr=2e-4, b1=0.5)
  return config_lib.select_preset(arg, config, PRESETS)


def _digits(config):  # a few minutes on a 2-core CPU
  config.model.update(width=0.125)
  config.train.update(num_steps=2_000, log_every=100, image_every=500, checkpoint_every=500)


def _fashion(config):  # ≈ 10 minutes on one core: configs/dfm.py:fashion's G and D, without the denoiser
  config.data.update(name="fashion_mnist", image_size=32)
  config.model.update(generator_channels=(128, 64, 32, 16), generator_output_stride=1,
                      discriminator_channels=(32, 64, 128), discriminator_batch_norm_first=True)
  config_lib.update_optimizers(config, lr=1e-4)  # DFM's Adam
  config.train.update(num_steps=2_000, log_every=100, image_every=500, checkpoint_every=500)


def _paper(config, **data):
  config.data.update(**data)
  config.batch_size = 128
  # Training length is not published for these datasets; ~40 epochs of CelebA, ~330 of CIFAR-10.
  config.train.update(num_steps=50_000 if data["name"] == "celeb_a" else 130_000, log_every=200,
                      image_every=2_000, checkpoint_every=5_000)


def _cifar10(config):
  _paper(config, name="cifar10", image_size=32)


def _celeba64(config):
  _paper(config, name="celeb_a", image_size=64, eval_split="validation")
  config.model.update(generator_channels=(1024, 512, 256, 128),
                      discriminator_channels=(128, 256, 512, 1024))


PRESETS = {"": _digits, "fashion": _fashion, "cifar10": _cifar10, "celeba64": _celeba64}
