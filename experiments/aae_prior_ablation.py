"""Wang et al. 2020, Table 3: the learned-prior AAE's three design choices, added one at a time.

  python experiments/aae_prior_ablation.py --workdir=runs/ablation \
      --extractor=classifier --extractor_path=runs/classifier                # offline digits, CPU
  python experiments/aae_prior_ablation.py --preset=cifar10 --workdir=runs/ablation_cifar10 \
      --extractor=inception --extractor_path=inception_fid.npz               # the paper's setting (TPU/GPU)

Four runs of configs/aae_prior.py:<preset>, differing only in the switches:
  AAE       Makhzani's AAE: fixed prior N(0, I), pixel reconstruction (= configs/aae.py)
  +A        learned prior: a code generator trained through an image discriminator (model.learned_prior)
  +A+B      + perceptual reconstruction in the image discriminator's features (loss.perceptual)
  +A+B+C    + the decoder also updated in the prior phase (loss.decoder_in_prior_phase): the full model
Paper (CIFAR-10, 64-D code, Inception Score): each switch improves on the row above, +A+B+C best.
The default metrics here are FID, IS and KID (IS is the paper's); every flag of
experiments/compare_methods.py applies (--steps, --num_samples, --config.<key>=<value>, ...).
Writes comparison.md / .png / .json in --workdir.
"""

import os

from absl import flags

import compare_methods  # experiments/ is on sys.path when this runs as a script
from compare_methods import Run

CONFIG = os.path.join(compare_methods.CONFIGS, "aae_prior.py")
SWITCHES = ("model.learned_prior", "loss.perceptual", "loss.decoder_in_prior_phase")  # A, B, C
VARIANTS = {  # Table 3's rows: (A, B, C)
    "AAE": (False, False, False),
    "+A": (True, False, False),
    "+A+B": (True, True, False),
    "+A+B+C": (True, True, True),
}
METRICS = ("fid", "is", "kid")
TITLE = "Wang et al. Table 3 ablation: samples after {steps} steps on {dataset}"


def runs(preset: str = "") -> list[Run]:
  """The four variants as Runs of configs/aae_prior.py:<preset>."""
  return [Run(name, f"{CONFIG}:{preset}", tuple(zip(SWITCHES, switches))) for name, switches in VARIANTS.items()]


def ablation(workdir: str, preset: str = "", **kwargs):
  """compare() of the four variants (kwargs: as compare's); the rows, in Table 3's order."""
  extra = kwargs.pop("overrides", ())
  overrides = [("eval.metrics", METRICS)] + (list(extra.items()) if isinstance(extra, dict) else list(extra))
  kwargs.setdefault("title", TITLE)
  return compare_methods.compare(runs(preset), workdir, overrides=overrides, **kwargs)


if __name__ == "__main__":
  compare_methods.define_flags()
  flags.DEFINE_string("preset", "", "Preset of configs/aae_prior.py: '' (digits), mnist, svhn, cifar10, ...")
  compare_methods.run_cli(lambda: runs(flags.FLAGS.preset), defaults=[("eval.metrics", METRICS)], title=TITLE)
