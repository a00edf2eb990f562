"""Eager PyTorch peers of genjax's train steps, for speed ratios measured on the same machine in one run.

  pip install torch==2.13.0          # optional: never a dependency of genjax
  python experiments/torch_peer.py --method=vaegan --steps=10
  python -m genjax.bench --config=configs/vaegan.py:cifar10 --steps=10 --batch_size=64
  python experiments/torch_peer.py --method=all --check_params     # parameter counts, no training

Every method of genjax.methods has a peer of its `cifar10` preset (aae: configs/aae.py:cifar10, Makhzani's
AAE = aae_prior with Wang's switches off): same networks (layer shapes, kernels, strides, normalisations,
activations; parameter counts equal genjax's, see GENJAX_PARAMS), same loss terms with the preset's
weights, the preset's optimizer and the same update schedule within one step: one forward pass, then
`torch.autograd.grad` of each network's own loss w.r.t. its own parameters and simultaneous updates
(aae_prior: genjax's two phases in turn; BEGAN/atvae: the k controller as a scalar op; vaegan: Larsen's
equilibrium gates, which as in genjax rest a network's step but not its gradient). Images are 32×32×3 in NCHW (genjax: NHWC); TF "SAME" padding is reproduced by
output size (where TF pads asymmetrically, torch pads symmetrically: same work). Initialisation is
torch's default (speed does not depend on it).

Batch: 64 by default (`--batch_size=0`: the preset's, which is 128 for dcgan, 16 for began/atvae and 96
for discreg/classifier; pass genjax.bench `--batch_size=64` to compare at 64). `--device=cuda` runs on a
GPU (every tensor is made there), `--bf16` under `torch.autocast` in bfloat16 (genjax: `--config.dtype=
bfloat16`), `--compile` with every network under `torch.compile`, `--image_size=64` at 64×64 (the layer
counts genjax's nets choose for that size: one more BEGAN stage, a stride-2 residual block more in the AAE
encoder, larger FC layers; experiments/gpu_check.py checks the parameter counts against genjax's).
Prints one JSON line per method, like genjax.bench.
"""

import argparse
import json
import math
import time
import types
import warnings

import torch
from torch import nn
import torch.nn.functional as F

IMAGE = (3, 32, 32)  # (C, H, W) of every network built after set_image_size (genjax: data.image_size)
# padding="same" with an even kernel pads a copy of the input (TF's asymmetric SAME): expected.
warnings.filterwarnings("ignore", message="Using padding='same'")
NUM_CLASSES = 10

# --- building blocks ------------------------------------------------------------------------------------


def set_image_size(size: int) -> None:
  """Networks built after this take size×size×3 images, with the layer counts genjax's nets choose for it."""
  global IMAGE
  IMAGE = (3, size, size)


def side(downsamples: int) -> int:
  """The image side after `downsamples` stride-2 stages."""
  return IMAGE[1] // 2**downsamples


def conv(c_in, c_out, k, stride=1, bias=True):
  """k×k conv with flax's "SAME" output size (H / stride)."""
  if stride == 1 and k % 2 == 0:
    return nn.Conv2d(c_in, c_out, k, 1, padding="same", bias=bias)
  return nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, bias=bias)


def up(c_in, c_out, k, stride=2, bias=False):
  """k×k transposed conv with flax's "SAME" output size (H · stride)."""
  p = (k - 1) // 2
  return nn.ConvTranspose2d(c_in, c_out, k, stride, p, output_padding=stride - k + 2 * p, bias=bias)


def norm_act(layer, act=nn.ReLU):
  """layer → BatchNorm → activation (the layer has no bias: BN's shift replaces it)."""
  bn = nn.BatchNorm1d(layer.out_features) if isinstance(layer, nn.Linear) else nn.BatchNorm2d(layer.out_channels)
  return nn.Sequential(layer, bn, act())


def lrelu():
  return nn.LeakyReLU(0.2)


def kl(mean, logvar):
  """KL(N(mean, exp(logvar)) ‖ N(0, I)), summed per example, batch mean (losses.gaussian_kl)."""
  return torch.mean(torch.sum(0.5 * (logvar.exp() + mean ** 2 - 1 - logvar), 1))


def gaussian_nll(x, mean, log_sigma=0.0, constant=True):
  """−log N(x | mean, σ²), summed per example, batch mean (losses.gaussian_nll)."""
  nll = 0.5 * ((x - mean) * torch.exp(-torch.as_tensor(log_sigma))) ** 2 + log_sigma
  if constant:
    nll = nll + 0.5 * math.log(2 * math.pi)
  return torch.mean(nll.flatten(1).sum(1))


def squared_error(x, y):
  return torch.mean((x - y).pow(2).flatten(1).sum(1))


def l1(x, y):
  return torch.mean(torch.abs(x - y))


def bce(logits, target):
  return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def dis_loss(real_logits, fake_logits):
  return bce(real_logits, 1.0) + bce(fake_logits, 0.0)


def gen_loss(fake_logits):
  return bce(fake_logits, 1.0)


