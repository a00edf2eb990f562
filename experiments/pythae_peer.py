"""The pythae side of the genjax-vs-pythae comparison: one pythae model, trained by pythae's own trainer.

Runs in pythae's own environment, never genjax's (pythae is no dependency of genjax):

  python3 -m venv /work/venvs/pythae && /work/venvs/pythae/bin/pip install torch==2.13.0 pythae numpy
  python experiments/pythae_peer.py --method=vae --data=fashion32.npz --steps=3000 --batch_size=64 \\
      --seed=0 --out=runs/pythae/vae_s0
  python experiments/pythae_peer.py --smoke --method=all --data=fashion32.npz    # every method, seconds

Methods: pythae's model class, trainer and losses (pythae's docs pair them this way):
  vae     pythae.models.VAE             + BaseTrainer                           (one optimizer)
  vaegan  pythae.models.VAEGAN          + CoupledOptimizerAdversarialTrainer    (encoder, decoder, discriminator)
  aae     pythae.models.Adversarial_AE  + AdversarialTrainer                    (autoencoder, discriminator)
  vamp    pythae.models.VAMP            + BaseTrainer                           (one optimizer; = genjax's vampprior)
Every model uses reconstruction_loss="mse" (pythae: 0.5·Σ(x̂ − x)², a unit-variance Gaussian), the only
one of pythae's two that fits data in [-1, 1] ("bce" needs [0, 1]).

Networks are genjax's, ported to pythae's BaseEncoder/BaseDecoder/BaseDiscriminator with the blocks of
experiments/torch_peer.py (TF "SAME" padding by output size, bias-free layers before BatchNorm, momentum
0.1 = flax's 0.9): Larsen et al.'s encoder/decoder/discriminator (genjax/nets/larsen.py) for vae, vaegan
and vamp; the residual encoder/decoder and the code discriminator of genjax's aae (genjax/nets/aae.py).
Channel counts and hidden sizes take genjax's config key names and are scaled by `--width` as
genjax.config_lib.scale_width does (max(1, round(c·width))). The parameter counts are printed and written
to result.json; they equal genjax's except where pythae's model adds its own parameters (vamp's
pseudo-inputs are pythae's Linear(K, D) with a bias: K·D + D) or genjax has one pythae lacks (vae and
vampprior's learned pixel log σ). The two discriminators end in a sigmoid: pythae's losses call
F.binary_cross_entropy on probabilities. aae runs with deterministic_posterior=True: genjax's AAE
encoder is deterministic (a code, no log-variance head), and the encoder returns zero log-variances.

Budget: exactly `--steps` optimizer steps of `--batch_size` images. pythae counts epochs, so the
training set it sees is a lazy stream of shuffled passes over the data (seeded by `--seed`), steps ×
batch_size images long, split into `--epochs` pythae epochs (default 1) that each end on a full batch;
pythae's DataLoader shuffles within each epoch. With one epoch, pythae's per-epoch machinery is idle:
its schedulers, VAMP's KL warm-up (counted in epochs) and its "best model on train loss" choice, which
then is the final model. Pass `--epochs` to give them epochs to count.

pythae 0.1.2 as it is (read from its source, used unchanged; s = adversarial_loss_scale):
  * "mse" is a unit-variance Gaussian: no learned pixel σ (genjax's vae and vampprior learn one).
  * vaegan: the trainer backpropagates encoder_loss, decoder_loss and discriminator_loss in turn and zeroes
    only the stepping network's gradients before its own loss, so they add up: the encoder steps on
    ∇[KL + (2 − s)·L_llike], and, in steps where D steps too, the decoder on ∇[(1 − s)·(L_llike +
    BCE(D(dec(z_p)), 0))], which pushes D(dec(z_p)) towards 0, with D. Only while the equilibrium gate
    rests D does the decoder get its adversarial −s·∇BCE(D(dec(z_p)), 0). D runs four times per step (x and
    x̃ for Dis_l, x and dec(z_p) for the GAN), each pass with its own BatchNorm statistics.
  * aae: clean routing; autoencoder loss = s·BCE(D(z), 1) + reconstruction_loss_scale·½Σ(x̂ − x)². genjax's
    aae weighs mean (x̂ − x)² + 1·adversarial: --reconstruction_loss_scale=2/D (1/512 at 32×32×1)
    --adversarial_loss_scale=1 reproduce that weighting; the defaults are pythae's (0.5, 1).
  * vamp: pseudo-inputs are Hardtanh(0, 1)(Linear(K, D)(one-hot)), so they live in [0, 1], half our data
    range (the background is −1); torch's Linear init (±1/√K) starts about half their pixels clipped at 0,
    where Hardtanh passes no gradient. The prior's encoder pass runs in training mode, so BatchNorm normalises
    the pseudo-inputs by their own batch statistics and mixes them into the running averages the sampler
    uses. VAMPSampler draws z ~ N(μ_k, exp(tanh(log σ²_k))), a tanh the training prior does not have, one
    z per component in component order. The KL warm-up counts epochs.
  * Each step fetches images one by one (DataLoader + collate). The trainer runs one forward pass (train
    mode) before training as a sanity check; it is not an optimizer step and is not timed.

`--unit_range` trains in pythae's own convention instead (BaseDecoder's docstring: reconstructions in
[0, 1]): data (x + 1) / 2 and decoders ending in (tanh + 1) / 2, same parameters; samples are mapped back.
It lets vamp's pseudo-inputs span the data range, and it weakens "mse" 4× against the KL (σ = 1 in [0, 1]
units is σ = 2 in [-1, 1] units).

Outputs in `--out`: samples.npz (`images`, float32 NHWC in [-1, 1], from the prior with pythae's samplers:
NormalSampler for vae/vaegan/aae, VAMPSampler for vamp), reconstructions.npz (32 test images if the data
has `test_images`, else training images, and their reconstructions decoder(encoder mean)), pythae's own
saved model under pythae/, and result.json last (written atomically; its absence means "not done").
"""

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time

