"""On PYTHONPATH, makes this Python behave as if TensorFlow were not installed (tests/test_without_tensorflow.py).

TensorFlow's packages are hidden from the path finder, so `import tensorflow` raises ModuleNotFoundError and
`importlib.util.find_spec("tensorflow")` is None, as in an environment that never installed it.
"""

import importlib.machinery

_find_spec = importlib.machinery.PathFinder.find_spec.__func__


def _without_tensorflow(cls, name, path=None, target=None):
  if name.partition(".")[0] in ("tensorflow", "tensorflow_cpu", "tf_keras"):
    return None
  return _find_spec(cls, name, path, target)


importlib.machinery.PathFinder.find_spec = classmethod(_without_tensorflow)