def reparameterize(mean, logvar):
  return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


def own_update(updates, resting=()):
  """updates: [(loss, [optimizers])]. Each group of networks gets ∂loss/∂(its own params) only, all from the
  same forward graph; then every network not `resting` steps (simultaneous updates, as genjax's one vjp,
  which also computes a resting network's gradient and discards it)."""
  for i, (loss, group) in enumerate(updates):
    params = [p for opt in group for g in opt.param_groups for p in g["params"]]
    grads = torch.autograd.grad(loss, params, retain_graph=i < len(updates) - 1)
    for p, g in zip(params, grads):
      p.grad = g
  for _, group in updates:
    for opt in group:
      if opt not in resting:
        opt.step()


def single_update(opt, loss):
  """One loss, one optimizer slot (vae, vampprior, discreg, classifier)."""
  opt.zero_grad()
  loss.backward()
  opt.step()


def adam(params, lr, b1):
  return torch.optim.Adam(params, lr=lr, betas=(b1, 0.999), eps=1e-8)


def adams(nets, names, lr, b1=0.5):
  return {name: adam(nets[name].parameters(), lr, b1) for name in names}


# --- Larsen et al.'s encoder / decoder / discriminator (vae, vaegan, vampprior) ---------------------------


class LarsenEncoder(nn.Module):
  def __init__(self, latent, channels=(64, 128, 256), hidden=1024):
    super().__init__()
    widths = (IMAGE[0],) + channels
    self.convs = nn.Sequential(*[norm_act(conv(a, b, 5, 2, bias=False)) for a, b in zip(widths, widths[1:])])
    self.fc = nn.Sequential(norm_act(nn.Linear(channels[-1] * side(len(channels)) ** 2, hidden, bias=False)),
                            nn.Linear(hidden, 2 * latent))

  def forward(self, x):
    return self.fc(self.convs(x).flatten(1)).chunk(2, dim=1)


class LarsenDecoder(nn.Module):
  def __init__(self, latent, channels=(192, 128, 32)):
    super().__init__()
    start = side(len(channels))
    self.shape = (channels[0], start, start)
    self.fc = norm_act(nn.Linear(latent, start * start * channels[0], bias=False))
    widths = (channels[0],) + channels
    self.ups = nn.Sequential(*[norm_act(up(a, b, 5)) for a, b in zip(widths, widths[1:])],
                             conv(channels[-1], IMAGE[0], 5), nn.Tanh())

  def forward(self, z):
    return self.ups(self.fc(z).view(-1, *self.shape))


class LarsenDiscriminator(nn.Module):
  """→ (logits, Dis_l = the 4th conv's output before its BN)."""

  def __init__(self, channels=(32, 128, 256, 256), hidden=512):
    super().__init__()
    self.first = nn.Sequential(conv(IMAGE[0], channels[0], 5), nn.ReLU())
    self.mid = nn.Sequential(*[norm_act(conv(a, b, 5, 2, bias=False)) for a, b in zip(channels[:2], channels[1:3])])
    self.feature_conv = conv(channels[2], channels[3], 5, 2, bias=False)
    self.rest = nn.Sequential(nn.BatchNorm2d(channels[3]), nn.ReLU(), nn.Flatten(),
                              norm_act(nn.Linear(channels[3] * side(3) ** 2, hidden, bias=False)),
                              nn.Linear(hidden, 1))

  def forward(self, x):
    features = self.feature_conv(self.mid(self.first(x)))
    return self.rest(features)[:, 0], features


def build_vae(latent=256):
  nets = {"encoder": LarsenEncoder(latent), "decoder": LarsenDecoder(latent),
          "pixel_log_sigma": nn.Parameter(torch.zeros(()))}
  return nets, {"vae": adam([*nets["encoder"].parameters(), *nets["decoder"].parameters(), nets["pixel_log_sigma"]],
                            1e-3, 0.9)}


def vae_step(nets, opts, batch):
  """Negative ELBO with a learned pixel log σ (configs/vae.py:cifar10)."""
  x = batch["image"]
  mean, logvar = nets["encoder"](x)
  x_rec = nets["decoder"](reparameterize(mean, logvar))
  single_update(opts["vae"], gaussian_nll(x, x_rec, nets["pixel_log_sigma"]) + kl(mean, logvar))


def build_vaegan(latent=256):
  nets = {"encoder": LarsenEncoder(latent), "decoder": LarsenDecoder(latent), "discriminator": LarsenDiscriminator()}
  return nets, {name: torch.optim.RMSprop(net.parameters(), lr=3e-4, alpha=0.9, eps=1e-8) for name, net in nets.items()}


