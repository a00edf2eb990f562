"""Every figure of a trained run, as PNGs a person would want to look at.

  python -m genjax.figures --config=configs/<method>.py[:preset] --workdir=DIR
      [--checkpoint=latest|best] [--out=DIR/figures] [--num_codes=500] [--attributes=Smiling,Male,...]

Restores DIR's checkpoint (pass the --config and overrides it was trained with) and writes to --out, as
far as the method allows (what it skips, it says why):
  samples.png          fixed-noise samples (the loop's noise: DIR/samples.png of this step)  `generate`
  reconstructions.png  held-out images over their reconstructions                           `reconstruct`
  interpolations.png   lerp and slerp between the codes of held-out pairs, decoded        `encode`, `decode`
  attributes.png       codes + attribute vectors (mean code with − without), CelebA       `encode`, `decode`
  <name>.png           the method's own grids, e.g. label_grid: one class per row          `sample_grids`
  tsne.png             t-SNE of encoder codes and prior codes (Wang et al. Fig. 11/13)      `sample_codes`
  control.png          k_t, M_global, gates (from DIR's TensorBoard events)
  curves.png           every other training scalar
t-SNE and curves need matplotlib: pip install -e ".[viz]" (in genjax's checkout). `write_figures` does
the same from Python; `Visuals` draws the loop's own grids (samples, reconstructions, the method's).
"""

import dataclasses
import functools
import math
import os
import sys

import jax
import numpy as np
from absl import app, flags, logging

from genjax import data, modes, parallel, streams
from genjax.cli import config_value, parse_flags, user_errors
from genjax.errors import ConfigError, GenjaxError
from genjax.figures import draw

NUM_HELD_OUT = modes.NUM_HELD_OUT         # the loop's reconstruction originals
NUM_PAIRS, NUM_STEPS = 4, 8               # interpolations: 4 pairs, 8 codes from one to the other
NUM_FACES = 6                             # attribute arithmetic: rows
DEFAULT_ATTRIBUTES = ("Smiling", "Eyeglasses", "Male", "Blond_Hair", "Bangs", "Mustache")
BATCH = 256


class Visuals:
  """The loop's grids: fixed-noise samples, reconstructions of fixed held-out images, and the method's own
  grids (label × noise, pseudo-inputs), as uint8 images for TensorBoard and the workdir's PNGs."""

  def __init__(self, method, config, mesh, held_out):
    self.num_samples = config.train.num_image_samples
    self.noise_rng = streams.key(config.seed, "sample_grid")
    self._generate = jax.jit(method.generate, static_argnums=2) if method.generate is not None else None
    self._sample_grids = jax.jit(method.sample_grids) if method.sample_grids is not None else None
    self._reconstruct = jax.jit(method.reconstruct) if method.reconstruct is not None else None
    self.originals = parallel.replicate(held_out["image"], mesh)

  def grids(self, state) -> dict[str, np.ndarray]:
    grids = {}
    if self._generate:
      grids["samples"] = draw.image_grid(jax.device_get(self._generate(state, self.noise_rng, self.num_samples)))
    if self._reconstruct:
      recon = jax.device_get(self._reconstruct(state, self.originals))
      grids["reconstructions"] = draw.pairs_grid(jax.device_get(self.originals), recon)
    if self._sample_grids:
      for name, images in jax.device_get(self._sample_grids(state, self.noise_rng)).items():
        rows, cols = images.shape[:2]
        grids[name] = draw.image_grid(images.reshape((rows * cols,) + images.shape[2:]), ncols=cols)
    return grids


@dataclasses.dataclass
class Figures:
  """What `write_figures` did: {figure: path} written and {figure: reason} skipped."""
  written: dict[str, str] = dataclasses.field(default_factory=dict)
  skipped: dict[str, str] = dataclasses.field(default_factory=dict)


class Skip(Exception):
  """A figure this method, dataset or run cannot have; the message says why."""


def plan(method, config) -> dict[str, str | None]:
  """{figure: None if the method and dataset allow it, else why not} for the checkpoint figures."""
  has = lambda *names: all(getattr(method, n) is not None for n in names)
  no_decode = ("the method exposes no decode(state, codes)" if has("encode") else
               "the method has no encoder")
  attributes = data.registry.get_spec(config.data.name).attributes
  return {
      "samples": None if has("generate") else "the method does not generate images",
      "reconstructions": None if has("reconstruct") else "the method has no reconstruct(state, images)",
      "interpolations": None if has("encode", "decode") else no_decode,
      "attributes": (f"dataset {config.data.name!r} has no attributes" if not attributes else
                     None if has("encode", "decode") else no_decode),
      "tsne": (None if has("encode", "sample_codes") else
               "the method exposes no sample_codes(state, rng, num, condition)" if has("encode") else
               "the method has no encoder"),
  }


