"""Every paper's claim on Fashion-MNIST, with seeds, error bars and two independent extractors.

  python experiments/fashion_claims.py --workdir=runs/fashion                      # everything, resumable
  python experiments/fashion_claims.py --workdir=runs/fashion --cores=1 --stage=train
  python experiments/fashion_claims.py --workdir=runs/fashion --stage=table        # gather what is done
  python experiments/fashion_claims.py --workdir=runs/fashion --peer_python=/path/to/pythae-env/bin/python
  python experiments/fashion_claims.py --workdir=runs/fashion --seeds=0 --variants=vae_x3,vaegan_x3,discreg_conv6

Stages (each skips what is already done, so a run killed or stopped part-way continues where it was):
  train     the two evaluation classifiers (Lamb et al.'s convnet and an MLP, configs/classifier.py:fashion
            and :fashion_mlp), discreg's own classifier (another seed: the regularizer never scores itself),
            then every variant below for every seed, each `python -m genjax.main` pinned to one core
            (`taskset -c`), one job per core in --cores; then pythae's VAE, VAEGAN, AAE and VAMP on the same
            data and budget (experiments/pythae_peer.py in --peer_python's environment), when given.
  evaluate  every finished run, and the peer's samples, under both extractors: FID, KID, precision/recall
            in the classifier's last hidden layer, and the class histogram of 10,000 samples.
  table     fashion_claims.md / .json: each variant's mean ± std over the seeds, each claim's difference
            and whether it holds (the means differ by more than the two stds together) in both extractors;
            fashion_samples.png: one sample grid per variant. Every seed evaluated so far is gathered.
Diagnostics (DIAGNOSTICS below: longer budgets, other feature layers) train only when --variants names them.
Budgets: within each claim the runs share steps and batch size (the presets' comments say which).
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from typing import Sequence

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # genjax from this checkout, as `python experiments/...` is run from anywhere

from genjax.cli import parse_flags, user_errors  # noqa: E402  (genjax.train, TensorFlow: only when needed)
from genjax.errors import ConfigError  # noqa: E402

PYTHON = sys.executable
POLL_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class Variant:
  """A row of the table: a config and its overrides (dotted key → value, as --config.<key>=<value>)."""
  name: str
  label: str
  config: str
  overrides: tuple[tuple[str, str], ...] = ()


VARIANTS = [
    Variant("vae", "VAE", "vae:fashion"),
    Variant("vaegan", "VAE/GAN", "vaegan:fashion"),
    Variant("discreg_plain", "VAE (discreg's, no feature terms)", "discreg:fashion", (("discreg.layers", "()"),)),
    Variant("discreg", "discriminative regularization", "discreg:fashion"),
    Variant("began", "BEGAN (P control)", "began:fashion"),
    Variant("atvae_no_vae", "BEGAN* (PID control, no VAE)", "atvae:fashion", (("model.vae", "False"),)),
    Variant("atvae_p", "Khan et al., P control", "atvae:fashion", (("loss.control", "p"),)),
    Variant("atvae_no_ls", "Khan et al., without L_s", "atvae:fashion", (("loss.similarity", "False"),)),
    Variant("atvae", "Khan et al. (VAE + BEGAN* + L_s)", "atvae:fashion"),
    Variant("dcgan", "DCGAN (DFM's G and D)", "dcgan:fashion"),
    Variant("dfm", "denoising feature matching", "dfm:fashion"),
    Variant("aae", "AAE (Makhzani)", "aae:fashion"),
    Variant("aae_prior_A", "+A learned prior", "aae_prior:fashion",
            (("loss.perceptual", "False"), ("loss.decoder_in_prior_phase", "False"))),
    Variant("aae_prior_AB", "+A+B perceptual loss", "aae_prior:fashion", (("loss.decoder_in_prior_phase", "False"),)),
    Variant("aae_prior", "learned-prior AAE (+A+B+C)", "aae_prior:fashion"),
    Variant("vampprior", "VampPrior", "vampprior:fashion"),
]
# Diagnostics of the claims that do not hold here: trained only when `--variants` names them (one seed is
# a hint, not a verdict); their rows and claims join the tables once evaluated.
DIAGNOSTICS = [
    Variant("vae_x3", "VAE, 3× the steps", "vae:fashion", (("train.num_steps", "4500"),)),
    Variant("vaegan_x3", "VAE/GAN, 3× the steps", "vaegan:fashion", (("train.num_steps", "4500"),)),
    Variant("discreg_conv6", "discriminative regularization, conv6 only", "discreg:fashion",
            (("discreg.layers", "('conv6',)"),)),
    # pythae's "mse" is a unit-variance Gaussian: genjax's VAEs with their pixel σ fixed at 1 are its model
    Variant("vae_sigma1", "VAE, pixel σ fixed at 1 (pythae's model)", "vae:fashion", (("loss.learn_sigma", "False"),)),
    Variant("vampprior_sigma1", "VampPrior, pixel σ fixed at 1 (pythae's model)", "vampprior:fashion",
            (("loss.learn_sigma", "False"),)),
]
VARIANT = {v.name: v for v in VARIANTS + DIAGNOSTICS}

# (paper, claim, better, worse): "better" should have the lower FID.
CLAIMS = [
    ("Larsen et al. 2016", "VAE/GAN beats the VAE with the same encoder and decoder", "vaegan", "vae"),
    ("Lamb et al. 2016", "the classifier's feature terms improve the same VAE", "discreg", "discreg_plain"),
    ("Khan et al. 2018", "VAE + BEGAN* + L_s beats BEGAN", "atvae", "began"),
    ("Khan et al. 2018", "PID control beats BEGAN's P control (no VAE)", "atvae_no_vae", "began"),
    ("Khan et al. 2018", "the full model beats its P-controlled ablation", "atvae", "atvae_p"),
    ("Khan et al. 2018", "the full model beats its ablation without L_s", "atvae", "atvae_no_ls"),
    ("Khan et al. 2018", "the full model beats BEGAN* without the VAE", "atvae", "atvae_no_vae"),
    ("Warde-Farley & Bengio 2017", "DFM beats DCGAN with the same G and D", "dfm", "dcgan"),
    ("Wang et al. 2020, Table 1", "the learned prior beats the AAE", "aae_prior", "aae"),
    ("Wang et al. 2020, Table 1", "the learned prior beats the VAE", "aae_prior", "vae"),
    ("Wang et al. 2020, Table 1", "the learned prior beats the VampPrior", "aae_prior", "vampprior"),
    ("Wang et al. 2020, Table 3", "+A beats the AAE", "aae_prior_A", "aae"),
    ("Wang et al. 2020, Table 3", "+A+B beats +A", "aae_prior_AB", "aae_prior_A"),
    ("Wang et al. 2020, Table 3", "+A+B+C beats +A+B", "aae_prior", "aae_prior_AB"),
]
DIAGNOSTIC_CLAIMS = [
    ("Larsen et al. 2016, 3× the steps", "VAE/GAN beats the VAE", "vaegan_x3", "vae_x3"),
    ("Lamb et al. 2016, conv6 only", "the deepest feature term improves the same VAE", "discreg_conv6",
     "discreg_plain"),
]

# The classifiers: the two evaluation extractors, and the one discreg's feature terms use.
CLASSIFIERS = {
    "lamb": ("classifier:fashion", 0),       # extractor A: Lamb et al.'s convnet, its 1000-unit hidden layer
    "mlp": ("classifier:fashion_mlp", 0),    # extractor B: an MLP on the pixels, its second hidden layer
    "discreg": ("classifier:fashion", 1),    # discreg's regularizer: another seed of A's architecture
}
EXTRACTORS = ("lamb", "mlp")
# pythae's models and the genjax variant each is set beside (same networks, data and budget).
PEERS = {"vae": "vae", "vaegan": "vaegan", "aae": "aae", "vamp": "vampprior"}
# genjax against pythae, (genjax row, pythae row): the presets, and where pythae's model differs (its pixel σ
# is fixed at 1) the genjax diagnostic with pythae's model.
PEER_VERDICTS = {"holds": "genjax better", "reversed": "pythae better"}
PEER_CLAIMS = [("vae", "pythae_vae"), ("vae_sigma1", "pythae_vae"), ("vaegan", "pythae_vaegan"),
               ("aae", "pythae_aae"), ("vampprior", "pythae_vamp"), ("vampprior_sigma1", "pythae_vamp")]


# --- Jobs -----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Job:
  """One process of the experiment: its command, the file whose presence means it is done, and the jobs
  it waits for. A training job is done only when its metrics.json says it reached `steps` (a run stopped
  part-way writes one too)."""
  name: str
  command: list[str]
  done_file: str
  after: tuple[str, ...] = ()
  steps: int = 0

  def done(self) -> bool:
    if not os.path.isfile(self.done_file):
      return False
    if not self.steps:
      return True
    with open(self.done_file) as f:
      return json.load(f).get("step", 0) >= self.steps


def config_path(spec: str) -> str:
  method, _, preset = spec.partition(":")
  return f"{os.path.join(ROOT, 'configs', method)}.py:{preset}"


def run_dir(workdir: str, variant: str, seed: int) -> str:
  return os.path.join(workdir, "runs", variant, f"seed{seed}")


def classifier_dir(workdir: str, name: str) -> str:
  return os.path.join(workdir, "classifiers", name)


def train_command(spec: str, workdir: str, seed: int, overrides: Sequence[tuple[str, str]] = (),
                  data_dir: str = "") -> list[str]:
  command = [PYTHON, "-m", "genjax.main", f"--config={config_path(spec)}", f"--workdir={workdir}",
             f"--config.seed={seed}"]
  if data_dir:
    command.append(f"--config.data.data_dir={data_dir}")
  return command + [f"--config.{key}={value}" for key, value in overrides]


def finished(workdir: str) -> str:
  """The file a genjax run writes when it has trained to its last step and evaluated."""
  return os.path.join(workdir, "metrics.json")


def training_jobs(workdir: str, seeds: Sequence[int], variants: Sequence[str], data_dir: str = "") -> list[Job]:
  """Classifiers first, then every variant seed by seed (so a first complete table comes early)."""
  from genjax import config_lib  # pylint: disable=import-outside-toplevel
  steps = lambda spec, overrides=(): int(dict(overrides).get(
      "train.num_steps", config_lib.load_config(config_path(spec)).train.num_steps))
  jobs = []
  for name, (spec, seed) in CLASSIFIERS.items():
    target = classifier_dir(workdir, name)
    jobs.append(Job(f"classifier_{name}", train_command(spec, target, seed, data_dir=data_dir), finished(target),
                    steps=steps(spec)))
  for seed in seeds:
    for variant in variants:
      v, target = VARIANT[variant], run_dir(workdir, variant, seed)
      after = ("classifier_discreg",) if v.config.startswith("discreg") else ()
      jobs.append(Job(f"{variant}_seed{seed}", train_command(v.config, target, seed, variant_overrides(workdir, v),
                                                             data_dir), finished(target), after,
                      steps(v.config, v.overrides)))
  return jobs


def variant_overrides(workdir: str, variant: Variant) -> list[tuple[str, str]]:
  """The variant's overrides, and where discreg finds its classifier."""
  overrides = list(variant.overrides)
  if variant.config.startswith("discreg"):
    overrides.append(("discreg.classifier_workdir", classifier_dir(workdir, "discreg")))
  return overrides


