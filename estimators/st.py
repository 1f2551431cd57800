"""Plain straight-through estimator (Bengio et al. 2013), with a temperature."""

import tensorflow as tf

from estimators import base


class StraightThrough(base.DiscreteGradientEstimator):
  """Forward: a ~ Categorical(softmax(z)). Backward: the gradient of softmax(z / temperature)."""

  def _surrogate(self, logits, temperature, sample):
    return tf.math.softmax(logits / temperature)
