"""A fingerprint of every method's short run: the SHA-256 of each trained parameter, for "this refactor
changed no number" checks.

  python experiments/params_fingerprint.py --out=before.json          # on the old code
  python experiments/params_fingerprint.py --out=after.json --compare=before.json

Each run is a preset of configs/<method>.py on the offline digits at 16×16, width 1/16, batch 8, through
genjax.train.train_and_evaluate on one device for --steps steps (so the loop, the data order, the step
and the optimizers are all in it); discreg's classifier is trained first the same way. Writes
{run: {array path: sha256}} and, with --compare, lists every array that differs (exit status 1).
"""

import hashlib
import json
import os
import sys
import tempfile

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from genjax import config_lib, parallel, train  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Where to write the fingerprint (JSON).", required=True)
flags.DEFINE_string("compare", None, "A fingerprint to compare with.")
flags.DEFINE_integer("steps", 6, "Steps of every run.")

# (run name, config spec, overrides): every method, and the branches a refactor could miss.
RUNS = [
    ("classifier", "classifier", {}),
    ("vae", "vae", {}),
    ("vae_fixed_sigma", "vae", {"loss.learn_sigma": False}),
    ("vaegan", "vaegan", {}),
    ("vaegan_no_gating_prior_only", "vaegan", {"loss.gating": False, "loss.recon_in_gan": False}),
    ("dcgan", "dcgan", {}),
    ("dfm", "dfm", {}),
    ("began", "began", {}),
    ("atvae", "atvae", {}),
    ("atvae_p_no_ls", "atvae", {"loss.control": "p", "loss.similarity": False}),
    ("atvae_no_vae", "atvae", {"model.vae": False}),
    ("aae_prior", "aae_prior", {}),
    ("aae_prior_supervised", "aae_prior:supervised_digits", {}),
    ("aae_prior_unsupervised", "aae_prior:unsupervised_digits", {}),
    ("aae", "aae", {}),
    ("aae_mixture", "aae", {"model.prior": "mixture"}),
    ("vampprior", "vampprior", {"loss.warmup_steps": 3}),
    ("discreg", "discreg", {}),
    ("discreg_plain", "discreg", {"discreg.layers": ()}),
]


def tiny_config(spec: str, overrides: dict, steps: int, data_dir: str):
  method, _, preset = spec.partition(":")
  config = config_lib.load_config(os.path.join(ROOT, "configs", f"{method}.py:{preset}"))
  config.unlock()
  config.model.width = 1 / 16
  if "latent_dim" in config.model and config.model.get("condition", "none") == "none":
    config.model.latent_dim = 8
  config.batch_size = 8
  config.data.update(image_size=16, data_dir=data_dir)
  config.train.update(num_steps=steps, log_every=steps, image_every=steps, checkpoint_every=steps,
                      num_image_samples=4)
  for key, value in overrides.items():
    section, _, leaf = key.rpartition(".")
    config[section][leaf] = value
  config.lock()
  return config


def fingerprint(state) -> dict[str, str]:
  arrays = {"params": state.params, "batch_stats": state.batch_stats, "opt_state": state.opt_state,
            "extra": state.extra, "step": state.step}
  return {jax.tree_util.keystr(path): hashlib.sha256(np.ascontiguousarray(jax.device_get(leaf)).tobytes()).hexdigest()
          for path, leaf in jax.tree_util.tree_leaves_with_path(arrays)}


def main(argv):
  del argv
  mesh = parallel.make_mesh(jax.devices()[:1])
  results = {}
  with tempfile.TemporaryDirectory() as scratch:
    data_dir = os.path.join(scratch, "tfds")
    for name, spec, overrides in RUNS:
      if spec == "discreg" and "discreg.layers" not in overrides:
        overrides = {**overrides, "discreg.classifier_workdir": os.path.join(scratch, "classifier")}
      config = tiny_config(spec, overrides, FLAGS.steps, data_dir)
      state = train.train_and_evaluate(config, os.path.join(scratch, name), mesh=mesh)
      results[name] = fingerprint(state)
      print(f"{name}: {len(results[name])} arrays", flush=True)
  with open(FLAGS.out, "w") as f:
    json.dump(results, f, indent=1, sort_keys=True)
  if FLAGS.compare:
    with open(FLAGS.compare) as f:
      before = json.load(f)
    differ = [f"{run}{path}" for run in before for path in before[run]
              if results.get(run, {}).get(path) != before[run][path]]
    differ += [f"{run} (missing before)" for run in results if run not in before]
    print("\n".join(differ) if differ else f"identical: {sum(map(len, before.values()))} arrays of {len(before)} runs")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
  app.run(main)