if "--verbose" not in sys.argv:  # pythae's per-epoch progress bar (tqdm reads this when imported)
  os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import ResidualBlock, UpResidualBlock, conv, lrelu, norm_act, up  # noqa: E402

METHODS = ("vae", "vaegan", "aae", "vamp")
ALIASES = {"vampprior": "vamp"}
SIZE = 32  # the nets below are built for 32×32 images (the data contract of this script)

# Network defaults: genjax's config keys; vae/vaegan/vamp = configs/{vae,vaegan,vampprior}.py, aae =
# configs/aae.py (= aae_prior.py with Wang's switches off). width 0.5, latent 32 (Fashion-MNIST runs).
NET_DEFAULTS = {
    "larsen": dict(encoder_channels=(64, 128, 256), encoder_hidden=1024, decoder_channels=(192, 128, 32),
                   discriminator_channels=(32, 128, 256, 256), discriminator_hidden=512, feature_layer=4),
    "aae": dict(encoder_stem=64, encoder_channels=(64, 128, 256, 512), decoder_stem=512,
                decoder_channels=(256, 128, 64), code_discriminator_hidden=(1000, 500, 200)),
}
# genjax's parameter counts at the defaults above (1-channel 32×32, width 0.5, latent 32, K = 500): leaves of
# state.params[net] of genjax.methods.<m>.init_state for configs/<m>.py with those overrides (eval_shape).
GENJAX_PARAMS_AT_DEFAULTS = {
    "vae": {"encoder": 1339680, "decoder": 462577, "pixel_log_sigma": 1},
    "vaegan": {"encoder": 1339680, "decoder": 462577, "discriminator": 1166113},
    "aae": {"encoder": 1244416, "decoder": 1186913, "code_discriminator": 166951},
    "vamp": {"encoder": 1339680, "decoder": 462577, "pixel_log_sigma": 1, "pseudo_inputs": 512000},
}
SMOKE = dict(steps=3, batch_size=8, width=0.125, latent_dim=8, num_samples=16, num_pseudo_inputs=10,
             encoder_hidden=64, discriminator_hidden=64, code_discriminator_hidden=(64, 32, 16))


def scale_width(channels, width):
  """genjax.config_lib.scale_width: paper channel counts times `width`."""
  return tuple(max(1, int(round(c * width))) for c in channels)


# --- networks -------------------------------------------------------------------------------------------

from pythae.models.base.base_utils import ModelOutput  # noqa: E402
from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder  # noqa: E402


class LarsenEncoder(BaseEncoder):
  """genjax.nets.larsen.Encoder: 5×5/2 convs (BN, ReLU), FC hidden (BN, ReLU), FC 2·latent → (μ, log σ²)."""

  def __init__(self, in_channels, channels, hidden, latent_dim):
    BaseEncoder.__init__(self)
    widths = (in_channels,) + tuple(channels)
    self.convs = nn.Sequential(*[norm_act(conv(a, b, 5, 2, bias=False)) for a, b in zip(widths, widths[1:])])
    side = SIZE // 2 ** len(channels)
    self.fc = nn.Sequential(norm_act(nn.Linear(channels[-1] * side * side, hidden, bias=False)),
                            nn.Linear(hidden, 2 * latent_dim))

  def forward(self, x):
    mean, logvar = self.fc(self.convs(x).flatten(1)).chunk(2, dim=1)
    return ModelOutput(embedding=mean, log_covariance=logvar)


