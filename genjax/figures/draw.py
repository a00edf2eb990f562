"""Pictures of a model and its run: image grids (the loop writes them), titled and labelled panels,
latent interpolation (lerp, slerp), attribute vectors, t-SNE of codes and training curves.

Everything here is numpy in, uint8 RGB image out (save it with `save_png`). Image panels need only PIL;
t-SNE and curves plot with matplotlib, imported when first used (`pip install -e ".[viz]"` in genjax's
checkout). genjax.figures.write puts these together for a trained workdir.
"""

import math
import struct
from typing import Iterator

import numpy as np
from etils import epath

from genjax.errors import GenjaxError

TILE = 64          # panels upscale small images (nearest neighbour) to at least this many pixels a side
GAP, GROUP_GAP = 2, 10
CONTROL_TAGS = ("k", "convergence", "control_error", "beta")  # and every gate/<net>
CURVE_TITLES = {
    "k": "k_t  (equilibrium controller)",
    "convergence": "M_global  (convergence measure)",
    "control_error": "control error e_t",
    "beta": "KL weight β (warm-up)",
}
HIDDEN_TAGS = ("steps_per_sec", "uptime")  # clu's progress reports, not training curves


# --- Plain grids (the loop's) -------------------------------------------------------------------------

def to_uint8(images) -> np.ndarray:
  """[-1, 1] floats → uint8 [0, 255]."""
  images = np.asarray(images, np.float32)
  return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images, ncols: int | None = None, pad: int = 1) -> np.ndarray:
  """[N, H, W, C] images in [-1, 1] → one uint8 [rows·(H+pad)+pad, cols·(W+pad)+pad, C] grid."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
  for i, image in enumerate(images):
    r, col = divmod(i, ncols)
    top, left = pad + r * (h + pad), pad + col * (w + pad)
    grid[top:top + h, left:left + w] = image
  return grid


def pairs_grid(originals, reconstructions, ncols: int = 8) -> np.ndarray:
  """Rows alternate originals and their reconstructions, `ncols` pairs per row."""
  return image_grid(np.concatenate(list(pair_rows(originals, reconstructions, ncols))), ncols=ncols)


def pair_rows(originals, reconstructions, ncols: int = 8) -> np.ndarray:
  """[2·rows, ncols, H, W, C]: rows of `ncols` originals, each followed by their reconstructions; the
  last rows are padded with white."""
  originals, reconstructions = np.asarray(originals, np.float32), np.asarray(reconstructions, np.float32)
  n = len(originals)
  rows = -(-n // ncols)
  blank = np.ones((rows * ncols - n,) + originals.shape[1:], np.float32)
  shape = (rows, ncols) + originals.shape[1:]
  both = np.stack([np.concatenate([originals, blank]).reshape(shape),
                   np.concatenate([reconstructions, blank]).reshape(shape)], axis=1)
  return both.reshape((2 * rows, ncols) + originals.shape[1:])


def save_png(path: str, grid: np.ndarray) -> None:
  """A uint8 [H, W, C] image as a PNG at `path` (a local path, or gs:// where etils reaches it)."""
  from etils import epath
  from PIL import Image
  grid = np.asarray(grid)
  with epath.Path(path).open("wb") as f:
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(f, format="PNG")


# --- Titled, labelled panels (PIL) ---------------------------------------------------------------------

def _font(size: int):
  from PIL import ImageFont
  try:
    return ImageFont.load_default(size=size)
  except TypeError:  # Pillow < 10.1: one small bitmap font
    return ImageFont.load_default()


_ASCII = str.maketrans({"−": "-", "–": "-", "—": "-", "×": "x", "≈": "~", "’": "'"})


def _plain(text) -> str:
  """Text the bundled PIL font can draw (ASCII and '·'): common symbols spelled in ASCII."""
  return str(text).translate(_ASCII)


def _text_size(font, text: str) -> tuple[int, int]:
  left, top, right, bottom = font.getbbox(text or " ")
  return right - left, bottom - min(top, 0)


def panel(images, title: str = "", row_labels=(), col_labels=(), *, group_rows: int = 0,
          footer: str = "", min_tile: int = TILE) -> np.ndarray:
  """A titled grid: images [rows, cols, H, W, C] in [-1, 1] (NaN = a white cell) → uint8 RGB.

  Small images are upscaled (nearest neighbour) to at least `min_tile` pixels a side; `row_labels` go
  left of the rows, `col_labels` above the columns (columns widen to fit them); with `group_rows` = g a
  wider gap follows every g rows (e.g. 2 for original/reconstruction pairs); `footer` is grey text under
  the grid, wrapped to its width.
  """
  from PIL import Image, ImageDraw
  title = _plain(title)
  row_labels, col_labels = [_plain(t) for t in row_labels], [_plain(t) for t in col_labels]
  images = np.asarray(images, np.float32)
  rows, cols, h, w, c = images.shape
  tiles = to_uint8(np.nan_to_num(images, nan=1.0))
  if c == 1:
    tiles = np.repeat(tiles, 3, axis=-1)
  scale = max(1, min(8, math.ceil(min_tile / max(h, w))))
  tiles = tiles.repeat(scale, axis=2).repeat(scale, axis=3)
  th, tw = h * scale, w * scale

  title_font, label_font, footer_font = _font(18), _font(13), _font(12)
  pitch = max([tw] + [_text_size(label_font, t)[0] + 8 - GAP for t in col_labels]) + GAP  # column to column
  label_w = max([_text_size(label_font, t)[0] for t in row_labels] + [0])
  left = 10 + (label_w + 8 if label_w else 0)
  title_h = _text_size(title_font, title)[1] + 14 if title else 8
  col_h = _text_size(label_font, "Mg")[1] + 6 if len(col_labels) else 0
  row_tops = [title_h + col_h + r * (th + GAP) + (r // group_rows if group_rows else 0) * (GROUP_GAP - GAP)
              for r in range(rows)]
  grid_bottom = row_tops[-1] + th
  width = max(left + cols * pitch - GAP + 10, _text_size(title_font, title)[0] + 20)
  footer_lines = _wrap(_plain(footer), footer_font, max(width, 400) - 20) if footer else []
  line_h = _text_size(footer_font, "Mg")[1] + 3
  width = max([width] + [_text_size(footer_font, line)[0] + 20 for line in footer_lines])
  canvas = Image.new("RGB", (width, grid_bottom + (len(footer_lines) * line_h + 9 if footer else 0) + 10),
                     "white")
  draw = ImageDraw.Draw(canvas)
  cell_left = [left + col * pitch + (pitch - GAP - tw) // 2 for col in range(cols)]
  for r in range(rows):
    for col in range(cols):
      canvas.paste(Image.fromarray(tiles[r, col]), (cell_left[col], row_tops[r]))
  grey = (60, 60, 60)
  if title:
    draw.text((10, 7), title, fill="black", font=title_font)
  for col, text in enumerate(col_labels):
    draw.text((cell_left[col] + (tw - _text_size(label_font, text)[0]) // 2, title_h), text, fill=grey,
              font=label_font)
  for r, text in enumerate(row_labels):
    text_w, text_h = _text_size(label_font, text)
    draw.text((left - 8 - text_w, row_tops[r] + (th - text_h) // 2), text, fill=grey, font=label_font)
  for i, line in enumerate(footer_lines):
    draw.text((10, grid_bottom + 9 + i * line_h), line, fill=(110, 110, 110), font=footer_font)
  return np.asarray(canvas)


def _wrap(text: str, font, width: int) -> list[str]:
  """`text` in lines of at most `width` pixels (breaking at spaces)."""
  lines = []
  for word in text.split(" "):
    if lines and _text_size(font, f"{lines[-1]} {word}")[0] <= width:
      lines[-1] = f"{lines[-1]} {word}"
    else:
      lines.append(word)
  return lines


def grid_rows(images, ncols: int) -> np.ndarray:
  """[N, H, W, C] → [rows, ncols, H, W, C], the last row padded with NaN (white cells)."""
  images = np.asarray(images, np.float32)
  rows = -(-len(images) // ncols)
  blank = np.full((rows * ncols - len(images),) + images.shape[1:], np.nan, np.float32)
  return np.concatenate([images, blank]).reshape((rows, ncols) + images.shape[1:])


# --- Latent arithmetic ---------------------------------------------------------------------------------

def _float(*arrays):
  """The arrays in float64 and the floating dtype to return (float32 for float32 or integer inputs)."""
  arrays = [np.asarray(a) for a in arrays]
  dtype = np.result_type(*(a.dtype for a in arrays), np.float32)
  return [a.astype(np.float64) for a in arrays], dtype


def _ts(ts, ndim: int) -> np.ndarray:
  return np.asarray(ts, np.float64).reshape((-1,) + (1,) * ndim)


def lerp(p0, p1, ts) -> np.ndarray:
  """(1 − t)·p0 + t·p1 for each t of `ts`: [T, *p0.shape]."""
  (p0, p1), dtype = _float(p0, p1)
  t = _ts(ts, p0.ndim)
  return ((1.0 - t) * p0 + t * p1).astype(dtype)


def slerp(p0, p1, ts, eps: float = 1e-7) -> np.ndarray:
  """Spherical linear interpolation (Shoemake 1985), as White 2016 "Sampling generative networks"
  uses it between latent vectors (vectors along the last axis): [T, *p0.shape],

      slerp(p0, p1; t) = sin((1 − t)·Ω)/sin Ω · p0 + sin(t·Ω)/sin Ω · p1,   cos Ω = p0·p1 / (‖p0‖ ‖p1‖),

  and lerp where sin Ω ≈ 0 (parallel or antiparallel vectors) or a vector is 0, as White's code does.
  """
  (p0, p1), dtype = _float(p0, p1)
  p0, p1 = np.broadcast_arrays(p0, p1)
  norms = np.linalg.norm(p0, axis=-1, keepdims=True) * np.linalg.norm(p1, axis=-1, keepdims=True)
  cos = np.clip(np.sum(p0 * p1, axis=-1, keepdims=True) / np.where(norms > 0, norms, 1.0), -1.0, 1.0)
  omega = np.arccos(cos)
  sin = np.sin(omega)
  flat = (np.abs(sin) < eps) | (norms == 0)
  t = _ts(ts, p0.ndim)
  spherical = (np.sin((1.0 - t) * omega) * p0 + np.sin(t * omega) * p1) / np.where(flat, 1.0, sin)
  return np.where(flat, (1.0 - t) * p0 + t * p1, spherical).astype(dtype)


def interpolate(p0, p1, steps: int, kind: str = "lerp") -> np.ndarray:
  """`steps` codes from p0 to p1 (t = 0 … 1) by "lerp" or "slerp": [steps, *p0.shape]."""
  if kind not in ("lerp", "slerp"):
    raise ValueError(f"kind must be 'lerp' or 'slerp', got {kind!r}")
  return (lerp if kind == "lerp" else slerp)(p0, p1, np.linspace(0.0, 1.0, steps))


def attribute_vectors(codes, attributes) -> tuple[np.ndarray, np.ndarray]:
  """Mean code of the examples with an attribute minus that of the examples without it (the attribute
  vectors of Larsen et al. 2016 and White 2016).

  Args:
    codes: [N, D] codes of N images.
    attributes: [N, A] binary attributes (> 0.5 = present).
  Returns:
    ([A, D] vectors, NaN where no example has, or every example has, the attribute; [A] counts with it).
  """
  codes = np.asarray(codes, np.float64)
  present = np.asarray(attributes) > 0.5
  with_n, without_n = present.sum(0), (~present).sum(0)
  mean_with = present.T.astype(np.float64) @ codes / np.maximum(with_n, 1)[:, None]
  mean_without = (~present).T.astype(np.float64) @ codes / np.maximum(without_n, 1)[:, None]
  vectors = np.where(((with_n > 0) & (without_n > 0))[:, None], mean_with - mean_without, np.nan)
  return vectors, with_n


# --- Plots (matplotlib) --------------------------------------------------------------------------------

def _matplotlib():
  """matplotlib's Figure and Agg canvas (no pyplot: no global state, no display needed)."""
  try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
  except ImportError:
    raise GenjaxError("t-SNE and curve plots need matplotlib: pip install -e \".[viz]\" in genjax's checkout "
                      "(genjax is installed from its repository; the PyPI project of that name is another)") from None
  return Figure, FigureCanvasAgg


def _render(fig, canvas_cls) -> np.ndarray:
  canvas = canvas_cls(fig)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def tsne(codes, *, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
  """2-D t-SNE embedding [N, 2] of codes [N, D] (scikit-learn; perplexity capped at (N − 1)/3)."""
  from sklearn.manifold import TSNE
  codes = np.asarray(codes, np.float64).reshape(len(codes), -1)
  if len(codes) < 5:
    raise GenjaxError(f"t-SNE needs at least 5 codes, got {len(codes)}")
  perplexity = min(perplexity, (len(codes) - 1) / 3)
  return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
              random_state=seed).fit_transform(codes)


def _class_colour(k: int, num_classes: int):
  import matplotlib
  colours = matplotlib.colormaps["tab10" if num_classes <= 10 else "tab20"]
  return colours(k % colours.N)


def _scatter(ax, points, labels, num_classes: int, marker: str, size: float):
  """Points coloured by class (the same colour for class k in every panel), or dark grey."""
  if labels is None:
    ax.scatter(points[:, 0], points[:, 1], s=size, color="#333333", marker=marker, alpha=0.8, linewidths=0.7)
    return
  labels = np.asarray(labels).astype(int)
  for k in np.unique(labels):
    chosen = labels == k
    ax.scatter(points[chosen, 0], points[chosen, 1], s=size, color=_class_colour(k, num_classes), marker=marker,
               alpha=0.8, linewidths=0.7)


def tsne_figure(encoder_codes, prior_codes, *, encoder_labels=None, prior_labels=None, class_names=None,
                title: str = "", prior_note: str = "", seed: int = 0) -> np.ndarray:
  """Wang et al. Fig. 11/13: one t-SNE embedding of encoder codes enc(x) and prior codes (e.g. CG(z, s)),
  drawn side by side (left: enc(x) by class; right: the prior's codes by their condition, over the
  encoder's in grey) → uint8 RGB. Labels are class indices; `class_names` names them in the legend;
  `prior_note` is a second title line of the right panel (e.g. what its colours mean)."""
  Figure, canvas = _matplotlib()
  from matplotlib.lines import Line2D
  encoder_codes, prior_codes = np.asarray(encoder_codes), np.asarray(prior_codes)
  points = tsne(np.concatenate([encoder_codes, prior_codes]), seed=seed)
  enc, pri = points[:len(encoder_codes)], points[len(encoder_codes):]
  labelled = [np.asarray(l).astype(int) for l in (encoder_labels, prior_labels) if l is not None]
  classes = np.unique(np.concatenate(labelled)) if labelled else np.array([], int)
  num_classes = int(classes.max()) + 1 if len(classes) else 0
  fig = Figure(figsize=(12, 5.4), dpi=100, layout="constrained")
  axes = fig.subplots(1, 2, sharex=True, sharey=True)
  _scatter(axes[0], enc, encoder_labels, num_classes, "o", 12)
  axes[0].set_title(f"encoder codes enc(x) of {len(enc)} held-out images", fontsize=11)
  axes[1].scatter(enc[:, 0], enc[:, 1], s=8, color="#d4d4d4", marker="o", linewidths=0)
  _scatter(axes[1], pri, prior_labels, num_classes, "x", 16)
  axes[1].set_title(f"{len(pri)} prior codes (x), over enc(x) in grey" + (f"\n{prior_note}" if prior_note else ""),
                    fontsize=11)
  for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
  marker = lambda m, c, **kw: Line2D([], [], marker=m, color=c, linestyle="", markersize=6, **kw)
  handles = [marker("o", "#555555", label="enc(x)"), marker("x", "#555555", label="prior code")]
  if len(classes) <= 20:
    names = lambda k: class_names[k] if class_names is not None and k < len(class_names) else str(k)
    handles += [marker("s", _class_colour(k, num_classes), label=names(int(k))) for k in classes]
  fig.legend(handles=handles, loc="outside right center", fontsize=9, frameon=False)
  if title:
    fig.suptitle(title, fontsize=13)
  return _render(fig, canvas)


def is_control(tag: str) -> bool:
  """Equilibrium controllers, gates and weight schedules: the curves that show a hybrid's balance."""
  return tag in CONTROL_TAGS or tag.startswith("gate/")


def curve_title(tag: str) -> str:
  if tag.startswith("gate/"):
    return f"gate: {tag[5:]} updated"
  return CURVE_TITLES.get(tag, tag)


def curves_figure(scalars: dict, tags, title: str = "", ncols: int = 4) -> np.ndarray:
  """Small multiples, one panel per tag of `scalars` ({tag: (steps, values)}) → uint8 RGB.

  Gates are fractions of steps in [0, 1]; a loss whose positive values span more than 3 decades is
  log-scaled.
  """
  Figure, canvas = _matplotlib()
  tags = list(tags)
  if not tags:
    raise ValueError("curves_figure: no tags to plot")
  ncols = min(ncols, len(tags))
  nrows = -(-len(tags) // ncols)
  fig = Figure(figsize=(3.4 * ncols, 2.5 * nrows + (0.4 if title else 0)), dpi=100, layout="constrained")
  axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
  first, last = min(scalars[t][0][0] for t in tags), max(scalars[t][0][-1] for t in tags)
  margin = max(1.0, 0.03 * (last - first))
  for ax, tag in zip(axes, tags):
    steps, values = scalars[tag]
    ax.plot(steps, values, color="#1f5fa8", lw=1.4, marker="o" if len(steps) < 12 else None, ms=3)
    ax.set_xlim(first - margin, last + margin)  # one step axis for every panel (an eval point sits at its step)
    if len(steps) == 1:
      ax.annotate(f"{values[0]:.4g}", (steps[0], values[0]), textcoords="offset points", xytext=(-6, 6),
                  ha="right", fontsize=9)
    ax.set_title(curve_title(tag), fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    finite = values[np.isfinite(values)]
    if tag.startswith("gate/"):
      ax.set_ylim(-0.05, 1.05)
      ax.set_ylabel("fraction of steps", fontsize=8)
    elif tag == "control_error":
      ax.axhline(0.0, color="#999999", lw=0.8)
    elif not is_control(tag) and len(finite) and finite.min() > 0 and finite.max() / finite.min() > 1e3:
      ax.set_yscale("log")
  for ax in axes[len(tags):]:
    ax.set_visible(False)
  if title:
    fig.suptitle(title, fontsize=13)
  return _render(fig, canvas)


# --- TensorBoard events --------------------------------------------------------------------------------

def read_scalars(logdir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{tag: (steps, values)} of every scalar in `logdir`'s TensorBoard event files (not its
  subdirectories), sorted by step; a step written again (by a resumed run's later file) keeps the
  latest value.

  Reads scalars as simple values (genjax.writers) and as TF2 summary tensors (clu's and tf.summary's
  writers), without TensorFlow; a truncated last record (a run still writing, or killed) ends that file.
  """
  files = sorted(_read_event_file(path) for path in epath.Path(logdir).glob("events.out.tfevents.*"))
  series: dict[str, dict[int, float]] = {}
  for _, _, points in files:  # in the order they were started
    for tag, step, value in points:
      series.setdefault(tag, {})[step] = value
  out = {}
  for tag, values in series.items():
    steps = np.array(sorted(values), np.int64)
    out[tag] = (steps, np.array([values[s] for s in steps], np.float64))
  return out


def _read_event_file(path) -> tuple[float, str, list[tuple[str, int, float]]]:
  """(wall time of its first event, path, [(tag, step, value)] of its scalars)."""
  from tensorboard.compat.proto import event_pb2  # pylint: disable=import-outside-toplevel
  started, points = math.inf, []
  for record in _tfrecords(path):
    event = event_pb2.Event.FromString(record)
    started = min(started, event.wall_time)
    for value in event.summary.value:
      scalar = _scalar(value)
      if scalar is not None:
        points.append((value.tag, int(event.step), scalar))
  return started, str(path), points


def _tfrecords(path) -> Iterator[bytes]:
  """The records of a TFRecord file (length, its CRC, data, its CRC), up to a truncated last one.

  Read directly because TensorBoard's own reader imports TensorFlow wherever it is installed."""
  with epath.Path(path).open("rb") as f:
    while len(header := f.read(12)) == 12:
      length = struct.unpack("<Q", header[:8])[0]
      record = f.read(length)
      if len(record) < length or len(f.read(4)) < 4:
        return
      yield record


def _scalar(value) -> float | None:
  kind = value.WhichOneof("value")
  if kind == "simple_value":
    return float(value.simple_value)
  if kind == "tensor" and value.metadata.plugin_data.plugin_name == "scalars":
    from tensorboard.util import tensor_util  # pylint: disable=import-outside-toplevel
    array = tensor_util.make_ndarray(value.tensor)
    return float(array) if array.size == 1 else None
  return None
