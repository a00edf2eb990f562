"""Adversarial autoencoder (Makhzani et al. 2016): the baseline of the learned-prior AAE.

  python -m genjax.main --config=configs/aae.py --workdir=runs/aae                    # offline digits, CPU minutes
  python -m genjax.main --config=configs/aae.py:fashion --workdir=runs/aae_fashion    # Fashion-MNIST, one core
  python -m genjax.main --config=configs/aae.py:mnist --workdir=runs/aae_mnist
  python -m genjax.main --config=configs/aae.py:cifar10 --workdir=runs/aae_cifar10

configs/aae_prior.py's preset of the same name with Wang et al.'s three switches off (Table 3's "AAE"
row): no code generator or image discriminator, pixel reconstruction, and a fixed prior p(z) matched by
the code discriminator. Choose the prior with `--config.model.prior`:
  gaussian               N(0, prior_scale²·I) (one public port uses prior_scale=5)
  mixture                prior_components Gaussians (std prior_component_std) on a circle of radius
                         prior_scale in the first two code dims (Makhzani Fig. 4)
  categorical_gaussian   [one-hot of prior_components categories, N(0, prior_scale²·I)]; the encoder's
                         first prior_components units become a softmax (Makhzani §6, clustering)
Paper baselines (CIFAR-10, 64-D code): IS 2.15 (Wang Table 1), 6.37 (results page).
"""

import os

import ml_collections

from genjax import config_lib

AAE_PRIOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aae_prior.py")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.load_config(f"{AAE_PRIOR}:{arg if arg in PRESETS else ''}")  # an unknown arg: refused below
  config.unlock()
  config.method = "aae"
  return config_lib.select_preset(arg, config, PRESETS)


def _switches_off(config):
  config.model.learned_prior = False            # A off: p(z) is fixed
  config.loss.perceptual = False                # B off: pixel reconstruction
  config.loss.decoder_in_prior_phase = False    # C off (there is no prior phase)
  for slot in ("code_generator", "image_discriminator"):  # networks of the learned prior only
    del config.optim[slot]


PRESETS = {preset: _switches_off for preset in ("", "fashion", "mnist", "cifar10")}  # on aae_prior's preset of that name
