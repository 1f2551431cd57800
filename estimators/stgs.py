"""Straight-through Gumbel-Softmax (STGS; Jang et al. 2017): STGS-1 at temperature 1, STGS-T below it."""

import tensorflow as tf
from tensorflow_probability.python.internal import prefer_static as ps

from estimators import base


class StraightThroughGumbelSoftmax(base.DiscreteGradientEstimator):
  """Forward: h = one_hot(argmax(z + g)), g ~ Gumbel(0, 1) (a sample of softmax(z)).

  Backward: the gradient of s = softmax((z + g) / temperature), with the SAME noise g (paper eq. 4).
  The temperature changes only the gradient, never the sampled action.
  """

  def _relax(self, logits, temperature, seed):
    perturbed = logits + base.gumbel(ps.shape(logits), seed, logits.dtype)
    soft = tf.math.softmax(perturbed / temperature)
    return base.straight_through(base.one_hot_argmax(perturbed), soft)
