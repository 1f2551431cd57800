"""Search spaces for `maddpg-search`: which estimator settings are searched, over which ranges.

    maddpg-search --config=configs/lbf.py:task=lbf-15x15-3p-5f,estimator=grmck --dir=searches/grmck \\
        --search.temperature.max=0.9 --search.num_samples.choices="(5,10)"
    maddpg-search --config=configs/lbf.py:task=lbf-15x15-3p-5f,estimator=gst --dir=searches/gst \\
        --search.gap.tune=True                       # also search GST's gap (the paper did not)

The ranges are the paper's (maddpg_tf/FIDELITY.md: Estimator settings; the authors' README), by estimator:

| estimator | hyperparameter | paper's range | searched here |
|---|---|---|---|
| stgs-t (and `stgs`) | temperature | (0, 1) | [0.01, 0.99] |
| tags | start_temperature, end_temperature | [1, 5], [0.1, 0.5] | the same |
| grmck | temperature, num_samples (K) | (0, 1], {5, 10, 50} | [0.01, 1], {5, 10, 50} |
| gst | temperature, gap (kappa) | (0, 1], kappa not searched | [0.01, 1]; gap [0.5, 2] only with `tune=True` |
| st (ours) | temperature | - | [0.1, 2] |
| gumbel_softmax (ours) | temperature | - | [0.01, 1] |
| reinmax (ours) | temperature | - | [0.5, 5], log scale |
| reinmax-rao (ours) | temperature, num_samples (K) | - | [0.1, 2], log scale; K {10, 50, 100} only with `tune=True` |
| reinmax-cv (ours) | temperature, num_samples, cv_weight (eta) | - | as reinmax-rao; eta [0.5, 2] (its authors' sweep) |

Open ends are closed by a small epsilon, `OPEN_EPSILON` = 0.01: (0, 1) is searched as [0.01, 0.99] and
(0, 1] as [0.01, 1]. A temperature below 0.01 makes the relaxed softmax a near one-hot whose gradient is
zero almost everywhere, so nothing is lost. `stgs-1` has nothing to search (its temperature is fixed at 1).
Settings that are not searched (TAGS's `period`, GST's `gap` by default) keep the training config's value.

`get_config()` returns one entry per hyperparameter, every field `None` ("the estimator's range above"):
  tune: False leaves the hyperparameter at the training config's value; True searches it (optional ones
    such as GST's gap are off by default). Setting a range or choices implies `tune=True`.
  min, max: a range (floats; integers for num_samples). Give either a range or choices, not both.
  choices: a tuple of values, e.g. `--search.num_samples.choices="(5,10)"`.
  sampling: "linear" (default), "log" or "reverse_log" for ranges.
`get_config("grmck")` fills in one estimator's space, to see it. `resolve(label, overrides)` gives the
space a search runs (raising `SpaceError` for an empty or inverted range, a hyperparameter the estimator
does not have, or an unknown estimator). No TensorFlow is imported here.

Your own estimator (`estimator=module.path:ClassName`) has no default space: name what to search and its
range, `--search_space=temperature=0.1:2,weight=0.2:0.8` (`resolve(path, overrides, parameters)` with the
estimator's `estimators.parameter_names`). Any of its parameters can be searched: the fields above through
`--search.<name>.*` or `--search_space`, its own parameters (not in that config) through `--search_space`
only; a searched own parameter goes into the trial's `estimator.options`. Own parameters keep only the
check that values are finite numbers (a range of two integers, `k=2:8`, is searched as integers); the
estimator's `__init__` checks its domain, at a corner of the space before any trial.
"""

import math

import ml_collections
from ml_collections import config_dict

from maddpg_tf import config as config_lib
from maddpg_tf.run import process

OPEN_EPSILON = 0.01

HYPERPARAMETERS = ("temperature", "start_temperature", "end_temperature", "num_samples", "gap", "cv_weight")
FIELDS = ("tune", "min", "max", "choices", "sampling")
SAMPLINGS = ("linear", "log", "reverse_log")


def _range(low, high, sampling="linear", tune=True):
  return {"tune": tune, "min": float(low), "max": float(high), "choices": None, "sampling": sampling}


def _choices(*values, tune=True):
  return {"tune": tune, "min": None, "max": None, "choices": tuple(values), "sampling": None}


