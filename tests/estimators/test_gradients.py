"""Exact gradient values against each estimator's formula, computed by hand in NumPy (float64)."""

import numpy as np
import pytest
import tensorflow as tf

import estimators
from estimators import base, grmck

LOGITS = np.array([[0.3, -1.2, 2.0, 0.7, 0.0],
                   [1.5, 1.4, -0.5, 0.0, 3.0],
                   [0.0, 0.0, 0.0, 0.0, 0.0]])
WEIGHTS = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
TEMPERATURE = 0.7


def softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def softmax_vjp(probs, upstream):
  return probs * (upstream - (probs * upstream).sum(-1, keepdims=True))


def sample_and_gradient(name, seed=(7, 11), **params):
  logits = tf.constant(LOGITS)
  with tf.GradientTape() as tape:
    tape.watch(logits)
    sample = estimators.make(name, logits=logits, **params).sample(seed=seed)
    objective = tf.reduce_sum(sample * WEIGHTS)
  return sample.numpy(), tape.gradient(objective, logits).numpy()


def assert_hard_one_hot(sample):
  assert set(np.unique(sample)) <= {0.0, 1.0}
  np.testing.assert_array_equal(sample.sum(-1), 1.0)


def test_gst_gradient_is_softmax_jacobian_of_eq_12():
  gap = 0.8
  sample, gradient = sample_and_gradient("gst", temperature=TEMPERATURE, gap=gap)
  assert_hard_one_hot(sample)
  max_logit = LOGITS.max(-1, keepdims=True)
  m1 = (max_logit - (LOGITS * sample).sum(-1, keepdims=True)) * sample
  m2 = -np.maximum(0.0, gap + LOGITS - max_logit) * (1 - sample)
  surrogate = softmax((LOGITS + m1 + m2) / TEMPERATURE)
  np.testing.assert_allclose(gradient, softmax_vjp(surrogate, WEIGHTS) / TEMPERATURE, rtol=1e-10)
  # The perturbed logits make the chosen action the strict argmax, `gap` above the rest.
  perturbed = LOGITS + m1 + m2
  np.testing.assert_array_equal(perturbed.argmax(-1), sample.argmax(-1))


def test_gst_samples_not_always_the_argmax():
  """The seed above must exercise m1 != 0 somewhere, or the test above checks less than it claims."""
  sample, _ = sample_and_gradient("gst", temperature=TEMPERATURE)
  chosen_logit = (LOGITS * sample).sum(-1)
  assert np.any(chosen_logit < LOGITS.max(-1))


def test_st_gradient_is_tempered_softmax_jacobian():
  sample, gradient = sample_and_gradient("st", temperature=TEMPERATURE)
  assert_hard_one_hot(sample)
  expected = softmax_vjp(softmax(LOGITS / TEMPERATURE), WEIGHTS) / TEMPERATURE
  np.testing.assert_allclose(gradient, expected, rtol=1e-10)


def test_reinmax_gradient_matches_its_formula():
  sample, gradient = sample_and_gradient("reinmax", temperature=TEMPERATURE)
  assert_hard_one_hot(sample)
  half = 0.5 * (softmax(LOGITS / TEMPERATURE) + sample)
  expected = 2.0 * softmax_vjp(half, WEIGHTS) - 0.5 * softmax_vjp(softmax(LOGITS), WEIGHTS)
  np.testing.assert_allclose(gradient, expected, rtol=1e-10)


def test_reinmax_at_temperature_one_differs_from_st():
  """A wrong ReinMax that reduced to ST would pass a formula test written from the same mistake."""
  _, reinmax_gradient = sample_and_gradient("reinmax", temperature=1.0)
  _, st_gradient = sample_and_gradient("st", temperature=1.0)
  assert np.abs(reinmax_gradient - st_gradient).max() > 1e-3