def peer_dir(workdir: str, peer: str, seed: int) -> str:
  return os.path.join(workdir, "pythae", peer, f"seed{seed}")


def peer_jobs(workdir: str, seeds: Sequence[int], peer_python: str) -> list[Job]:
  """pythae's models on the exported data, with the networks, batch, steps and optimizer of the genjax
  variant each is set beside (experiments/pythae_peer.py, in its own environment)."""
  data_file = os.path.join(workdir, "fashion32.npz")
  jobs = []
  for seed in seeds:
    for peer, variant in PEERS.items():
      target = peer_dir(workdir, peer, seed)
      command = [peer_python, os.path.join(ROOT, "experiments", "pythae_peer.py"), f"--method={peer}",
                 f"--data={data_file}", f"--seed={seed}", f"--out={target}", "--threads=1",
                 *peer_flags(VARIANT[variant])]
      jobs.append(Job(f"pythae_{peer}_seed{seed}", command, os.path.join(target, "result.json")))
  return jobs


def peer_flags(variant: Variant) -> list[str]:
  """The genjax config's networks, budget and optimizer as pythae_peer.py's flags."""
  from genjax import config_lib  # pylint: disable=import-outside-toplevel
  config = config_lib.load_config(config_path(variant.config))
  m, slot = config.model, next(iter(config.optim.values()))
  flags_ = [f"--steps={config.train.num_steps}", f"--batch_size={config.batch_size}", f"--width={m.width}",
            f"--latent_dim={m.latent_dim}", f"--lr={slot.lr}", f"--b1={slot.b1}", f"--b2={slot.b2}"]
  for key in ("encoder_channels", "decoder_channels", "discriminator_channels", "encoder_hidden",
              "discriminator_hidden", "encoder_stem", "decoder_stem", "code_discriminator_hidden",
              "num_pseudo_inputs"):
    if key in m:
      value = m[key]
      flags_.append(f"--{key}={','.join(map(str, value)) if isinstance(value, tuple) else value}")
  return flags_