# Per estimator (paper labels and registry names): hyperparameter -> default space.
SPACES = {
    "stgs-t": {"temperature": _range(OPEN_EPSILON, 1 - OPEN_EPSILON)},
    "stgs": {"temperature": _range(OPEN_EPSILON, 1 - OPEN_EPSILON)},
    "tags": {"start_temperature": _range(1.0, 5.0), "end_temperature": _range(0.1, 0.5)},
    "grmck": {"temperature": _range(OPEN_EPSILON, 1.0), "num_samples": _choices(5, 10, 50)},
    "gst": {"temperature": _range(OPEN_EPSILON, 1.0), "gap": _range(0.5, 2.0, tune=False)},
    "st": {"temperature": _range(0.1, 2.0)},
    "gumbel_softmax": {"temperature": _range(OPEN_EPSILON, 1.0)},
    "reinmax": {"temperature": _range(0.5, 5.0, sampling="log")},
    "rloo": {"num_samples": _choices(2, 4, 8, 16)},
    # The authors of ReinMax-Rao and -CV tuned the temperature over 0.1-1.5 (and chose 1) and swept the CV
    # weight over 0.5-2; K is theirs (100) unless asked for.
    "reinmax-rao": {"temperature": _range(0.1, 2.0, sampling="log"),
                    "num_samples": _choices(10, 50, 100, tune=False)},
    "reinmax-cv": {"temperature": _range(0.1, 2.0, sampling="log"),
                   "num_samples": _choices(10, 50, 100, tune=False), "cv_weight": _range(0.5, 2.0)},
}
NOTHING_TO_SEARCH = {"stgs-1": "stgs-1 fixes the temperature at 1; search stgs-t instead",
                     "expected": "the exact expectation has no hyperparameters",
                     "zgr": "ZGR has no hyperparameters (it is temperature-free)"}


# Keywords every estimator's constructor takes that say how it is built, not how it estimates: not searched.
NOT_SEARCHED = ("step", "schedule", "validate_args", "allow_nan_stats", "name")


def searchable(parameters):
  """The names a search may set among an estimator's `parameters` (its `estimators.parameter_names`)."""
  return tuple(name for name in parameters if name not in NOT_SEARCHED)


class SpaceError(ValueError):
  """A search space the user must fix; the message is one line naming the value."""


def get_config(arg=None):
  """Every hyperparameter's fields, `None` by default; `arg` (an estimator) fills in its space."""
  config = ml_collections.ConfigDict()
  for name in HYPERPARAMETERS:
    config[name] = ml_collections.ConfigDict(dict(
        tune=config_dict.placeholder(bool), min=config_dict.placeholder(float),
        max=config_dict.placeholder(float), choices=config_dict.placeholder(tuple),
        sampling=config_dict.placeholder(str)))
  if arg:
    for name, spec in _defaults(arg).items():
      for field, value in spec.items():
        config[name][field] = value
  return config


def _defaults(label):
  if label in NOTHING_TO_SEARCH:
    raise SpaceError(f"estimator {label!r} has nothing to search: {NOTHING_TO_SEARCH[label]}")
  if label not in SPACES:
    raise SpaceError(f"unknown estimator {label!r}; search spaces exist for: {', '.join(sorted(SPACES))}")
  return {name: dict(spec) for name, spec in SPACES[label].items()}