def test_stgs_gradient_uses_the_samples_own_gumbel_noise():
  seed = (3, 5)
  sample, gradient = sample_and_gradient("stgs", seed=seed, temperature=TEMPERATURE)
  # TFP's sample() passes the sanitised seed straight to _sample_n: rebuild the same noise.
  noise = base.gumbel(LOGITS.shape, tf.constant(seed, tf.int32), tf.float64).numpy()
  np.testing.assert_array_equal(sample.argmax(-1), (LOGITS + noise).argmax(-1))
  expected = softmax_vjp(softmax((LOGITS + noise) / TEMPERATURE), WEIGHTS) / TEMPERATURE
  np.testing.assert_allclose(gradient, expected, rtol=1e-10)


def test_tags_is_stgs_at_the_scheduled_temperature():
  params = dict(start_temperature=4.0, end_temperature=0.1, period=1000)
  for step, expected_temperature in [(0, 4.0), (500, 4.0 * (0.1 / 4.0) ** 0.5), (1000, 0.1),
                                     (5000, 0.1)]:
    dist = estimators.make("tags", logits=tf.constant(LOGITS), step=step, **params)
    np.testing.assert_allclose(dist.temperature.numpy(), expected_temperature, rtol=1e-12)
    _, tags_gradient = sample_and_gradient("tags", step=step, **params)
    _, stgs_gradient = sample_and_gradient("stgs", temperature=expected_temperature)
    np.testing.assert_allclose(tags_gradient, stgs_gradient, rtol=1e-9)


def test_annealed_gst_is_gst_at_the_scheduled_temperature():
  _, annealed = sample_and_gradient("gst", start_temperature=1.0, end_temperature=0.25, period=10,
                                    step=tf.constant(5))
  _, fixed = sample_and_gradient("gst", temperature=0.5)
  np.testing.assert_allclose(annealed, fixed, rtol=1e-9)


def test_grmck_with_one_sample_is_stgs_at_the_forward_noise():
  """K = 1: the one Gumbel draw is the forward pass's own, so the gradient is STGS's at that draw."""
  seed = (21, 4)
  sample, gradient = sample_and_gradient("grmck", seed=seed, temperature=TEMPERATURE, num_samples=1)
  assert_hard_one_hot(sample)
  action_seed, _ = base.split_seed(tf.constant(seed, tf.int32))
  perturbed = LOGITS + base.gumbel(LOGITS.shape, action_seed, tf.float64).numpy()
  np.testing.assert_array_equal(sample, np.eye(5)[perturbed.argmax(-1)])
  expected = softmax_vjp(softmax(perturbed / TEMPERATURE), WEIGHTS) / TEMPERATURE
  np.testing.assert_allclose(gradient, expected, rtol=1e-10)


def test_grmck_averages_the_forward_draw_and_k_minus_1_conditional_draws():
  """Eq. 9 with g_1 the forward draw and g_2 .. g_K = conditional_gumbel(K - 1) from the second seed."""
  seed = (21, 4)
  sample, gradient = sample_and_gradient("grmck", seed=seed, temperature=TEMPERATURE, num_samples=3)
  action_seed, noise_seed = base.split_seed(tf.constant(seed, tf.int32))
  perturbed = LOGITS + base.gumbel(LOGITS.shape, action_seed, tf.float64).numpy()
  hard = np.eye(5)[perturbed.argmax(-1)]
  np.testing.assert_array_equal(sample, hard)
  conditional = grmck.conditional_gumbel(tf.constant(LOGITS), tf.constant(hard), 2, noise_seed).numpy()
  draws = np.concatenate([perturbed[np.newaxis], conditional])
  expected = np.mean([softmax_vjp(softmax(draw / TEMPERATURE), WEIGHTS) for draw in draws], 0) / TEMPERATURE
  np.testing.assert_allclose(gradient, expected, rtol=1e-10)
  # The forward draw counts once, not as a fresh draw: leaving it out changes the value.
  without = np.mean([softmax_vjp(softmax(draw / TEMPERATURE), WEIGHTS) for draw in conditional], 0)
  assert np.abs(without / TEMPERATURE - gradient).max() > 1e-3


def test_grmck_conditional_noise_keeps_the_chosen_action_on_top():
  logits = tf.constant(np.random.default_rng(0).normal(size=(200, 6)) * 3)
  hard = base.categorical_one_hot(logits, tf.constant([1, 2]))
  perturbed = grmck.conditional_gumbel(logits, hard, 16, tf.constant([3, 4])).numpy()
  np.testing.assert_array_equal(perturbed.argmax(-1), np.broadcast_to(hard.numpy().argmax(-1),
                                                                        perturbed.shape[:-1]))


