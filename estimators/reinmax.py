"""ReinMax (Liu et al., NeurIPS 2023, "Bridging Discrete and Backpropagation: Straight-Through and Beyond")."""

import tensorflow as tf

from estimators import base


class ReinMax(base.DiscreteGradientEstimator):
  """Second-order accurate straight-through (Heun's method instead of ST's forward Euler).

  Forward: D ~ Categorical(pi0), pi0 = softmax(z), as a hard one-hot.
  Backward, for the upstream gradient g with respect to the sample:
    pi_half = (softmax(z / temperature) + D) / 2
    dL/dz   = 2 * J(pi_half) g - J(pi0) g / 2,   J(p) g = p * (g - <p, g>)
  (the softmax Jacobian evaluated at pi_half, as in the paper's Algorithm 2).
  """

  def _relax(self, logits, temperature, seed):
    hard = base.categorical_one_hot(logits, seed)

    @tf.custom_gradient
    def reinmax_sample(z):
      def gradient(upstream):
        probs = tf.math.softmax(z)
        half = 0.5 * (tf.math.softmax(z / temperature) + hard)
        return 2. * base.softmax_vjp(half, upstream) - 0.5 * base.softmax_vjp(probs, upstream)
      return tf.identity(hard), gradient

    return reinmax_sample(logits)