def evaluation_jobs(workdir: str, seeds: Sequence[int], variants: Sequence[str], peers: bool,
                    data_dir: str = "") -> list[Job]:
  """Every run (and the peer's samples) scored under both extractors, after its training and the
  classifiers."""
  classifiers = tuple(f"classifier_{e}" for e in EXTRACTORS)
  targets = [(f"{v}_seed{s}", run_dir(workdir, v, s), v) for s in seeds for v in variants]
  targets += [(f"pythae_{p}_seed{s}", peer_dir(workdir, p, s), v) for s in seeds for p, v in PEERS.items() if peers]
  command = lambda target, variant: [PYTHON, os.path.abspath(__file__), f"--workdir={workdir}", f"--evaluate={target}",
                                     f"--variant={variant}", f"--data_dir={data_dir}"]
  return [Job(f"eval_{name}", command(target, variant), os.path.join(target, EVAL_FILE), classifiers + (name,))
          for name, target, variant in targets]


def interleaved(jobs: Sequence[Job]) -> list[Job]:
  """Each evaluation right after the job it scores, so tables fill in while training goes on."""
  evaluations = {j.after[-1]: j for j in jobs if j.name.startswith("eval_")}
  ordered = []
  for job in jobs:
    if not job.name.startswith("eval_"):
      ordered.append(job)
      if job.name in evaluations:
        ordered.append(evaluations.pop(job.name))
  return ordered + list(evaluations.values())


