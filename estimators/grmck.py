"""Gumbel-Rao Monte Carlo with K samples (GRMCK; Paulus et al. 2021; paper sec. 3.4, eq. 8-9)."""

import tensorflow as tf
from tensorflow_probability.python.internal import prefer_static as ps

from estimators import base


def _logaddexp(x, y):
  """log(exp(x) + exp(y)) without overflow."""
  larger = tf.maximum(x, y)
  return larger + tf.math.log1p(tf.exp(-tf.abs(x - y)))


def conditional_gumbel(logits, hard, num_samples, seed):
  """K samples of z + g given that argmax(z + g) is the action of one-hot `hard` (eq. 8).

  With E_j ~ Exp(1) iid, i the chosen index and log Z = logsumexp(z):
    chosen:  -log E_i + log Z
    others:  -log(E_j / exp(z_j) + E_i / Z) = -logaddexp(log E_j - z_j, log E_i - log Z)
  Written in log space so that logits of magnitude 50 neither overflow nor give NaN.
  Returns shape [num_samples] + logits.shape.
  """
  shape = ps.concat([[num_samples], ps.shape(logits)], axis=0)
  log_exponential = base.noise(shape, seed, logits.dtype, lambda values: tf.math.log(-tf.math.log(values)))
  log_normaliser = tf.math.reduce_logsumexp(logits, axis=-1, keepdims=True)
  log_exponential_chosen = tf.reduce_sum(log_exponential * hard, axis=-1, keepdims=True)
  chosen = log_normaliser - log_exponential_chosen
  others = -_logaddexp(log_exponential - logits, log_exponential_chosen - log_normaliser)
  return tf.where(hard > 0, chosen, others)


class GumbelRaoMonteCarlo(base.DiscreteGradientEstimator):
  """Forward: a ~ Categorical(softmax(z)) as a hard one-hot.

  Backward: the gradient of (1/K) sum_k softmax((z + g_k) / temperature), where the K noise draws
  g_k ~ (g | argmax(z + g) = a) are constants (eq. 9): a Rao-Blackwellised STGS. Vectorised over K.
  """

  hyperparameter_names = ("num_samples",)

  # Same parameter properties as the base; redefined here because __init__ is (TFP checks).
  _parameter_properties = vars(base.DiscreteGradientEstimator)["_parameter_properties"]

  def __init__(self, logits, temperature=None, num_samples=10, **kwargs):
    parameters = base.record_parameters(locals())
    self._num_samples = base.check_integer_at_least("num_samples (K)", num_samples, 1)
    super().__init__(logits, temperature, parameters=parameters, **kwargs)

  @property
  def num_samples(self):
    return self._num_samples

  def _relax(self, logits, temperature, seed):
    action_seed, noise_seed = base.split_seed(seed)
    hard = base.categorical_one_hot(logits, action_seed)
    perturbed = tf.stop_gradient(conditional_gumbel(logits, hard, self._num_samples, noise_seed))
    # The value is the perturbed logits; the gradient flows through z with coefficient one.
    relaxed = tf.math.softmax((perturbed + (logits - tf.stop_gradient(logits))) / temperature)
    return base.straight_through(hard, tf.reduce_mean(relaxed, axis=0))
