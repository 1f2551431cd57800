"""Optional dependencies, by the extra of setup.py that installs them: a program checks the ones it will need
before it starts work (`require`), and a missing one becomes one line naming the extra to install:

    maddpg-reproduce: error: Ray is not installed; pip install "maddpg-tf[grid]"

Imports nothing of the package and none of the optional packages (it only looks them up), so every layer
may use it.
"""

import importlib.util

# Top-level module: (the name a person knows it by, the extra that installs it). Only what our code (or the
# package it imports for us, as mpe2 imports pettingzoo) imports; tests/test_dependencies.py checks these
# against setup.py.
OPTIONAL = {
    "matplotlib": ("matplotlib", "plots"),
    "ray": ("Ray", "grid"),
    "keras_tuner": ("keras-tuner", "search"),
    "grpc": ("grpcio", "search"),
    "sklearn": ("scikit-learn", "search"),  # keras-tuner's Bayesian oracle imports it only when built
    "mpe2": ("mpe2", "mpe"),
    "pettingzoo": ("PettingZoo", "mpe"),
    "pygame": ("pygame-ce", "mpe"),
    "imageio_ffmpeg": ("imageio-ffmpeg", "video"),
    "wandb": ("wandb", "wandb"),  # log.to=...,wandb
    "mlflow": ("MLflow", "mlflow"),  # log.to=...,mlflow (mlflow-skinny installs the `mlflow` module)
}
EXTRAS = tuple(dict.fromkeys(extra for _, extra in OPTIONAL.values()))
# Extras that install no module of their own for our code to import, so no program requires them: what each
# brings. tests/test_dependencies.py checks these against setup.py too.
INSTALL_ONLY = {
    "gpu": "the CUDA build of the pinned TensorFlow (tensorflow[and-cuda]: CUDA and cuDNN as pip packages)",
}


class MissingExtra(ImportError):
  """An optional dependency is not installed. Its message is the one line to show, e.g. 'Ray is not
  installed; pip install "maddpg-tf[grid]"'; `name` is the module, `extra` the extra that installs it."""

  def __init__(self, module):
    label, self.extra = OPTIONAL[module]
    super().__init__(f'{label} is not installed; pip install "maddpg-tf[{self.extra}]"', name=module)


def _installed(module):
  # find_spec looks the module up without importing it (Ray starts threads when imported); a module set to
  # None in sys.modules counts as absent, as `import` treats it.
  try:
    return importlib.util.find_spec(module) is not None
  except (ImportError, ValueError):
    return False


def require(extra):
  """Raises MissingExtra for the first module of `extra` that is not installed; returns None otherwise."""
  if extra not in EXTRAS:
    raise ValueError(f"unknown extra {extra!r}; one of {', '.join(EXTRAS)}")
  for module, (_, owner) in OPTIONAL.items():
    if owner == extra and not _installed(module):
      raise MissingExtra(module)


def missing_extra(error):
  """The MissingExtra an ImportError amounts to, if the module it could not import is one of an extra's
  (a program that did not check up front, or a package of ours that imports one lazily); else None."""
  if isinstance(error, MissingExtra):
    return error
  name = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
  top = name.split(".")[0] if name else None
  return MissingExtra(top) if top in OPTIONAL else None
