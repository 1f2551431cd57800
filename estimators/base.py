"""Shared machinery of the discrete gradient estimators.

Every estimator is a `tfp.distributions.Distribution` over one-hot vectors on the last axis of `logits`:
it samples like `OneHotCategorical(logits)` and differs only in the gradient its samples carry back to
`logits` (the estimator). Subclasses implement `_relax(logits, temperature, seed)`.

Randomness: stateless seeds (an int pair or a shape-[2] int tensor) drawn through Philox explicitly, so the
eager path, `tf.function` and XLA give the same numbers, and XLA on CPU stays fast (TF's default stateless
algorithm is several times slower there).
"""

import inspect

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tensorflow_probability.python.internal import parameter_properties
from tensorflow_probability.python.internal import prefer_static as ps
from tensorflow_probability.python.internal import tensor_util

from estimators import schedules

RNG_ALGORITHM = "philox"


# ----------------------------------------------------------------------------------------------------------
# Random numbers.

def split_seed(seed, n=2):
  """Splits a stateless seed into `n` independent seeds with Philox (TFP's splitter uses the default alg)."""
  seed = tfp.random.sanitize_seed(seed)
  seeds = tf.random.stateless_uniform([n, 2], seed=seed, minval=None, maxval=None, dtype=tf.int32,
                                      alg=RNG_ALGORITHM)
  return tf.unstack(seeds)


def uniform(shape, seed, dtype):
  """U(0, 1), both ends excluded, from Philox bits.

  The float conversion is done here because XLA's stateless uniform turns the same Philox bits into
  different floats than TF's kernels do; the integer bits agree, so eager, graph and XLA runs share one
  stream. The half-step offset keeps -log(U) and log(-log(U)) finite without clipping.
  """
  dtype = tf.as_dtype(dtype)
  if dtype == tf.float64:
    bits = _random_bits(ps.concat([shape, [2]], axis=0), seed)
    high = tf.cast(tf.bitwise.right_shift(bits[..., 0], 5), tf.float64)  # 27 bits
    low = tf.cast(tf.bitwise.right_shift(bits[..., 1], 6), tf.float64)   # 26 bits
    return (high * 2. ** 26 + low + 0.5) * 2. ** -53
  values = (tf.cast(tf.bitwise.right_shift(_random_bits(shape, seed), 8), tf.float32) + 0.5) * 2. ** -24
  if dtype == tf.float32:
    return values
  # Narrower floats: round to the dtype, then keep strictly inside (0, 1).
  finfo = np.finfo(dtype.as_numpy_dtype)
  return tf.clip_by_value(tf.cast(values, dtype), finfo.tiny, 1. - finfo.epsneg)


def _random_bits(shape, seed):
  return tf.random.stateless_uniform(shape, seed=seed, minval=None, maxval=None, dtype=tf.uint32,
                                     alg=RNG_ALGORITHM)


def gumbel(shape, seed, dtype):
  """Standard Gumbel noise: -log(-log(U))."""
  return -tf.math.log(-tf.math.log(uniform(shape, seed, dtype)))


def one_hot_argmax(values):
  """One-hot of the argmax over the last axis, in the dtype of `values`."""
  return tf.one_hot(tf.argmax(values, axis=-1, output_type=tf.int32), ps.shape(values)[-1],
                    dtype=values.dtype)


def categorical_one_hot(logits, seed):
  """A hard one-hot sample from Categorical(softmax(logits)), by Gumbel-max."""
  return one_hot_argmax(logits + gumbel(ps.shape(logits), seed, logits.dtype))


def straight_through(hard, surrogate):
  """Forward value `hard` (exactly: s - stop_gradient(s) is 0), gradient of `surrogate` backward."""
  return hard + (surrogate - tf.stop_gradient(surrogate))


def softmax_vjp(probs, upstream):
  """Vector-Jacobian product of softmax at output `probs`: probs * (g - <probs, g>)."""
  return probs * (upstream - tf.reduce_sum(probs * upstream, axis=-1, keepdims=True))


# ----------------------------------------------------------------------------------------------------------
# Argument checks: raise at construction, naming the value.

def check_integer_at_least(name, value, minimum):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def _check_logits(logits):
  if not logits.dtype.is_floating:
    raise ValueError(f"logits must be floating point, got dtype {logits.dtype.name}")
  rank = logits.shape.rank
  if rank is not None and rank < 1:
    raise ValueError(f"logits need an action axis (rank >= 1), got shape {logits.shape}")
  if rank is not None and logits.shape[-1] is not None and logits.shape[-1] < 1:
    raise ValueError(f"logits need at least one action on the last axis, got shape {logits.shape}")


def _accepts_var_keyword(function):
  return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())


def resolve_temperature(temperature, start_temperature, end_temperature, period, step, schedule, dtype):
  """A fixed `temperature`, or the `schedule` of (start, end, period) evaluated at `step`."""
  scheduled = {"start_temperature": start_temperature, "end_temperature": end_temperature,
               "period": period}
  given = [k for k, v in scheduled.items() if v is not None]
  if given:
    if temperature is not None:
      raise ValueError(f"give either temperature ({temperature!r}) or a temperature schedule "
                       f"({', '.join(given)}), not both")
    missing = [k for k, v in scheduled.items() if v is None]
    if missing:
      raise ValueError(f"a temperature schedule needs start_temperature, end_temperature and period; "
                       f"missing {', '.join(missing)}")
    step = 0 if step is None else step
    return schedules.get(schedule)(step, start_temperature, end_temperature, period, dtype=dtype)
  temperature = 1. if temperature is None else temperature
  schedules.check_positive("temperature", temperature)
  return tensor_util.convert_nonref_to_tensor(temperature, dtype=dtype, name="temperature")