# --- Evaluation -------------------------------------------------------------------------------------------

EVAL_FILE = "fashion_eval.json"
EVAL_METRICS = ("fid", "kid", "pr", "classes", "is")
NUM_SAMPLES = 10_000  # generated images, against the 10,000 test images


def eval_config(workdir: str, variant: Variant, extractor_dir: str, data_dir: str):
  """The variant's training config with the evaluation of every row: the extractor's embedding, 10,000
  samples against the 10,000 test images."""
  import compare_methods  # pylint: disable=import-outside-toplevel
  from genjax import config_lib  # pylint: disable=import-outside-toplevel
  config = config_lib.load_config(config_path(variant.config))
  overrides = variant_overrides(workdir, variant) + [
      ("eval.extractor", "classifier"), ("eval.extractor_path", extractor_dir), ("eval.metrics", EVAL_METRICS),
      ("eval.num_samples", NUM_SAMPLES), ("eval.batch_size", 500), ("data.data_dir", data_dir)]
  return compare_methods.apply_overrides(config, overrides)


def evaluate(workdir: str, target: str, variant_name: str, data_dir: str) -> dict:
  """Scores one run's final checkpoint, or a peer's samples.npz, under each extractor; writes EVAL_FILE."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from genjax import methods, modes, parallel  # pylint: disable=import-outside-toplevel
  from genjax.evaluation import evaluator as evaluation  # pylint: disable=import-outside-toplevel
  variant, mesh = VARIANT[variant_name], parallel.make_mesh()
  peer_samples = os.path.join(target, "samples.npz")
  state = None
  results = {}
  for extractor in EXTRACTORS:
    config = eval_config(workdir, variant, classifier_dir(workdir, extractor), data_dir)
    method = methods.get_method(config.method)
    scorer = evaluation.Evaluator(method, config, mesh)
    if os.path.isfile(peer_samples):  # the peer's images: scored like genjax's own
      images = np.load(peer_samples)["images"][:NUM_SAMPLES]
      found = scorer.score(np.array_split(images, max(1, len(images) // 500)))
    else:
      if state is None:
        _, state = modes.restore_checkpoint(config, target, mesh=mesh)
      found = scorer(state)
    results[extractor] = {"eval": found, "setup": scorer.setup()}
  with open(os.path.join(target, EVAL_FILE + ".tmp"), "w") as f:
    json.dump(results, f, indent=2)
  os.replace(os.path.join(target, EVAL_FILE + ".tmp"), os.path.join(target, EVAL_FILE))
  return results


# --- The table --------------------------------------------------------------------------------------------

COLUMNS = (("fid", "FID"), ("kid", "KID ×10³"), ("precision", "precision"), ("recall", "recall"),
           ("classes_covered", "classes"), ("class_entropy", "class entropy"))


def gather(workdir: str) -> dict:
  """{row name: {"seeds": [...], extractor: {result: [values]}, "steps_per_sec": [...], ...}} of what is
  evaluated so far, every seed on disk: each variant and diagnostic, and pythae's models as "pythae_<model>"."""
  rows = {}
  targets = [(v.name, run_dir(workdir, v.name, s), s) for v in VARIANTS + DIAGNOSTICS
             for s in seeds_on_disk(os.path.dirname(run_dir(workdir, v.name, 0)))]
  targets += [(f"pythae_{p}", peer_dir(workdir, p, s), s) for p in PEERS
              for s in seeds_on_disk(os.path.dirname(peer_dir(workdir, p, 0)))]
  for name, target, seed in targets:
    record = _read_json(os.path.join(target, EVAL_FILE))
    if record is None:
      continue
    row = rows.setdefault(name, {"seeds": [], "steps_per_sec": [], "setup": {}})
    row["seeds"].append(seed)
    trained = _read_json(os.path.join(target, "metrics.json")) or _read_json(os.path.join(target, "result.json")) or {}
    row["steps_per_sec"].append(trained.get("steps_per_sec"))
    row["steps"] = trained.get("step", trained.get("steps"))
    for extractor, result in record.items():
      values = row.setdefault(extractor, {})
      for key, value in result["eval"].items():
        values.setdefault(key, []).append(value)
      row["setup"][extractor] = result["setup"]
  return rows


