"""Discriminative regularization of a VAE (Lamb, Dumoulin & Courville 2016).

Train the classifier first (configs/classifier.py, same dataset and image size), then the VAE:

  python -m genjax.main --config=configs/classifier.py --workdir=runs/classifier            # offline digits
  python -m genjax.main --config=configs/discreg.py --workdir=runs/discreg
  python -m genjax.main --config=configs/classifier.py:fashion --workdir=runs/classifier_fashion
  python -m genjax.main --config=configs/discreg.py:fashion --workdir=runs/discreg_fashion
  python -m genjax.main --config=configs/discreg.py:svhn --workdir=runs/discreg_svhn
  python -m genjax.main --config=configs/discreg.py:cifar10 --workdir=runs/discreg_cifar10
  python -m genjax.main --config=configs/discreg.py:celeba64 --workdir=runs/discreg_celeba64

Each preset reads its classifier from `discreg.classifier_workdir` (runs/classifier, runs/classifier_svhn,
..., trained by `--config=configs/classifier.py[:svhn|:cifar10|:celeba64]`); add
`--config.discreg.train_classifier=True` to train it there first when it is missing.
`--config.discreg.layers='("conv2",)'` picks the feature terms; `'()'` gives the plain VAE baseline
with a learned per-pixel σ. `--config.eval.metrics='("recon","nll")'` adds the reconstruction error and
the importance-sampled NLL of the pixel model (the reference's compute_nll_approximation).
Paper presets: the reference VAE (latent 500, Adam 2e-3, 75 epochs; batch 96 instead of 100 so that it
shards over 8 devices). The reference's SVHN run regularized with an
ImageNet VGG-19; offline, every preset here uses the Lamb et al. classifier trained on the same data.
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.base_config("discreg")
  config.batch_size = 96                          # reference: 100
  config.model = ml_collections.ConfigDict(dict(
      latent_dim=500,
      encoder_channels=(32, 64, 128, 256),        # per stage: 3×3, 3×3, 2×2/2 convs; the decoder mirrors
      hidden=1000,                                # the MLP between the convs and the code, both ways
      width=1.0,                                  # multiplies every channel count and the hidden width
  ))
  config.discreg = ml_collections.ConfigDict(dict(
      classifier_workdir="runs/classifier",       # a run of configs/classifier.py on the same data
      classifier_config="configs/classifier.py",  # the config (and preset) that trains it
      train_classifier=False,                     # True: train it into classifier_workdir when missing
      layers=("conv2", "conv4", "conv6"),         # classifier BN outputs of the strided convs
  ))
  config.optim.vae = config_lib.optimizer_config("adam", lr=2e-3, b1=0.9)   # Blocks' Adam defaults
  return config_lib.select_preset(arg, config, PRESETS)


def _digits(config):  # 2.8–3.8 steps/s on a shared 2-core CPU: 5–8 minutes, after the classifier's 2
  config.batch_size = 64
  # Latent 8: with 16 the reconstructions were sharp but samples were mostly 9s, 5s and 3s (KL ≈ 80 nats);
  # with 32, blurrier mixtures.
  config.model.update(latent_dim=8, width=0.25)
  config.train.update(num_steps=1_200, log_every=100, image_every=400, checkpoint_every=400)


def _fashion(config):  # ≤ 15 minutes on one core, after configs/classifier.py:fashion
  config.batch_size = 64
  config.data.update(name="fashion_mnist", image_size=32)
  config.model.update(latent_dim=32, width=0.25)  # the code size of the other Fashion-MNIST VAEs
  config.discreg.update(classifier_workdir="runs/classifier_fashion", classifier_config="configs/classifier.py:fashion")
  config.train.update(num_steps=1_500, log_every=100, image_every=500, checkpoint_every=500)


def _paper(config, preset, train_examples, **data):
  config.data.update(**data)
  config.discreg.update(classifier_workdir=f"runs/classifier_{preset}",
                        classifier_config=f"configs/classifier.py:{preset}")
  epochs = 75
  config.train.update(num_steps=epochs * train_examples // config.batch_size, log_every=200,
                      image_every=2_000, checkpoint_every=5_000)


def _svhn(config):
  _paper(config, "svhn", 73_257, name="svhn_cropped", image_size=32)


def _cifar10(config):
  _paper(config, "cifar10", 50_000, name="cifar10", image_size=32)


def _celeba64(config):
  _paper(config, "celeba64", 162_770, name="celeb_a", image_size=64, eval_split="validation")


PRESETS = {"": _digits, "fashion": _fashion, "svhn": _svhn, "cifar10": _cifar10, "celeba64": _celeba64}
