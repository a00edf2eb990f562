"""The reference classifier of Lamb, Dumoulin & Courville 2016, trained on a dataset's labels.

  python -m genjax.main --config=configs/classifier.py --workdir=runs/classifier                  # offline digits
  python -m genjax.main --config=configs/classifier.py:fashion --workdir=runs/classifier_fashion  # ≥ 90 % test accuracy
  python -m genjax.main --config=configs/classifier.py:fashion_mlp --workdir=runs/classifier_fashion_mlp
  python -m genjax.main --config=configs/classifier.py:mnist --workdir=runs/classifier_mnist
  python -m genjax.main --config=configs/classifier.py:svhn --workdir=runs/classifier_svhn
  python -m genjax.main --config=configs/classifier.py:cifar10 --workdir=runs/classifier_cifar10
  python -m genjax.main --config=configs/classifier.py:celeba64 --workdir=runs/classifier_celeba64

Classes (digits, mnist, svhn_cropped, cifar10) train with softmax cross-entropy; CelebA's 40 attributes
with a binary cross-entropy each. Test accuracy (CelebA: mean attribute accuracy) is written to
metrics.json["eval"]. The discriminative regularizer (configs/discreg.py) loads the trained network from
its workdir. Reference: Adam 2e-3, batch 100, 50 epochs; batches here are 96 so that they shard over 8
devices. Expected: digits ≈ 96 % test accuracy after 500 steps (a few CPU minutes).
"""

import ml_collections

from genjax import config_lib


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = config_lib.base_config("classifier")
  config.batch_size = 96                 # reference: 100
  config.model = ml_collections.ConfigDict(dict(
      arch="lamb",        # Lamb et al.'s convnet; "mlp": two hidden layers, a second extractor for evaluation
      channels=(32, 32, 64, 64, 128, 128), hidden=1000,
      padding="VALID",    # the reference's unpadded convs (needs ≥ 32×32; at 32 conv6 is 1×1)
      dropout=0.5,
      width=1.0,          # multiplies every channel count and the hidden width
  ))
  config.optim.classifier = config_lib.optimizer_config("adam", lr=2e-3, b1=0.9)
  return config_lib.select_preset(arg, config, PRESETS)


def _small_images(config):
  # At 32×32 the unpadded convs leave feature maps of 14, 5 and 1 pixels; SAME padding keeps 16, 8 and 4
  # so that the regularizer's deepest term still has a spatial layout.
  config.model.padding = "SAME"


def _digits(config):  # ≈ 2 minutes on a shared 2-core CPU (5.7 steps/s), 96 % test accuracy
  _small_images(config)
  config.model.width = 0.5
  config.train.update(num_steps=500, log_every=50, image_every=500, checkpoint_every=500)


def _fashion(config):  # ≈ 15 minutes on one core, ≈ 5 epochs: the feature extractor of the Fashion-MNIST tables
  config.data.update(name="fashion_mnist", image_size=32)
  _small_images(config)
  config.train.update(num_steps=3_000, log_every=100, image_every=3_000, checkpoint_every=1_000)


def _fashion_mlp(config):  # a minute: the second, independent extractor (two hidden layers on the pixels)
  _fashion(config)
  config.model.arch = "mlp"


def _paper(config, train_examples, **data):
  config.data.update(**data)
  epochs = 50
  config.train.update(num_steps=epochs * train_examples // config.batch_size, log_every=200,
                      image_every=10_000, checkpoint_every=5_000)


def _mnist(config):
  _paper(config, 60_000, name="mnist", image_size=32)
  _small_images(config)


def _svhn(config):
  _paper(config, 73_257, name="svhn_cropped", image_size=32)
  _small_images(config)


def _cifar10(config):
  _paper(config, 50_000, name="cifar10", image_size=32)
  _small_images(config)


def _celeba64(config):
  _paper(config, 162_770, name="celeb_a", image_size=64, eval_split="validation")


PRESETS = {"": _digits, "fashion": _fashion, "fashion_mlp": _fashion_mlp, "mnist": _mnist, "svhn": _svhn, "cifar10": _cifar10, "celeba64": _celeba64}
