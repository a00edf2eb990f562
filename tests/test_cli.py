"""Bad input at the command line: one readable line, a non-zero exit, nothing in the workdir touched."""

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

TINY = ["--config.model.width=0.0625", "--config.batch_size=8", "--config.train.num_steps=1",
        "--config.train.num_image_samples=4"]


def _run(args, workdir):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)  # one device, as a user would have
  return subprocess.run([sys.executable, "-m", "genjax.main", f"--workdir={workdir}", *args],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _snapshot(path):
  return sorted((os.path.relpath(os.path.join(d, f), path), os.path.getmtime(os.path.join(d, f)))
                for d, _, files in os.walk(path) for f in files)


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory):
  """A workdir holding a finished one-step VAE run on digits."""
  workdir = tmp_path_factory.mktemp("vae_run")
  data_dir = tmp_path_factory.mktemp("tfds")
  result = _run(["--config=configs/vae.py", *TINY, f"--config.data.data_dir={data_dir}"], workdir)
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir, data_dir


CASES = {
    "unknown method": (["--config=configs/vae.py", "--config.method=gan9000"], "unknown method 'gan9000'"),
    "unknown dataset": (["--config=configs/vae.py", "--config.data.name=imagenet9"], "imagenet9"),
    "unknown preset": (["--config=configs/vae.py:cifar11"], "unknown preset 'cifar11'"),
    "missing config file": (["--config=configs/nope.py"], "configs/nope.py"),
    "unknown preset without overrides": (["--config=configs/vaegan.py:cifar11"], "cifar11"),
    "unknown key": (["--config=configs/vae.py", "--config.optim.vae.learning_rate=1e-3"], "unknown config key"),
    "misspelt key": (["--config=configs/vae.py", "--config.model.width=0.5", "--config.model.widthx=0.5"],
                     "unknown config key 'model.widthx' (did you mean 'width'?)"),
    "wrong type": (["--config=configs/vae.py", "--config.batch_size=lots"], "batch_size"),
    "image size": (["--config=configs/vae.py", "--config.data.image_size=20"], "20"),
    "non-positive batch": (["--config=configs/vae.py", "--config.batch_size=0"], "batch_size"),
    "another method's checkpoint": (["--config=configs/vaegan.py"], "method='vae'"),
    "checkpoint of another width": (["--config=configs/vae.py", *TINY, "--config.model.width=0.125"],
                                    "is (192,) there and (384,) here"),
    "checkpoint of another optimizer": (["--config=configs/vae.py", *TINY, "--config.optim.vae.name=sgd"],
                                        "does not match this config's networks: opt_state/vae/"),
    "unknown split": (["--config=configs/vae.py", *TINY, "--config.data.split=trian"], "no split 'trian'"),
    "negative loss weight": (["--config=configs/vae.py", *TINY, "--config.loss.beta=-1.0"], "loss.beta"),
    "zero latent size": (["--config=configs/vae.py", *TINY, "--config.model.latent_dim=0"], "model.latent_dim"),
    "coordinator alone": (["--config=configs/vae.py", *TINY, "--coordinator_address=localhost:1"],
                          "--coordinator_address needs --num_processes and --process_id"),
    "process id too large": (["--config=configs/vae.py", *TINY, "--coordinator_address=localhost:1",
                              "--num_processes=2", "--process_id=2"], "--process_id 2 is not below --num_processes 2"),
}


def _assert_refused(args, workdir, needle, *watched):
  """One `genjax: error:` line holding `needle`, exit 2, no traceback, and the `watched` dirs left as they were."""
  before = [_snapshot(w) for w in watched]
  result = _run(args, workdir)
  assert result.returncode == 2
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("genjax: error: ") and needle in last, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert [_snapshot(w) for w in watched] == before


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_leaves_the_workdir_alone(case, trained_vae):
  workdir, data_dir = trained_vae
  args, needle = CASES[case]
  if "without overrides" not in case and "config file" not in case:
    args = [*args, f"--config.data.data_dir={data_dir}"]  # never prepare digits outside the test's dirs
  _assert_refused(args, workdir, needle, workdir)