def seeds_on_disk(directory: str) -> list[int]:
  """The seeds of directory/seed<N>, in order."""
  names = os.listdir(directory) if os.path.isdir(directory) else []
  return sorted(int(n[4:]) for n in names if n.startswith("seed") and n[4:].isdigit())


def _read_json(path: str) -> dict | None:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def mean_std(values) -> tuple[float, float]:
  import numpy as np  # pylint: disable=import-outside-toplevel
  values = np.asarray([v for v in values if v is not None], np.float64)
  return (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")) if len(values) else (
      float("nan"), float("nan"))


def claim_verdict(rows, better: str, worse: str, extractor: str, key: str = "fid") -> dict:
  """The difference of `key` means (worse − better: positive when the claim's direction holds), and whether
  it exceeds the spread: the two means ± std intervals do not overlap, with at least 3 seeds each."""
  if better not in rows or worse not in rows or extractor not in rows[better] or extractor not in rows[worse]:
    return {"verdict": "not run yet"}
  (m_b, s_b), (m_w, s_w) = mean_std(rows[better][extractor][key]), mean_std(rows[worse][extractor][key])
  n = min(len(rows[better]["seeds"]), len(rows[worse]["seeds"]))
  difference = m_w - m_b
  if n < 3:
    verdict = f"{n} seed(s): not enough to say"
  elif difference > s_b + s_w:
    verdict = "holds"
  elif -difference > s_b + s_w:
    verdict = "reversed"
  else:
    verdict = "within the spread"
  return {"difference": difference, "spread": s_b + s_w, "seeds": n, "verdict": verdict}


