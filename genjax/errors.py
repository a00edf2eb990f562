"""Errors a user can fix. The CLI prints them as one line and exits non-zero."""


class GenjaxError(Exception):
  """Base class: a problem with the user's input, reported without a traceback."""


class ConfigError(GenjaxError):
  """An invalid config value, key, preset or method."""


class DataError(GenjaxError):
  """A dataset that is unknown, not prepared, or of the wrong shape."""


class CheckpointError(GenjaxError):
  """A workdir whose checkpoint does not belong to this run."""


class NonFiniteError(GenjaxError):
  """A loss or gradient became NaN or Inf."""
