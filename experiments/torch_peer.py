"""Eager PyTorch peers of genjax's train steps, for speed ratios measured on the same machine in one run.

  pip install torch==2.13.0          # optional: never a dependency of genjax
  python experiments/torch_peer.py --method=vaegan --steps=10
  python -m genjax.bench --config=configs/vaegan.py:cifar10 --steps=10

Same networks (Larsen et al.'s 32×32 encoder, decoder 192/128/32 and discriminator), batch 64, same losses
and the same per-network gradients (one forward, `torch.autograd.grad` of each network's own loss), RMSProp as
in the genjax configs. Prints one JSON line like genjax.bench.
"""

import argparse
import json
import time

import torch
from torch import nn
import torch.nn.functional as F


def _conv_bn(c_in, c_out, stride):
  return nn.Sequential(nn.Conv2d(c_in, c_out, 5, stride, 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class Encoder(nn.Module):
  def __init__(self, channels=3, latent=128):
    super().__init__()
    self.convs = nn.Sequential(_conv_bn(channels, 64, 2), _conv_bn(64, 128, 2), _conv_bn(128, 256, 2))
    self.fc = nn.Sequential(nn.Linear(256 * 16, 1024, bias=False), nn.BatchNorm1d(1024), nn.ReLU(),
                            nn.Linear(1024, 2 * latent))

  def forward(self, x):
    return self.fc(self.convs(x).flatten(1)).chunk(2, dim=1)


class Decoder(nn.Module):
  def __init__(self, channels=3, latent=128):
    super().__init__()
    self.fc = nn.Sequential(nn.Linear(latent, 4 * 4 * 192, bias=False), nn.BatchNorm1d(4 * 4 * 192), nn.ReLU())
    ups = []
    for c_in, c_out in ((192, 192), (192, 128), (128, 32)):
      ups += [nn.ConvTranspose2d(c_in, c_out, 5, 2, 2, output_padding=1, bias=False), nn.BatchNorm2d(c_out),
              nn.ReLU()]
    self.ups = nn.Sequential(*ups, nn.Conv2d(32, channels, 5, 1, 2))

  def forward(self, z):
    return torch.tanh(self.ups(self.fc(z).view(-1, 192, 4, 4)))


class Discriminator(nn.Module):
  def __init__(self, channels=3):
    super().__init__()
    self.first = nn.Conv2d(channels, 32, 5, 1, 2)
    self.c2, self.c3 = _conv_bn(32, 128, 2), _conv_bn(128, 256, 2)
    self.c4 = nn.Conv2d(256, 256, 5, 2, 2, bias=False)   # Dis_l: its output before BN
    self.rest = nn.Sequential(nn.BatchNorm2d(256), nn.ReLU(), nn.Flatten(), nn.Linear(256 * 16, 512, bias=False),
                              nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 1))

  def forward(self, x):
    features = self.c4(self.c3(self.c2(F.relu(self.first(x)))))
    return self.rest(features)[:, 0], features


def vaegan_step(nets, opts, x, gamma=1e-5):
  """Larsen Algorithm 1 with prior samples only in the GAN (the genjax paper presets' default)."""
  enc, dec, dis = nets
  n = x.shape[0]
  mean, logvar = enc(x)
  z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
  decoded = dec(torch.cat([z, torch.randn_like(mean)]))
  logits, feats = dis(torch.cat([x, decoded]))
  real, recon, prior = logits.split(n)
  kl = torch.mean(torch.sum(0.5 * (logvar.exp() + mean ** 2 - 1 - logvar), 1))
  llike = torch.mean(torch.sum(0.5 * (feats[:n] - feats[n:2 * n]).pow(2).flatten(1), 1))
  bce = F.binary_cross_entropy_with_logits
  dis_loss = bce(real, torch.ones_like(real)) + bce(prior, torch.zeros_like(prior))
  gen_loss = bce(prior, torch.ones_like(prior))
  own = (kl + llike, gamma * llike + gen_loss, dis_loss)
  for i, (net, opt, loss) in enumerate(zip(nets, opts, own)):
    grads = torch.autograd.grad(loss, list(net.parameters()), retain_graph=i < 2)
    for p, g in zip(net.parameters(), grads):
      p.grad = g
  for opt in opts:
    opt.step()


def vae_step(nets, opts, x):
  enc, dec = nets
  mean, logvar = enc(x)
  z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
  x_rec = dec(z)
  nll = torch.mean(torch.sum(0.5 * (x - x_rec).pow(2).flatten(1), 1))
  kl = torch.mean(torch.sum(0.5 * (logvar.exp() + mean ** 2 - 1 - logvar), 1))
  opts[0].zero_grad()
  (nll + kl).backward()
  opts[0].step()


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--method", choices=("vae", "vaegan"), default="vaegan")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
  args = parser.parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  x = torch.rand(args.batch_size, 3, 32, 32) * 2 - 1
  if args.method == "vaegan":
    nets = (Encoder(), Decoder(), Discriminator())
    opts = [torch.optim.RMSprop(n.parameters(), lr=3e-4, alpha=0.9) for n in nets]
    step = lambda: vaegan_step(nets, opts, x)
  else:
    nets = (Encoder(), Decoder())
    opts = [torch.optim.Adam([p for n in nets for p in n.parameters()], lr=1e-3)]
    step = lambda: vae_step(nets, opts, x)
  step()  # warm-up
  start = time.perf_counter()
  for _ in range(args.steps):
    step()
  steps_per_sec = args.steps / (time.perf_counter() - start)
  print(json.dumps({"peer": "pytorch-eager", "torch": torch.__version__, "method": args.method,
                    "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                    "steps_per_sec": round(steps_per_sec, 3),
                    "images_per_sec": round(steps_per_sec * args.batch_size, 1)}))


if __name__ == "__main__":
  main()