def test_grmck_conditional_noise_marginalises_to_gumbel():
  """Averaged over a ~ softmax(z), z + g | a is z + Gumbel(0, 1): mean z + Euler's gamma, var pi^2/6."""
  rows = 100_000
  logits = tf.constant(np.tile([[1.0, -0.5, 0.2, 2.0]], (rows, 1)))
  hard = base.categorical_one_hot(logits, tf.constant([5, 6]))
  perturbed = grmck.conditional_gumbel(logits, hard, 1, tf.constant([7, 8])).numpy()[0]
  noise = perturbed - logits.numpy()
  standard_error = np.sqrt(np.pi ** 2 / 6 / rows)
  np.testing.assert_allclose(noise.mean(0), np.euler_gamma, atol=5 * standard_error)
  np.testing.assert_allclose(noise.var(0), np.pi ** 2 / 6, rtol=0.03)


def test_gumbel_softmax_is_soft_and_differentiable():
  sample, gradient = sample_and_gradient("gumbel_softmax", temperature=TEMPERATURE)
  np.testing.assert_allclose(sample.sum(-1), 1.0, rtol=1e-12)
  assert np.all((sample > 0) & (sample < 1))
  np.testing.assert_allclose(gradient, softmax_vjp(sample, WEIGHTS) / TEMPERATURE, rtol=1e-9)


