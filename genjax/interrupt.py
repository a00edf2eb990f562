"""Stopping a run cleanly: SIGTERM (a preempted runtime) or Ctrl-C finishes the current step, saves a
checkpoint and ends; a second Ctrl-C stops at once, keeping the checkpoints already saved."""

import signal
import sys


class Interrupted(KeyboardInterrupt):
  """A second Ctrl-C: stop now, without saving."""


class StopOnSignal:
  """Asks the loop to checkpoint and stop after this step; says so the moment the signal arrives.

  `step` is the step being trained (the loop keeps it current), for the message.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self, stream=None):
    self.requested, self.step, self.stream = False, None, stream or sys.stderr
    self._previous = {}
    try:
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    except ValueError:  # not the main thread: leave signals alone
      pass

  def _handle(self, signum, frame):
    del frame
    if self.requested and signum == signal.SIGINT:  # a second Ctrl-C: the user really wants out
      raise Interrupted
    self.requested = True
    at = f"step {self.step}" if self.step is not None else "the current step"
    again = "; press Ctrl-C again to stop without saving" if signum == signal.SIGINT else ""
    self.stream.write(f"\ngenjax: {signal.Signals(signum).name}: finishing {at} and saving a checkpoint{again}\n")
    self.stream.flush()

  def restore(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
