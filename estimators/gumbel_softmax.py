"""The relaxed Gumbel-Softmax sample (Jang et al. 2017; Maddison et al. 2017), soft in the forward pass."""

import tensorflow as tf
from tensorflow_probability.python.internal import prefer_static as ps

from estimators import base


class GumbelSoftmax(base.DiscreteGradientEstimator):
  """Forward AND backward: softmax((z + g) / temperature), g ~ Gumbel(0, 1).

  Not straight-through: the sample is a point of the simplex, not a one-hot vector; its argmax is
  distributed as Categorical(softmax(z)). Here for comparison with the straight-through estimators;
  a critic trained on one-hot actions sees inputs it never saw in training.
  """

  one_hot_samples = False

  def _relax(self, logits, temperature, seed):
    perturbed = logits + base.gumbel(ps.shape(logits), seed, logits.dtype)
    return tf.math.softmax(perturbed / temperature)
