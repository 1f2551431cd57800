"""Large logits, float64, batch shapes, schedules under tracing."""

import numpy as np
import pytest
import tensorflow as tf

import estimators

PARAMS = {"tags": dict(start_temperature=4.0, end_temperature=0.1, period=100, step=50),
          "grmck": dict(temperature=0.5, num_samples=10)}


def gradient_of_sample(name, logits, **params):
  with tf.GradientTape() as tape:
    tape.watch(logits)
    sample = estimators.make(name, logits=logits, **{**PARAMS.get(name, {}), **params}).sample(
        seed=(4, 2))
    objective = tf.reduce_sum(sample * tf.range(1, logits.shape[-1] + 1, dtype=logits.dtype))
  return sample, tape.gradient(objective, logits)


@pytest.mark.parametrize("name", estimators.names())
@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_logits_of_magnitude_50_stay_finite(name, temperature):
  logits = tf.constant([[50.0, -50.0, 0.0, 49.0, -49.5, 50.0], [-50.0] * 5 + [50.0]], tf.float32)
  params = dict(temperature=temperature) if "temperature" in estimators.parameter_names(name) else {}
  sample, gradient = gradient_of_sample(name, logits, **params)
  assert np.all(np.isfinite(sample.numpy())) and np.all(np.isfinite(gradient.numpy()))
  if name != "gumbel_softmax":
    # The second row puts all mass on the last action.
    np.testing.assert_array_equal(sample.numpy()[1], [0, 0, 0, 0, 0, 1])


def test_grmck_huge_logits_stay_finite_with_many_samples():
  logits = tf.constant([[80.0, -80.0, 79.0, 0.0]] * 32, tf.float32)
  _, gradient = gradient_of_sample("grmck", logits, temperature=0.05, num_samples=50)
  assert np.all(np.isfinite(gradient.numpy()))


@pytest.mark.parametrize("name", estimators.names())
def test_float64(name):
  logits = tf.constant([[0.1, 0.2, -0.3]], tf.float64)
  sample, gradient = gradient_of_sample(name, logits)
  assert sample.dtype == tf.float64 and gradient.dtype == tf.float64
  assert estimators.make(name, logits=logits, **PARAMS.get(name, {})).temperature.dtype == tf.float64


@pytest.mark.parametrize("name", estimators.names())
@pytest.mark.parametrize("shape", [(5,), (3, 5), (4, 3, 5)])
def test_batch_shapes(name, shape):
  logits = tf.random.stateless_normal(shape, seed=(1, 1))
  dist = estimators.make(name, logits=logits, **PARAMS.get(name, {}))
  assert dist.batch_shape == shape[:-1] and dist.event_shape == shape[-1:]
  assert dist.sample(seed=(1, 2)).shape == shape
  assert dist.sample(7, seed=(1, 2)).shape == (7,) + shape
  assert dist.log_prob(dist.mode()).shape == shape[:-1]
  assert dist.entropy().shape == shape[:-1]
  _, gradient = gradient_of_sample(name, logits)
  assert gradient.shape == shape


def test_categorical_statistics_match_tfp():
  logits = tf.constant([[0.3, -1.0, 2.0], [0.0, 0.0, 0.0]])
  ours = estimators.make("gst", logits=logits)
  reference = __import__("tensorflow_probability").distributions.OneHotCategorical(logits=logits,
                                                                                   dtype=tf.float32)
  actions = tf.constant([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
  np.testing.assert_allclose(ours.log_prob(actions), reference.log_prob(actions), rtol=1e-6)
  np.testing.assert_allclose(ours.entropy(), reference.entropy(), rtol=1e-6)
  np.testing.assert_allclose(ours.probs_parameter(), reference.probs_parameter(), rtol=1e-6)
  np.testing.assert_array_equal(ours.mode()[0], [0.0, 0.0, 1.0])


def test_per_row_temperature_broadcasts():
  logits = tf.zeros([3, 4])
  dist = estimators.make("stgs", logits=logits, temperature=tf.constant([0.5, 1.0, 2.0]))
  assert dist.batch_shape == (3,)
  assert dist.sample(2, seed=(1, 1)).shape == (2, 3, 4)


def test_schedule_step_as_traced_tensor():
  """The temperature follows a step tensor fed at call time: no retracing, value from the step."""
  @tf.function
  def temperature_at(step):
    return estimators.make("tags", logits=tf.zeros([2, 3]), start_temperature=2.0, end_temperature=0.5,
                           period=10, step=step).temperature
  np.testing.assert_allclose(temperature_at(tf.constant(0)), 2.0, rtol=1e-6)
  np.testing.assert_allclose(temperature_at(tf.constant(5)), 1.0, rtol=1e-6)
  np.testing.assert_allclose(temperature_at(tf.constant(20)), 0.5, rtol=1e-6)
  assert temperature_at.experimental_get_tracing_count() == 1


def test_trainable_temperature_variable_gets_a_gradient():
  temperature = tf.Variable(0.7)
  logits = tf.constant([[0.2, 1.0, -0.5]])
  with tf.GradientTape() as tape:
    sample = estimators.make("stgs", logits=logits, temperature=temperature).sample(seed=(1, 2))
    objective = tf.reduce_sum(sample * [1.0, 2.0, 3.0])
  gradient = tape.gradient(objective, temperature)
  assert gradient is not None and np.isfinite(gradient.numpy())


def test_uniform_noise_never_reaches_zero_or_one():
  """The extreme Philox words must map strictly inside (0, 1): a 1.0 gives infinite Gumbel noise and a NaN
  Gumbel-softmax (this once stopped training after ~18M draws)."""
  from estimators import base
  extremes = tf.constant([0, 1, 2**31, 2**32 - 2, 2**32 - 1], tf.uint64)
  values = base._float32_from_bits(tf.cast(extremes, tf.uint32)).numpy()
  assert values.dtype == np.float32 and np.all(values > 0) and np.all(values < 1), values
  gumbel = -np.log(-np.log(values))
  assert np.all(np.isfinite(gumbel))
