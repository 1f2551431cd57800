"""ZGR, the zero-temperature limit of Gumbel-Rao (Shekhovtsov, ICML 2023, "Cold Analysis of
Rao-Blackwellized Straight-Through Gumbel-Softmax Gradient Estimator").

Written against the public estimator contract only (see `estimators.base.DiscreteGradientEstimator`).
"""

import tensorflow as tf

from estimators import base


class ZGR(base.DiscreteGradientEstimator):
  """Forward: a hard one-hot y ~ Categorical(p), p = softmax(z), chosen index x.

  Backward: the gradient of the surrogate
      s = (p + (y - stop_gradient(p)) * log p_x) / 2,
  the average of the straight-through gradient (of p) and the score-function (DARN) gradient (of
  (y - p) log p_x, with y - p held fixed). For an upstream gradient g with respect to the sample:
      dL/dz = (J(p) g + <g, y - p> (y - p)) / 2,   J(p) g = p * (g - <p, g>),
  since d log p_x / dz = y - p. No temperature: the estimator has no parameters.
  """

  def __init__(self, logits, *, validate_args=False, allow_nan_stats=True, name=None):
    parameters = base.record_parameters(locals())
    super().__init__(logits, validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name,
                     parameters=parameters)

  def _surrogate(self, logits, temperature, sample):
    probs = tf.math.softmax(logits)
    # log p_x from log_softmax: finite for any logits, where log(softmax) underflows to -inf.
    log_prob_chosen = tf.reduce_sum(sample * tf.math.log_softmax(logits), axis=-1, keepdims=True)
    return (probs + (sample - tf.stop_gradient(probs)) * log_prob_chosen) / 2.
