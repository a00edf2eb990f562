"""experiments/compare_methods.py and experiments/aae_prior_ablation.py on tiny runs."""

import importlib.util
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from genjax import config_lib, modes, pretrained, train, validation
from genjax.errors import ConfigError
from tests.helpers import ROOT, load_config, one_device, random_batch


def _load(name: str):
  """An experiments/ script as a module (registered, so that the ablation's `import compare_methods` finds it)."""
  if name not in sys.modules:
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "experiments", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
  return sys.modules[name]


compare_methods = _load("compare_methods")
aae_prior_ablation = _load("aae_prior_ablation")

EXTRACTOR_PATH = "runs/classifier"  # stands for the untrained classifier of the fixture below


@pytest.fixture
def untrained_classifier(monkeypatch):
  """The classifier extractor with random weights at 16×16 (its training is tests/test_classifier.py's)."""
  config = load_config("classifier")
  config.unlock()
  config.data.image_size = 16
  config.lock()
  state = pretrained.classifier_state(config, jax.random.PRNGKey(0), random_batch(n=1))
  trained = pretrained.TrainedClassifier(
      module=state.models["classifier"], meta={"image_shape": [16, 16, 1], "config": {"data": {"name": "digits"}}},
      variables={"params": state.params["classifier"], "batch_stats": state.batch_stats["classifier"]})
  paths = []
  monkeypatch.setattr(pretrained, "load_classifier", lambda path, command=None: paths.append(path) or trained)
  return paths


def tiny(digits_dir, **more):
  return {"model.width": 1 / 16, "data.image_size": 16, "data.data_dir": digits_dir, "batch_size": 8,
          "train.num_image_samples": 4, "train.log_every": 1, "eval.metrics": ("fid", "kid"), **more}


def test_compare_trains_evaluates_and_tabulates_every_method(tmp_path, digits_dir, untrained_classifier,
                                                               monkeypatch):
  workdir = tmp_path / "compare"
  kwargs = dict(steps=2, extractor="classifier", extractor_path=EXTRACTOR_PATH, overrides=tiny(digits_dir),
                mesh=one_device(), log=lambda text: None)
  rows = compare_methods.compare(["vae", "dcgan"], str(workdir), num_samples=16, **kwargs)

  assert [(r["name"], r["method"], r["steps"]) for r in rows] == [("vae", "vae", 2), ("dcgan", "dcgan", 2)]
  assert untrained_classifier == [EXTRACTOR_PATH] * 2  # one extractor for both
  for row in rows:
    metrics = json.loads((workdir / row["name"] / "metrics.json").read_text())
    assert metrics["step"] == 2 and metrics["eval"] == row["eval"]
    assert metrics["eval_setup"]["extractor"] == "classifier" and metrics["eval_setup"]["num_generated"] == 16
    assert np.isfinite(row["eval"]["fid"]) and np.isfinite(row["eval"]["kid"])
  lines = (workdir / "comparison.md").read_text().splitlines()
  assert "classifier (runs/classifier), 16 generated samples" in lines[0]
  header = lines[2].split(" | ")
  assert header[:5] == ["| method", "steps", "steps/s", "fid", "kid"], lines
  table = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines[4:]}
  assert set(table) == {"vae", "dcgan"}
  assert table["vae"][3] == f"{rows[0]['eval']['fid']:.4g}"
  assert table["dcgan"][4] == f"{rows[1]['eval']['kid']:.4g} ± {rows[1]['eval']['kid_std']:.4g}"
  assert json.loads((workdir / "comparison.json").read_text())["rows"] == rows
  figure = np.asarray(Image.open(workdir / "comparison.png"))
  grids = [np.asarray(Image.open(workdir / name / "samples.png")) for name in ("vae", "dcgan")]
  assert figure.shape[1] >= sum(g.shape[1] for g in grids) and figure.shape[0] > grids[0].shape[0]

  # Called again: nothing trains; the same evaluation is reused, another one evaluates the checkpoints again.
  monkeypatch.setattr(train, "train_and_evaluate", lambda *a, **k: pytest.fail("trained again"))
  evaluated = []
  monkeypatch.setattr(modes, "evaluate_checkpoint", lambda config, workdir, **k: evaluated.append(
      (os.path.basename(workdir), config.eval.num_samples)) or {"eval": {"fid": 1.5}})
  assert compare_methods.compare(["vae", "dcgan"], str(workdir), num_samples=16, **kwargs) == rows
  assert not evaluated
  again = compare_methods.compare(["vae", "dcgan"], str(workdir), num_samples=12, **kwargs)
  assert evaluated == [("vae", 12), ("dcgan", 12)]
  assert [(r["eval"], r["steps"], r["steps_per_sec"]) for r in again] == [
      ({"fid": 1.5}, 2, r["steps_per_sec"]) for r in rows]
  assert "12 generated samples" in (workdir / "comparison.md").read_text()