def _check_value(name, value, where):
  """The estimators' own domains: temperatures, gap and cv_weight > 0, num_samples an integer >= 1; a user
  estimator's own parameter only a finite number (its constructor knows its domain)."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
    raise SpaceError(f"{where} must be a finite number, got {value!r}")
  if name not in HYPERPARAMETERS:
    return
  if name == "num_samples":
    if value != int(value) or value < 1:
      raise SpaceError(f"{where} must be an integer >= 1 (num_samples is K), got {value!r}")
  elif value <= 0:
    raise SpaceError(f"{where} must be > 0 ({name} must be > 0), got {value!r}")


def resolve(label, overrides=None, parameters=None):
  """The space a search runs for estimator `label`: {name: spec} for the searched hyperparameters.

  A spec is {"kind": "float", "min", "max", "sampling"}, {"kind": "int", "min", "max", "sampling"}
  (num_samples, or a user estimator's parameter given a range of two integers) or {"kind": "choice",
  "choices"}. `overrides` is `get_config()`'s ConfigDict (or a dict of the same shape); its non-`None`
  fields replace the defaults. `parameters`: for a user's estimator (`label` an import path), the names its
  constructor accepts (`estimators.parameter_names`), which are all that may be searched; it has no defaults.
  """
  own = config_lib.is_estimator_path(label)
  if own and parameters is None:
    raise SpaceError(f"estimator {label!r} is given by import path: its parameter names are needed to check "
                     f"the space (resolve(label, overrides, parameters))")
  space = {} if own else _defaults(label)
  overrides = overrides.to_dict() if hasattr(overrides, "to_dict") else dict(overrides or {})
  for name, fields in overrides.items():
    if not own and name not in HYPERPARAMETERS:
      raise SpaceError(f"unknown hyperparameter {name!r}; allowed: {', '.join(HYPERPARAMETERS)}")
    given = {field: value for field, value in (fields or {}).items() if value is not None}
    if not given:
      continue
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
      raise SpaceError(f"search.{name}: unknown field {unknown[0]!r}; allowed: {', '.join(FIELDS)}")
    if own:
      allowed = searchable(parameters)
      if name not in allowed:
        raise SpaceError(f"estimator {label!r} has no parameter {name!r} to search; allowed: "
                         f"{', '.join(allowed) or 'none'}")
      space.setdefault(name, {"tune": True, "min": None, "max": None, "choices": None, "sampling": None})
    elif name not in space:
      raise SpaceError(f"estimator {label!r} has no hyperparameter {name!r} to search; "
                       f"its hyperparameters: {', '.join(space)}")
    _override(name, space[name], given)

  resolved = {name: _resolve_one(name, spec, label if own else None)
              for name, spec in space.items() if spec["tune"]}
  if not resolved and own:
    raise SpaceError(f"estimator {label!r} has no default search space (it is yours); give one with "
                     f"--search_space=name=min:max or name=v1|v2|... (the config's fields also as "
                     f"--search.<name>.min/max), e.g. --search_space="
                     f"{(searchable(parameters) or ('name',))[0]}=0.1:1 (its parameters: "
                     f"{', '.join(searchable(parameters)) or 'none'})")
  if not resolved:
    raise SpaceError(f"nothing to search for estimator {label!r}: every hyperparameter has tune=False")
  return resolved


def _override(name, spec, given):
  """`spec` (a hyperparameter's default) updated in place with the fields the user `given`."""
  if "choices" in given and ("min" in given or "max" in given):
    raise SpaceError(f"search.{name}: give either a range (min, max) or choices, not both")
  if "choices" in given:
    spec.update(min=None, max=None, sampling=None)
  elif ("min" in given or "max" in given) and spec["choices"] is not None:
    if not ("min" in given and "max" in given):
      raise SpaceError(f"search.{name}: a range needs both min and max (the default is choices "
                       f"{spec['choices']})")
    spec.update(choices=None, sampling="linear")
  spec.update(given)
  if "tune" not in given:
    spec["tune"] = True  # giving a range or choices asks for the hyperparameter to be searched


def _resolve_one(name, spec, user_label=None):
  """One searched hyperparameter's spec, checked. `user_label`: the user estimator's path (it has no
  defaults to fall back on), else None."""
  where = f"search.{name}"
  if spec["choices"] is not None:
    choices = tuple(spec["choices"])
    if not choices:
      raise SpaceError(f"{where}.choices is empty")
    for value in choices:
      _check_value(name, value, f"{where}.choices value")
    if len(set(choices)) != len(choices):
      raise SpaceError(f"{where}.choices has duplicates: {choices}")
    if name == "num_samples":
      choices = tuple(int(value) for value in choices)
    return {"kind": "choice", "choices": choices}
  low, high = spec["min"], spec["max"]
  if user_label is not None and (low is None or high is None):
    raise SpaceError(f"{where}: estimator {user_label!r} has no default range for {name!r}; give both ends or "
                     f"choices, e.g. --search_space={name}=0.1:1 or {name}=1|2|4")
  _check_value(name, low, f"{where}.min")
  _check_value(name, high, f"{where}.max")
  if low == high:
    raise SpaceError(f"{where}: empty range [{low}, {high}] (min == max); to fix the value, set "
                     f"--config.estimator.{name} and --search.{name}.tune=False")
  if low > high:
    raise SpaceError(f"{where}: inverted range, min {low} > max {high}; min must be <= max")
  sampling = spec["sampling"] or "linear"
  if sampling not in SAMPLINGS:
    raise SpaceError(f"{where}.sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
  if sampling != "linear" and low <= 0:
    raise SpaceError(f"{where}: {sampling} sampling needs min > 0, got {low}")
  if name == "num_samples" or (name not in HYPERPARAMETERS and all(
      isinstance(value, int) and not isinstance(value, bool) for value in (low, high))):
    return {"kind": "int", "min": int(low), "max": int(high), "sampling": sampling}
  return {"kind": "float", "min": float(low), "max": float(high), "sampling": sampling}


def parse_compact(text):
  """`--search_space` shorthand -> overrides of the shape of `get_config()`.

  Comma-separated items: `name=min:max` (a range; `name=min:max:log` for log sampling),
  `name=v1|v2|...` (choices), `name=on` / `name=off` (search it / keep the config's value). E.g.
  `temperature=0.2:0.9,num_samples=5|10`. A name is a hyperparameter of the config or a parameter of a user's
  estimator; `resolve` checks which the estimator has.
  """
  overrides = {}
  for item in filter(None, (part.strip() for part in (text or "").split(","))):
    name, sep, value = item.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name.isidentifier() or not value:
      raise SpaceError(f"--search_space: cannot read {item!r}; use name=min:max, name=v1|v2|..., "
                       f"name=on or name=off")
    try:
      if value in ("on", "off"):
        fields = {"tune": value == "on"}
      elif "|" in value:
        fields = {"choices": tuple(_number(v) for v in value.split("|"))}
      elif ":" in value:
        parts = value.split(":")
        if len(parts) not in (2, 3):
          raise ValueError(value)
        # Integers stay integers: a user estimator's parameter given a range of two is searched as one.
        fields = {"min": _number(parts[0]), "max": _number(parts[1])}
        if len(parts) == 3:
          fields["sampling"] = parts[2]
      else:
        raise ValueError(value)
    except ValueError:
      raise SpaceError(f"--search_space: cannot read {item!r}; use name=min:max, name=v1|v2|..., "
                       f"name=on or name=off") from None
    overrides[name] = fields
  return overrides


def _number(text):
  """'10' -> 10, '0.5' -> 0.5 (choices of num_samples stay integers)."""
  text = text.strip()
  return int(text) if text.lstrip("+-").isdigit() else float(text)


def merge(overrides, more):
  """`overrides` (a ConfigDict or dict) updated field by field with `more` (a dict); returns a dict."""
  merged = overrides.to_dict() if hasattr(overrides, "to_dict") else {k: dict(v or {}) for k, v in
                                                                       (overrides or {}).items()}
  for name, fields in more.items():
    merged.setdefault(name, {})
    target = merged[name]
    if "choices" in fields:
      target.update(min=None, max=None)
    if "min" in fields or "max" in fields:
      target.update(choices=None)
    target.update(fields)
  return merged


def searched_estimator(config):
  """What the space is for: a user's estimator named by path in `estimator.name` (also under a preset's
  label), else the preset's label."""
  name = config.estimator.name
  return name if config_lib.is_estimator_path(name) else config.estimator.label


def estimator_parameters(name):
  """The parameter names of a user's estimator given by import path: imports its module (and TensorFlow,
  which the search loads anyway). ValueError (one line) if the path does not import or is no estimator."""
  process.import_tensorflow()  # without its import-time log lines
  import estimators  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  return estimators.parameter_names(name)


def searched_space(config, overrides=None, compact=""):
  """(estimator, space) of a search around training `config`: `searched_estimator`'s space, `resolve`d with
  the `--search.*` `overrides` and then the `--search_space` shorthand `compact`. Only a user's estimator (by
  import path) is imported, to check the names searched against its parameters. SpaceError as `resolve`."""
  estimator = searched_estimator(config)
  overrides = merge(overrides, parse_compact(compact))
  parameters = estimator_parameters(estimator) if config_lib.is_estimator_path(estimator) else None
  return estimator, resolve(estimator, overrides, parameters)