@pytest.mark.parametrize("name", ["stgs", "grmck", "gst", "st", "reinmax"])
def test_straight_through_forward_is_exactly_one_hot(name):
  sample, gradient = sample_and_gradient(name, temperature=0.3)
  assert_hard_one_hot(sample)
  assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grmck_conditional_softmax_is_softmax_of_conditional_gumbel(dtype):
  """The fast surrogate (three transcendentals per element) equals the reference form of eq. 8, also
  where a logit gap of 120 overflows exp() in float32 (that action's probability is then exactly 0)."""
  rng = np.random.default_rng(3)
  logits = np.concatenate([rng.normal(size=(64, 6)) * 3, [[60., -60., 0., 1., 2., 3.]]]).astype(dtype)
  logits = tf.constant(logits)
  hard = base.categorical_one_hot(logits, tf.constant([1, 2]))
  temperature = tf.constant(TEMPERATURE, logits.dtype)
  probs, scaled = grmck.conditional_softmax(logits, hard, temperature, 8, tf.constant([3, 4]))
  reference = tf.math.softmax(grmck.conditional_gumbel(logits, hard, 8, tf.constant([3, 4])) / temperature)
  assert np.all(np.isfinite(probs.numpy()))
  np.testing.assert_allclose(probs.numpy(), reference.numpy(), rtol=2e-4 if dtype == np.float32 else 1e-9,
                             atol=1e-6 if dtype == np.float32 else 1e-12)
  # Up to a constant per row, scaled is the perturbed logits over the temperature.
  np.testing.assert_array_equal(scaled.numpy().argmax(-1), np.broadcast_to(hard.numpy().argmax(-1), (8, 65)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("power", [1, 2, 3])
def test_grmck_integer_inverse_temperature_form_equals_the_reference(dtype, power):
  """At temperature 1/n the surrogate is r^n / sum r^n (one transcendental per element): the same values
  as softmax(conditional_gumbel / temperature), also with a logit gap of 120, and its `scaled` gives the
  same temperature gradient (equal to the general form's up to a constant per row)."""
  rng = np.random.default_rng(4)
  logits = np.concatenate([rng.normal(size=(64, 6)) * 3, [[60., -60., 0., 1., 2., 3.]]]).astype(dtype)
  logits = tf.constant(logits)
  hard = base.categorical_one_hot(logits, tf.constant([1, 2]))
  temperature = tf.constant(1. / power, logits.dtype)
  assert grmck.integer_inverse(temperature) == power
  probs, scaled = grmck.conditional_softmax(logits, hard, temperature, 8, tf.constant([3, 4]), power=power)
  reference = tf.math.softmax(grmck.conditional_gumbel(logits, hard, 8, tf.constant([3, 4])) / temperature)
  assert np.all(np.isfinite(probs.numpy()))
  np.testing.assert_allclose(probs.numpy(), reference.numpy(), rtol=2e-4 if dtype == np.float32 else 1e-9,
                             atol=1e-6 if dtype == np.float32 else 1e-12)
  general_probs, general_scaled = grmck.conditional_softmax(logits, hard, temperature, 8, tf.constant([3, 4]))
  difference = (general_scaled - scaled).numpy()[..., :64, :]  # rows without -inf
  np.testing.assert_allclose(difference, np.broadcast_to(difference[..., :1], difference.shape),
                             rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-4 if dtype == np.float32 else 1e-9)


def test_integer_inverse_only_for_fixed_temperatures_of_one_over_n():
  assert [grmck.integer_inverse(tf.constant(t)) for t in (1.0, 0.5, 1 / 3, 0.25)] == [1, 2, 3, 4]
  assert [grmck.integer_inverse(tf.constant(t)) for t in (0.7, 2.0, 0.4, 1 / 9)] == [None] * 4
  assert grmck.integer_inverse(tf.constant([0.5, 1.0])) is None  # not one value
  traced = tf.function(lambda t: tf.constant(0) if grmck.integer_inverse(t) is None else tf.constant(1))
  assert traced(tf.constant(0.5)).numpy() == 0  # a run-time tensor: the general form


def test_grmck_at_a_fixed_half_temperature_equals_the_general_form():
  """The same sample and gradient from a constant temperature 0.5 (fast form) and a variable one read
  inside tf.function (general form)."""
  logits = tf.constant(LOGITS)
  seed = tf.constant([5, 6])
  variable = tf.Variable(0.5, dtype=tf.float64)

  def run(temperature):
    with tf.GradientTape() as tape:
      tape.watch(logits)
      sample = estimators.make("grmck", logits=logits, temperature=temperature, num_samples=6).sample(seed=seed)
      objective = tf.reduce_sum(sample * WEIGHTS)
    return sample, tape.gradient(objective, logits)

  fast_sample, fast_gradient = run(0.5)
  general_sample, general_gradient = tf.function(lambda: run(variable))()
  np.testing.assert_array_equal(fast_sample.numpy(), general_sample.numpy())
  np.testing.assert_allclose(fast_gradient.numpy(), general_gradient.numpy(), rtol=1e-9, atol=1e-12)
  assert np.abs(fast_gradient.numpy()).sum() > 0


def test_grmck_temperature_gradient_matches_autodiff_of_the_reference_surrogate():
  """The custom gradient also serves a trainable temperature: d/d(temperature) equals autodiff of
  mean_k softmax(conditional_gumbel / temperature), paired with the same upstream weights."""
  logits = tf.constant(LOGITS)
  temperature = tf.Variable(TEMPERATURE, dtype=tf.float64)
  seed = tf.constant([21, 4])
  with tf.GradientTape() as tape:
    sample = estimators.make("grmck", logits=logits, temperature=temperature, num_samples=4).sample(seed=seed)
    objective = tf.reduce_sum(sample * WEIGHTS)
  ours = tape.gradient(objective, temperature).numpy()
  action_seed, noise_seed = base.split_seed(seed)
  forward = logits + base.gumbel(LOGITS.shape, action_seed, tf.float64)
  hard = base.one_hot_argmax(forward)
  np.testing.assert_array_equal(hard.numpy(), sample.numpy())
  perturbed = tf.concat([forward[tf.newaxis], grmck.conditional_gumbel(logits, hard, 3, noise_seed)], 0)
  with tf.GradientTape() as tape:
    surrogate = tf.reduce_mean(tf.math.softmax(perturbed / temperature), axis=0)
    reference_objective = tf.reduce_sum(surrogate * WEIGHTS)
  reference = tape.gradient(reference_objective, temperature).numpy()
  assert reference != 0
  np.testing.assert_allclose(ours, reference, rtol=1e-9)
