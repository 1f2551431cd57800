"""Discrete gradient estimators as TFP distributions over one-hot vectors.

This package knows nothing of MADDPG. Each estimator samples exactly like `OneHotCategorical(logits)`;
they differ in the gradient a sample carries back to `logits`.

    import estimators
    estimators.names()                                  # ('grmck', 'gst', 'gumbel_softmax', ...)
    dist = estimators.make("gst", logits=logits, temperature=0.7)
    action = dist.sample(seed=(1, 2))                   # hard one-hot forward, GST gradient backward

Any estimator can anneal its temperature: pass `start_temperature`, `end_temperature`, `period` and `step`
instead of `temperature` (`tags` is STGS that requires them).
"""

from estimators import schedules
from estimators.base import DiscreteGradientEstimator
from estimators.grmck import GumbelRaoMonteCarlo
from estimators.gst import GappedStraightThrough
from estimators.gumbel_softmax import GumbelSoftmax
from estimators.reinmax import ReinMax
from estimators.st import StraightThrough
from estimators.stgs import StraightThroughGumbelSoftmax
from estimators.tags import TemperatureAnnealedGumbelSoftmax

_REGISTRY = {
    "stgs": StraightThroughGumbelSoftmax,
    "tags": TemperatureAnnealedGumbelSoftmax,
    "grmck": GumbelRaoMonteCarlo,
    "gst": GappedStraightThrough,
    "st": StraightThrough,
    "gumbel_softmax": GumbelSoftmax,
    "reinmax": ReinMax,
}

# The estimators of the paper (Table 1 columns are STGS-1, STGS-T, TAGS, GRMCK, GST).
PAPER_ESTIMATORS = ("stgs", "tags", "grmck", "gst")


def names():
  """Every registered estimator name, sorted."""
  return tuple(sorted(_REGISTRY))


def get(name):
  """The estimator class registered as `name`."""
  if not isinstance(name, str) or name not in _REGISTRY:
    raise ValueError(f"unknown estimator {name!r}; allowed: {', '.join(names())}")
  return _REGISTRY[name]


def parameter_names(name):
  """The keyword parameters estimator `name` accepts (besides `logits`)."""
  return get(name).parameter_names()


def check_parameters(name, params):
  """Raises ValueError naming any key of `params` that estimator `name` does not accept."""
  allowed = parameter_names(name)
  unknown = sorted(set(params) - set(allowed))
  if unknown:
    raise ValueError(f"estimator {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                     f"allowed: {', '.join(allowed)}")


def make(name, logits, **params):
  """Builds estimator `name` over `logits`; unknown names or parameters raise ValueError."""
  check_parameters(name, params)
  return get(name)(logits=logits, **params)


__all__ = ["names", "get", "make", "parameter_names", "check_parameters", "schedules",
           "DiscreteGradientEstimator", "PAPER_ESTIMATORS"] + [c.__name__ for c in _REGISTRY.values()]
