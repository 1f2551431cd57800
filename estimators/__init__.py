"""Discrete gradient estimators as TFP distributions over one-hot vectors.

This package knows nothing of MADDPG. Each estimator samples exactly like `OneHotCategorical(logits)`;
they differ in the gradient a sample carries back to `logits`.

    import estimators
    estimators.names()                                  # ('grmck', 'gst', 'gumbel_softmax', ...)
    dist = estimators.make("gst", logits=logits, temperature=0.7)
    action = dist.sample(seed=(1, 2))                   # hard one-hot forward, GST gradient backward

Every estimator forms an objective E f(a) for a function f of the action: `dist.objective(f, seed)`, whose
gradient is the estimator's (for those above, f at one sample). Three take f at several actions instead,
declared by their `objective_form`: `expected` (the exact expectation, EXACT), `rloo` (leave-one-out, K
samples) and `reinforce` (one sample, no baseline), both SCORE_FUNCTION. `names()` lists the pathwise
estimators, `names(pathwise_only=False)` all of them; `check(name, params)` checks a name and its
parameters by building it once.

Any estimator with a temperature can anneal it: pass `start_temperature`, `end_temperature`, `period` and
`step` instead of `temperature` (`tags` is STGS that requires them).

Your own estimator (the contract is in `estimators.base.DiscreteGradientEstimator`'s docstring):
  - subclass `estimators.DiscreteGradientEstimator` and write `_surrogate(logits, temperature, sample)`
    (straight-through: the base draws the one-hot sample, your surrogate gives the gradient) or
    `_relax(logits, temperature, seed)` (full control); its parameters are its `__init__` keywords,
    each checked there with one ValueError line;
  - name it anywhere an estimator name goes, by import path "module.path:ClassName" (`make`,
    `parameter_names`, `check_parameters`, `resolve`, and `--config.estimator.name=` in training), or
    `register("short_name", cls)` it;
  - check it with `estimators.testing.check_estimator(cls, **params)`, the battery every built-in passes;
  - `source_of(name)` gives the module file and its SHA-256 for a run's provenance.
"""

import hashlib
import importlib
import inspect
import os
import re
import sys

import tensorflow as tf

from estimators import base, schedules
from estimators.base import DiscreteGradientEstimator, ObjectiveEstimator
from estimators.expected import ExactExpectation
from estimators.grmck import GumbelRaoMonteCarlo
from estimators.gst import GappedStraightThrough
from estimators.gumbel_softmax import GumbelSoftmax
from estimators.reinforce import Reinforce
from estimators.reinmax import ReinMax
from estimators.reinmax_cv import ReinMaxCV
from estimators.reinmax_rao import ReinMaxRao
from estimators.rloo import ReinforceLeaveOneOut
from estimators.st import StraightThrough
from estimators.stgs import StraightThroughGumbelSoftmax
from estimators.tags import TemperatureAnnealedGumbelSoftmax
from estimators.zgr import ZGR

_BUILT_IN = {
    "stgs": StraightThroughGumbelSoftmax,
    "tags": TemperatureAnnealedGumbelSoftmax,
    "grmck": GumbelRaoMonteCarlo,
    "gst": GappedStraightThrough,
    "st": StraightThrough,
    "gumbel_softmax": GumbelSoftmax,
    "reinmax": ReinMax,
    "reinmax-rao": ReinMaxRao,
    "reinmax-cv": ReinMaxCV,
    "zgr": ZGR,
}
# Estimators that form the gradient from f's values at several actions (`objective`), not from one sample:
# they need f itself (for MADDPG, the critic), so `names()` leaves them out.
_BUILT_IN_OBJECTIVES = {
    "expected": ExactExpectation,
    "reinforce": Reinforce,
    "rloo": ReinforceLeaveOneOut,
}
_REGISTRY = {**_BUILT_IN, **_BUILT_IN_OBJECTIVES}