@pytest.fixture(scope="module")
def trained_classifier(trained_vae, tmp_path_factory):
  """A one-step classifier on 16×16 digits."""
  workdir = tmp_path_factory.mktemp("classifier_run")
  result = _run(["--config=configs/classifier.py", *TINY, "--config.data.image_size=16",
                 f"--config.data.data_dir={trained_vae[1]}"], workdir)
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def test_bad_workdirs_are_refused(trained_vae, trained_classifier, tmp_path):
  """A workdir that cannot be created, and discreg classifiers that are not a matching classifier run."""
  vae_run, data_dir = trained_vae
  (tmp_path / "file").write_text("")
  discreg = ["--config=configs/discreg.py", *TINY, f"--config.data.data_dir={data_dir}"]
  cases = [
      (["--config=configs/vae.py", *TINY], tmp_path / "file" / "run", "is not writable"),
      ([*discreg, f"--config.discreg.classifier_workdir={vae_run}"], tmp_path / "a",
       "holds a 'vae' checkpoint, not a classifier"),
      ([*discreg, f"--config.discreg.classifier_workdir={trained_classifier}"], tmp_path / "b",
       "was trained on digits images of shape (16, 16, 1), but this run models digits images of shape "
       "(32, 32, 1)"),
  ]
  for args, workdir, needle in cases:
    _assert_refused(args, workdir, needle, vae_run, trained_classifier)


def test_help_answers_without_loading_jax_and_lists_methods_presets_and_overrides():
  result = subprocess.run([sys.executable, "-X", "importtime", "-m", "genjax.main", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "vaegan       presets '', 'fashion', 'mnist'" in result.stdout
  assert "--config.<key>=<value>" in result.stdout and "--workdir" in result.stdout
  imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
  assert not {"jax", "tensorflow", "flax"} & imported, "--help imports heavy libraries"


def test_a_misspelt_config_path_names_the_nearest_config(tmp_path):
  _assert_refused(["--config=configs/vaegn.py"], tmp_path / "run", "did you mean configs/vaegan.py?")
  assert not (tmp_path / "run").exists()


def test_rerunning_a_finished_run_changes_nothing_and_says_so(trained_vae):
  workdir, data_dir = trained_vae
  before = _snapshot(workdir)
  result = _run(["--config=vae", *TINY, f"--config.data.data_dir={data_dir}"], workdir)  # by method name
  assert result.returncode == 0, result.stderr[-2000:]
  assert "already trained to step 1 and evaluated: nothing to do" in result.stderr
  assert _snapshot(workdir) == before


def test_an_unprepared_dataset_leaves_no_workdir_behind(tmp_path):
  result = _run(["--config=configs/vae.py", *TINY, "--config.data.name=mnist",
                 f"--config.data.data_dir={tmp_path / 'empty_tfds'}"], tmp_path / "run")
  assert result.returncode == 2 and "is not prepared" in result.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "run").exists()


def test_a_second_ctrl_c_is_one_line_and_exit_130(capsys):
  from genjax import cli
  from genjax.interrupt import Interrupted
  with pytest.raises(SystemExit) as exit_info:
    with cli.user_errors():
      raise Interrupted
  assert exit_info.value.code == 130
  assert capsys.readouterr().err.strip().splitlines() == [
      "genjax: stopped without saving; the checkpoints already written are kept"]


@pytest.mark.parametrize("bug", [AttributeError("no attribute 'foo'"), KeyError("foo"), OSError("disk full")])
def test_a_bug_during_the_run_keeps_its_traceback(bug):
  """Only config_flags' errors are reported as config mistakes: the same exception types raised while
  training are bugs (or the machine's trouble) and must not turn into "unknown config key"."""
  from genjax import cli
  with pytest.raises(type(bug)):
    with cli.user_errors():
      raise bug
