"""Every config file and preset loads, validates and names its launch command; bad values are refused."""

import glob
import importlib.util
import os

import pytest

from genjax import config_lib, validation
from genjax.errors import ConfigError
from tests.helpers import ROOT, load_config

CONFIG_FILES = sorted(glob.glob(os.path.join(ROOT, "configs", "*.py")))


def _module(path):
  spec = importlib.util.spec_from_file_location(f"config_{os.path.basename(path)[:-3]}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("path", CONFIG_FILES, ids=os.path.basename)
def test_every_preset_validates_and_is_documented(path):
  module = _module(path)
  assert "" in module.PRESETS, "the offline default preset"
  for preset in module.PRESETS:
    config = config_lib.load_config(f"{path}:{preset}")
    validation.validate(config, num_devices=8)
    assert config.data.name == "digits" or preset, "the default preset must run offline"
    command = f"--config=configs/{os.path.basename(path)}" + (f":{preset}" if preset else "")
    assert command in module.__doc__, f"docstring lacks the launch command {command}"


def test_unknown_preset_is_refused():
  with pytest.raises(ConfigError, match="unknown preset 'nope'"):
    config_lib.load_config(os.path.join(ROOT, "configs", "vae.py:nope"))


def test_locked_config_refuses_unknown_keys():
  config = config_lib.load_config(os.path.join(ROOT, "configs", "vae.py"))
  with pytest.raises(AttributeError):
    config.optim.vae.learning_rate = 1.0


@pytest.mark.parametrize("field,value,message", [
    ("batch_size", 12, "not divisible by the 8 devices"),
    ("batch_size", -8, "batch_size must be positive"),
    ("dtype", "float16", "dtype"),
])
def test_bad_values_are_refused(field, value, message):
  config = load_config("vaegan")
  config.unlock()
  config[field] = value
  with pytest.raises(ConfigError, match=message):
    validation.validate(config, num_devices=8)


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.optim.discriminator.update(lr=-1.0), "optim.discriminator.lr"),
    (lambda c: c.optim.encoder.update(lr=float("nan")), "optim.encoder.lr"),
    (lambda c: c.optim.decoder.update(name="adagrad"), "optim.decoder.name"),
    (lambda c: c.loss.update(gamma=-1e-3), "loss.gamma"),
    (lambda c: c.loss.update(margin=float("inf")), "loss.margin"),
    (lambda c: c.model.update(feature_layer=7), "feature_layer"),
    (lambda c: c.data.update(image_size=36), "multiples of 8"),
    (lambda c: c.data.update(name="cifar100"), "unknown dataset"),
    (lambda c: c.train.update(log_every=0), "train.log_every"),
    (lambda c: c.update(method="gan9000"), "unknown method"),
])
def test_bad_method_values_are_refused(edit, message):
  config = load_config("vaegan")
  config.unlock()
  edit(config)
  with pytest.raises(ConfigError, match=message):
    validation.validate(config, num_devices=8)


def test_a_built_wheel_ships_every_package_and_the_configs(tmp_path):
  """pyproject lists genjax's packages by hand (configs/ maps to genjax.configs): a new subpackage left out
  of the list, or configs missing from the wheel, fails here; the installed copy loads a config by name."""
  import subprocess
  import sys
  import tomllib
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
  on_disk = {os.path.relpath(d, ROOT).replace(os.sep, ".") for d, _, files in os.walk(os.path.join(ROOT, "genjax"))
             if "__init__.py" in files}
  assert listed == on_disk | {"genjax.configs"}
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                  str(tmp_path / "wheel"), ROOT], check=True, capture_output=True)
  wheel, = (tmp_path / "wheel").glob("genjax-*.whl")
  subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                  str(wheel)], check=True, capture_output=True)
  probe = ("import genjax, genjax.config_lib as c; assert genjax.__file__.startswith({site!r}), genjax.__file__; "
           "print(c.load_config('vaegan:cifar10').data.name, c.config_names()[:2])").format(site=str(tmp_path / "site"))
  result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split()[0] == "cifar10" and "aae" in result.stdout