def test_runs_evaluated_differently_are_refused_before_training(tmp_path, digits_dir):
  vae = compare_methods.Run("vae", os.path.join(ROOT, "configs", "vae.py:"), (("eval.num_samples", 8),))
  with pytest.raises(ConfigError, match="'vae' and 'dcgan' would be evaluated differently.*num_samples"):
    compare_methods.compare([vae, "dcgan"], str(tmp_path), overrides=tiny(digits_dir))
  assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("call, message", [
    (lambda: compare_methods.parse_run("nope"), "no config for 'nope'; choose from .*vaegan"),
    (lambda: compare_methods.build_config(compare_methods.parse_run("vae"), [("model.depth", "3")]),
     "unknown config key 'model.depth'"),
    (lambda: compare_methods.build_config(compare_methods.parse_run("vae"), [("model.width", "wide")]),
     "config.model.width .*'wide' as a float"),
    (lambda: compare_methods.compare([], "runs/x"), "--methods is empty"),
    (lambda: compare_methods.compare(["vae", "vae"], "runs/x"), "share a name"),
])
def test_bad_input_is_one_readable_error(call, message):
  with pytest.raises(ConfigError, match=message):
    call()


def test_command_line_values_take_the_type_of_the_key():
  config = compare_methods.build_config(compare_methods.parse_run("vae:mnist"), [
      ("loss.learn_sigma", "false"), ("train.num_steps", "7"), ("loss.beta", "2"),
      ("eval.metrics", '("fid","is")'), ("data.name", "digits")])
  assert config.data.name == "digits" and config.train.num_steps == 7 and config.loss.beta == 2.0
  assert config.loss.learn_sigma is False and config.eval.metrics == ("fid", "is")