# A registered name: no ':' (that marks an import path) and nothing a command line or file name mangles.
_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_\-]*")
_PATH_PATTERN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_PATH_FORM = f"module.path:ClassName naming a subclass of estimators.{DiscreteGradientEstimator.__name__}"


def names(pathwise_only=True):
  """Every registered estimator name, sorted: those whose samples carry the gradient (`objective_form`
  PATHWISE, the distributions the conformance kit checks), or with `pathwise_only=False` every one."""
  return tuple(sorted(name for name, cls in _REGISTRY.items()
                      if not pathwise_only or cls.objective_form == base.PATHWISE))


def allowed_text(allowed=None):
  """What a name may be, as the registry's errors say it ("allowed: a, b, or <import path form>"):
  `allowed`, by default the pathwise estimators, then the others."""
  if allowed is None:
    allowed = names() + tuple(name for name in names(pathwise_only=False) if name not in names())
  return f"allowed: {', '.join(allowed)}, or {_PATH_FORM}"


def _check_class(cls, label):
  if not (inspect.isclass(cls) and issubclass(cls, DiscreteGradientEstimator)):
    raise ValueError(f"estimator {label!r} is {cls!r}, not a subclass of "
                     f"estimators.{DiscreteGradientEstimator.__name__}; {allowed_text()}")
  if cls is DiscreteGradientEstimator:
    raise ValueError(f"estimator {label!r} is the abstract base class; {allowed_text()}")
  return cls


@tf.autograph.experimental.do_not_convert  # called while a learner's step is traced: nothing to convert
def _import(module_name):
  """The module `module_name`; if its top package is not on sys.path, the working directory is tried too
  (console scripts do not put it there, `python -m` does)."""
  try:
    return importlib.import_module(module_name)
  except ModuleNotFoundError as error:
    top = module_name.partition(".")[0]
    if error.name != top or os.getcwd() in sys.path or "" in sys.path:
      raise
  sys.path.append(os.getcwd())
  return importlib.import_module(module_name)


def _from_path(path):
  if not _PATH_PATTERN.fullmatch(path):
    raise ValueError(f"estimator {path!r} is not a registered name or an import path; {allowed_text()}")
  module_name, _, attribute = path.partition(":")
  try:
    module = _import(module_name)
  except Exception as error:  # pylint: disable=broad-except  # whatever the user's module raises
    raise ValueError(f"estimator {path!r}: module {module_name!r} does not import ({base.one_line(error)}); "
                     f"{allowed_text()}") from None
  value = module
  for part in attribute.split("."):
    if not hasattr(value, part):
      raise ValueError(f"estimator {path!r}: module {module_name!r} has no attribute {attribute!r}; "
                       f"{allowed_text()}")
    value = getattr(value, part)
  return _check_class(value, path)


def resolve(name):
  """The estimator class for `name`: a registered name, an import path "module.path:ClassName", or an
  estimator class itself. Anything else raises ValueError, one line naming it and what is allowed."""
  if inspect.isclass(name):
    return _check_class(name, getattr(name, "__qualname__", name))
  if not isinstance(name, str):
    raise ValueError(f"unknown estimator {name!r}; {allowed_text()}")
  if name in _REGISTRY:
    return _REGISTRY[name]
  if ":" not in name:
    raise ValueError(f"unknown estimator {name!r}; {allowed_text()}")
  return _from_path(name)


def get(name):
  """The estimator class for `name` (the same as `resolve`)."""
  return resolve(name)


def label(name):
  """A string naming estimator `name`: the name or path given, a class's registered name, or the class's
  import path "module:QualName"."""
  if isinstance(name, str):
    return name
  cls = resolve(name)
  registered = [key for key, value in sorted(_REGISTRY.items()) if value is cls]
  return registered[0] if registered else f"{cls.__module__}:{cls.__qualname__}"


