"""Denoising feature matching (Warde-Farley & Bengio 2017): a GAN guided by a denoiser of D's features.

  python -m genjax.main --config=configs/dfm.py --workdir=runs/dfm                      # offline digits, CPU minutes
  python -m genjax.main --config=configs/dfm.py:fashion --workdir=runs/dfm_fashion      # Fashion-MNIST, one core
  python -m genjax.main --config=configs/dfm.py:cifar10 --workdir=runs/dfm_cifar10
  python -m genjax.main --config=configs/dfm.py:stl10 --workdir=runs/dfm_stl10
  python -m genjax.main --config=configs/dfm.py:imagenet32 --workdir=runs/dfm_imagenet32

Paper (REFERENCES.md §5): λ_denoise = 0.03 / n_h, λ_adv = 1, corruption N(0, σ² = 1), Adam lr 1e-4 with
β₁ = 0.5 for all three networks, BN in D, G and every denoiser layer but the output; D 32 → 64 → 128
maps down to 4×4 (n_h = 2048 at 32×32), G 128 → 64 → 32 → 16 → 3 maps. Not published, chosen here:
kernel size 5 and z of 100 dims (DCGAN's), batch 64, a denoiser of 2 hidden layers of 1024 (the
reference ports use 2-10), and the training lengths below. Paper IS: CIFAR-10 7.72, STL-10 8.51,
ImageNet 32×32 9.18. STL-10 trains on its 100k unlabelled images at 48×48 (6×6×128 features).
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.base_config("dfm")
  config.model = ml_collections.ConfigDict(dict(
      latent_dim=100,
      generator_channels=(128, 64, 32, 16),  # 4×4×128 → 8×8×64 → 16×16×32 → 32×32×16 → 3 maps
      generator_output_stride=1,             # ... so the output layer keeps the size
      discriminator_channels=(32, 64, 128),  # stride-2 convs down to 4×4×128 = φ, then the FC logit
      discriminator_batch_norm_first=True,   # BN on every layer of D
      kernel_size=5,
      denoiser_hidden=(1024, 1024),          # fully connected, BN + ReLU; linear output of φ's size
      width=1.0,                             # multiplies every channel count above
  ))
  config.loss = ml_collections.ConfigDict(dict(
      denoise_weight=0.03,   # λ_denoise·n_h: the generator's denoising term is weighted 0.03 / n_h
      adv_weight=1.0,        # λ_adv
      noise_std=1.0,         # σ of the denoiser's additive Gaussian corruption
  ))
  config_lib.set_optimizers(config, ("generator", "discriminator", "denoiser"), "adam", lr=1e-4, b1=0.5)
  return config_lib.select_preset(arg, config, PRESETS)


def _digits(config):  # a few minutes on a 2-core CPU
  config.model.update(width=0.5, denoiser_hidden=(512,))
  # On 1,500 digits D soon wins; at 0.03 / n_h the denoising term is ~1e-3 of L_G and changes nothing.
  # At 1 / n_h it is comparable to −log D(G(z)) and gave more digit-like samples (README, Results).
  config.loss.update(denoise_weight=1.0)
  config.train.update(num_steps=2_000, log_every=100, image_every=500, checkpoint_every=500)


def _fashion(config):  # ≈ 10 minutes on one core: the author's G and D at full width
  config.data.update(name="fashion_mnist", image_size=32)
  config.loss.update(denoise_weight=1.0)  # as the digits preset: at 0.03 / n_h the term is ~1e-3 of L_G
  config.train.update(num_steps=2_000, log_every=100, image_every=500, checkpoint_every=500)


def _paper(config, **data):
  config.data.update(**data)
  config.train.update(num_steps=200_000, log_every=200, image_every=2_000, checkpoint_every=5_000)


def _cifar10(config):
  _paper(config, name="cifar10", image_size=32)


def _stl10(config):  # the registry's train split for stl10 is the unlabelled one
  _paper(config, name="stl10", image_size=48)


def _imagenet32(config):
  _paper(config, name="imagenet32", image_size=32)


PRESETS = {"": _digits, "fashion": _fashion, "cifar10": _cifar10, "stl10": _stl10, "imagenet32": _imagenet32}
