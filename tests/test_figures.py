"""genjax.figures.draw (interpolation, attribute vectors, panels, t-SNE, curves) and genjax.figures end to end."""

import math
import os
import sys

import numpy as np
import pytest
from PIL import Image

from absl import flags
from clu import metric_writers

from genjax import methods, train
from genjax.figures import draw, write
from genjax.errors import GenjaxError
from tests.helpers import ROOT, load_config, one_device

R = math.sqrt(0.5)


# --- lerp / slerp -----------------------------------------------------------------------------------------

def test_lerp_is_the_straight_line():
  p0, p1 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
  np.testing.assert_allclose(draw.lerp(p0, p1, [0.0, 0.5, 1.0]), [[1, 0, 0], [0.5, 1, 0], [0, 2, 0]])


def test_slerp_follows_the_great_circle():
  """Orthogonal unit vectors: slerp(t) = (cos(tπ/2), sin(tπ/2)), norm 1, where lerp's midpoint has √½."""
  p0, p1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
  ts = [0.0, 1 / 3, 0.5, 1.0]
  expected = [[1, 0], [math.cos(math.pi / 6), 0.5], [R, R], [0, 1]]
  np.testing.assert_allclose(draw.slerp(p0, p1, ts), expected, atol=1e-12)
  np.testing.assert_allclose(np.linalg.norm(draw.slerp(p0, p1, np.linspace(0, 1, 7)), axis=-1), 1.0, atol=1e-12)
  assert abs(np.linalg.norm(draw.lerp(p0, p1, [0.5])) - R) < 1e-12
  # Norm 2 at both ends: (sin(π/4)·(2, 0) + sin(π/4)·(0, 2)) / sin(π/2) = (√2, √2).
  np.testing.assert_allclose(draw.slerp(2 * p0, 2 * p1, [0.5])[0], [math.sqrt(2), math.sqrt(2)], atol=1e-12)
  # 60° apart: at t = ½ the bisector, sin(π/6)/sin(π/3)·(p0 + p1).
  q1 = np.array([0.5, math.sqrt(3) / 2])
  np.testing.assert_allclose(draw.slerp(p0, q1, [0.5])[0], [math.cos(math.pi / 6), 0.5], atol=1e-12)


def test_slerp_interpolates_each_vector_of_a_batch_and_keeps_float32():
  p0 = np.array([[1.0, 0.0], [0.0, 3.0]], np.float32)
  p1 = np.array([[0.0, 1.0], [3.0, 0.0]], np.float32)
  out = draw.interpolate(p0, p1, 3, "slerp")
  assert out.shape == (3, 2, 2) and out.dtype == np.float32
  np.testing.assert_allclose(out[1], [[R, R], [3 * R, 3 * R]], atol=1e-6)
  np.testing.assert_allclose(out[0], p0)
  np.testing.assert_allclose(out[-1], p1)


@pytest.mark.parametrize("p1", [[2.0, 4.0, 6.0], [-1.0, -2.0, -3.0], [0.0, 0.0, 0.0]],
                         ids=["parallel", "antiparallel", "zero"])
def test_slerp_falls_back_to_lerp_where_the_angle_is_undefined_or_flat(p1):
  p0, ts = np.array([1.0, 2.0, 3.0]), np.linspace(0, 1, 5)
  out = draw.slerp(p0, p1, ts)
  assert np.all(np.isfinite(out))
  np.testing.assert_allclose(out, draw.lerp(p0, p1, ts), atol=1e-12)


def test_interpolate_rejects_an_unknown_kind():
  with pytest.raises(ValueError, match="slerp"):
    draw.interpolate(np.zeros(2), np.ones(2), 3, "cubic")


# --- attribute vectors ------------------------------------------------------------------------------------

def test_attribute_vectors_are_mean_with_minus_mean_without():
  rng = np.random.default_rng(0)
  codes = rng.normal(size=(50, 4))
  attributes = (rng.uniform(size=(50, 3)) > 0.6).astype(np.float32)
  attributes[:, 2] = 1.0  # everyone has it: no vector
  vectors, counts = draw.attribute_vectors(codes, attributes)
  for a in range(2):
    has = attributes[:, a] == 1
    np.testing.assert_allclose(vectors[a], codes[has].mean(0) - codes[~has].mean(0), atol=1e-12)
  assert np.all(np.isnan(vectors[2]))
  np.testing.assert_array_equal(counts, attributes.sum(0))
  # Adding the vector moves the mean code of those without to the mean code of those with.
  without = codes[attributes[:, 0] == 0]
  np.testing.assert_allclose((without + vectors[0]).mean(0), codes[attributes[:, 0] == 1].mean(0), atol=1e-12)


# --- panels -----------------------------------------------------------------------------------------------

COLOURS = np.array([[[1, -1, -1], [-1, 1, -1], [-1, -1, 1]], [[1, 1, -1], [1, -1, 1], [-1, 1, 1]]], np.float32)