def write_figures(config, workdir: str, checkpoint: str = "latest", out: str | None = None, *, mesh=None,
                  num_codes: int = 500, attributes=DEFAULT_ATTRIBUTES) -> Figures:
  """Restores `workdir`'s checkpoint and writes every figure it can to `out` (default workdir/figures)."""
  out = out or os.path.join(workdir, "figures")
  if num_codes < 5:
    raise ConfigError(f"num_codes must be >= 5 (t-SNE), got {num_codes}")
  if data.registry.get_spec(config.data.name).attributes:
    _attribute_indices(attributes)  # a misspelt name fails before the checkpoint is read
  method, state = modes.restore_checkpoint(config, workdir, checkpoint, mesh=mesh)
  _make_dirs(out)
  run = _Run(config, method, state, num_codes, attributes)
  figures = Figures()
  planned = plan(method, config)
  for name, make in run.makers(workdir):
    if planned.get(name):
      figures.skipped[name] = planned[name]
      continue
    logging.info("visualize: %s", name)
    try:
      image = make()
    except (Skip, GenjaxError) as e:
      figures.skipped[name] = str(e)
      continue
    path = os.path.join(out, f"{name}.png")
    if jax.process_index() == 0:
      draw.save_png(path, image)
    figures.written[name] = path
  return figures