def vaegan_step(nets, opts, batch, gamma=1e-5, equilibrium=0.68, margin=0.35):
  """Larsen Algorithm 1, prior samples only in the GAN, equilibrium gating (configs/vaegan.py:cifar10)."""
  x = batch["image"]
  n = x.shape[0]
  mean, logvar = nets["encoder"](x)
  decoded = nets["decoder"](torch.cat([reparameterize(mean, logvar), torch.randn_like(mean)]))
  logits, feats = nets["discriminator"](torch.cat([x, decoded]))
  real, _, prior = logits.split(n)
  llike = gaussian_nll(feats[:n], feats[n:2 * n], constant=False)
  real_bce, prior_bce = bce(real, 1.0), bce(prior, 0.0)
  real_v, fake_v = torch.stack([real_bce, prior_bce]).tolist()
  train_dis = not (real_v < equilibrium - margin or fake_v < equilibrium - margin)
  train_dec = not (real_v > equilibrium + margin or fake_v > equilibrium + margin)
  train_dis, train_dec = (True, True) if not (train_dis or train_dec) else (train_dis, train_dec)
  own_update([(kl(mean, logvar) + llike, [opts["encoder"]]), (gamma * llike + gen_loss(prior), [opts["decoder"]]),
              (real_bce + prior_bce, [opts["discriminator"]])],
             resting=[opts[net] for net, on in (("decoder", train_dec), ("discriminator", train_dis)) if not on])


# --- DCGAN's networks (dcgan, dfm) -----------------------------------------------------------------------


class DCGenerator(nn.Module):
  """z → FC → stride-2 transposed convs (BN, ReLU) → output transposed conv (stride 1 or 2) → tanh."""

  def __init__(self, latent, channels, output_stride=2, k=5):
    super().__init__()
    side = IMAGE[1] // 2 ** (len(channels) - 1 + (output_stride == 2))
    self.shape = (channels[0], side, side)
    self.fc = norm_act(nn.Linear(latent, side * side * channels[0], bias=False))
    self.ups = nn.Sequential(*[norm_act(up(a, b, k)) for a, b in zip(channels, channels[1:])],
                             up(channels[-1], IMAGE[0], k, output_stride, bias=True), nn.Tanh())

  def forward(self, z):
    return self.ups(self.fc(z).view(-1, *self.shape))


class DCDiscriminator(nn.Module):
  """Image → (logits, φ = flattened last conv map): stride-2 convs, BN (from the 2nd, or all), LeakyReLU 0.2."""

  def __init__(self, channels, batch_norm_first=False, k=5):
    super().__init__()
    layers, c_in = [], IMAGE[0]
    for i, c in enumerate(channels):
      if i > 0 or batch_norm_first:
        layers.append(norm_act(conv(c_in, c, k, 2, bias=False), lrelu))
      else:
        layers += [conv(c_in, c, k, 2), lrelu()]
      c_in = c
    self.convs = nn.Sequential(*layers)
    side = IMAGE[1] // 2 ** len(channels)
    self.fc = nn.Linear(side * side * c_in, 1)

  def forward(self, x):
    features = self.convs(x).flatten(1)
    return self.fc(features)[:, 0], features


def mlp_denoiser(size, hidden=(1024, 1024)):
  widths = (size,) + hidden
  return nn.Sequential(*[norm_act(nn.Linear(a, b, bias=False)) for a, b in zip(widths, widths[1:])],
                       nn.Linear(hidden[-1], size))


def gan_forward(nets, x, latent):
  """G(z), then D on [x; G(z)] in one call: (real, fake) logits and features."""
  n = x.shape[0]
  fake = nets["generator"](torch.randn(n, latent))
  logits, feats = nets["discriminator"](torch.cat([x, fake]))
  return logits.split(n), feats.split(n)


def build_dcgan():
  nets = {"generator": DCGenerator(100, (512, 256, 128)), "discriminator": DCDiscriminator((128, 256, 512))}
  return nets, adams(nets, nets, 2e-4)


def dcgan_step(nets, opts, batch):
  (real, fake), _ = gan_forward(nets, batch["image"], 100)
  own_update([(gen_loss(fake), [opts["generator"]]), (dis_loss(real, fake), [opts["discriminator"]])])


def build_dfm():
  nets = {"generator": DCGenerator(100, (128, 64, 32, 16), output_stride=1),
          "discriminator": DCDiscriminator((32, 64, 128), batch_norm_first=True),
          "denoiser": mlp_denoiser(128 * side(3) ** 2)}
  return nets, adams(nets, nets, 1e-4)


def dfm_step(nets, opts, batch, denoise_weight=0.03, adv_weight=1.0, noise_std=1.0):
  """Warde-Farley & Bengio: r trained on corrupted real features, G follows r(φ(G(z))) as a fixed target."""
  (real, fake), (h_real, h_fake) = gan_forward(nets, batch["image"], 100)
  h_real = h_real.detach()
  denoised = nets["denoiser"](h_real + noise_std * torch.randn_like(h_real))
  with torch.no_grad():
    target = nets["denoiser"](h_fake)
  gen = denoise_weight / h_fake.shape[1] * squared_error(h_fake, target) + adv_weight * gen_loss(fake)
  own_update([(gen, [opts["generator"]]), (dis_loss(real, fake), [opts["discriminator"]]),
              (squared_error(h_real, denoised), [opts["denoiser"]])])