def _colour_tiles(size=16):
  """[2, 3, size, size, 3] tiles, each one pure colour that no (grey) text pixel can have."""
  return np.broadcast_to(COLOURS[:, :, None, None, :], (2, 3, size, size, 3)).copy()


def test_panel_upscales_every_tile_whole_and_keeps_text_off_the_tiles():
  tiles = _colour_tiles()
  tiles[1, 2] = np.nan  # a blank cell
  image = draw.panel(tiles, "a title", ["row one", "row two"], ["a", "b", "c"])
  assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
  pixels = image.reshape(-1, 3)
  for r in range(2):
    for c in range(3):
      colour = draw.to_uint8(COLOURS[r, c])
      count = np.sum(np.all(pixels == colour, axis=-1))
      assert count == (0 if (r, c) == (1, 2) else draw.TILE * draw.TILE), ((r, c), count)
  plain = draw.panel(_colour_tiles())
  assert image.shape[0] > plain.shape[0] and image.shape[1] > plain.shape[1]  # title, labels
  left_margin = image[:, :image.shape[1] - plain.shape[1]]
  assert np.any(left_margin < 128), "row labels not drawn"
  assert np.any(image[:25] < 128), "title not drawn"


def test_panel_grey_images_and_row_groups():
  grey = np.zeros((4, 2, 32, 32, 1), np.float32)
  ungrouped = draw.panel(grey)
  grouped = draw.panel(grey, group_rows=2)
  assert ungrouped.shape[-1] == 3
  assert grouped.shape[0] - ungrouped.shape[0] == draw.GROUP_GAP - draw.GAP  # one gap between 2 groups
  assert ungrouped.shape[1] == 10 + 2 * 64 + draw.GAP + 10  # 32-pixel images doubled to 64


def test_pair_rows_alternate_originals_and_reconstructions():
  originals = np.full((10, 4, 4, 1), -1.0, np.float32)
  recons = np.full((10, 4, 4, 1), 0.5, np.float32)
  rows = draw.pair_rows(originals, recons, ncols=4)
  assert rows.shape == (6, 4, 4, 4, 1)
  assert np.all(rows[0::2, :2] == -1.0) and np.all(rows[1::2, :2] == 0.5)
  assert np.all(rows[4:, 2:] == 1.0)  # the last pair of rows is padded with white
  np.testing.assert_array_equal(draw.pairs_grid(originals, recons, ncols=4),
                                draw.image_grid(rows.reshape((-1, 4, 4, 1)), ncols=4))


def test_panel_draws_symbols_the_font_lacks_in_ascii():
  assert draw._plain("(1 − t)·a, class × noise") == "(1 - t)·a, class x noise"


# --- t-SNE ------------------------------------------------------------------------------------------------

def _clusters(n=30, seed=0):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(n, 8))
  b = rng.normal(size=(n, 8)) + 20.0
  return np.concatenate([a, b]), np.repeat([0, 1], n)


def test_tsne_keeps_far_clusters_apart():
  codes, labels = _clusters()
  points = draw.tsne(codes, seed=0)
  centre = [points[labels == k].mean(0) for k in (0, 1)]
  spread = max(np.linalg.norm(points[labels == k] - centre[k], axis=1).max() for k in (0, 1))
  assert np.linalg.norm(centre[0] - centre[1]) > 2 * spread


def test_tsne_figure_is_written(tmp_path):
  codes, labels = _clusters(n=20)
  image = draw.tsne_figure(codes, codes + 0.1, encoder_labels=labels, prior_labels=labels,
                          class_names=["zero", "one"], title="t-SNE")
  assert image.dtype == np.uint8 and image.shape == (540, 1200, 3)
  pixels = image.reshape(-1, 3)
  assert len(np.unique(pixels, axis=0)) > 20  # points in colour, not a blank canvas
  for k in (0, 1):  # each class has its tab10 colour (the legend's squares are opaque)
    colour = np.round(np.array(draw._class_colour(k, 2)[:3]) * 255).astype(np.uint8)
    assert np.any(np.all(pixels == colour, axis=-1)), k
  draw.save_png(str(tmp_path / "tsne.png"), image)
  assert Image.open(tmp_path / "tsne.png").size == (1200, 540)


