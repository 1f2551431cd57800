"""Plain straight-through estimator (Bengio et al. 2013), with a temperature."""

import tensorflow as tf

from estimators import base


class StraightThrough(base.DiscreteGradientEstimator):
  """Forward: a ~ Categorical(softmax(z)). Backward: the gradient of softmax(z / temperature)."""

  def _relax(self, logits, temperature, seed):
    hard = base.categorical_one_hot(logits, seed)
    return base.straight_through(hard, tf.math.softmax(logits / temperature))