def _cell(values, scale: float = 1.0, digits: int = 3) -> str:
  mean, std = mean_std(values)
  if mean != mean:
    return "—"
  text = f"{mean * scale:.{digits}g}"
  return text + (f" ± {std * scale:.2g}" if std == std else "")


def markdown(rows: dict, workdir: str) -> str:
  """The claims table (both extractors), then every row's numbers."""
  setup = next((r["setup"] for r in rows.values() if r["setup"]), {})
  accuracy = {e: (setup.get(e) or {}).get("extractor_accuracy") for e in EXTRACTORS}
  lines = ["Fashion-MNIST 32×32, 10,000 samples against the 10,000 test images; FID/KID/precision/recall in the "
           f"last hidden layer of extractor A (Lamb et al.'s convnet, test accuracy {accuracy['lamb'] or 0:.1%}) and "
           f"extractor B (an MLP on the pixels, {accuracy['mlp'] or 0:.1%}); mean ± std over the seeds listed. A claim "
           "holds when the FID means differ by more than the two stds together, in its direction.", "",
           "| paper | claim | FID A (better vs worse) | verdict A | FID B | verdict B |", "|---|---|---|---|---|---|"]
  for paper, claim, better, worse in CLAIMS + [c for c in DIAGNOSTIC_CLAIMS if c[2] in rows and c[3] in rows]:
    cells = [paper, claim]
    for extractor in EXTRACTORS:
      verdict = claim_verdict(rows, better, worse, extractor)
      pair = (f"{_cell(rows.get(better, {}).get(extractor, {}).get('fid', []))} vs "
              f"{_cell(rows.get(worse, {}).get(extractor, {}).get('fid', []))}") if "difference" in verdict else "—"
      cells += [pair, verdict["verdict"]]
    lines.append("| " + " | ".join(cells) + " |")
  labels = {**{v.name: v.label for v in VARIANTS + DIAGNOSTICS}, **{f"pythae_{p}": f"pythae {p}" for p in PEERS}}
  peers = [(ours, theirs) for ours, theirs in PEER_CLAIMS if ours in rows and theirs in rows]
  if peers:
    lines += ["", "| genjax vs pythae (same networks, data, budget) | FID A (genjax vs pythae) | verdict A | FID B | "
              "verdict B | steps/s (genjax vs pythae) |", "|---|---|---|---|---|---|"]
    for ours, theirs in peers:
      cells = [f"{labels[ours]} vs {labels[theirs]}"]
      for extractor in EXTRACTORS:
        fids = [rows[r][extractor]["fid"] for r in (ours, theirs)]
        verdict = claim_verdict(rows, ours, theirs, extractor)["verdict"]
        cells += [f"{_cell(fids[0])} vs {_cell(fids[1])}", PEER_VERDICTS.get(verdict, verdict)]
      cells.append(f"{_cell(rows[ours]['steps_per_sec'])} vs {_cell(rows[theirs]['steps_per_sec'])}")
      lines.append("| " + " | ".join(cells) + " |")
  lines += ["", "| row | seeds | steps | steps/s | " + " | ".join(f"{label} A" for _, label in COLUMNS)
            + " | FID B | classes B |", "|" + "---|" * (4 + len(COLUMNS) + 2)]
  names = [v.name for v in VARIANTS + DIAGNOSTICS] + [f"pythae_{p}" for p in PEERS]
  for name in names:
    if name not in rows:
      continue
    row, a, b = rows[name], rows[name].get("lamb", {}), rows[name].get("mlp", {})
    cells = [labels[name], ",".join(map(str, row["seeds"])), f"{row.get('steps') or '—'}", _cell(row["steps_per_sec"])]
    cells += [_cell(a.get(key, []), 1e3 if key == "kid" else 1.0) for key, _ in COLUMNS]
    cells += [_cell(b.get("fid", [])), _cell(b.get("classes_covered", []))]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_table(workdir: str, log=print) -> None:
  rows = gather(workdir)
  table = markdown(rows, workdir)
  with open(os.path.join(workdir, "fashion_claims.md"), "w") as f:
    f.write(table)
  verdicts = {f"{better} vs {worse}": {e: claim_verdict(rows, better, worse, e) for e in EXTRACTORS}
              for _, _, better, worse in CLAIMS + DIAGNOSTIC_CLAIMS + [("", "", *p) for p in PEER_CLAIMS]}
  with open(os.path.join(workdir, "fashion_claims.json"), "w") as f:
    json.dump({"rows": rows, "claims": verdicts}, f, indent=2)
  figure = samples_figure(workdir)
  if figure is not None:
    from genjax.figures import draw  # pylint: disable=import-outside-toplevel
    draw.save_png(os.path.join(workdir, "fashion_samples.png"), figure)
  log(table)