def test_plots_without_matplotlib_say_how_to_install_it(monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
  with pytest.raises(GenjaxError, match=r'pip install -e "\.\[viz\]" in genjax'):
    draw.curves_figure({"k": (np.arange(3), np.ones(3))}, ["k"])


# --- curves from TensorBoard events ---------------------------------------------------------------------

def test_read_scalars_from_clu_events_resumed_run_wins(tmp_path):
  writer = metric_writers.create_default_writer(str(tmp_path), asynchronous=False)
  for step in (10, 20, 30):
    writer.write_scalars(step, {"k": step / 100, "gate/decoder": float(step > 15), "loss": 1.0 / step})
  writer.write_images(30, {"samples": np.zeros((1, 4, 4, 1), np.uint8)})
  writer.close()
  resumed = metric_writers.create_default_writer(str(tmp_path), asynchronous=False)  # a second file
  resumed.write_scalars(30, {"k": 0.9})
  resumed.write_scalars(40, {"k": 0.4})
  resumed.close()
  scalars = draw.read_scalars(str(tmp_path))
  assert set(scalars) == {"k", "gate/decoder", "loss"}  # no images
  np.testing.assert_array_equal(scalars["k"][0], [10, 20, 30, 40])
  np.testing.assert_allclose(scalars["k"][1], [0.1, 0.2, 0.9, 0.4], rtol=1e-6)
  np.testing.assert_allclose(scalars["gate/decoder"][1], [0, 1, 1])
  assert [t for t in sorted(scalars) if draw.is_control(t)] == ["gate/decoder", "k"]
  image = draw.curves_figure(scalars, ["k", "gate/decoder", "loss"], "curves")
  assert image.dtype == np.uint8 and image.shape[1] == 3 * 340


def test_read_scalars_of_an_empty_directory(tmp_path):
  assert draw.read_scalars(str(tmp_path)) == {}


# --- genjax.figures -----------------------------------------------------------------------------------

def test_plan_names_what_each_method_lacks():
  vae_plan = write.plan(methods.get_method("vae"), load_config("vae"))
  assert vae_plan["samples"] is None and vae_plan["reconstructions"] is None
  assert vae_plan["interpolations"] is None and "attributes" in vae_plan["attributes"]
  assert "sample_codes" in vae_plan["tsne"]
  assert "encoder" in write.plan(methods.get_method("dcgan"), load_config("dcgan"))["interpolations"]
  aae_plan = write.plan(methods.get_method("aae_prior"), load_config("aae_prior"))
  assert aae_plan["tsne"] is None and aae_plan["interpolations"] is None
  classifier_plan = write.plan(methods.get_method("classifier"), load_config("classifier"))
  assert "does not generate" in classifier_plan["samples"] and "encoder" in classifier_plan["tsne"]


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory, digits_dir):
  """configs/vae.py trained 2 steps on digits at 16×16."""
  workdir = tmp_path_factory.mktemp("vae_run")
  config = load_config("vae", "", num_steps=2)
  config.unlock()
  config.data.update(data_dir=digits_dir, image_size=16)
  config.lock()
  train.train_and_evaluate(config, str(workdir), mesh=one_device())
  return config, workdir


def _command(*args):
  """genjax.figures's flags in a fresh FlagValues, parsed from `args`."""
  argv = ["visualize", f"--config={os.path.join(ROOT, 'configs', 'vae.py')}", *args]
  fv = flags.FlagValues()
  holders = write.define_flags(fv, sys_argv=argv)
  fv(argv)
  return holders


def test_visualize_writes_every_figure_the_method_supports(trained_vae, tmp_path, monkeypatch, capsys):
  config, workdir = trained_vae
  out = tmp_path / "figs"
  holders = _command(f"--workdir={workdir}", f"--out={out}", "--num_codes=16", "--config.model.width=0.0625",
                     "--config.model.latent_dim=8", "--config.data.image_size=16",
                     f"--config.data.data_dir={config.data.data_dir}", "--config.train.num_image_samples=4")
  write.main(["visualize"], holders, mesh=one_device())
  printed = capsys.readouterr().out.splitlines()
  written = {os.path.basename(line.split()[-1])[:-4] for line in printed if line.startswith("wrote ")}
  skipped = {line.split()[1].rstrip(":"): line for line in printed if line.startswith("skipped ")}
  assert written == {"samples", "reconstructions", "interpolations", "curves"}, printed
  assert set(skipped) == {"attributes", "tsne", "control"}, printed
  assert "k, convergence, gate" in skipped["control"] and "sample_codes" in skipped["tsne"]
  sizes = {name: Image.open(out / f"{name}.png").size for name in written}
  # 16×16 digits shown at 64 px: interpolations have 2 + 8 columns and 4 pairs × (lerp, slerp) rows.
  assert sizes["interpolations"][0] > 10 * 64 and sizes["interpolations"][1] > 8 * 64
  assert 2 * 64 < sizes["samples"][1] < 4 * 64  # num_image_samples = 4: a 2 × 2 grid
  assert sizes["reconstructions"][1] > 8 * 64  # 32 held-out images: 4 rows of originals + 4 of reconstructions


def test_visualize_without_a_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
  holders = _command(f"--workdir={tmp_path}")
  with pytest.raises(SystemExit) as exit_info:
    write.main(["visualize"], holders, mesh=one_device())
  assert exit_info.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()
  assert len(error) == 1 and error[0].startswith("genjax: error: no latest checkpoint"), error
  assert not (tmp_path / "figures").exists()


def test_visualize_rejects_unknown_attributes_before_reading_anything(tmp_path):
  config = load_config("vae", "celeba64")
  with pytest.raises(GenjaxError, match="unknown attribute.*Smilling"):
    write.write_figures(config, str(tmp_path), attributes=["Smilling"], mesh=one_device())