class UnitTanh(nn.Module):
  """(tanh + 1) / 2: the decoders' tanh moved to [0, 1] for --unit_range (no parameters)."""

  def forward(self, x):
    return (torch.tanh(x) + 1) / 2


def output_activation(unit_range):
  return UnitTanh() if unit_range else nn.Tanh()


class LarsenDecoder(BaseDecoder):
  """genjax.nets.larsen.Decoder: FC (BN, ReLU), 5×5/2 transposed convs (BN, ReLU), 5×5 conv, tanh."""

  def __init__(self, out_channels, channels, latent_dim, unit_range=False):
    BaseDecoder.__init__(self)
    side = SIZE // 2 ** len(channels)
    self.shape = (channels[0], side, side)
    self.fc = norm_act(nn.Linear(latent_dim, side * side * channels[0], bias=False))
    widths = (channels[0],) + tuple(channels)
    self.ups = nn.Sequential(*[norm_act(up(a, b, 5)) for a, b in zip(widths, widths[1:])],
                             conv(channels[-1], out_channels, 5), output_activation(unit_range))

  def forward(self, z):
    return ModelOutput(reconstruction=self.ups(self.fc(z).view(-1, *self.shape)))


class LarsenDiscriminator(BaseDiscriminator):
  """genjax.nets.larsen.Discriminator in pythae's layer-by-layer form, ending in a sigmoid.

  Layer i (1-based, i ≤ number of convs) outputs conv i before its BN (the first conv: before its ReLU),
  so pythae's `reconstruction_layer` = genjax's `feature_layer` (Dis_l). Then: the last BN + ReLU, FC
  hidden (BN, ReLU); then FC 1 + sigmoid (pythae's `embedding`, a probability). depth = convs + 2.
  """

  def __init__(self, in_channels, channels, hidden):
    BaseDiscriminator.__init__(self)
    layers = [conv(in_channels, channels[0], 5)]  # stride 1, bias, no BN
    for i, (a, b) in enumerate(zip(channels, channels[1:])):
      act = nn.ReLU() if i == 0 else nn.Sequential(nn.BatchNorm2d(a), nn.ReLU())
      layers.append(nn.Sequential(act, conv(a, b, 5, 2, bias=False)))
    side = SIZE // 2 ** (len(channels) - 1)
    layers.append(nn.Sequential(nn.BatchNorm2d(channels[-1]), nn.ReLU(), nn.Flatten(),
                                norm_act(nn.Linear(channels[-1] * side * side, hidden, bias=False))))
    layers.append(nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid()))
    self.layers = nn.ModuleList(layers)
    self.depth = len(layers)

  def forward(self, x, output_layer_levels=None):
    levels = set(output_layer_levels or ())
    last = self.depth if not levels or -1 in levels else max(levels)
    output = ModelOutput()
    for i in range(last):
      x = self.layers[i](x)
      if i + 1 in levels:
        output[f"embedding_layer_{i + 1}"] = x
      if i + 1 == self.depth:
        output["embedding"] = x
    return output