def register(name, cls, *, overwrite=False):
  """Registers estimator class `cls` as `name` (lowercase letters, digits, '_' and '-'), so every tool
  accepts that name. A name already taken raises ValueError unless `overwrite`. Returns `cls`."""
  if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
    raise ValueError(f"estimator name {name!r} is not allowed; allowed: a lowercase letter, then lowercase "
                     f"letters, digits, '_' or '-'")
  _check_class(cls, name)
  if name in _REGISTRY and _REGISTRY[name] is not cls and not overwrite:
    raise ValueError(f"estimator {name!r} is already registered ({_REGISTRY[name].__qualname__}); "
                     f"pass overwrite=True to replace it")
  _REGISTRY[name] = cls
  return cls


def unregister(name):
  """Removes a name `register` added (a built-in name it replaced gets its built-in class back)."""
  if not isinstance(name, str) or name not in _REGISTRY:
    raise ValueError(f"unknown estimator {name!r}; allowed: {', '.join(names())}")
  built_in = {**_BUILT_IN, **_BUILT_IN_OBJECTIVES}
  if name in built_in:
    _REGISTRY[name] = built_in[name]
  else:
    del _REGISTRY[name]


def parameter_names(name):
  """The keyword parameters estimator `name` (a name, path or class) accepts (besides `logits`)."""
  return resolve(name).parameter_names()


def check_parameters(name, params):
  """Raises ValueError naming any key of `params` that estimator `name` does not accept."""
  allowed = parameter_names(name)
  unknown = sorted(set(params) - set(allowed) - set(base.TFP_ARGUMENTS))
  if unknown:
    raise ValueError(f"estimator {label(name)!r} has no parameter {', '.join(map(repr, unknown))}; "
                     f"allowed: {', '.join(allowed) or 'none'}")


def check(name, params, allowed=None):
  """Raises ValueError (one line naming the value) unless `name` is an estimator (a registered name among
  `allowed`, default every one, or an import path) that accepts `params`; builds it once on dummy logits,
  so bad values (temperature <= 0, K < 1, ...) fail here, not in the middle of a run."""
  allowed = names(pathwise_only=False) if allowed is None else tuple(allowed)
  if isinstance(name, str) and ":" not in name and name not in allowed:
    raise ValueError(f"unknown estimator {name!r}; {allowed_text(allowed)}")
  cls = resolve(name)  # an import path that does not import, or is no estimator: one line
  check_parameters(name, params)
  try:
    cls(logits=tf.zeros([1, 2]), **dict(params, **({"step": 0} if cls.scheduled(params) else {})))
  except ValueError as error:
    raise ValueError(f"estimator {label(name)!r}: {error}") from None


def make(name, logits, **params):
  """Builds estimator `name` (a name, path or class) over `logits`; unknown names or parameters raise
  ValueError."""
  check_parameters(name, params)
  return resolve(name)(logits=logits, **params)


def source_of(name):
  """Where estimator `name`'s code comes from, for a run's provenance: None for this package's own
  estimators (the package version and git revision identify them), else
  dict(name=..., path="module:QualName", module_file=<absolute path or None>, sha256=<hex or None>),
  the hash of the module file's bytes as they are on disk now (call it when the run starts)."""
  cls = resolve(name)
  if cls.__module__ == __name__ or cls.__module__.startswith(__name__ + "."):
    return None
  module_file = getattr(sys.modules.get(cls.__module__), "__file__", None)
  digest = None
  if module_file and os.path.isfile(module_file):
    module_file = os.path.abspath(module_file)
    with open(module_file, "rb") as handle:
      digest = hashlib.sha256(handle.read()).hexdigest()
  else:
    module_file = None
  return dict(name=label(name), path=f"{cls.__module__}:{cls.__qualname__}", module_file=module_file,
              sha256=digest)


__all__ = ["names", "get", "resolve", "label", "register", "unregister", "check", "make", "parameter_names",
           "check_parameters", "source_of", "schedules", "DiscreteGradientEstimator", "ObjectiveEstimator"] + [
               c.__name__ for c in {**_BUILT_IN, **_BUILT_IN_OBJECTIVES}.values()]
