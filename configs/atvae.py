"""Adversarially trained VAE with PID equilibrium control (Khan, Hayat, Barnes, WACV 2018).

  python -m genjax.main --config=configs/atvae.py --workdir=runs/atvae                   # offline digits, CPU minutes
  python -m genjax.main --config=configs/atvae.py:fashion --workdir=runs/atvae_fashion   # Fashion-MNIST, one core
  python -m genjax.main --config=configs/atvae.py:celeba64 --workdir=runs/atvae_celeba64
  python -m genjax.main --config=configs/atvae.py:celeba128 --workdir=runs/atvae_celeba128
  python -m genjax.main --config=configs/atvae.py:cifar10 --workdir=runs/atvae_cifar10

The paper presets: BEGAN's networks for the discriminator and the VAE's decoder (the encoder is BEGAN's
encoder trunk with a μ, log σ² head), α, β, γ, η = 0.3, 0.1, 0.1, 0.5, PID gains λ1..3 = 1e-3, 1e-5,
1e-5, Adam 5e-5, 300k iterations. The ablation of the paper's table:
  --config.loss.control=p                VAE + BEGAN (BEGAN's proportional control)
  --config.loss.similarity=False         without L_s (the "LSM" column)
  --config.model.vae=False               BEGAN* (BEGAN with the PID controller, no VAE)
"""

import ml_collections

from genjax import config_lib

NETS = ("encoder", "decoder", "discriminator")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.base_config("atvae")
  config.batch_size = 16   # not published: BEGAN's batch size
  config.model = ml_collections.ConfigDict(dict(
      filters=64,          # n, BEGAN's filter count
      code_dim=64,         # h: the discriminator's bottleneck (its codes enter L_s)
      latent_dim=64,       # z of the VAE
      skip=False,          # BEGAN's skip connections in both decoders
      vae=True,            # False: no encoder, a plain generator on U(−1, 1) (BEGAN*)
      width=1.0,
  ))
  config.loss = ml_collections.ConfigDict(dict(
      alpha=0.3,           # weight of the reconstructions' energy L_v among the fakes
      beta=0.1,            # weight of the perceptual code distance L_s
      gamma=0.1,           # weight of the VAE's pixel L1 L_e
      eta=0.5,             # equilibrium ratio η (BEGAN's γ)
      kl_weight=1.0,       # weight of L_n in L_enc (1 in the paper; ours, for small data)
      lambda_1=1e-3, lambda_2=1e-5, lambda_3=1e-5,   # PID gains
      control="pid",       # "pid" (the paper) or "p" (BEGAN: λ2 = λ3 = 0)
      error="eq10",        # e_t = ηL_d − (L_g + αL_v) (eq. 10); "eq11": ηL_d − L_g + αL_v as printed
      similarity=True,     # L_s on/off
      k_init=0.0,
  ))
  # Not published: Adam's betas and the schedule; BEGAN's (0.5, 0.999), constant lr.
  config_lib.set_optimizers(config, NETS, "adam", lr=5e-5, b1=0.5, b2=0.999)
  return config_lib.select_preset(arg, config, PRESETS)


def _small(config):
  config_lib.load_module("began").small_networks(config)  # the networks of configs/began.py's CPU presets
  # As configs/began.py's CPU presets: η = 0.9 and gains ×10 keep k off 0 with these small losses.
  # A lighter KL and a heavier pixel term keep the tiny encoder from collapsing onto the prior (at the
  # paper's weights the KL falls to ≈ 0 and every reconstruction is the same blur).
  config.loss.update(eta=0.9, lambda_1=1e-2, lambda_2=1e-4, lambda_3=1e-4, kl_weight=0.03, gamma=0.3)
  config_lib.update_optimizers(config, lr=2e-4)


def _digits(config):  # ≤ 8 minutes on a 2-core CPU
  _small(config)
  config.data.update(image_size=16)  # one 8→16 stage: 4× cheaper than 32×32, still clear digits
  config.train.update(num_steps=2_000, log_every=100, image_every=500, checkpoint_every=1_000)


def _fashion(config):  # ≈ 12 minutes on one core: configs/began.py:fashion's networks and budget
  _small(config)
  config.data.update(name="fashion_mnist", image_size=32)
  config.train.update(num_steps=2_000, log_every=100, image_every=500, checkpoint_every=500)


def _paper(config, **data):
  config.data.update(**data)
  config.train.update(num_steps=300_000, log_every=500, image_every=5_000, checkpoint_every=10_000)


def _celeba64(config):
  _paper(config, name="celeb_a", image_size=64, eval_split="validation")


def _celeba128(config):
  _paper(config, name="celeb_a", image_size=128, eval_split="validation")
  config.model.update(filters=128)  # as configs/began.py:celeba128


def _cifar10(config):
  _paper(config, name="cifar10", image_size=32)


PRESETS = {"": _digits, "fashion": _fashion, "celeba64": _celeba64, "celeba128": _celeba128, "cifar10": _cifar10}
