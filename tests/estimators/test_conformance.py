"""The conformance kit: every built-in estimator passes it, deliberately broken ones fail the right check."""

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf

import estimators
from estimators import base, lab, testing

PARAMS = {"stgs": dict(temperature=0.6), "tags": dict(start_temperature=4.0, end_temperature=0.1,
                                                       period=100, step=37),
          "grmck": dict(temperature=0.5, num_samples=10), "gst": dict(temperature=0.7, gap=1.0),
          "st": dict(temperature=0.8), "gumbel_softmax": dict(temperature=0.9),
          "reinmax": dict(temperature=1.3),
          "reinmax-rao": dict(temperature=0.5, num_samples=10),
          "reinmax-cv": dict(temperature=0.5, num_samples=10, cv_weight=0.7), "zgr": {}}
FAST_XLA = "stgs"  # the one estimator whose XLA check runs without the slow marker


def cases():
  for name in estimators.names():
    for check in testing.CHECKS:
      marks = [pytest.mark.slow] if check == "xla" and name != FAST_XLA else []
      yield pytest.param(name, check, marks=marks, id=f"{name}-{check}")


def test_params_cover_every_estimator():
  assert set(PARAMS) == set(estimators.names())


@pytest.mark.parametrize("name, check", list(cases()))
def test_built_in_estimator_passes(name, check):
  dict(testing.estimator_checks(name, **PARAMS[name]))[check]()


def test_report_figures_are_the_chi_square_and_the_labs():
  """The report's chi-square is Pearson's over the rows (scipy, row by row); its statistics are the lab's
  for the same problem, seeds and sizes."""
  report = testing.check_estimator("st", temperature=0.8)
  assert report.passed == testing.CHECKS and report.estimator == "st"
  samples = estimators.make("st", logits=tf.constant(testing.FREQUENCY_LOGITS, tf.float32),
                            temperature=0.8).sample(testing.DRAWS, seed=testing.SEED).numpy()
  statistic = sum(scipy.stats.chisquare(np.bincount(samples[:, row].argmax(-1), minlength=5),
                                        testing.DRAWS * scipy.special.softmax(logits)).statistic
                  for row, logits in enumerate(testing.FREQUENCY_LOGITS))
  assert report.degrees_of_freedom == 12
  np.testing.assert_allclose(report.chi_square, statistic, rtol=1e-12)
  np.testing.assert_allclose(report.p_value, scipy.stats.chi2.sf(statistic, 12), rtol=1e-12)
  stats = lab.gradient_statistics("st", lab.random_function("quadratic", 4, 5, seed=1),
                                  lab.random_logits(4, 5, seed=0), temperature=0.8, num_samples=200,
                                  num_replicates=5, seed=3)
  assert report.bias == stats.bias and report.variance == stats.variance
  assert report.statistics.mse == stats.mse
  assert "passed one_hot, frequencies" in str(report) and "bias" in str(report)


# ---- broken estimators: each fails exactly the check named -------------------------------------------

class WrongFrequencies(base.DiscreteGradientEstimator):
  """Samples softmax(logits / 2): the temperature leaked into the forward pass."""

  def _relax(self, logits, temperature, seed):
    sample = base.categorical_one_hot(logits / 2., seed)
    return base.straight_through(sample, tf.math.softmax(logits / temperature))


class XlaIgnoresTheStream(base.DiscreteGradientEstimator):
  """Gumbel-max on TF's default stateless algorithm: eager and tf.function agree, XLA draws other bits."""

  def _relax(self, logits, temperature, seed):
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed=seed, minval=1e-6, maxval=1.,
                                          dtype=logits.dtype)
    sample = base.one_hot_argmax(logits - tf.math.log(-tf.math.log(uniform)))
    return base.straight_through(sample, tf.math.softmax(logits))


class NaiveSoftmax(base.DiscreteGradientEstimator):
  """exp(z) / sum exp(z): inf / inf = NaN once a logit passes ~88 in float32."""

  def _surrogate(self, logits, temperature, sample):
    weights = tf.exp(logits / temperature)
    return weights / tf.reduce_sum(weights, axis=-1, keepdims=True)


class GradientSummedOverTheBatch(base.DiscreteGradientEstimator):
  """A custom gradient that forgets the batch axes."""

  def _relax(self, logits, temperature, seed):
    sample = base.categorical_one_hot(logits, seed)

    @tf.custom_gradient
    def carry(z):
      def gradient(upstream):
        vjp = base.softmax_vjp(tf.math.softmax(z), upstream)
        return tf.reduce_sum(tf.reshape(vjp, [-1, tf.shape(z)[-1]]), axis=0)
      return tf.identity(sample), gradient

    return carry(logits)


class NoHook(base.DiscreteGradientEstimator):
  """Writes neither hook."""


@pytest.mark.parametrize("cls, check, detail", [
    (WrongFrequencies, "frequencies", r"chi-square .* not distributed as softmax\(logits\)"),
    (NaiveSoftmax, "large_logits", r"float32 logits .*: the sample is not finite"),
    (GradientSummedOverTheBatch, "gradient_shapes",
     r"logits \[5\]: computing the gradient raised InvalidArgumentError"),
    (XlaIgnoresTheStream, "xla", r"seed \(20230, 7\): the sample under XLA differs from the eager one"),
    (NoHook, "one_hot", r"raised NotImplementedError: NoHook implements neither _surrogate nor _relax"),
])
def test_broken_estimator_fails_the_check_named(cls, check, detail):
  label = f"{__name__}:{cls.__qualname__}"
  with pytest.raises(AssertionError, match=rf"^{label}: check '{check}' failed: {detail}"):
    testing.check_estimator(cls)
  # Every check before it passes: the failure is that check's alone.
  for name, run in testing.estimator_checks(cls):
    if name == check:
      break
    run()


def test_estimator_checks_pairs_are_every_check_in_order():
  pairs = testing.estimator_checks("gst", temperature=0.7)
  assert [name for name, _ in pairs] == list(testing.CHECKS)
  assert all(callable(run) for _, run in pairs)
  assert pairs[1][1]()["degrees_of_freedom"] == 12


@pytest.mark.parametrize("estimator, params, message", [
    ("gst", dict(kappa=1.0), r"estimator 'gst' has no parameter 'kappa'; allowed: temperature"),
    ("gst", dict(gap=-1.0), r"gap must be > 0 and finite, got -1.0"),
    ("zgr", dict(temperature=0.5), r"estimator 'zgr' has no parameter 'temperature'"),
    ("gumbel", {}, r"unknown estimator 'gumbel'; allowed: grmck, .*, or module.path:ClassName"),
    (int, {}, r"estimator 'int' is <class 'int'>, not a subclass of estimators.DiscreteGradientEstimator"),
])
def test_kit_bad_input_is_one_value_error_line(estimator, params, message):
  with pytest.raises(ValueError, match=message) as caught:
    testing.check_estimator(estimator, **params)
  assert "\n" not in str(caught.value)