def samples_figure(workdir: str):
  """Seed 0's samples.png of every variant and of each pythae model, four to a line, titled."""
  import compare_methods  # pylint: disable=import-outside-toplevel
  rows = [{"name": v.label, "samples": os.path.join(run_dir(workdir, v.name, 0), "samples.png")} for v in VARIANTS]
  rows += [{"name": f"pythae {p}", "samples": peer_samples_png(peer_dir(workdir, p, 0))} for p in PEERS
           if os.path.isfile(os.path.join(peer_dir(workdir, p, 0), "samples.npz"))]
  return compare_methods.samples_figure(rows, "Fashion-MNIST samples (seed 0)", ncols=4)


def peer_samples_png(target: str) -> str:
  """The peer's first 64 samples as an 8×8 samples.png beside its samples.npz (genjax runs write their own)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from genjax.figures import draw  # pylint: disable=import-outside-toplevel
  path = os.path.join(target, "samples.png")
  if not os.path.isfile(path):
    draw.save_png(path, draw.image_grid(np.load(os.path.join(target, "samples.npz"))["images"][:64], 8))
  return path


# --- Scheduling -------------------------------------------------------------------------------------------

def schedule(jobs: Sequence[Job], cores: Sequence[int], log_dir: str, log=print) -> list[str]:
  """Runs the jobs that are not done, one per core (`taskset -c <core>`), each after the jobs it waits for;
  returns the names of those that failed (their log says why)."""
  os.makedirs(log_dir, exist_ok=True)
  pending = [j for j in jobs if not j.done()]
  names = {j.name for j in jobs}
  running: dict[int, tuple[Job, subprocess.Popen, float]] = {}
  failed: list[str] = []
  log(f"{len(jobs) - len(pending)} of {len(jobs)} jobs already done; {len(pending)} to run on cores {list(cores)}")
  try:
    while pending or running:
      for core, (job, process, started) in list(running.items()):
        if process.poll() is None:
          continue
        del running[core]
        minutes = (time.time() - started) / 60
        if process.returncode == 0 and job.done():
          log(f"done   {job.name} ({minutes:.1f} min, core {core})")
        else:
          failed.append(job.name)
          log(f"FAILED {job.name} (exit {process.returncode}, {minutes:.1f} min): see {log_dir}/{job.name}.log")
      blocked = set(failed) | {j.name for j in pending} | {j.name for j, _, _ in running.values()}
      for core in [c for c in cores if c not in running]:
        ready = next((j for j in pending if not (set(j.after) & names & blocked)), None)
        if ready is None:
          break
        pending.remove(ready)
        with open(os.path.join(log_dir, f"{ready.name}.log"), "a") as out:
          process = subprocess.Popen(["taskset", "-c", str(core)] + ready.command, stdout=out,
                                     stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        running[core] = (ready, process, time.time())
        log(f"start  {ready.name} on core {core}")
        blocked = set(failed) | {j.name for j in pending} | {j.name for j, _, _ in running.values()}
      if not running and pending:  # everything left waits for a failed job
        for job in pending:
          failed.append(job.name)
          log(f"SKIPPED {job.name}: it waits for {', '.join(set(job.after) & set(failed))}")
        break
      time.sleep(POLL_SECONDS)
  finally:  # interrupted: stop the children too (a restart resumes them from their checkpoints)
    for _, process, _ in running.values():
      if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
  return failed


# --- Command line -----------------------------------------------------------------------------------------

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory of every run, the classifiers and the tables.", required=True)
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every variant.")
flags.DEFINE_list("cores", ["0", "1"], "CPU cores to run jobs on, one job per core.")
flags.DEFINE_list("variants", [v.name for v in VARIANTS], "Variants to train and evaluate (default: every "
                  "row of the claims; the diagnostics only when named).")
flags.DEFINE_enum("stage", "all", ["train", "evaluate", "table", "all"], "What to do.")
flags.DEFINE_string("data_dir", "", "TFDS data_dir of every run (default: TFDS's, ~/tensorflow_datasets).")
flags.DEFINE_string("peer_python", "", "The Python of an environment with torch and pythae: runs pythae's VAE, "
                    "VAEGAN, AAE and VAMP beside genjax's (empty: no peer).")
flags.DEFINE_string("evaluate", "", "(internal) score the run or peer output in this directory.")
flags.DEFINE_string("variant", "", "(internal) the variant of --evaluate.")


def _data_config(data_dir: str):
  import ml_collections  # pylint: disable=import-outside-toplevel
  from genjax import config_lib  # pylint: disable=import-outside-toplevel
  config = config_lib.base_config("vae").data
  config.update(name="fashion_mnist", data_dir=data_dir)
  return ml_collections.ConfigDict(config.to_dict())


def prepare_data(workdir: str, data_dir: str, export: bool) -> None:
  """Reads Fashion-MNIST once, so that missing files stop the experiment before any job starts, and (for the
  peer) writes the training split as genjax's pipeline gives it to fashion32.npz."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from genjax import data  # pylint: disable=import-outside-toplevel
  config = _data_config(data_dir)
  path = os.path.join(workdir, "fashion32.npz")
  if not export or os.path.isfile(path):
    next(iter(data.create_dataset(config, batch_size=1, seed=0, train=False)))
    return
  batches = list(data.create_dataset(config, batch_size=10_000, seed=0, split="train", train=False))
  os.makedirs(workdir, exist_ok=True)
  np.savez(path + ".tmp.npz", train_images=np.concatenate([b["image"] for b in batches]),
           train_labels=np.concatenate([b["label"] for b in batches]))
  os.replace(path + ".tmp.npz", path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  with user_errors():
    unknown = [v for v in FLAGS.variants if v not in VARIANT]
    if unknown:
      raise ConfigError(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANT)}")
    if FLAGS.evaluate:
      evaluate(FLAGS.workdir, FLAGS.evaluate, FLAGS.variant, FLAGS.data_dir)
      return
    seeds, cores = [int(s) for s in FLAGS.seeds], [int(c) for c in FLAGS.cores]
    log = lambda text: print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)
    jobs = []
    if FLAGS.stage in ("train", "all"):
      jobs += training_jobs(FLAGS.workdir, seeds, FLAGS.variants, FLAGS.data_dir)
      jobs += peer_jobs(FLAGS.workdir, seeds, FLAGS.peer_python) if FLAGS.peer_python else []
    if FLAGS.stage in ("evaluate", "all"):
      jobs += evaluation_jobs(FLAGS.workdir, seeds, FLAGS.variants, bool(FLAGS.peer_python), FLAGS.data_dir)
    if jobs:
      prepare_data(FLAGS.workdir, FLAGS.data_dir, export=bool(FLAGS.peer_python))
      failed = schedule(interleaved(jobs), cores, os.path.join(FLAGS.workdir, "logs"), log)
      if failed:
        log(f"{len(failed)} job(s) failed: {', '.join(failed)}")
    write_table(FLAGS.workdir, log)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
