"""VAE with a VampPrior (Tomczak & Welling 2018), the learned-prior baseline of Wang et al. 2020.

  python -m genjax.main --config=configs/vampprior.py --workdir=runs/vampprior           # offline digits, CPU minutes
  python -m genjax.main --config=configs/vampprior.py:fashion --workdir=runs/vampprior_fashion   # one core
  python -m genjax.main --config=configs/vampprior.py:mnist --workdir=runs/vampprior_mnist
  python -m genjax.main --config=configs/vampprior.py:cifar10 --workdir=runs/vampprior_cifar10

Networks, likelihood and optimizer are those of configs/vae.py (Larsen encoder/decoder, learned pixel
log σ), so the two differ only in the prior. Paper presets: K = 500 pseudo-inputs, initialised
N(0.05, 0.01) on [0, 1] (the reference code's default; here on [-1, 1]: −0.9 ± 0.02), Adam lr 5e-4;
latent 40 on MNIST (T&W) and 64 on CIFAR-10 (Wang et al.'s Table 1 code size).
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.base_config("vampprior")
  config.model = ml_collections.ConfigDict(dict(
      latent_dim=128,
      encoder_channels=(64, 128, 256), encoder_hidden=1024,
      decoder_channels=(192, 128, 32),   # the 32×32 decoder
      width=1.0,                         # multiplies every channel count above
      num_pseudo_inputs=500,             # K (T&W: 500)
      pseudo_init_mean=-0.9,             # u_k ~ N(mean, std²) before hardtanh: T&W's 0.05 ± 0.01 on [0, 1]
      pseudo_init_std=0.02,
  ))
  config.loss = ml_collections.ConfigDict(dict(
      beta=1.0,           # KL weight after warm-up (1 = the ELBO)
      warmup_steps=0,     # β ramps linearly from 0 over these steps (T&W: 100 epochs); 0 = off
      learn_sigma=True,   # one learned pixel log σ shared by all pixels; False keeps log_sigma fixed
      log_sigma=0.0,      # its initial (or fixed) value
  ))
  config.optim.vae = config_lib.optimizer_config("adam", lr=5e-4, b1=0.9)  # T&W: Adam, lr 5e-4
  return config_lib.select_preset(arg, config, PRESETS)


def _digits(config):  # ≤ 10 minutes on a 2-core CPU
  config.model.update(latent_dim=32, width=0.125, num_pseudo_inputs=50)
  config.optim.vae.lr = 1e-3
  config.train.update(num_steps=4_000, log_every=100, image_every=500, checkpoint_every=1_000)


def _fashion(config):  # ≤ 15 minutes on one core: configs/vae.py:fashion's networks and budget
  config.data.update(name="fashion_mnist", image_size=32)
  config.model.update(latent_dim=32, width=0.25)  # K = 500 pseudo-inputs (T&W)
  config.loss.warmup_steps = 500  # a third of the run (T&W: 100 epochs)
  config.train.update(num_steps=1_500, log_every=100, image_every=500, checkpoint_every=500)


def _mnist(config):
  config.data.update(name="mnist", image_size=32)
  config.model.update(latent_dim=40)
  # T&W warm up over 100 of up to 2,000 epochs; not feasible in our 50k steps (≈ 53 epochs at batch
  # 64): we choose 10k steps.
  config.loss.warmup_steps = 10_000
  config.train.update(num_steps=50_000, log_every=200, image_every=2_000, checkpoint_every=5_000)


def _cifar10(config):
  config.data.update(name="cifar10", image_size=32)
  config.model.update(latent_dim=64)
  config.loss.warmup_steps = 10_000  # not published for CIFAR-10; as mnist
  config.train.update(num_steps=100_000, log_every=200, image_every=2_000, checkpoint_every=5_000)


PRESETS = {"": _digits, "fashion": _fashion, "mnist": _mnist, "cifar10": _cifar10}
