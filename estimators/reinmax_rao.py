"""ReinMax-Rao (Wang and Bui, "Beyond ReinMax: Low-Variance Gradient Estimators for Discrete Latent
Variables", arXiv 2603.08257, March 2026).

Source of the formula. The paper's HTML was reachable only up to its introduction, which names the
estimator ("Rao-Blackwellisation ... into ReinMax") but not its equation. The formula below is read from the
authors' code, github.com/danielwang0452/DiscreteNumericalMethodsASC at commit 54b6cc7 (2026-01-11):
`mnist_vae/model/categorical_beta.py` maps the method `reinmax_v3` to `reinmax_v2.py`'s `ReinMaxCore_v2`
with `rao_gumbel_v3`, and `plot_check_variance.py` (commit 62697d1) labels `reinmax_v3` "ReinMax-Rao".
Our own TensorFlow; no code is copied.
"""

import tensorflow as tf

from estimators import base
from estimators import grmck

# The authors' number of conditional Gumbel draws (`repeats=100` in `rao_gumbel_v3`).
DEFAULT_NUM_SAMPLES = 100


def shifted_logits(logits, hard):
  """theta' = log((pi + D) / 2) + log 2, pi = softmax(z), D the one-hot `hard`: the logits of ReinMax's
  midpoint distribution (softmax(theta') = (pi + D) / 2; the constant log 2 does not change a softmax).

  In log space: theta'_j = log pi_j for j != i, and theta'_i = log(1 + pi_i) = softplus(log pi_i) for the
  chosen action i, so logits of magnitude 1000 stay finite (log pi_j is then about -2000, not -inf).
  """
  log_probs = tf.math.log_softmax(logits)
  return tf.where(hard > 0, tf.math.softplus(log_probs), log_probs)


def conditional_jacobian_vjp(theta, hard, temperature, num_samples, seed, upstream, power=None):
  """(1/K) sum_k J(softmax((theta + G_k) / tau))^T g / tau, for K draws G_k ~ Gumbel given
  argmax(theta + G) = the action of `hard` (GRMCK's conditional sampler, `grmck.conditional_softmax`).

  J(p) = diag(p) - p p^T is the softmax Jacobian at output p (symmetric, so J^T g = J g = p * (g - <p, g>)).
  `theta` must not carry a gradient: it enters as a constant, the Jacobian is the estimator's. `power`: n
  when the temperature is a fixed 1/n (`grmck.integer_inverse`), for GRMCK's cheaper exact form, else None.
  """
  probs, _ = grmck.conditional_softmax(theta, hard, temperature, num_samples, seed, power)
  return tf.reduce_mean(base.softmax_vjp(probs, upstream[tf.newaxis]), axis=0) / temperature


class ReinMaxRao(base.SampleCount, base.DiscreteGradientEstimator):
  """ReinMax with its midpoint Jacobian Rao-Blackwellised over conditional Gumbels.

  Forward: D ~ Categorical(pi), pi = softmax(z), as a hard one-hot (Gumbel-max).
  Backward, for the upstream gradient g with respect to the sample (J(p) g = p * (g - <p, g>)):

    ReinMax (Liu et al. 2023):  dL/dz = 2 J(pi_half) g - J(pi) g / 2,   pi_half = (softmax(z / tau) + D) / 2
    ReinMax-Rao:                dL/dz = 2 Jbar g      - J(pi) g / 2,
      Jbar = (1/K) sum_k J(softmax((theta' + G_k) / tau)) / tau,   theta' = log((pi + D) / 2),
      G_k ~ Gumbel(0, 1)^A given argmax(theta' + G_k) = D, k = 1..K (K = `num_samples`, the authors' 100).

  That is, ReinMax's Jacobian at its midpoint pi_half = softmax(theta') is replaced by the Gumbel-Rao
  (GRMCK) Jacobian at the logits theta', conditioned on the sampled action; theta' and the G_k are constants
  of the backward pass. As in the authors' code the temperature acts only in the Gumbel-softmax (pi inside
  theta' is softmax(z), not softmax(z / tau)), so at tau = 1 the two midpoints agree. The G_k are drawn from
  their own seed (split from the sample's), with GRMCK's conditional sampler.
  """

  def __init__(self, logits, temperature=None, num_samples=DEFAULT_NUM_SAMPLES, **kwargs):
    parameters = base.record_parameters(locals())
    self._set_num_samples(num_samples)
    super().__init__(logits, temperature, parameters=parameters, **kwargs)

  def _relax(self, logits, temperature, seed):
    action_seed, noise_seed = base.split_seed(seed)
    hard = base.categorical_one_hot(logits, action_seed)
    num_samples = self._num_samples
    # From the temperature as given (not the broadcast tensor), so eager, graph and XLA take the same form.
    power = grmck.integer_inverse(self._temperature)

    @tf.custom_gradient
    def reinmax_rao_sample(z):
      def gradient(upstream):
        theta = shifted_logits(tf.stop_gradient(z), hard)
        rao = conditional_jacobian_vjp(theta, hard, temperature, num_samples, noise_seed, upstream, power)
        return 2. * rao - 0.5 * base.softmax_vjp(tf.math.softmax(z), upstream)
      return tf.identity(hard), gradient

    return reinmax_rao_sample(logits)