class _Run:
  """One restored checkpoint and the data its figures need."""

  def __init__(self, config, method, state, num_codes: int, attributes):
    self.config, self.method, self.state = config, method, state
    self.num_codes, self.attributes = num_codes, tuple(attributes)
    self.head = f"{config.method} · {config.data.name} · step {int(jax.device_get(state.step))}"
    self.rng = streams.key(config.seed, "sample_grid")  # the loop's fixed noise
    self._examples, self._asked = None, 0

  def makers(self, workdir):
    """(figure, function making it) in the order written; the method's own grids after the samples."""
    grids = ((name, functools.partial(self.grid, name)) for name in self.grid_names())
    return [("samples", self.samples), *grids, ("reconstructions", self.reconstructions),
            ("interpolations", self.interpolations), ("attributes", self.attribute_arithmetic),
            ("tsne", self.tsne), ("control", functools.partial(self.curves, workdir, control=True)),
            ("curves", functools.partial(self.curves, workdir, control=False))]

  # --- data ---

  def examples(self, num: int) -> dict[str, np.ndarray]:
    """The first `num` examples of the eval split, in order (every feature; fewer if the split is smaller)."""
    if num > self._asked:
      self._asked, batches, count = num, [], 0
      for batch in data.create_dataset(self.config.data, batch_size=min(num, BATCH), seed=self.config.seed,
                                       split=self.config.data.eval_split, train=False, process_index=0,
                                       process_count=1):
        batches.append(batch)
        count += len(batch["image"])
        if count >= num:
          break
      self._examples = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    return {k: v[:num] for k, v in self._examples.items()}

  def batched(self, fn, *arrays) -> np.ndarray:
    """fn(state, *arrays) jitted, over batches of at most BATCH (the last one padded: one compile)."""
    jitted = _jit(fn)
    n = len(arrays[0])
    size = min(n, BATCH)
    outs = []
    for start in range(0, n, size):
      chunk = [a[start:start + size] for a in arrays]
      short = size - len(chunk[0])
      chunk = [np.concatenate([c, np.repeat(c[-1:], short, 0)]) if short else c for c in chunk]
      outs.append(np.asarray(jax.device_get(jitted(self.state, *chunk)))[:size - short])
    return np.concatenate(outs)

  def encode(self, images) -> np.ndarray:
    return self.batched(self.method.encode, images)

  def decode(self, codes) -> np.ndarray:
    return self.batched(self.method.decode, codes)

  def condition_names(self):
    """Names of the rows of a label grid: classes ("label") or categories of a conditional prior."""
    prior = self.state.models.get("prior")
    condition, dim = getattr(prior, "condition", None), getattr(prior, "condition_dim", 0)
    if condition == "label":
      return [str(i) for i in range(dim)]
    if condition == "categorical":
      return [f"cat. {i}" for i in range(dim)]
    return None

  # --- figures ---

  def samples(self):
    n = self.config.train.num_image_samples
    try:
      images = jax.device_get(_jit(self.method.generate, static_argnums=2)(self.state, self.rng, n))
    except ValueError as e:  # e.g. a prior conditioned on vectors the samples would need
      raise Skip(str(e)) from None
    return draw.panel(draw.grid_rows(images, math.ceil(math.sqrt(n))), f"{self.head}: samples",
                     footer=f"{n} samples from fixed noise (stream 'sample_grid', as the loop's samples.png)")

  def grid_names(self):
    if self.method.sample_grids is None:
      return []
    self._grids = jax.device_get(_jit(self.method.sample_grids)(self.state, self.rng))
    return list(self._grids)

  def grid(self, name):
    images = self._grids[name]
    names = self.condition_names()
    rows = names if names and len(names) == images.shape[0] else ()
    what, note = {"label_grid": ("class x noise", "one class per row, the same noise down each column"),
                  "pseudo_inputs": ("VampPrior pseudo-inputs u_k", "")}.get(name, (name.replace("_", " "), ""))
    return draw.panel(images, f"{self.head}: {what}", row_labels=rows, footer=note)

  def reconstructions(self):
    x = self.examples(NUM_HELD_OUT)["image"]
    rec = self.batched(self.method.reconstruct, x)
    rows = draw.pair_rows(x, rec, ncols=8)
    mse = float(np.mean(np.square(np.clip(rec, -1, 1) - x)))
    return draw.panel(rows, f"{self.head}: reconstructions", ["original", "reconstruction"] * (len(rows) // 2),
                     group_rows=2, footer=f"held-out images ({self.config.data.eval_split} split); "
                                          f"pixel MSE {mse:.4f} on [-1, 1]")

  def interpolations(self):
    x = self.examples(2 * NUM_PAIRS)["image"]
    if len(x) < 2:
      raise Skip("the eval split has fewer than 2 images")
    pairs = len(x) // 2
    codes = self.encode(x)
    flat = codes.reshape(len(codes), -1)
    paths = [draw.interpolate(flat[2 * i], flat[2 * i + 1], NUM_STEPS, kind)
             for i in range(pairs) for kind in ("lerp", "slerp")]
    decoded = self.decode(np.concatenate(paths).reshape((-1,) + codes.shape[1:]))
    decoded = decoded.reshape((2 * pairs, NUM_STEPS) + x.shape[1:])
    ends = np.repeat(x[:2 * pairs].reshape((pairs, 2) + x.shape[1:]), 2, axis=0)  # each pair twice
    rows = np.concatenate([ends[:, :1], decoded, ends[:, 1:]], axis=1)
    ts = [f"{t:.2f}".rstrip("0").rstrip(".") for t in np.linspace(0, 1, NUM_STEPS)]
    return draw.panel(rows, f"{self.head}: interpolations between encoded images",
                     ["lerp", "slerp"] * pairs, ["image A", *(f"t={t}" if t in ("0", "1") else t for t in ts),
                                                 "image B"],
                     group_rows=2, footer="decoded codes (1 − t)·a + t·b (lerp) and along the great circle "
                                          "from a to b (slerp, White 2016); held-out pairs")

  def attribute_arithmetic(self):
    examples = self.examples(max(self.num_codes, NUM_FACES))
    if "attributes" not in examples:
      raise Skip("the dataset's batches have no 'attributes' feature")
    codes = self.encode(examples["image"])
    vectors, counts = draw.attribute_vectors(codes.reshape(len(codes), -1), examples["attributes"])
    chosen = [(name, i) for name, i in zip(self.attributes, _attribute_indices(self.attributes))
              if np.all(np.isfinite(vectors[i]))]
    if not chosen:
      raise Skip(f"none of {', '.join(self.attributes)} is both present and absent in {len(codes)} images")
    faces = codes[:NUM_FACES].reshape(min(NUM_FACES, len(codes)), -1)
    shifted = np.stack([faces] + [faces + vectors[i] for _, i in chosen], axis=1)  # [faces, 1 + A, D]
    decoded = self.decode(shifted.reshape((-1,) + codes.shape[1:]).astype(np.float32))
    decoded = decoded.reshape(shifted.shape[:2] + examples["image"].shape[1:])
    rows = np.concatenate([examples["image"][:len(faces), None], decoded], axis=1)
    return draw.panel(rows, f"{self.head}: attribute vectors added to codes",
                     col_labels=["original", "reconstruction", *(f"+{n.replace('_', ' ')}" for n, _ in chosen)],
                     footer=f"vector = mean code with − mean code without the attribute, over {len(codes)} "
                            f"encoded {self.config.data.eval_split} images (with: "
                            + ", ".join(f"{n} {int(counts[i])}" for n, i in chosen) + ")")

  def tsne(self):
    examples = self.examples(self.num_codes)
    n = len(examples["image"])
    enc = self.encode(examples["image"])
    condition, prior_labels, note = self.prior_condition(examples, n)
    sample = _jit(self.method.sample_codes, static_argnums=2)
    prior = np.asarray(jax.device_get(sample(self.state, streams.key(self.config.seed, "figure_codes"), n, condition)))
    has_labels = data.num_classes(self.config.data.name) > 0 and "label" in examples
    return draw.tsne_figure(enc.reshape(n, -1), prior.reshape(n, -1),
                           encoder_labels=examples["label"] if has_labels else None, prior_labels=prior_labels,
                           prior_note=note, seed=self.config.seed,
                           title=f"{self.head}: t-SNE of encoder codes and prior codes")

  def prior_condition(self, examples, n):
    """(condition for sample_codes, labels to colour the prior's codes by, what the colours mean)."""
    prior = self.state.models.get("prior")
    condition = getattr(prior, "condition", None)
    if condition in ("label", "categorical"):
      labels = np.arange(n) % prior.condition_dim
      return labels, labels, f"coloured by the {'class' if condition == 'label' else 'category'} s given to CG"
    if condition == "vector":
      if "condition" not in examples:
        raise Skip("the prior needs a 'condition' feature the eval split does not have")
      return examples["condition"][:n], None, "conditioned on the held-out images' vectors"
    return None, None, ""

  def curves(self, workdir, control: bool):
    return curves(workdir, self.head, control)


def curves(workdir: str, head: str, control: bool) -> np.ndarray:
  """The run's controllers and gates (`control`), or its other training scalars, from its TensorBoard
  events (no checkpoint needed)."""
  scalars = {t: v for t, v in draw.read_scalars(workdir).items()
             if t not in draw.HIDDEN_TAGS and not t.startswith("_")}
  if not scalars:
    raise Skip(f"no TensorBoard scalars in {workdir}")
  if control:
    order = {t: i for i, t in enumerate(draw.CONTROL_TAGS)}
    tags = sorted((t for t in scalars if draw.is_control(t)), key=lambda t: (order.get(t, len(order)), t))
    if not tags:
      raise Skip("no controller or gate scalars (k, convergence, gate/*) in this run")
    return draw.curves_figure(scalars, tags, f"{head}: controllers and gates")
  tags = sorted((t for t in scalars if not draw.is_control(t)),
                key=lambda t: (t.startswith("eval/"), t.startswith("grad_norm/"), t))
  if not tags:
    raise Skip("no training scalars besides the controllers")
  return draw.curves_figure(scalars, tags, f"{head}: training curves (means over log_every steps)")


@functools.cache
def _jit(fn, static_argnums=()):
  return jax.jit(fn, static_argnums=static_argnums)


def _attribute_indices(names) -> list[int]:
  known = data.CELEB_A_ATTRIBUTES
  unknown = [n for n in names if n not in known]
  if unknown:
    raise ConfigError(f"unknown attribute(s) {', '.join(unknown)}: choose from {', '.join(known)}")
  return [known.index(n) for n in names]


def _make_dirs(path: str) -> None:
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"cannot write figures to {path!r}: {e.strerror or e}") from None