def record_parameters(local_variables):
  """The constructor arguments, from `locals()` at the top of an __init__ (TFP's `parameters`)."""
  parameters = {k: v for k, v in local_variables.items()
                if k not in ("self", "__class__", "kwargs", "parameters")}
  parameters.update(local_variables.get("kwargs", {}))
  return parameters


class DiscreteGradientEstimator(tfp.distributions.Distribution):
  """Base class: a one-hot categorical whose samples carry an estimator's gradient.

  Forward, `sample()` returns a hard one-hot vector (except the relaxed `gumbel_softmax`), distributed as
  `OneHotCategorical(logits)`. Backward, the gradient with respect to `logits` is the estimator's
  surrogate gradient. `log_prob`, `probs_parameter`, `mode` and `entropy` are those of the categorical.

  The temperature is either fixed (`temperature=`) or a schedule (`start_temperature`, `end_temperature`,
  `period`, evaluated at `step` by `schedule`, see `estimators.schedules`): any estimator can anneal.
  """

  # Names of the estimator's own hyperparameters beyond the temperature, for registries and searches.
  hyperparameter_names = ()

  def __init__(self, logits, temperature=None, *, start_temperature=None, end_temperature=None,
               period=None, step=None, schedule="exponential", validate_args=False,
               allow_nan_stats=True, name=None, parameters=None):
    if parameters is None:
      parameters = record_parameters(locals())
    with tf.name_scope(name or type(self).__name__) as name:
      self._logits = tensor_util.convert_nonref_to_tensor(logits, dtype_hint=tf.float32, name="logits")
      _check_logits(self._logits)
      self._temperature = resolve_temperature(temperature, start_temperature, end_temperature, period,
                                              step, schedule, self._logits.dtype)
      super().__init__(dtype=self._logits.dtype,
                       reparameterization_type=tfp.distributions.FULLY_REPARAMETERIZED,
                       validate_args=validate_args, allow_nan_stats=allow_nan_stats,
                       parameters=parameters, name=name)

  @classmethod
  def _parameter_properties(cls, dtype, num_classes=None):
    return dict(
        logits=parameter_properties.ParameterProperties(event_ndims=1),
        temperature=parameter_properties.ParameterProperties(
            event_ndims=0, default_constraining_bijector_fn=parameter_properties.BIJECTOR_NOT_IMPLEMENTED))

  @classmethod
  def parameter_names(cls):
    """Every keyword this estimator's constructor accepts, besides `logits`."""
    names = []
    for klass in reversed(cls.__mro__):
      if "__init__" in vars(klass) and issubclass(klass, DiscreteGradientEstimator):
        for parameter in inspect.signature(klass.__init__).parameters.values():
          if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
          if parameter.name not in ("self", "logits", "parameters") and parameter.name not in names:
            names.append(parameter.name)
    if cls.__init__ is not DiscreteGradientEstimator.__init__ and not _accepts_var_keyword(cls.__init__):
      own = set(inspect.signature(cls.__init__).parameters)
      names = [n for n in names if n in own]
    return tuple(names)

  @property
  def logits(self):
    return self._logits

  @property
  def temperature(self):
    """The temperature in force (a tensor; a schedule's value at `step`)."""
    return self._temperature

  def _event_shape(self):
    return self._logits.shape[-1:]

  def _event_shape_tensor(self):
    return ps.shape(self._logits)[-1:]

  # ---- sampling --------------------------------------------------------------------------------------

  def _sample_n(self, n, seed=None):
    logits = tf.convert_to_tensor(self._logits)
    temperature = tf.convert_to_tensor(self._temperature)
    batch_shape = ps.broadcast_shape(ps.shape(logits)[:-1], ps.shape(temperature))
    shape = ps.concat([[n], batch_shape, ps.shape(logits)[-1:]], axis=0)
    logits = tf.broadcast_to(logits, shape)
    temperature = tf.broadcast_to(temperature, shape[:-1])[..., tf.newaxis]
    return self._relax(logits, temperature, seed)

  def _relax(self, logits, temperature, seed):
    """Returns a sample with the estimator's gradient. `temperature` broadcasts against `logits`."""
    raise NotImplementedError

  # ---- the categorical's statistics --------------------------------------------------------------------

  def _log_prob(self, x):
    return tf.reduce_sum(tf.cast(x, self.dtype) * tf.math.log_softmax(self._logits), axis=-1)

  def _entropy(self):
    log_probs = tf.math.log_softmax(self._logits)
    return -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)

  def _mode(self):
    return one_hot_argmax(tf.convert_to_tensor(self._logits))

  def _mean(self):
    return self.probs_parameter()

  def probs_parameter(self, name=None):
    with self._name_and_control_scope(name or "probs_parameter"):
      return tf.math.softmax(self._logits)

  def logits_parameter(self, name=None):
    with self._name_and_control_scope(name or "logits_parameter"):
      return tf.identity(self._logits)

  def _parameter_control_dependencies(self, is_init):
    # Static values are checked in __init__; this catches values only known when the graph runs.
    if not self.validate_args:
      return []
    return [tf.debugging.assert_positive(self._temperature, message="temperature must be > 0")]
