"""TensorBoard event files and log lines, written without TensorFlow.

`create_writer(workdir)` returns what the loop writes its scalars, image grids and hyper-parameters to:
an event file framed by TensorBoard's own RecordWriter (the `tensorboard` package's protobufs and
record format; its EventFileWriter would import TensorFlow wherever it is installed, for gfile) plus
one absl log line per scalar summary. Other processes of a multi-process
run only log. The methods are those of clu's MetricWriter (write_scalars, write_images,
write_hparams, flush, close), so code written against clu's writers runs unchanged.
"""

import io
import itertools
import os
import socket
import time
from typing import Any, Mapping

import numpy as np
from absl import logging
from etils import epath
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.scalar import summary_v2 as scalar_summary
from tensorboard.summary.writer.record_writer import RecordWriter

_FILES = itertools.count()


class Writer:
  """Scalars, images and hyper-parameters to `logdir`'s event file (None: log lines only)."""

  def __init__(self, logdir: str | None):
    self._file = self._records = None
    if logdir:
      epath.Path(logdir).mkdir(parents=True, exist_ok=True)
      # TensorBoard's own naming: start time, host, process, a per-process counter.
      name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILES)}.v2"
      self._file = (epath.Path(logdir) / name).open("wb")
      self._records = RecordWriter(self._file)
      self._add(event_pb2.Event(file_version="brain.Event:2"))

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    logging.info("[%d] %s", step, ", ".join(f"{k}={float(v):.6g}" for k, v in scalars.items()))
    # As tf.summary.scalar writes them (a float32 tensor tagged for the scalars plugin), as clu did.
    self._write(step, [scalar_summary.scalar_pb(k, float(v)).value[0] for k, v in scalars.items()])

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """Each image [H, W, C] (or [1, H, W, C]), uint8 or float in [0, 1] (as tf.summary.image), as a PNG."""
    self._write(step, [summary_pb2.Summary.Value(tag=k, image=_png(v)) for k, v in images.items()])

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    """The run's config for TensorBoard's HParams tab (values other than bool/int/float/str as text)."""
    simple = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparams.items()}
    self._add(event_pb2.Event(step=0, summary=hparams_summary.hparams_pb(simple)))

  def flush(self) -> None:
    if self._file is not None:
      self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = self._records = None

  def _write(self, step: int, values) -> None:
    if values:
      self._add(event_pb2.Event(step=int(step), summary=summary_pb2.Summary(value=values)))
      self.flush()  # once per log interval: TensorBoard shows a live run, a killed one keeps its curves

  def _add(self, event) -> None:
    if self._records is not None:
      event.wall_time = event.wall_time or time.time()
      self._records.write(event.SerializeToString())


def _png(image) -> summary_pb2.Summary.Image:
  image = np.asarray(image)
  if image.ndim == 4:
    image = image[0]
  pixels = image if image.dtype == np.uint8 else np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
  height, width, channels = pixels.shape
  buffer = io.BytesIO()
  Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(buffer, format="PNG")
  return summary_pb2.Summary.Image(height=height, width=width, colorspace=channels,
                                   encoded_image_string=buffer.getvalue())


def create_writer(workdir: str, *, just_logging: bool = False) -> Writer:
  """The run's writer: events in `workdir` (none when `just_logging`) and log lines."""
  return Writer(None if just_logging else workdir)
