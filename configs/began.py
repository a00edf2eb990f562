"""BEGAN: Boundary Equilibrium GAN (Berthelot, Schumm, Metz 2017).

  python -m genjax.main --config=configs/began.py --workdir=runs/began                   # offline digits, CPU minutes
  python -m genjax.main --config=configs/began.py:fashion --workdir=runs/began_fashion   # Fashion-MNIST, one core
  python -m genjax.main --config=configs/began.py:celeba64 --workdir=runs/began_celeba64
  python -m genjax.main --config=configs/began.py:celeba128 --workdir=runs/began_celeba128
  python -m genjax.main --config=configs/began.py:cifar10 --workdir=runs/began_cifar10

The paper presets follow the paper: n = 64 filters (128 at 128×128, see below), h = z = 64, batch 16,
Adam β = (0.5, 0.999) at 8e-5 halved every 100k steps down to 2e-5, γ = 0.5, λ_k = 1e-3, k₀ = 0.
"""

import ml_collections

from genjax import config_lib

NETS = ("generator", "discriminator")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.base_config("began")
  config.batch_size = 16
  config.model = ml_collections.ConfigDict(dict(
      filters=64,          # n: channels of every decoder conv; the encoder's grow n, 2n, 3n, ...
      code_dim=64,         # h: the discriminator's bottleneck
      latent_dim=64,       # z ~ U(−1, 1)
      skip=False,          # the paper's optional skip connections from the 8×8 projection
      width=1.0,           # multiplies the filter count
  ))
  config.loss = ml_collections.ConfigDict(dict(
      gamma=0.5,           # diversity ratio γ = E L(G(z)) / E L(x)
      lambda_k=1e-3,       # proportional gain of k's controller
      k_init=0.0,          # k₀
  ))
  config_lib.set_optimizers(config, NETS, "adam", lr=8e-5, b1=0.5, b2=0.999, schedule="step_halving",
                            decay_steps=100_000, end_lr=2e-5)
  return config_lib.select_preset(arg, config, PRESETS)


def small_networks(config):
  """The CPU presets' networks (n = 16 filters, h = z = 32, skips), shared with configs/atvae.py."""
  config.model.update(filters=32, width=0.5, latent_dim=32, code_dim=32, skip=True)


def _small(config):
  small_networks(config)
  # The MNIST trap (k stuck at 0, G collapsing onto one smooth image D autoencodes well): at γ = 0.5 the
  # tiny D learns the real digits faster than G can follow, k returns to 0 and stays there. A higher
  # diversity ratio and a gain matched to these small losses (L(x) ≈ 0.05, not ≈ 0.2) keep k near 0.1
  # and the samples diverse.
  config.loss.update(gamma=0.9, lambda_k=1e-2)
  config_lib.update_optimizers(config, lr=2e-4, schedule="constant")


def _digits(config):  # ≤ 8 minutes on a 2-core CPU
  _small(config)
  config.data.update(image_size=16)  # one 8→16 stage: 4× cheaper than 32×32, still clear digits
  config.train.update(num_steps=3_000, log_every=100, image_every=500, checkpoint_every=1_000)


def _fashion(config):  # ≈ 6 minutes on one core; configs/atvae.py:fashion has the same networks and budget
  _small(config)
  config.data.update(name="fashion_mnist", image_size=32)
  config.train.update(num_steps=2_000, log_every=100, image_every=500, checkpoint_every=500)


def _paper(config, **data):
  config.data.update(**data)
  # Not published: the number of steps. 300k lets the lr reach its 2e-5 floor (Khan et al. train 300k).
  config.train.update(num_steps=300_000, log_every=500, image_every=5_000, checkpoint_every=10_000)


def _celeba64(config):
  _paper(config, name="celeb_a", image_size=64, eval_split="validation")


def _celeba128(config):
  _paper(config, name="celeb_a", image_size=128, eval_split="validation")
  config.model.update(filters=128)  # the paper uses n = 64 or 128; we take 128 for the larger images


def _cifar10(config):
  _paper(config, name="cifar10", image_size=32)


PRESETS = {"": _digits, "fashion": _fashion, "celeba64": _celeba64, "celeba128": _celeba128, "cifar10": _cifar10}
