"""Every paper's claim on Fashion-MNIST, with seeds, error bars and two independent extractors.

  python experiments/fashion_claims.py --workdir=runs/fashion                      # everything, resumable
  python experiments/fashion_claims.py --workdir=runs/fashion --cores=1 --stage=train
  python experiments/fashion_claims.py --workdir=runs/fashion --stage=table        # gather what is done
  python experiments/fashion_claims.py --workdir=runs/fashion --peer_python=/path/to/pythae-env/bin/python

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
            fashion_samples.png: one sample grid per variant.
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
VARIANT = {v.name: v for v in VARIANTS}

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

# The classifiers: the two evaluation extractors, and the one discreg's feature terms use.
CLASSIFIERS = {
    "lamb": ("classifier:fashion", 0),       # extractor A: Lamb et al.'s convnet, its 1000-unit hidden layer
    "mlp": ("classifier:fashion_mlp", 0),    # extractor B: an MLP on the pixels, its second hidden layer
    "discreg": ("classifier:fashion", 1),    # discreg's regularizer: another seed of A's architecture
}
EXTRACTORS = ("lamb", "mlp")
# pythae's models and the genjax variant each is set beside (same networks, data and budget).
PEERS = {"vae": "vae", "vaegan": "vaegan", "aae": "aae", "vamp": "vampprior"}


# --- Jobs -----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Job:
  """One process of the experiment: its command, the file whose presence means it is done, and the jobs
  it waits for."""
  name: str
  command: list[str]
  done_file: str
  after: tuple[str, ...] = ()

  def done(self) -> bool:
    return os.path.isfile(self.done_file)


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
  jobs = []
  for name, (spec, seed) in CLASSIFIERS.items():
    target = classifier_dir(workdir, name)
    jobs.append(Job(f"classifier_{name}", train_command(spec, target, seed, data_dir=data_dir), finished(target)))
  for seed in seeds:
    for variant in variants:
      v, target = VARIANT[variant], run_dir(workdir, variant, seed)
      overrides, after = list(v.overrides), ()
      if v.config.startswith("discreg") and ("discreg.layers", "()") not in v.overrides:
        overrides.append(("discreg.classifier_workdir", classifier_dir(workdir, "discreg")))
        after = ("classifier_discreg",)
      jobs.append(Job(f"{variant}_seed{seed}", train_command(v.config, target, seed, overrides, data_dir),
                      finished(target), after))
  return jobs


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
flags.DEFINE_list("variants", [v.name for v in VARIANTS], "Variants to train (default: all).")
flags.DEFINE_enum("stage", "all", ["train", "evaluate", "table", "all"], "What to do.")
flags.DEFINE_string("data_dir", "", "TFDS data_dir of every run (default: TFDS's, ~/tensorflow_datasets).")


def _prepare_data(data_dir: str) -> None:
  """Prepares Fashion-MNIST once, before parallel jobs would race to."""
  import ml_collections  # pylint: disable=import-outside-toplevel
  from genjax import config_lib, data  # pylint: disable=import-outside-toplevel
  config = config_lib.base_config("vae").data
  config.update(name="fashion_mnist", data_dir=data_dir)
  next(iter(data.create_dataset(ml_collections.ConfigDict(config.to_dict()), batch_size=1, seed=0, train=False)))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  with user_errors():
    unknown = [v for v in FLAGS.variants if v not in VARIANT]
    if unknown:
      raise ConfigError(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANT)}")
    seeds, cores = [int(s) for s in FLAGS.seeds], [int(c) for c in FLAGS.cores]
    log = lambda text: print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)
    if FLAGS.stage in ("train", "all"):
      _prepare_data(FLAGS.data_dir)
      jobs = training_jobs(FLAGS.workdir, seeds, FLAGS.variants, FLAGS.data_dir)
      failed = schedule(jobs, cores, os.path.join(FLAGS.workdir, "logs"), log)
      if failed:
        log(f"{len(failed)} job(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