# --- Command line --------------------------------------------------------------------------------------

def define_flags(flag_values=flags.FLAGS, sys_argv: list[str] | None = None) -> dict:
  """The command's flags in `flag_values` (called when the command runs: importing this module defines
  none, so it can be imported next to genjax.main); config_flags finds --config.* overrides in
  `sys_argv` (default sys.argv)."""
  from ml_collections import config_flags
  fv = dict(flag_values=flag_values)
  holders = dict(
      config=config_flags.DEFINE_config_file("config", None, "The run's config, e.g. configs/vae.py.",
                                             lock_config=True, sys_argv=sys_argv, **fv),
      workdir=flags.DEFINE_string("workdir", None, "The run's directory (checkpoints, TensorBoard events).", **fv),
      checkpoint=flags.DEFINE_enum("checkpoint", "latest", ["latest", "best"], "Which checkpoint to draw.", **fv),
      out=flags.DEFINE_string("out", None, "Where the PNGs go (default: <workdir>/figures).", **fv),
      num_codes=flags.DEFINE_integer("num_codes", 500, "Held-out images (and prior samples) for t-SNE and "
                                     "attribute vectors.", lower_bound=5, **fv),
      attributes=flags.DEFINE_list("attributes", list(DEFAULT_ATTRIBUTES), "CelebA attributes to add.", **fv),
  )
  flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)
  return holders


def main(argv, holders, *, mesh=None):
  """Writes the figures and prints what it wrote and skipped; a user's mistake → one line, exit 2."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.get_absl_handler().addFilter(lambda record: "/orbax/" not in record.pathname)
  config = config_value(holders["config"], sys.argv)
  with user_errors():
    figures = write_figures(config, holders["workdir"].value, holders["checkpoint"].value, holders["out"].value,
                            mesh=mesh, num_codes=holders["num_codes"].value,
                            attributes=holders["attributes"].value)
  for path in figures.written.values():
    print(f"wrote {path}")
  for name, why in figures.skipped.items():
    print(f"skipped {name}: {why}")

