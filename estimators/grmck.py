"""Gumbel-Rao Monte Carlo with K samples (GRMCK; Paulus et al. 2021; paper sec. 3.4, eq. 8-9)."""

import numpy as np
import tensorflow as tf
from tensorflow_probability.python.internal import prefer_static as ps

from estimators import base


def _logaddexp(x, y):
  """log(exp(x) + exp(y)) without overflow."""
  larger = tf.maximum(x, y)
  return larger + tf.math.log1p(tf.exp(-tf.abs(x - y)))


def _exponential_noise(logits, num_samples, seed, transform):
  """`transform(U)` for the K x logits.shape uniforms behind E_j = -log U_j ~ Exp(1) iid."""
  shape = ps.concat([[num_samples], ps.shape(logits)], axis=0)
  # Word-major: no other code reproduces these numbers, and XLA on CPU then skips a transpose.
  return base.word_major_noise(shape, seed, logits.dtype, transform)


def conditional_gumbel(logits, hard, num_samples, seed):
  """K samples of z + g given that argmax(z + g) is the action of one-hot `hard` (eq. 8).

  With E_j ~ Exp(1) iid, i the chosen index and log Z = logsumexp(z):
    chosen:  -log E_i + log Z
    others:  -log(E_j / exp(z_j) + E_i / Z) = -logaddexp(log E_j - z_j, log E_i - log Z)
  Written in log space so that logits of magnitude 50 neither overflow nor give NaN.
  Returns shape [num_samples] + logits.shape. The reference form: `conditional_softmax` computes
  softmax(conditional_gumbel / temperature) from the same noise with fewer operations.
  """
  log_exponential = _exponential_noise(logits, num_samples, seed,
                                       lambda values: tf.math.log(-tf.math.log(values)))
  log_normaliser = tf.math.reduce_logsumexp(logits, axis=-1, keepdims=True)
  log_exponential_chosen = tf.reduce_sum(log_exponential * hard, axis=-1, keepdims=True)
  chosen = log_normaliser - log_exponential_chosen
  others = -_logaddexp(log_exponential - logits, log_exponential_chosen - log_normaliser)
  return tf.where(hard > 0, chosen, others)


def conditional_softmax(logits, hard, temperature, num_samples, seed, power=None):
  """softmax(p_k / temperature) for the K samples p_k = `conditional_gumbel(logits, hard, K, seed)`.

  Returns (probs, scaled), both [K] + logits.shape, where scaled = (p_k - c) / temperature for a constant
  c per row (softmax and its gradients do not see c).

  Why not softmax(conditional_gumbel(...)): that costs five transcendental functions per element; this
  costs three. With m = max_j z_j, X_j = exp(m - p_j) is
    chosen:  E_i / S,                        S = sum_j exp(z_j - m), in [1, A]
    others:  E_j exp(m - z_j) + E_i / S
  and p_j = m - log X_j. exp(m - z_j) >= 1 is computed once per row, not per sample; where it overflows
  (a logit gap over ~88 in float32) X_j = inf, p_j = -inf and the softmax gives that action exactly 0.

  `power`: an integer n with temperature = 1 / n (a fixed temperature of 1, 1/2, 1/3, ...), or None. Then
  softmax(p / temperature)_j = r_j^n / sum_l r_l^n with r_j = X_i / X_j in [0, 1] (r_i = 1: the chosen
  action holds the row's largest p), which needs one transcendental function per element (the
  exponential noise) instead of three, and cannot overflow. `scaled` = n log r is then only computed if
  something uses it (the temperature's gradient).
  """
  exponential = _exponential_noise(logits, num_samples, seed, lambda values: -tf.math.log(values))
  shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)
  weights = tf.exp(-shifted)
  chosen_exponential = tf.reduce_sum(exponential * hard, axis=-1, keepdims=True)
  normaliser = tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True)
  if power is None:
    chosen = chosen_exponential / normaliser
    scaled = -tf.math.log(tf.where(hard > 0, chosen, exponential * weights + chosen)) / temperature
    return tf.math.softmax(scaled), scaled
  # r_j = X_i / X_j = 1 / (1 + E_j exp(m - z_j) S / E_i): products where X_j would need a sum and a
  # division per element (~15% of GRMCK's time at 512 x 6). An overflowing exp(m - z_j) gives r_j = 0.
  ratio = tf.where(hard > 0, tf.ones_like(exponential),
                   1. / (1. + exponential * weights * (normaliser / chosen_exponential)))
  powered = ratio
  for _ in range(power - 1):
    powered = powered * ratio
  probs = powered / tf.reduce_sum(powered, axis=-1, keepdims=True)
  return probs, tf.math.log(ratio) * tf.cast(power, ratio.dtype)