def test_command_line_errors_are_one_line(tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
  done = subprocess.run([sys.executable, "experiments/compare_methods.py", "--methods=vae,nope",
                         f"--workdir={tmp_path}", "--config.model.width=0.5"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
  assert done.stderr.strip().splitlines()[-1].startswith("genjax: error: --methods: no config for 'nope'")


# --- Wang et al. Table 3 ---------------------------------------------------------------------------------------

TABLE_3 = {  # row: (learned prior A, perceptual loss B, decoder in the prior phase C)
    "AAE": (False, False, False), "+A": (True, False, False), "+A+B": (True, True, False),
    "+A+B+C": (True, True, True)}


def _switches(config):
  return config.model.learned_prior, config.loss.perceptual, config.loss.decoder_in_prior_phase


def _flat(config, prefix=""):
  out = {}
  for key, value in config.items():
    if hasattr(value, "items"):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def test_ablation_rows_switch_on_a_then_b_then_c():
  runs = aae_prior_ablation.runs()
  assert [r.name for r in runs] == list(TABLE_3)
  configs = {r.name: compare_methods.build_config(r) for r in runs}
  full = config_lib.load_config(os.path.join(ROOT, "configs", "aae_prior.py"))
  makhzani = config_lib.load_config(os.path.join(ROOT, "configs", "aae.py"))
  for name, config in configs.items():
    assert _switches(config) == TABLE_3[name], name
    validation.validate(config, num_devices=1)  # a combination the method takes
    differ = {k for k, v in _flat(config).items() if _flat(full)[k] != v}
    assert differ <= {"model.learned_prior", "loss.perceptual", "loss.decoder_in_prior_phase"}, (name, differ)
  assert _flat(configs["+A+B+C"]) == _flat(full)  # the paper's model: configs/aae_prior.py as it is
  assert _switches(configs["AAE"]) == _switches(makhzani)  # the baseline: configs/aae.py's switches
  assert all(r.config.endswith("aae_prior.py:cifar10") for r in aae_prior_ablation.runs("cifar10"))


def test_ablation_scores_fid_is_and_kid(monkeypatch):
  calls = []
  monkeypatch.setattr(compare_methods, "compare", lambda runs, workdir, **kw: calls.append((runs, workdir, kw)))
  aae_prior_ablation.ablation("runs/ablation", steps=5, overrides={"batch_size": 16})
  (runs, workdir, kwargs), = calls
  assert [r.name for r in runs] == list(TABLE_3) and workdir == "runs/ablation" and kwargs["steps"] == 5
  assert kwargs["overrides"] == [("eval.metrics", ("fid", "is", "kid")), ("batch_size", 16)]
  assert "Table 3" in kwargs["title"]


speed_table = _load("speed_table")


def test_speed_table_times_both_sides_and_divides(tmp_path):
  """genjax.bench for real (tiny batch; also on XLA's convolutions) against a stand-in peer interpreter that
  reports 2 steps/s."""
  peer = tmp_path / "peer_python"
  peer.write_text('#!/bin/sh\necho "{\\"steps_per_sec\\": 2.0}"\n')
  peer.chmod(0o755)
  out = tmp_path / "speed"
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
  env.pop("XLA_FLAGS", None)
  done = subprocess.run([sys.executable, "experiments/speed_table.py", "--methods=vae", "--steps=1",
                         "--batch_size=4", "--peak_size=256", f"--torch_python={peer}", f"--out={out}",
                         "--xla_convs"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  (row,) = json.loads((out / "speed.json").read_text())["speed"]
  assert row["method"] == "vae" and row["batch_size"] == 4 and row["torch_steps_per_sec"] == 2.0
  assert row["ratio"] == round(row["genjax_steps_per_sec"] / 2.0, 2) and row["gflop_per_step"] > 0
  assert row["xla_ratio"] == round(row["genjax_xla_steps_per_sec"] / 2.0, 2)
  assert row["onednn_gain"] == round(row["genjax_steps_per_sec"] / row["genjax_xla_steps_per_sec"], 2)
  assert row["convolutions"] in ("oneDNN", "XLA's")
  peer_share = 100 * 2.0 * row["gflop_per_step"] / row["peak_gflop_per_sec"]
  assert row["peak_gflop_per_sec"] > 0 and row["torch_pct_of_peak"] == round(peer_share)
  assert "| vae | 4 |" in (out / "speed.md").read_text()


def test_gpu_check_dry_run_writes_the_table_with_ratios_mfu_and_parameter_check(tmp_path):
  """experiments/gpu_check.py --dry_run on CPU: genjax.bench in both dtypes, a stand-in PyTorch interpreter
  (its eager and compiled rows, one with genjax's parameter counts and one without), the table."""
  peer = tmp_path / "peer_python"
  peer.write_text(
      "#!/usr/bin/env python3\nimport json, sys\ncompiled = '--compile' in sys.argv\n"
      "params = {'encoder': 1} if compiled else json.load(open(%r))\n"
      "print(json.dumps({'method': 'vae', 'images_per_sec': 2.0, 'params': params}))\n" % str(tmp_path / "params"))
  peer.chmod(0o755)
  from genjax import bench  # the parameter counts genjax's bench reports, for the stand-in's eager rows
  config = config_lib.load_config(os.path.join(ROOT, "configs", "vae.py:cifar10"))  # gpu_check's preset
  config.unlock(); config.update(batch_size=8); config.lock()
  (tmp_path / "params").write_text(json.dumps(bench.benchmark(config, num_steps=1, warmup=0)["num_params"]))
  out = tmp_path / "out"
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  env.pop("XLA_FLAGS", None)
  done = subprocess.run([sys.executable, "experiments/gpu_check.py", "--dry_run", "--methods=vae", "--image_size=32",
                         f"--torch_python={peer}", "--fashion_steps=0", f"--out={out}"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads((out / "gpu_check.json").read_text())
  assert set(results["genjax"]) == {"vae/float32", "vae/bfloat16"} and results["peak"]["bfloat16_tflops"] > 0
  assert set(results["torch"]) == {f"vae/{d}/{v}" for d in ("float32", "bfloat16") for v in ("eager", "compile")}
  rows = {row["dtype"]: row for row in gpu_check.rows_of(results)}
  ours = results["genjax"]["vae/float32"]
  assert rows["float32"]["ratio_eager"] == round(ours["images_per_sec"] / 2.0, 2)
  peak = results["peak"]["bfloat16_tflops"] * 1e12
  assert rows["float32"]["mfu_pct"] == round(100 * ours["flops_per_step"] * ours["steps_per_sec"] / peak, 1)
  assert rows["float32"]["params"].startswith("differ")  # the compiled stand-in counts differ
  assert gpu_check.same_networks(ours["params"], json.loads((tmp_path / "params").read_text()))
  assert "| vae | float32 |" in (out / "gpu_check.md").read_text()


gpu_check = _load("gpu_check")


def test_gpu_check_refuses_unknown_methods_and_needs_an_out_directory():
  for argv, message in ((["--methods=vae,gan9000", "--out=x"], "unknown method(s) gan9000"),
                        (["--methods=vae"], "--out is required")):
    done = subprocess.run([sys.executable, "experiments/gpu_check.py", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr.splitlines()[-1]


def test_speed_table_refuses_unknown_methods():
  done = subprocess.run([sys.executable, "experiments/speed_table.py", "--methods=vae,gan9000"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert done.returncode != 0 and "unknown gan9000" in done.stderr


# --- Fashion-MNIST claims ------------------------------------------------------------------------------------

fashion_claims = _load("fashion_claims")


def test_claims_hold_only_beyond_the_spread_of_three_seeds():
  rows = lambda better, worse: {"a": {"seeds": [0, 1, 2], "lamb": {"fid": better}},
                                "b": {"seeds": [0, 1, 2], "lamb": {"fid": worse}}}
  verdict = lambda better, worse: fashion_claims.claim_verdict(rows(better, worse), "a", "b", "lamb")["verdict"]
  assert verdict([10, 11, 12], [20, 21, 22]) == "holds"          # 10 apart, stds 1 + 1
  assert verdict([10, 12, 14], [13, 15, 17]) == "within the spread"  # 3 apart, stds 2 + 2
  assert verdict([20, 21, 22], [10, 11, 12]) == "reversed"
  two_seeds = {"a": {"seeds": [0, 1], "lamb": {"fid": [1, 2]}}, "b": {"seeds": [0, 1], "lamb": {"fid": [9, 9]}}}
  assert fashion_claims.claim_verdict(two_seeds, "a", "b", "lamb")["verdict"] == "2 seed(s): not enough to say"
  assert fashion_claims.claim_verdict({}, "a", "b", "lamb") == {"verdict": "not run yet"}


def test_every_claim_compares_variants_of_one_budget():
  """Within a claim (and a diagnostic one) both rows train the same number of steps at the same batch size."""
  for _, claim, better, worse in fashion_claims.CLAIMS + fashion_claims.DIAGNOSTIC_CLAIMS:
    budgets = []
    for name in (better, worse):
      variant = fashion_claims.VARIANT[name]
      config = compare_methods.apply_overrides(config_lib.load_config(fashion_claims.config_path(variant.config)),
                                               variant.overrides)
      validation.validate(config, num_devices=1)
      budgets.append((config.train.num_steps, config.batch_size, config.data.name, config.data.image_size))
    assert budgets[0] == budgets[1] and budgets[0][2:] == ("fashion_mnist", 32), (claim, budgets)


def test_scheduler_runs_jobs_in_order_of_their_dependencies_one_per_core(tmp_path):
  log = tmp_path / "order"
  job = lambda name, after=(): fashion_claims.Job(
      name, ["sh", "-c", f"echo {name} >> {log} && touch {tmp_path / name}"], str(tmp_path / name), after)
  jobs = [job("train_a"), job("eval_a", ("train_a",)), job("fail", ()), job("after_fail", ("fail",))]
  jobs[2] = fashion_claims.Job("fail", ["sh", "-c", "exit 3"], str(tmp_path / "fail"))
  failed = fashion_claims.schedule(jobs, cores=[0], log_dir=str(tmp_path / "logs"), log=lambda text: None)
  assert failed == ["fail", "after_fail"]
  assert log.read_text().split() == ["train_a", "eval_a"]
  assert fashion_claims.schedule(jobs[:2], [0], str(tmp_path / "logs"), log=lambda text: None) == []  # all done


def test_a_run_stopped_part_way_is_not_done(tmp_path):
  """A stopped genjax run writes metrics.json at its last step: the job is done only at its full budget."""
  job, = [j for j in fashion_claims.training_jobs(str(tmp_path), [0], ["vae"]) if j.name == "vae_seed0"]
  assert job.steps == config_lib.load_config("vae:fashion").train.num_steps and not job.done()
  os.makedirs(os.path.dirname(job.done_file))
  for step, done in ((job.steps - 1, False), (job.steps, True)):
    with open(job.done_file, "w") as f:
      json.dump({"step": step}, f)
    assert job.done() is done


def test_a_diagnostic_with_its_own_budget_is_done_at_that_budget(tmp_path):
  job, = [j for j in fashion_claims.training_jobs(str(tmp_path), [0], ["vaegan_x3"]) if j.name == "vaegan_x3_seed0"]
  assert job.steps == 3 * config_lib.load_config("vaegan:fashion").train.num_steps
  assert "--config.train.num_steps=4500" in job.command


def test_the_table_gathers_every_evaluated_seed_on_disk(tmp_path):
  """Rows take each seed that has an evaluation, whatever --seeds the last command named; the diagnostic
  claim joins the claims table once both its rows are evaluated."""
  def evaluated(target, fid):
    os.makedirs(target)
    with open(os.path.join(target, fashion_claims.EVAL_FILE), "w") as f:
      json.dump({e: {"eval": {"fid": fid}, "setup": {}} for e in fashion_claims.EXTRACTORS}, f)
  for seed, fid in ((0, 10.0), (1, 12.0), (4, 14.0)):
    evaluated(fashion_claims.run_dir(str(tmp_path), "vae", seed), fid)
  os.makedirs(fashion_claims.run_dir(str(tmp_path), "vae", 5))  # trained, not evaluated: left out
  evaluated(fashion_claims.run_dir(str(tmp_path), "vae_x3", 0), 8.0)
  rows = fashion_claims.gather(str(tmp_path))
  assert rows["vae"]["seeds"] == [0, 1, 4] and rows["vae"]["lamb"]["fid"] == [10.0, 12.0, 14.0]
  table = fashion_claims.markdown(rows, str(tmp_path))
  assert "| VAE | 0,1,4 |" in table and "| VAE, 3× the steps | 0 |" in table and "Larsen et al. 2016, 3× the steps" not in table
  evaluated(fashion_claims.run_dir(str(tmp_path), "vaegan_x3", 0), 9.0)
  table = fashion_claims.markdown(fashion_claims.gather(str(tmp_path)), str(tmp_path))
  assert "| Larsen et al. 2016, 3× the steps | VAE/GAN beats the VAE | 9 vs 8 | 1 seed(s): not enough to say |" in table
  assert "genjax vs pythae" not in table
  for seed, fid in ((0, 30.0), (1, 31.0), (2, 32.0)):  # pythae's VAE, worse beyond the spread
    evaluated(fashion_claims.peer_dir(str(tmp_path), "vae", seed), fid)
  table = fashion_claims.markdown(fashion_claims.gather(str(tmp_path)), str(tmp_path))
  assert "| VAE vs pythae vae | 12 ± 2 vs 31 ± 1 | genjax better |" in table


def test_evaluations_follow_the_runs_they_score():
  jobs = fashion_claims.training_jobs("w", [0], ["vae", "discreg"])
  jobs += fashion_claims.evaluation_jobs("w", [0], ["vae", "discreg"], peers=False)
  order = [j.name for j in fashion_claims.interleaved(jobs)]
  assert order.index("eval_vae_seed0") == order.index("vae_seed0") + 1
  discreg = next(j for j in jobs if j.name == "discreg_seed0")
  assert discreg.after == ("classifier_discreg",) and any("classifier_workdir=w/classifiers/discreg" in a
                                                          for a in discreg.command)
