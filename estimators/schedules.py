"""Temperature schedules: pure functions of a step tensor.

A schedule holds no state. The caller passes the step (for MADDPG, the number of update calls or of env
steps, see `maddpg_tf` config `estimator.schedule_unit`), so a schedule survives `tf.function` tracing
and checkpoint restore: restoring the step restores the temperature.
"""

import numpy as np
import tensorflow as tf


def check_positive(name, value):
  """Raises ValueError naming `name` unless the static `value` is > 0 (tensors unknown at trace time pass)."""
  static = tf.get_static_value(value) if tf.is_tensor(value) else value
  if static is None:
    return
  array = np.asarray(static)
  if not np.issubdtype(array.dtype, np.number) or array.size == 0:
    raise ValueError(f"{name} must be a positive number, got {static!r}")
  if not np.all(np.isfinite(array)) or np.any(array <= 0):
    raise ValueError(f"{name} must be > 0 and finite, got {static!r}")


def to_dtype(value, dtype):
  """`value` as a tensor of `dtype`; Python numbers convert directly (tf.cast would round via float32)."""
  if tf.is_tensor(value):
    return tf.cast(value, dtype)
  return tf.convert_to_tensor(value, dtype=dtype)


def exponential_decay(step, start_temperature, end_temperature, period, dtype=tf.float32):
  """tau(step) = start * (end / start) ** (min(step, period) / period): TAGS (paper sec. 3.3).

  The temperature moves geometrically from `start_temperature` at step 0 to `end_temperature` at
  `period` and stays there. This is the closed form of the authors' multiplicative per-update decay
  (the authors' TAGS, maddpg_tf/FIDELITY.md: Estimator settings). Negative steps are treated as 0.

  Args:
    step: scalar (or any shape) number or tensor: how far along the schedule is.
    start_temperature, end_temperature: > 0.
    period: > 0, in the same units as `step`.
    dtype: floating dtype of the result.
  Returns:
    A tensor of `dtype`, shaped like `step`.
  """
  check_positive("start_temperature", start_temperature)
  check_positive("end_temperature", end_temperature)
  check_positive("period", period)
  step = to_dtype(step, dtype)
  start = to_dtype(start_temperature, dtype)
  end = to_dtype(end_temperature, dtype)
  period = to_dtype(period, dtype)
  fraction = tf.clip_by_value(step / period, 0., 1.)
  # exp/log form: one transcendental pair, exact at fraction 0 and 1 up to rounding.
  return start * tf.exp(fraction * tf.math.log(end / start))


def linear_decay(step, start_temperature, end_temperature, period, dtype=tf.float32):
  """tau(step) = start + (end - start) * min(step, period) / period."""
  check_positive("start_temperature", start_temperature)
  check_positive("end_temperature", end_temperature)
  check_positive("period", period)
  fraction = tf.clip_by_value(to_dtype(step, dtype) / to_dtype(period, dtype), 0., 1.)
  start = to_dtype(start_temperature, dtype)
  return start + (to_dtype(end_temperature, dtype) - start) * fraction


SCHEDULES = {"exponential": exponential_decay, "linear": linear_decay}


def get(name):
  """Returns the schedule function called `name`; ValueError lists the allowed names."""
  if not isinstance(name, str) or name not in SCHEDULES:
    raise ValueError(f"unknown temperature schedule {name!r}; allowed: {', '.join(sorted(SCHEDULES))}")
  return SCHEDULES[name]