def integer_inverse(temperature, largest=8):
  """n if `temperature` is statically known to be 1/n everywhere for an integer n in 1..`largest`, else None."""
  value = tf.get_static_value(temperature)
  if value is None:
    return None
  inverse = 1. / np.asarray(value, np.float64)
  if inverse.size == 0 or not np.all(inverse == inverse.flat[0]):
    return None
  n = int(round(float(inverse.flat[0])))
  return n if 1 <= n <= largest and abs(float(inverse.flat[0]) - n) < 1e-6 else None


class GumbelRaoMonteCarlo(base.SampleCount, base.DiscreteGradientEstimator):
  """Forward: a ~ Categorical(softmax(z)) as a hard one-hot, by Gumbel-max: a = argmax(z + g).

  Backward: the gradient of (1/K) sum_k softmax((z + g_k) / temperature), where the K noise draws
  g_k ~ (g | argmax(z + g) = a) are constants (eq. 9): a Rao-Blackwellised STGS. The forward pass's own
  g is such a draw (it is a Gumbel vector whose argmax is a), so it is g_1, and only g_2 .. g_K are drawn
  from the conditional: the estimator's distribution is that of K fresh draws, for (K-1)/K of the noise.
  (K = 1 is then STGS exactly, with the same noise.) Vectorised over K. The surrogate is only needed for
  the gradient, so it is computed in the backward pass (a custom gradient): the forward pass costs one
  categorical sample, as the authors' no-gradient mode does.
  """

  def __init__(self, logits, temperature=None, num_samples=10, **kwargs):
    parameters = base.record_parameters(locals())
    self._set_num_samples(num_samples)
    super().__init__(logits, temperature, parameters=parameters, **kwargs)

  def _relax(self, logits, temperature, seed):
    action_seed, noise_seed = base.split_seed(seed)
    perturbed = logits + base.gumbel(ps.shape(logits), action_seed, logits.dtype)
    hard = base.one_hot_argmax(perturbed)
    num_samples = self._num_samples
    # A fixed temperature of 1/n (the paper's 1 and LBF's 0.5) takes the cheaper exact form (see
    # `conditional_softmax`); any other, or a schedule's tensor, the general one.
    power = integer_inverse(self._temperature)

    @tf.custom_gradient
    def sample(logits, temperature):
      def gradient(upstream):
        # Sample 1, the forward draw: (z + g) / temperature, shifted by its row maximum.
        scaled = (perturbed - tf.reduce_max(perturbed, axis=-1, keepdims=True))[tf.newaxis] / temperature
        probs = tf.math.softmax(scaled)
        if num_samples > 1:
          more_probs, more_scaled = conditional_softmax(tf.stop_gradient(logits), hard, temperature,
                                                        num_samples - 1, noise_seed, power)
          probs = tf.concat([probs, more_probs], axis=0)
          scaled = tf.concat([scaled, more_scaled], axis=0)
        # d/d(scaled) of the mean surrogate's pairing with `upstream`, per sample k.
        scaled_gradient = base.softmax_vjp(probs, upstream) / num_samples
        logits_gradient = tf.reduce_sum(scaled_gradient, axis=0) / temperature
        # scaled = p / temperature: d/d(temperature) = -scaled / temperature. Where an action's
        # probability is exactly 0, scaled is -inf and its gradient 0: that product counts as 0.
        temperature_gradient = -tf.reduce_sum(tf.math.multiply_no_nan(scaled, scaled_gradient),
                                              axis=[0, ps.rank(scaled) - 1]) / tf.squeeze(temperature, -1)
        return logits_gradient, temperature_gradient[..., tf.newaxis]
      return tf.identity(hard), gradient

    return sample(logits, temperature)
