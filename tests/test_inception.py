"""FID Inception: parameter count, forward pass against PyTorch reference values, weights loader, resize."""

import functools
import sys

import jax
import numpy as np
import pytest

from genjax.evaluation import inception

# sum(p.numel() for p in model.parameters()) and the BatchNorm running mean + var entries of pytorch-fid's
# fid_inception_v3() architecture (torchvision Inception3, num_classes=1008, aux_logits=False, FID blocks),
# built in PyTorch 2.13 (CPU).
REFERENCE_NUM_PARAMS = 23_850_960
REFERENCE_NUM_BATCH_STATS = 34_432

# Outputs of that PyTorch network (pytorch-fid's forward: bilinear resize to 299 with align_corners=False,
# then the [0, 1] -> [-1, 1] scaling) with the weights of `seeded_state_dict()` loaded by
# `load_state_dict`, on `reference_images()` (grayscale repeated to 3 channels): images 0 and 1,
# pool[:, :4], logits[:, :4], and sums over all 2048 / 1008 entries.
REFERENCE_POOL = [[0.1203742, 2.736246, 1.571444, 3.416769], [0.1173662, 2.903127, 1.694039, 3.654423]]
REFERENCE_LOGITS = [[1.944806, 2.056113, 1.579761, 0.6474195], [1.93808, 2.087771, 1.670095, 0.5961937]]
REFERENCE_POOL_SUM = [2391.3038, 2520.9925]
REFERENCE_LOGITS_SUM = [5.4008107, 10.62465]


@functools.lru_cache(maxsize=None)
def seeded_state_dict(seed=0) -> dict[str, np.ndarray]:
  """Random FID Inception weights in pytorch-fid's names and torch layouts (He-scaled, so activations stay O(1))."""
  rng = np.random.default_rng(seed)
  shapes = inception.parameter_shapes()
  weights = {}
  for name in sorted(shapes):
    shape = shapes[name]
    if name.endswith("running_var"):
      value = rng.uniform(0.5, 1.5, shape)
    elif name.endswith("bn.weight"):
      value = rng.uniform(0.8, 1.2, shape)
    elif len(shape) > 1:  # Conv OIHW or fc [out, in].
      value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
    else:  # BatchNorm bias and running mean, fc bias.
      value = 0.1 * rng.standard_normal(shape)
    weights[name] = value.astype(np.float32)
  return weights


def reference_images() -> np.ndarray:
  """Two 16×16 grayscale images in [-1, 1] (upsampled to 299 inside the network)."""
  return np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("inception") / "inception_fid.npz")
  np.savez(path, **seeded_state_dict())
  return path


def test_parameter_count():
  shapes = inception.variable_shapes()
  count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
  assert count(shapes["params"]) == REFERENCE_NUM_PARAMS
  assert count(shapes["batch_stats"]) == REFERENCE_NUM_BATCH_STATS


