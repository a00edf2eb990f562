"""What a person sees while a run trains: one progress display, one line per event, and quiet libraries.

On a terminal the progress is a live bar (step/total, steps/s, ETA, the method's main losses and controller
values); in a log file or a notebook it is a plain line every log interval. Checkpoints, evaluations and
warnings are one line each. TensorBoard keeps every scalar; the libraries' INFO logs (orbax's checkpoint
internals, TensorFlow's start-up) are hidden unless asked for (`--verbosity=0` or more).
"""

import logging as python_logging
import math
import os
import sys
import time
from typing import Sequence

from absl import logging

try:
  import resource  # the peak RSS; Unix only
except ImportError:
  resource = None

REDRAW_SECONDS = 0.25


def quiet_libraries(verbose: bool = False) -> None:
  """Hides the libraries' INFO logs (and TensorFlow's C++ start-up chatter) unless `verbose`."""
  if verbose:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # "Could not find cuda drivers", oneDNN notices
  logging.set_verbosity(logging.WARNING)
  for name in ("jax._src.xla_bridge", "orbax", "absl", "tensorflow"):
    python_logging.getLogger(name).setLevel(python_logging.WARNING)


def format_duration(seconds: float) -> str:
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def format_value(value: float) -> str:
  if not math.isfinite(value):
    return str(value)
  return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


class Progress:
  """The progress display of one run: `step()` after every train step, `summary()` with the averages of
  each log interval, `note()` for an event line. Writes to `stream` (stderr); a live bar if it is a
  terminal, else a line per summary; nothing when `quiet` (the other processes of a multi-process run)."""

  def __init__(self, name: str, start: int, total: int, keys: Sequence[str] = (), stream=None,
               quiet: bool = False):
    self.name, self.start, self.total, self.keys = name, start, total, tuple(keys)
    self.stream = _Discard() if quiet else (stream or sys.stderr)
    self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
    self.current, self.values, self.t0, self.first, self._drawn = start, {}, None, None, 0.0

  def step(self, step: int) -> None:
    """Counts a step (no device synchronisation); redraws the bar on a terminal."""
    now = time.monotonic()
    if self.t0 is None:  # the first step includes compilation: rates start after it
      self.t0, self.first = now, step
    self.current = step
    if self.live and now - self._drawn >= REDRAW_SECONDS:
      self._drawn = now
      self.stream.write("\r\033[K" + self.line())
      self.stream.flush()

  def steps_per_sec(self) -> float | None:
    if self.t0 is None or self.current <= self.first:
      return None
    return (self.current - self.first) / (time.monotonic() - self.t0)

  def exclude(self, seconds: float) -> None:
    """Leaves `seconds` spent on something else (an evaluation) out of the rate."""
    if self.t0 is not None:
      self.t0 += seconds

  def summary(self, step: int, values: dict[str, float]) -> None:
    """The averages of the last log interval: shown on the bar, or printed as a line."""
    self.values = {k: values[k] for k in self.keys if k in values}
    if not self.live:
      self._print(self.line(step))

  def note(self, text: str) -> None:
    """An event line (checkpoint, evaluation, warning), printed above the bar."""
    self._print(f"{self.name}: {text}")

  def close(self) -> None:
    if self.live:
      self.stream.write("\r\033[K" + self.line() + "\n")
      self.stream.flush()

  def line(self, step: int | None = None) -> str:
    step = self.current if step is None else step
    rate = self.steps_per_sec()
    parts = [f"{self.name} {step}/{self.total}"]
    if rate:
      parts.append(f"{rate:.2f} steps/s, ETA {format_duration((self.total - step) / rate)}")
    parts += [f"{k} {format_value(v)}" for k, v in self.values.items()]
    return " | ".join(parts)

  def _print(self, text: str) -> None:
    if self.live:
      self.stream.write("\r\033[K")
    self.stream.write(text + "\n")
    if self.live:
      self.stream.write(self.line())
    self.stream.flush()


class _Discard:
  """A stream that drops what is written to it."""

  def write(self, text: str) -> int:
    return len(text)

  def flush(self) -> None:
    pass


class HostMemory:
  """This process's resident memory at each log (TensorBoard `host/rss_mb`): a long run shows whether it
  grows; metrics.json gets the first and last logged values and the peak."""

  def __init__(self):
    self.first = self.last = None

  def log(self, step: int) -> dict[str, float]:
    rss = host_rss_mb()
    if rss is None:
      return {}
    self.first = self.first or (step, rss)
    self.last = (step, rss)
    return {"host/rss_mb": rss}

  def report(self) -> dict[str, float] | None:
    if self.first is None:
      return None
    unit = 2**20 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = resource and round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / unit, 1)
    return {"first_log_step": self.first[0], "first_log": self.first[1], "last_log_step": self.last[0],
            "last_log": self.last[1], "peak": peak}


def host_rss_mb() -> float | None:
  """Resident set size of this process in MiB (Linux: /proc/self/statm), None where unavailable."""
  try:
    with open("/proc/self/statm") as f:
      pages = int(f.read().split()[1])
  except (OSError, ValueError, IndexError):
    return None
  return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