# --- BEGAN's networks (began, atvae) ---------------------------------------------------------------------


def began_stages() -> int:
  """×2 stages between 8×8 and the image (genjax.nets.began.num_stages): 2 at 32×32, 3 at 64×64."""
  return int(math.log2(IMAGE[1] // 8))


class BeganEncoder(nn.Module):
  """3×3 convs + ELU: per block two convs n·i then a stride-2 conv (not after the last); FC to the code."""

  def __init__(self, code, n=64):
    super().__init__()
    stages = began_stages()
    layers, c_in = [conv(IMAGE[0], n, 3), nn.ELU()], n
    for i in range(stages + 1):
      w = n * (i + 1)
      layers += [conv(c_in, w, 3), nn.ELU(), conv(w, w, 3), nn.ELU()]
      if i < stages:
        layers += [conv(w, w, 3, 2), nn.ELU()]
      c_in = w
    self.convs = nn.Sequential(*layers)
    self.fc = nn.Linear(8 * 8 * c_in, code)

  def forward(self, x):
    return self.fc(self.convs(x).flatten(1))


class BeganDecoder(nn.Module):
  """FC to 8×8×n; per block two 3×3 convs + ELU, nearest ×2 between blocks; a last conv, no activation."""

  def __init__(self, latent, n=64):
    super().__init__()
    stages = began_stages()
    self.n = n
    self.fc = nn.Linear(latent, 8 * 8 * n)
    layers = []
    for i in range(stages + 1):
      layers += ([nn.Upsample(scale_factor=2)] if i else []) + [conv(n, n, 3), nn.ELU(), conv(n, n, 3), nn.ELU()]
    self.convs = nn.Sequential(*layers, conv(n, IMAGE[0], 3))

  def forward(self, z):
    return self.convs(self.fc(z).view(-1, self.n, 8, 8))


class BeganAutoencoder(nn.Module):
  """BEGAN's discriminator: image → (D(x), code)."""

  def __init__(self, code=64):
    super().__init__()
    self.encoder, self.decoder = BeganEncoder(code), BeganDecoder(code)

  def forward(self, x):
    code = self.encoder(x)
    return self.decoder(code), code


class Controller:
  """k_t with Khan's incremental PID law (BEGAN: λ2 = λ3 = 0), clipped to [0, 1]; a scalar op, no sync."""

  def __init__(self, gains):
    self.gains, self.k, self.e1, self.e2 = gains, torch.zeros(()), torch.zeros(()), torch.zeros(())

  def update(self, error):
    l1_, l2_, l3_ = self.gains
    e = error.detach()
    step = l1_ * e + l2_ * (e - self.e1) + l3_ * (e + self.e2 - 2 * self.e1)
    self.k, self.e1, self.e2 = (self.k + step).clamp(0.0, 1.0), e, self.e1


def energies(disc, *groups):
  """L(v) = mean |v − D(v)| per group, and D's codes, from one D call."""
  recon, codes = disc(torch.cat(groups))
  sizes = [len(g) for g in groups]
  return [l1(v, r) for v, r in zip(groups, recon.split(sizes))], codes.split(sizes)


def build_began():
  nets = {"generator": BeganDecoder(64), "discriminator": BeganAutoencoder(64)}
  opts = adams(nets, nets, 8e-5)
  nets["control"] = Controller((1e-3, 0.0, 0.0))
  return nets, opts


def began_step(nets, opts, batch, gamma=0.5):
  x = batch["image"]
  fake = nets["generator"](torch.rand(x.shape[0], 64) * 2 - 1)
  (loss_real, loss_fake), _ = energies(nets["discriminator"], x, fake)
  k = nets["control"].k
  own_update([(loss_real - k * loss_fake, [opts["discriminator"]]), (loss_fake, [opts["generator"]])])
  nets["control"].update(gamma * loss_real - loss_fake)


def build_atvae():
  nets = {"encoder": BeganEncoder(2 * 64), "decoder": BeganDecoder(64), "discriminator": BeganAutoencoder(64)}
  opts = adams(nets, nets, 5e-5)
  nets["control"] = Controller((1e-3, 1e-5, 1e-5))
  return nets, opts


def atvae_step(nets, opts, batch, alpha=0.3, beta=0.1, gamma=0.1, eta=0.5):
  """Khan et al.: VAE generator, BEGAN discriminator, PID control of k (configs/atvae.py:cifar10)."""
  x = batch["image"]
  mean, logvar = nets["encoder"](x).chunk(2, dim=1)
  x_v, x_g = nets["decoder"](torch.cat([reparameterize(mean, logvar), torch.randn_like(mean)])).chunk(2)
  (l_d, l_v, l_g), (z_d, z_v, _) = energies(nets["discriminator"], x, x_v, x_g)
  l_s, l_e, l_n = l1(z_d, z_v), l1(x, x_v), kl(mean, logvar) / mean.shape[1]
  fakes = l_g + alpha * l_v
  own_update([(l_d - nets["control"].k * fakes, [opts["discriminator"]]),
              (fakes + beta * l_s + gamma * l_e, [opts["decoder"]]),
              (l_n + beta * l_s + gamma * l_e, [opts["encoder"]])])
  nets["control"].update(eta * l_d - fakes)


# --- Wang et al.'s AAE networks (aae, aae_prior) --------------------------------------------------------


class ResidualBlock(nn.Module):
  def __init__(self, c_in, c, stride=1):
    super().__init__()
    self.body = nn.Sequential(norm_act(conv(c_in, c, 3, stride, bias=False)), conv(c, c, 3, bias=False),
                              nn.BatchNorm2d(c))
    self.shortcut = (nn.Sequential(conv(c_in, c, 1, stride, bias=False), nn.BatchNorm2d(c))
                     if stride != 1 or c_in != c else nn.Identity())

  def forward(self, x):
    return F.relu(self.body(x) + self.shortcut(x))


class UpResidualBlock(nn.Module):
  def __init__(self, c_in, c):
    super().__init__()
    self.body = nn.Sequential(norm_act(up(c_in, c, 4)), conv(c, c, 3, bias=False), nn.BatchNorm2d(c))
    self.shortcut = nn.Sequential(up(c_in, c, 2), nn.BatchNorm2d(c))

  def forward(self, x):
    return F.relu(self.body(x) + self.shortcut(x))


class AAEEncoder(nn.Module):
  def __init__(self, code=64, stem=64, channels=(64, 128, 256, 512)):
    super().__init__()
    downsamples = int(math.log2(IMAGE[1] // 8))  # genjax.nets.aae.encoder_downsamples: the stem's S/2 to 4×4
    strides = [2 if 1 <= i <= downsamples else 1 for i in range(len(channels))]
    widths = (stem,) + channels
    self.convs = nn.Sequential(norm_act(conv(IMAGE[0], stem, 3, 2, bias=False)),
                               *[ResidualBlock(a, b, s) for a, b, s in zip(widths, channels, strides)])
    self.fc = nn.Sequential(norm_act(nn.Linear(channels[-1], 2 * code, bias=False)), nn.Linear(2 * code, code))

  def forward(self, x):
    return self.fc(self.convs(x).mean((2, 3)))


class AAEDecoder(nn.Module):
  def __init__(self, code=64, stem=512, channels=(256, 128, 64)):
    super().__init__()
    upsamples = min(int(math.log2(IMAGE[1] // 4)), len(channels))  # genjax.nets.aae.decoder_upsamples
    if upsamples != len(channels):
      raise ValueError(f"a {IMAGE[1]}×{IMAGE[1]} decoder takes at most {upsamples} up-blocks, got {len(channels)}")
    self.stem, self.start = stem, side(upsamples)
    self.fc = nn.Linear(code, self.start**2 * stem, bias=False)
    widths = (stem,) + channels
    self.convs = nn.Sequential(nn.BatchNorm2d(stem), nn.ReLU(),
                               *[UpResidualBlock(a, b) for a, b in zip(widths, channels)],
                               conv(channels[-1], IMAGE[0], 3), nn.Tanh())

  def forward(self, code):
    return self.convs(self.fc(code).view(-1, self.stem, self.start, self.start))


def code_generator(noise=64, code=64):
  return nn.Sequential(norm_act(nn.Linear(noise, 2 * noise, bias=False)), nn.Linear(2 * noise, code, bias=False),
                       nn.BatchNorm1d(code))


class ImageDiscriminator(nn.Module):
  """→ (logit, last conv features F): 4×4/2 convs (BN from the 2nd, LeakyReLU 0.2), FC 1000, FC 1."""

  def __init__(self, channels=(64, 128, 256), hidden=1000):
    super().__init__()
    self.convs = nn.Sequential(conv(IMAGE[0], channels[0], 4, 2), lrelu(),
                               *[norm_act(conv(a, b, 4, 2, bias=False), lrelu) for a, b in zip(channels, channels[1:])])
    self.fc = nn.Sequential(nn.Flatten(), nn.Linear(side(len(channels)) ** 2 * channels[-1], hidden), lrelu(),
                            nn.Linear(hidden, 1))

  def forward(self, x):
    features = self.convs(x)
    return self.fc(features)[:, 0], features


def code_discriminator(code=64, hidden=(1000, 500, 200)):
  widths = (code,) + hidden
  return nn.Sequential(*[m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), lrelu())],
                       nn.Linear(hidden[-1], 1), nn.Flatten(0))


def build_aae():
  nets = {"encoder": AAEEncoder(), "decoder": AAEDecoder(), "code_discriminator": code_discriminator()}
  return nets, adams(nets, nets, 2e-4)


def aae_phase(nets, opts, x, z_c, perceptual):
  """Phase (b): reconstruction (pixels or D_I's features), D_C on [prior codes; enc(x)], encoder as generator."""
  n = x.shape[0]
  e = nets["encoder"](x)
  x_rec = nets["decoder"](e)
  if perceptual:  # D_I's parameters are constants here
    _, feats = nets["image_discriminator"](torch.cat([x, x_rec]))
    x, x_rec = feats.split(n)
  rec = torch.mean((x_rec - x) ** 2)
  real, fake = nets["code_discriminator"](torch.cat([z_c, e])).split(n)
  own_update([(rec + gen_loss(fake), [opts["encoder"]]), (rec, [opts["decoder"]]),
              (dis_loss(real, fake), [opts["code_discriminator"]])])


def aae_step(nets, opts, batch):
  """Makhzani's AAE (configs/aae.py:cifar10): N(0, I) prior, pixel reconstruction, phase (b) alone."""
  x = batch["image"]
  aae_phase(nets, opts, x, torch.randn(x.shape[0], 64), perceptual=False)


def build_aae_prior():
  nets = {"encoder": AAEEncoder(), "decoder": AAEDecoder(), "code_generator": code_generator(),
          "image_discriminator": ImageDiscriminator(), "code_discriminator": code_discriminator()}
  return nets, adams(nets, nets, 2e-4)


def aae_prior_step(nets, opts, batch):
  """Wang et al. (configs/aae_prior.py:cifar10, switches A, B, C on): phase (a) then phase (b)."""
  x = batch["image"]
  n = x.shape[0]
  # (a) prior improvement: CG and the decoder fool D_I with dec(CG(z)).
  fake = nets["decoder"](nets["code_generator"](torch.randn(n, 64)))
  real_logits, fake_logits = nets["image_discriminator"](torch.cat([x, fake]))[0].split(n)
  own_update([(gen_loss(fake_logits), [opts["code_generator"], opts["decoder"]]),
              (dis_loss(real_logits, fake_logits), [opts["image_discriminator"]])])
  # (b) AAE phase with the updated, fixed CG's codes as D_C's real samples.
  with torch.no_grad():
    z_c = nets["code_generator"](torch.randn(n, 64))
  aae_phase(nets, opts, x, z_c, perceptual=True)


# --- vampprior ------------------------------------------------------------------------------------------


def log_normal(z, mean, logvar):
  return -0.5 * torch.sum(math.log(2 * math.pi) + logvar + (z - mean) ** 2 * torch.exp(-logvar), -1)


def build_vampprior(latent=64, k=500):
  nets = {"encoder": LarsenEncoder(latent), "decoder": LarsenDecoder(latent),
          "pixel_log_sigma": nn.Parameter(torch.zeros(())),
          "pseudo_inputs": nn.Parameter(-0.9 + 0.02 * torch.randn(k, *IMAGE))}
  params = [*nets["encoder"].parameters(), *nets["decoder"].parameters(), nets["pixel_log_sigma"],
            nets["pseudo_inputs"]]
  nets["control"] = types.SimpleNamespace(step=0)
  return nets, {"vae": adam(params, 5e-4, 0.9)}


def vampprior_step(nets, opts, batch, warmup_steps=10_000):
  """VAE with p_λ(z) = mean_k q(z | u_k); pseudo-inputs through the encoder in inference mode."""
  x, enc = batch["image"], nets["encoder"]
  beta = min(1.0, nets["control"].step / warmup_steps)
  mean, logvar = enc(x)
  enc.eval()
  prior_mean, prior_logvar = enc(nets["pseudo_inputs"].clamp(-1.0, 1.0))
  enc.train()
  z = reparameterize(mean, logvar)
  x_rec = nets["decoder"](z)
  log_qk = log_normal(z[:, None], prior_mean[None], prior_logvar[None])  # [N, K]
  log_prior = torch.logsumexp(log_qk, -1) - math.log(len(prior_mean))     # log p_λ(z), T&W eq. 9
  vamp_kl = torch.mean(log_normal(z, mean, logvar)) - torch.mean(log_prior)
  single_update(opts["vae"], gaussian_nll(x, x_rec, nets["pixel_log_sigma"]) + beta * vamp_kl)
  nets["control"].step += 1


# --- Lamb et al.'s classifier and VAE (classifier, discreg) ----------------------------------------------


class Classifier(nn.Module):
  """Six bias-free convs (BN, ReLU; dropout after the strided ones), MLP 1000 → 10 (SAME padding at 32×32)."""
  SPECS = ((32, 4, 1), (32, 3, 2), (64, 4, 1), (64, 3, 2), (128, 3, 1), (128, 3, 2))

  def __init__(self, hidden=1000, dropout=0.5):
    super().__init__()
    self.convs, c_in = nn.ModuleList(), IMAGE[0]
    for c, k, s in self.SPECS:
      self.convs.append(nn.Sequential(conv(c_in, c, k, s, bias=False), nn.BatchNorm2d(c)))
      c_in = c
    self.dropout = nn.Dropout(dropout)
    self.mlp = nn.Sequential(norm_act(nn.Linear(side(3) ** 2 * c_in, hidden, bias=False)), nn.Dropout(dropout),
                             nn.Linear(hidden, NUM_CLASSES))

  def forward(self, x, features=False):
    found = []
    for layer, (_, _, s) in zip(self.convs, self.SPECS):
      x = layer(x)
      if s > 1:
        found.append(x)  # conv2, conv4, conv6: BN outputs of the strided convs
      x = F.relu(x)
      if s > 1:
        x = self.dropout(x)
    return found if features else self.mlp(x.flatten(1))


def build_classifier():
  nets = {"classifier": Classifier()}
  return nets, {"classifier": adam(nets["classifier"].parameters(), 2e-3, 0.9)}


def classifier_step(nets, opts, batch):
  single_update(opts["classifier"], F.cross_entropy(nets["classifier"](batch["image"]), batch["label"]))


def discreg_stage(c_in, c, transpose=False):
  """[3×3 conv, 3×3 conv, 2×2/2 conv (transposed)], each BN + ReLU, bias-free."""
  last = up(c, c, 2) if transpose else conv(c, c, 2, 2, bias=False)
  return nn.Sequential(norm_act(conv(c_in, c, 3, bias=False)), norm_act(conv(c, c, 3, bias=False)), norm_act(last))


class DiscregEncoder(nn.Module):
  def __init__(self, latent=500, channels=(32, 64, 128, 256), hidden=1000):
    super().__init__()
    widths = (IMAGE[0],) + channels
    self.convs = nn.Sequential(*[discreg_stage(a, b) for a, b in zip(widths, channels)])
    side = IMAGE[1] // 2 ** len(channels)
    self.fc = nn.Sequential(norm_act(nn.Linear(side * side * channels[-1], hidden, bias=False)),
                            nn.Linear(hidden, 2 * latent))

  def forward(self, x):
    return self.fc(self.convs(x).flatten(1)).chunk(2, dim=1)


class DiscregDecoder(nn.Module):
  def __init__(self, latent=500, channels=(256, 128, 64, 32), hidden=1000):
    super().__init__()
    side = IMAGE[1] // 2 ** len(channels)
    self.shape = (channels[0], side, side)
    self.fc = nn.Sequential(norm_act(nn.Linear(latent, hidden, bias=False)),
                            norm_act(nn.Linear(hidden, side * side * channels[0], bias=False)))
    widths = (channels[0],) + channels
    self.convs = nn.Sequential(*[discreg_stage(a, b, transpose=True) for a, b in zip(widths, channels)],
                               conv(channels[-1], IMAGE[0], 1), nn.Tanh())

  def forward(self, z):
    return self.convs(self.fc(z).view(-1, *self.shape))


def build_discreg():
  frozen = Classifier().eval().requires_grad_(False)
  feature_shapes = [s.shape[1:] for s in frozen(torch.zeros(2, *IMAGE), features=True)]
  nets = {"encoder": DiscregEncoder(), "decoder": DiscregDecoder(),
          "pixel_log_sigma": nn.Parameter(torch.zeros(IMAGE)),
          "feature_log_sigma": nn.ParameterList([torch.zeros(s) for s in feature_shapes]),
          "classifier(frozen)": frozen}
  params = [*nets["encoder"].parameters(), *nets["decoder"].parameters(), nets["pixel_log_sigma"],
            *nets["feature_log_sigma"]]
  return nets, {"vae": adam(params, 2e-3, 0.9)}


def discreg_step(nets, opts, batch):
  """KL + per-pixel-σ NLL + per-element-σ NLL of the frozen classifier's conv2/4/6 features (Lamb et al.)."""
  x = batch["image"]
  n = x.shape[0]
  mean, logvar = nets["encoder"](x)
  x_mean = nets["decoder"](reparameterize(mean, logvar))
  feats = nets["classifier(frozen)"](torch.cat([x, x_mean]), features=True)  # inference mode, constant params
  terms = [gaussian_nll(f[:n], f[n:], log_sigma) for f, log_sigma in zip(feats, nets["feature_log_sigma"])]
  single_update(opts["vae"], kl(mean, logvar) + gaussian_nll(x, x_mean, nets["pixel_log_sigma"]) + sum(terms))


# --- registry and timing --------------------------------------------------------------------------------

# name → (build() -> (nets, opts), step(nets, opts, batch), the cifar10 preset's batch size)
METHODS = {
    "vae": (build_vae, vae_step, 64),
    "vaegan": (build_vaegan, vaegan_step, 64),
    "dcgan": (build_dcgan, dcgan_step, 128),
    "dfm": (build_dfm, dfm_step, 64),
    "began": (build_began, began_step, 16),
    "atvae": (build_atvae, atvae_step, 16),
    "aae_prior": (build_aae_prior, aae_prior_step, 64),
    "aae": (build_aae, aae_step, 64),
    "vampprior": (build_vampprior, vampprior_step, 64),
    "discreg": (build_discreg, discreg_step, 96),
    "classifier": (build_classifier, classifier_step, 96),
}

# genjax's parameter counts per network for configs/<m>.py:cifar10 (leaves of state.params[net], counted
# with jax.eval_shape(method.init_state); discreg's frozen classifier from state.extra["classifier"]).
GENJAX_PARAMS = {
    "vae": {"encoder": 5750848, "decoder": 2434083, "pixel_log_sigma": 1},
    "vaegan": {"encoder": 5750848, "decoder": 2434083, "discriminator": 4662401},
    "dcgan": {"generator": 4941955, "discriminator": 4115457},
    "dfm": {"generator": 479123, "discriminator": 260897, "denoiser": 5249024},
    "began": {"generator": 489539, "discriminator": 2310979},
    "atvae": {"encoder": 2607936, "decoder": 489539, "discriminator": 2310979},
    "aae_prior": {"encoder": 4972160, "decoder": 4744515, "code_generator": 16768,
                  "image_discriminator": 4757265, "code_discriminator": 665901},
    "aae": {"encoder": 4972160, "decoder": 4744515, "code_discriminator": 665901},
    "vampprior": {"encoder": 5357248, "decoder": 1844259, "pixel_log_sigma": 1, "pseudo_inputs": 1536000},
    "discreg": {"encoder": 3549336, "decoder": 3639443, "pixel_log_sigma": 3072, "feature_log_sigma": 14336,
                "classifier(frozen)": 2362474},
    "classifier": {"classifier": 2362474},
}


def param_counts(nets):
  counts = {}
  for name, net in nets.items():
    if isinstance(net, nn.Parameter):
      counts[name] = net.numel()
    elif isinstance(net, nn.Module):
      counts[name] = sum(p.numel() for p in net.parameters())
  return counts


def check_params(method):
  counts = param_counts(METHODS[method][0]()[0])
  expected = GENJAX_PARAMS[method]
  ok = counts == expected
  print(json.dumps({"method": method, "torch": counts, "genjax": expected, "match": ok}))
  return ok


def synthetic_batch(batch_size):
  return {"image": torch.rand(batch_size, *IMAGE) * 2 - 1, "label": torch.randint(0, NUM_CLASSES, (batch_size,))}


def time_method(method, batch_size, steps, device, bf16=False, compile_=False):
  """Steps/s of `method`'s peer step after its warm-up (one step; two under `compile_`, which compile) as a dict."""
  torch.manual_seed(0)
  build, step_fn, preset_batch = METHODS[method]
  batch_size = batch_size or preset_batch
  nets, opts = build()
  params = param_counts(nets)
  if compile_:  # each network compiled (torch.compile's default mode); the step's own code stays eager
    nets = {name: torch.compile(net) if isinstance(net, nn.Module) and not isinstance(net, nn.ParameterList)
            else net for name, net in nets.items()}
  batch = synthetic_batch(batch_size)

  def step():
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
      step_fn(nets, opts, batch)

  synchronize = torch.cuda.synchronize if device.type == "cuda" else lambda: None
  start = time.perf_counter()
  for _ in range(2 if compile_ else 1):  # warm-up; compiled: the first two (a second graph may follow the first)
    step()
  synchronize()
  warmup_s = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(steps):
    step()
  synchronize()
  steps_per_sec = steps / (time.perf_counter() - start)
  return {"peer": "pytorch-compile" if compile_ else "pytorch-eager", "torch": torch.__version__, "method": method,
          "device": str(device), "dtype": "bfloat16" if bf16 else "float32", "image_size": IMAGE[1],
          "batch_size": batch_size, "threads": torch.get_num_threads(), "warmup_s": round(warmup_s, 2),
          "steps_per_sec": round(steps_per_sec, 3), "images_per_sec": round(steps_per_sec * batch_size, 1),
          "params": params}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--method", default="vaegan",
                      help=f"one of {', '.join(METHODS)}, several joined by commas, or all")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--batch_size", type=int, default=64, help="0: the cifar10 preset's batch size")
  parser.add_argument("--image_size", type=int, default=32, help="side of the square 3-channel images")
  parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
  parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
  parser.add_argument("--bf16", action="store_true", help="compute under torch.autocast in bfloat16")
  parser.add_argument("--compile", action="store_true", help="torch.compile each network (default mode)")
  parser.add_argument("--check_params", action="store_true", help="print parameter counts vs genjax's, no training")
  args = parser.parse_args()
  methods = tuple(METHODS) if args.method == "all" else tuple(args.method.split(","))
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    parser.error(f"--method: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)} or all")
  set_image_size(args.image_size)
  torch.manual_seed(0)
  if args.check_params:
    if args.image_size != 32:
      parser.error("--check_params compares with genjax's counts at 32×32 (experiments/gpu_check.py: any size)")
    results = [check_params(m) for m in methods]
    raise SystemExit(0 if all(results) else 1)
  if args.threads:
    torch.set_num_threads(args.threads)
  device = torch.device(args.device)
  torch.set_default_device(device)  # networks, batches and the steps' own random draws are made there
  for method in methods:  # one JSON line each
    print(json.dumps(time_method(method, args.batch_size, args.steps, device, args.bf16, args.compile)), flush=True)


if __name__ == "__main__":
  main()