def test_forward_matches_pytorch_reference_and_is_deterministic(weights_file):
  images = reference_images()
  out = jax.jit(inception.InceptionV3().apply)(inception.load_inception_params(weights_file), images)
  assert out["pool"].shape == (2, 2048) and out["logits"].shape == (2, 1008)
  np.testing.assert_allclose(out["pool"][:, :4], REFERENCE_POOL, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out["logits"][:, :4], REFERENCE_LOGITS, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(out["pool"].sum(1), REFERENCE_POOL_SUM, rtol=1e-4)
  np.testing.assert_allclose(out["logits"].sum(1), REFERENCE_LOGITS_SUM, rtol=1e-4, atol=1e-3)
  extractor = inception.inception_extractor(weights_file)
  features = extractor.features(images)
  np.testing.assert_array_equal(features["pool"], out["pool"])
  again = extractor.features(images)
  np.testing.assert_array_equal(again["pool"], features["pool"])
  np.testing.assert_array_equal(again["logits"], features["logits"])


def test_inception_score_logits_leave_the_bias_out(weights_file):
  """OpenAI's IS code and torch-fidelity's `logits_unbiased` score pool3·Wᵀ: the fc layer without its bias."""
  weights = np.load(weights_file)
  features = inception.inception_extractor(weights_file).features(reference_images())
  expected = features["pool"].astype(np.float64) @ weights["fc.weight"].T.astype(np.float64)
  np.testing.assert_allclose(features["logits"], expected, rtol=1e-5, atol=1e-5)
  assert np.abs(weights["fc.bias"]).max() > 0.01  # the bias is not zero: with it the test would fail


def test_loader_round_trip(tmp_path):
  weights = seeded_state_dict(seed=3)
  path = str(tmp_path / "w.npz")
  np.savez(path, **weights, **{"Mixed_5b.branch1x1.bn.num_batches_tracked": np.int64(0)})
  variables = inception.load_inception_params(path)
  # Layouts, written out: torch conv OIHW -> Flax HWIO, torch Linear [out, in] -> Flax [in, out].
  np.testing.assert_array_equal(variables["params"]["Conv2d_1a_3x3"]["conv"]["kernel"],
                                weights["Conv2d_1a_3x3.conv.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables["params"]["fc"]["kernel"], weights["fc.weight"].T)
  np.testing.assert_array_equal(variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]["var"],
                                weights["Mixed_7c.branch_pool.bn.running_var"])
  round_trip = inception.state_dict(variables)
  assert round_trip.keys() == weights.keys()
  for name, value in weights.items():
    np.testing.assert_array_equal(round_trip[name], value, err_msg=name)


def test_loader_errors(tmp_path):
  missing = str(tmp_path / "nowhere.npz")
  with pytest.raises(inception.InceptionWeightsError, match="nowhere.npz.*wget.*--convert"):
    inception.load_inception_params(missing)
  weights = seeded_state_dict()
  name = "Mixed_6b.branch7x7_2.conv.weight"
  bad = dict(weights, **{name: weights[name].transpose(0, 1, 3, 2)})  # (1, 7) kernel stored as (7, 1).
  np.savez(tmp_path / "bad.npz", **bad)
  with pytest.raises(inception.InceptionWeightsError, match=rf"{name} has shape \(128, 128, 7, 1\)"):
    inception.load_inception_params(str(tmp_path / "bad.npz"))
  np.savez(tmp_path / "short.npz", **{k: v for k, v in weights.items() if k != "fc.bias"})
  with pytest.raises(inception.InceptionWeightsError, match=r"fc\.bias is missing"):
    inception.load_inception_params(str(tmp_path / "short.npz"))
  (tmp_path / "torch.pth").write_bytes(b"not an npz")
  with pytest.raises(inception.InceptionWeightsError, match="torch.pth: not a readable .npz"):
    inception.load_inception_params(str(tmp_path / "torch.pth"))
  np.savez(tmp_path / "extra.npz", **weights, **{"AuxLogits.fc.bias": np.zeros(1008, np.float32)})
  with pytest.raises(inception.InceptionWeightsError, match=r"unexpected parameter AuxLogits\.fc\.bias"):
    inception.load_inception_params(str(tmp_path / "extra.npz"))


def _torch_bilinear(images: np.ndarray, size: int) -> np.ndarray:
  """torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False), NHWC, numpy."""
  def taps(n_in):
    src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0.0)  # Source index, clamped at 0.
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, src - lo
  (ylo, yhi, wy), (xlo, xhi, wx) = taps(images.shape[1]), taps(images.shape[2])
  rows = images[:, ylo] * (1 - wy)[None, :, None, None] + images[:, yhi] * wy[None, :, None, None]
  return rows[:, :, xlo] * (1 - wx)[None, None, :, None] + rows[:, :, xhi] * wx[None, None, :, None]


@pytest.mark.parametrize("size_in", [16, 17, 331, 512])  # Up- and downsampling to 299.
def test_resize_matches_torch_bilinear(size_in):
  images = np.random.default_rng(size_in).uniform(-1, 1, (1, size_in, size_in + 3, 2))
  expected = _torch_bilinear(images, 299)
  with jax.enable_x64(True):  # The formula, exactly.
    np.testing.assert_allclose(np.asarray(inception.resize_bilinear(jax.numpy.asarray(images))), expected,
                               atol=1e-12)
  # float32: sample positions rounded to float32 (~|position| * 6e-8), as in torch's float32 kernel.
  got = np.asarray(jax.device_get(inception.resize_bilinear(images.astype(np.float32))))
  np.testing.assert_allclose(got, expected, atol=1e-4)


def test_convert_from_torch_checkpoint(tmp_path, monkeypatch):
  src, dst = str(tmp_path / "pt_inception.pth"), str(tmp_path / "out.npz")
  monkeypatch.setitem(sys.modules, "torch", None)  # As on a machine without PyTorch.
  with pytest.raises(SystemExit, match="error: converting a .pth checkpoint needs PyTorch"):
    inception.main(["--convert", src, dst])
  monkeypatch.undo()
  torch = pytest.importorskip("torch")  # Not a genjax dependency: runs only where PyTorch is installed.
  weights = seeded_state_dict()
  torch.save({**{k: torch.from_numpy(v) for k, v in weights.items()},
              "Conv2d_1a_3x3.bn.num_batches_tracked": torch.tensor(0)}, src)
  inception.main(["--convert", src, dst])
  with np.load(dst) as converted:
    assert sorted(converted.files) == sorted(weights)
    for name, value in weights.items():
      np.testing.assert_array_equal(converted[name], value)