class AAEEncoder(BaseEncoder):
  """genjax.nets.aae.Encoder at 32×32: 3×3/2 stem (BN, ReLU), residual blocks (stride 2 for blocks 1..2),
  average pool, FC 2·code (BN, ReLU), FC code. Deterministic: zero log-variances for pythae."""

  def __init__(self, in_channels, stem, channels, code_dim):
    BaseEncoder.__init__(self)
    downsamples = int(math.log2(SIZE // 8))  # genjax.nets.aae.encoder_downsamples
    strides = [2 if 1 <= i <= downsamples else 1 for i in range(len(channels))]
    widths = (stem,) + tuple(channels)
    self.convs = nn.Sequential(norm_act(conv(in_channels, stem, 3, 2, bias=False)),
                               *[ResidualBlock(a, b, s) for a, b, s in zip(widths, channels, strides)])
    self.fc = nn.Sequential(norm_act(nn.Linear(channels[-1], 2 * code_dim, bias=False)),
                            nn.Linear(2 * code_dim, code_dim))

  def forward(self, x):
    code = self.fc(self.convs(x).mean((2, 3)))
    return ModelOutput(embedding=code, log_covariance=torch.zeros_like(code))


class AAEDecoder(BaseDecoder):
  """genjax.nets.aae.Decoder at 32×32: FC to 4×4×stem (BN, ReLU), up-residual blocks, 3×3 conv, tanh."""

  def __init__(self, out_channels, stem, channels, code_dim, unit_range=False):
    BaseDecoder.__init__(self)
    upsamples = min(int(math.log2(SIZE // 4)), len(channels))  # genjax.nets.aae.decoder_upsamples
    if upsamples != len(channels):
      raise ValueError(f"a 32×32 aae decoder takes at most {upsamples} up-blocks, got {len(channels)}")
    self.start = SIZE // 2 ** upsamples
    self.stem = stem
    self.fc = nn.Linear(code_dim, self.start * self.start * stem, bias=False)
    widths = (stem,) + tuple(channels)
    self.convs = nn.Sequential(nn.BatchNorm2d(stem), nn.ReLU(),
                               *[UpResidualBlock(a, b) for a, b in zip(widths, channels)],
                               conv(channels[-1], out_channels, 3), output_activation(unit_range))

  def forward(self, code):
    x = self.fc(code).view(-1, self.stem, self.start, self.start)
    return ModelOutput(reconstruction=self.convs(x))


class CodeDiscriminator(BaseDiscriminator):
  """genjax.nets.aae.CodeDiscriminator: FC layers (LeakyReLU 0.2), FC 1; + sigmoid for pythae."""

  def __init__(self, code_dim, hidden):
    BaseDiscriminator.__init__(self)
    widths = (code_dim,) + tuple(hidden)
    self.net = nn.Sequential(*[m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), lrelu())],
                             nn.Linear(hidden[-1], 1), nn.Sigmoid())

  def forward(self, z):
    return ModelOutput(embedding=self.net(z))


# --- data: exactly steps × batch_size images, in pythae epochs --------------------------------------------

from pythae.data.datasets import BaseDataset, DatasetOutput  # noqa: E402
from pythae.trainers.training_callbacks import TrainingCallback  # noqa: E402


class StepStream(BaseDataset):
  """Shuffled passes over `images` concatenated, steps × batch_size long, served by index without copies.

  Pass p is permutation p of a generator seeded by (seed, p), made on first use. pythae epoch e (set by
  EpochCallback) serves stream positions [(e − 1)·L, e·L), L = len(self); pythae's DataLoader shuffles
  the positions within the epoch.
  """

  def __init__(self, images, labels, steps, batch_size, epochs, seed):
    self.images, self.labels = images, labels
    self.length = steps // epochs * batch_size
    self.seed, self.epoch, self._passes = seed, 1, {}

  def __len__(self):
    return self.length

  def _permutation(self, p):
    if p not in self._passes:
      self._passes[p] = np.random.default_rng([self.seed, p]).permutation(len(self.images))
    return self._passes[p]

  def __getitem__(self, index):
    position = (self.epoch - 1) * self.length + int(index)
    p, i = divmod(position, len(self.images))
    j = int(self._permutation(p)[i])
    return DatasetOutput(data=self.images[j], labels=self.labels[j])


class EpochCallback(TrainingCallback):
  """Tells the stream which epoch pythae starts."""

  def __init__(self, stream):
    self.stream = stream

  def on_epoch_begin(self, training_config, **kwargs):
    self.stream.epoch = kwargs["epoch"]


class Progress(TrainingCallback):
  """Counts optimizer steps, times training (first step's start to last step's end), prints ~10 lines.

  Loss values come from a forward hook on the model (the output pythae's trainer steps on).
  """

  def __init__(self, steps, model, loss_keys):
    self.steps, self.done, self.start, self.end = steps, 0, None, None
    self.first_step_seconds = None
    self.every = max(1, steps // 10)
    self.loss_keys, self.last = loss_keys, {}
    model.register_forward_hook(self._hook)

  def _hook(self, module, inputs, output):
    if module.training:
      self.last = {k: output[k].detach() for k in self.loss_keys if k in output.keys()}

  def losses(self):
    return {k: float(v) for k, v in self.last.items()}

  def on_train_step_begin(self, training_config, **kwargs):  # pythae: once per epoch, before its loop
    if self.start is None:
      self.start = time.perf_counter()

  def on_train_step_end(self, training_config, **kwargs):  # pythae: after each optimizer step
    self.done += 1
    self.end = time.perf_counter()
    if self.done == 1:
      self.first_step_seconds = self.end - self.start
    if self.done % self.every == 0 or self.done == self.steps:
      elapsed = self.end - self.start
      losses = " ".join(f"{k}={v:.4g}" for k, v in self.losses().items())
      print(f"  step {self.done}/{self.steps}  {self.done / elapsed:.2f} steps/s  {elapsed:.0f}s  {losses}",
            flush=True)

  @property
  def seconds(self):
    return self.end - self.start


# --- model, trainer and sampler per method ---------------------------------------------------------------


def net_config(args, method):
  """The network flags of `method`, defaults filled in (genjax's key names, before width scaling)."""
  family = "aae" if method == "aae" else "larsen"
  cfg = {k: (getattr(args, k) if getattr(args, k) is not None else v) for k, v in NET_DEFAULTS[family].items()}
  if method != "vaegan":
    for k in ("discriminator_channels", "discriminator_hidden", "feature_layer"):
      cfg.pop(k, None)
  if method == "vamp":
    cfg["num_pseudo_inputs"] = args.num_pseudo_inputs
  cfg.update(latent_dim=args.latent_dim, width=args.width)
  return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}


def build_model(method, cfg, image_shape, args):
  from pythae.models import (VAE, VAEGAN, VAMP, Adversarial_AE, Adversarial_AE_Config, VAEConfig,
                             VAEGANConfig, VAMPConfig)
  c = image_shape[0]
  w = lambda v: scale_width(v, cfg["width"])
  latent = cfg["latent_dim"]
  common = dict(input_dim=tuple(image_shape), latent_dim=latent, reconstruction_loss="mse")
  if method == "aae":
    enc = AAEEncoder(c, w([cfg["encoder_stem"]])[0], w(cfg["encoder_channels"]), latent)
    dec = AAEDecoder(c, w([cfg["decoder_stem"]])[0], w(cfg["decoder_channels"]), latent, args.unit_range)
    dis = CodeDiscriminator(latent, w(cfg["code_discriminator_hidden"]))
    config = Adversarial_AE_Config(**common, adversarial_loss_scale=args.adversarial_loss_scale,
                                   reconstruction_loss_scale=args.reconstruction_loss_scale,
                                   deterministic_posterior=True,
                                   discriminator_input_dim=latent)  # None would not reload (pydantic 2)
    return Adversarial_AE(config, encoder=enc, decoder=dec, discriminator=dis)
  enc = LarsenEncoder(c, w(cfg["encoder_channels"]), w([cfg["encoder_hidden"]])[0], latent)
  dec = LarsenDecoder(c, w(cfg["decoder_channels"]), latent, args.unit_range)
  if method == "vae":
    return VAE(VAEConfig(**common), encoder=enc, decoder=dec)
  if method == "vamp":
    config = VAMPConfig(**common, number_components=cfg["num_pseudo_inputs"],
                        linear_scheduling_steps=args.linear_scheduling_steps)
    return VAMP(config, encoder=enc, decoder=dec)
  dis = LarsenDiscriminator(c, w(cfg["discriminator_channels"]), w([cfg["discriminator_hidden"]])[0])
  config = VAEGANConfig(**common, adversarial_loss_scale=args.adversarial_loss_scale,
                        reconstruction_layer=cfg["feature_layer"], equilibrium=args.equilibrium,
                        margin=args.margin)
  return VAEGAN(config, encoder=enc, decoder=dec, discriminator=dis)


def param_counts(model, method):
  """Trainable parameters per network, under genjax's network names."""
  count = lambda m: sum(p.numel() for p in m.parameters())
  counts = {"encoder": count(model.encoder), "decoder": count(model.decoder)}
  if method == "vaegan":
    counts["discriminator"] = count(model.discriminator)
  if method == "aae":
    counts["code_discriminator"] = count(model.discriminator)
  if method == "vamp":
    counts["pseudo_inputs"] = count(model.pseudo_inputs)  # pythae's Linear(K, D) incl. its bias
  return counts


def optimizer_settings(args, slot):
  """(optimizer class name, lr, params) of one pythae optimizer slot: per-slot flags over the global ones."""
  get = lambda name: getattr(args, f"{slot}_{name}", None)
  lr = get("lr") if get("lr") is not None else args.lr
  if args.optimizer == "Adam":
    params = dict(betas=(get("b1") if get("b1") is not None else args.b1,
                         get("b2") if get("b2") is not None else args.b2), eps=args.eps)
  else:
    params = dict(alpha=args.rmsprop_decay, eps=args.eps)
  return args.optimizer, lr, params


OPTIMIZER_SLOTS = {"vae": ("model",), "vamp": ("model",), "aae": ("autoencoder", "discriminator"),
                   "vaegan": ("encoder", "decoder", "discriminator")}
LOSS_KEYS = {"vae": ("loss", "recon_loss", "reg_loss"), "vamp": ("loss", "recon_loss", "reg_loss"),
             "aae": ("loss", "recon_loss", "autoencoder_loss", "discriminator_loss"),
             "vaegan": ("loss", "recon_loss", "encoder_loss", "decoder_loss", "discriminator_loss")}


def build_trainer(method, model, stream, args, out_dir, callbacks):
  from pythae.trainers import (AdversarialTrainer, AdversarialTrainerConfig, BaseTrainer, BaseTrainerConfig,
                               CoupledOptimizerAdversarialTrainer, CoupledOptimizerAdversarialTrainerConfig)
  common = dict(output_dir=os.path.join(out_dir, "pythae"), per_device_train_batch_size=args.batch_size,
                num_epochs=args.epochs, seed=args.seed, no_cuda=True, train_dataloader_num_workers=0,
                steps_saving=None, steps_predict=None)
  slots = {}
  for slot in OPTIMIZER_SLOTS[method]:
    cls, lr, params = optimizer_settings(args, slot)
    slots[slot] = dict(cls=cls, lr=lr, **params)
    if slot == "model":
      common.update(optimizer_cls=cls, learning_rate=lr, optimizer_params=params)
    else:
      common.update({f"{slot}_optimizer_cls": cls, f"{slot}_learning_rate": lr, f"{slot}_optimizer_params": params})
  trainer_cls, config_cls = {
      "vae": (BaseTrainer, BaseTrainerConfig), "vamp": (BaseTrainer, BaseTrainerConfig),
      "aae": (AdversarialTrainer, AdversarialTrainerConfig),
      "vaegan": (CoupledOptimizerAdversarialTrainer, CoupledOptimizerAdversarialTrainerConfig)}[method]
  trainer = trainer_cls(model=model, train_dataset=stream, training_config=config_cls(**common),
                        callbacks=callbacks)
  return trainer, slots


def optimizer_in_use(trainer, slot):
  """Class and hyperparameters of the optimizer pythae's trainer built for `slot`."""
  opt = trainer.optimizer if slot == "model" else getattr(trainer, f"{slot}_optimizer")
  group = opt.param_groups[0]
  keys = ("lr", "betas", "alpha", "eps", "weight_decay", "momentum", "centered", "amsgrad")
  return {"cls": type(opt).__name__, **{k: group[k] for k in keys if k in group},
          "params": sum(p.numel() for g in opt.param_groups for p in g["params"])}


def to_data_range(x, unit_range):
  """Model-range images (NCHW) → NHWC float32 numpy in [-1, 1]."""
  x = x * 2 - 1 if unit_range else x
  return x.clamp(-1.0, 1.0).permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)


def sample(method, model, num, unit_range, batch=500):
  from pythae.samplers import NormalSampler, VAMPSampler
  sampler = VAMPSampler(model) if method == "vamp" else NormalSampler(model)  # both put the model in eval()
  with torch.no_grad():
    x = sampler.sample(num_samples=num, batch_size=batch, return_gen=True)
  return to_data_range(x, unit_range)


def save_npz(path, **arrays):
  tmp = path + ".tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)


def write_json_atomic(path, obj):
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
  with os.fdopen(fd, "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


# --- one run -------------------------------------------------------------------------------------------


def load_data(args):
  """(train NCHW float32, train labels, reconstruction images NCHW) from --data or, for --smoke, random."""
  if args.data:
    with np.load(args.data) as f:
      x = f["train_images"]
      y = f["train_labels"] if "train_labels" in f else np.zeros(len(x), np.int32)
      test = f["test_images"][:32] if "test_images" in f else x[:32]
  else:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (256, SIZE, SIZE, 1)).astype(np.float32)
    y, test = np.zeros(len(x), np.int32), x[:32]
  if x.ndim != 4 or x.shape[1:3] != (SIZE, SIZE):
    raise SystemExit(f"train_images must be [N, {SIZE}, {SIZE}, C] (NHWC), got {x.shape}")
  shift = (lambda a: (a + 1) / 2) if args.unit_range else (lambda a: a)  # [-1, 1] → [0, 1] for --unit_range
  nchw = lambda a: torch.from_numpy(np.ascontiguousarray(shift(np.asarray(a, np.float32)).transpose(0, 3, 1, 2)))
  return nchw(x), torch.from_numpy(np.asarray(y)).float(), nchw(test)


def run(method, args, out_dir, data):
  import pythae
  os.makedirs(out_dir, exist_ok=True)
  result_path = os.path.join(out_dir, "result.json")
  if os.path.exists(result_path):
    os.remove(result_path)  # a rerun: "not done" until it finishes
  images, labels, test = data
  torch.manual_seed(args.seed)
  np.random.seed(args.seed)
  cfg = net_config(args, method)
  model = build_model(method, cfg, tuple(images.shape[1:]), args)
  counts = param_counts(model, method)
  print(f"pythae {method}: {args.steps} steps × batch {args.batch_size}, seed {args.seed}, {args.threads} "
        f"thread(s), {len(images)} images → {out_dir}; params {counts}", flush=True)
  stream = StepStream(images, labels, args.steps, args.batch_size, args.epochs, args.seed)
  progress = Progress(args.steps, model, LOSS_KEYS[method])
  epoch_logs = {}

  class KeepLogs(TrainingCallback):
    def on_log(self, training_config, logs, **kwargs):
      epoch_logs.clear()
      epoch_logs.update({k: float(v) for k, v in logs.items()})

  trainer, slots = build_trainer(method, model, stream, args, out_dir,
                                 [EpochCallback(stream), progress, KeepLogs()])
  trainer.train()
  if progress.done != args.steps:
    raise SystemExit(f"pythae ran {progress.done} optimizer steps, expected {args.steps}")
  slots = {slot: optimizer_in_use(trainer, slot) for slot in slots}  # as pythae built them
  trained = trainer._best_model  # with one epoch (or a last epoch that is best on train loss) the final one
  start = time.perf_counter()
  samples = sample(method, trained, args.num_samples, args.unit_range)
  sample_seconds = time.perf_counter() - start
  save_npz(os.path.join(out_dir, "samples.npz"), images=samples)
  with torch.no_grad():
    trained.eval()
    recon = trained.predict(test).recon_x
  save_npz(os.path.join(out_dir, "reconstructions.npz"), images=to_data_range(test, args.unit_range),
           reconstructions=to_data_range(recon, args.unit_range))
  result = {
      "peer": "pythae", "method": method, "pythae_model": type(model).__name__,
      "pythae_trainer": type(trainer).__name__, "pythae": pythae.__version__ if hasattr(pythae, "__version__")
      else _dist_version("pythae"), "torch": torch.__version__,
      "steps": progress.done, "batch_size": args.batch_size, "epochs": args.epochs, "seed": args.seed,
      "threads": args.threads, "data": os.path.abspath(args.data) if args.data else None,
      "unit_range": args.unit_range,
      "train_examples": len(images),
      "train_seconds": round(progress.seconds, 3), "steps_per_sec": round(progress.done / progress.seconds, 4),
      "first_step_seconds": round(progress.first_step_seconds, 4), "sample_seconds": round(sample_seconds, 3),
      "final_epoch_losses": epoch_logs,           # pythae's own report: means over the last pythae epoch
      "last_step_losses": progress.losses(),
      "params": counts, "params_total": sum(counts.values()), "network": cfg,
      "model_config": {k: v for k, v in dict(model.model_config.__dict__).items()
                       if isinstance(v, (int, float, str, bool, list, tuple, type(None)))},
      "optimizers": slots, "num_samples": len(samples), "samples": "samples.npz",
  }
  write_json_atomic(result_path, result)
  print(f"done {method}: {progress.done} steps in {progress.seconds:.1f}s = {result['steps_per_sec']:.2f} steps/s; "
        f"last-epoch losses {', '.join(f'{k}={v:.4g}' for k, v in epoch_logs.items())}; {len(samples)} samples",
        flush=True)
  return result


def _dist_version(name):
  from importlib.metadata import version
  return version(name)


def check_params(args):
  """Parameter counts per network at the given flags (no data, no training), against genjax's at the defaults."""
  ok = True
  for method in METHODS if args.method == "all" else (args.method,):
    model = build_model(method, net_config(args, method), (1, SIZE, SIZE), args)
    counts = param_counts(model, method)
    line = {"method": method, "pythae": counts}
    if not any(getattr(args, k, None) is not None for k in set().union(*NET_DEFAULTS.values())) and (
        args.width, args.latent_dim, args.num_pseudo_inputs) == (0.5, 32, 500):
      genjax = GENJAX_PARAMS_AT_DEFAULTS[method]
      line["genjax"] = genjax
      line["equal"] = {net: counts.get(net) == n for net, n in genjax.items()}
      ok &= all(counts.get(net) == n for net, n in genjax.items() if net in ("encoder", "decoder", "discriminator",
                                                                           "code_discriminator"))
    print(json.dumps(line))
  return ok


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--method", required=True, choices=METHODS + tuple(ALIASES) + ("all",),
                 help="pythae model; 'all' runs each into OUT/<method>")
  p.add_argument("--data", help="npz with train_images [N, 32, 32, C] float32 in [-1, 1] and train_labels")
  p.add_argument("--out", help="output folder (default for --smoke: a temporary one)")
  p.add_argument("--steps", type=int, default=3000, help="optimizer steps")
  p.add_argument("--batch_size", type=int, default=64)
  p.add_argument("--epochs", type=int, default=1, help="pythae epochs the steps are split into (must divide steps)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--threads", type=int, default=1, help="torch intra-op and inter-op threads")
  p.add_argument("--num_samples", type=int, default=10000)
  p.add_argument("--unit_range", action="store_true",
                 help="train in pythae's [0, 1] convention: data (x + 1) / 2, decoders (tanh + 1) / 2; samples "
                 "and reconstructions are mapped back to [-1, 1]. Changes the meaning of 'mse' (σ = 1 in [0, 1] "
                 "units is σ = 2 in [-1, 1] units)")
  p.add_argument("--smoke", action="store_true", help="tiny steps, widths and samples: a check that runs in seconds")
  p.add_argument("--verbose", action="store_true", help="keep pythae's own logging and progress bar")
  p.add_argument("--check_params", action="store_true",
                 help="print parameter counts (1-channel images; vs genjax's at the default flags) and exit")
  g = p.add_argument_group("networks (genjax's config keys; channel counts and hidden sizes before --width)")
  ints = lambda s: tuple(int(v) for v in s.split(","))
  g.add_argument("--latent_dim", type=int, default=32)
  g.add_argument("--width", type=float, default=0.5, help="multiplies every channel count and hidden size")
  g.add_argument("--encoder_channels", type=ints, help="vae/vaegan/vamp: 64,128,256; aae: 64,128,256,512")
  g.add_argument("--encoder_hidden", type=int, help="vae/vaegan/vamp: 1024")
  g.add_argument("--decoder_channels", type=ints, help="vae/vaegan/vamp: 192,128,32; aae: 256,128,64")
  g.add_argument("--discriminator_channels", type=ints, help="vaegan: 32,128,256,256")
  g.add_argument("--discriminator_hidden", type=int, help="vaegan: 512")
  g.add_argument("--feature_layer", type=int, help="vaegan: conv whose pre-BN output is Dis_l (pythae's "
                 "reconstruction_layer); 4")
  g.add_argument("--encoder_stem", type=int, help="aae: 64")
  g.add_argument("--decoder_stem", type=int, help="aae: 512")
  g.add_argument("--code_discriminator_hidden", type=ints, help="aae: 1000,500,200")
  g.add_argument("--num_pseudo_inputs", type=int, default=500, help="vamp: K (pythae's number_components)")
  g = p.add_argument_group("pythae's loss options (pythae's defaults)")
  g.add_argument("--adversarial_loss_scale", type=float, default=0.5, help="vaegan, aae")
  g.add_argument("--reconstruction_loss_scale", type=float, default=1.0, help="aae")
  g.add_argument("--equilibrium", type=float, default=0.68, help="vaegan")
  g.add_argument("--margin", type=float, default=0.4, help="vaegan")
  g.add_argument("--linear_scheduling_steps", type=int, default=0, help="vamp: KL warm-up, in pythae epochs")
  g = p.add_argument_group("optimizers", "global values; --SLOT_lr, --SLOT_b1, --SLOT_b2 override them for one of "
                           "pythae's optimizer slots (vae/vamp: model; aae: autoencoder (encoder + decoder), "
                           "discriminator; vaegan: encoder, decoder, discriminator)")
  g.add_argument("--optimizer", choices=("Adam", "RMSprop"), default="Adam")
  g.add_argument("--lr", type=float, default=1e-3)
  g.add_argument("--b1", type=float, default=0.9)
  g.add_argument("--b2", type=float, default=0.999)
  g.add_argument("--eps", type=float, default=1e-8)
  g.add_argument("--rmsprop_decay", type=float, default=0.9, help="RMSprop's alpha (genjax/optax: decay)")
  for slot in ("model", "autoencoder", "encoder", "decoder", "discriminator"):
    for name in ("lr", "b1", "b2"):
      g.add_argument(f"--{slot}_{name}", type=float, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  args.method = ALIASES.get(args.method, args.method)
  if args.smoke:
    for k, v in SMOKE.items():
      setattr(args, k, v)
  if not args.out and not args.check_params:
    if not args.smoke:
      p.error("--out is required (except with --smoke)")
    args.out = tempfile.mkdtemp(prefix="pythae_peer_smoke_")
  if args.steps < 1 or args.epochs < 1 or args.steps % args.epochs:
    p.error(f"--epochs ({args.epochs}) must divide --steps ({args.steps})")
  return args


def quiet_pythae():
  for name in list(logging.root.manager.loggerDict):
    if name.startswith("pythae"):
      logging.getLogger(name).setLevel(logging.WARNING)


def main(argv=None):
  args = parse_args(argv)
  torch.set_num_threads(args.threads)
  torch.set_num_interop_threads(args.threads)
  import pythae.models, pythae.samplers, pythae.trainers  # noqa: F401,E401  (create their loggers)
  if not args.verbose:
    quiet_pythae()
  if args.check_params:
    raise SystemExit(0 if check_params(args) else 1)
  data = load_data(args)
  methods = METHODS if args.method == "all" else (args.method,)
  for method in methods:
    out_dir = os.path.join(args.out, method) if args.method == "all" else args.out
    run(method, args, out_dir, data)


if __name__ == "__main__":
  main()
