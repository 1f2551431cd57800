"""ReinMax-CV (Wang and Bui, "Beyond ReinMax: Low-Variance Gradient Estimators for Discrete Latent
Variables", arXiv 2603.08257, March 2026).

Source of the formula. The paper's HTML was reachable only up to its introduction, which names the
estimator ("control variate techniques into ReinMax") but not its equation. The formula below is read from
the authors' code, github.com/danielwang0452/DiscreteNumericalMethodsASC at commit 54b6cc7 (2026-01-11):
`reinmax_jacobians.py`, `ReinMaxCore_v2_jacobian` with `jacobian_method == 'reinmax_cv'` (last changed in
6d933c4), and `reinmax_v2.py`'s `rao_gumbel_v4`; `plot_check_variance.py` (commit 62697d1) labels it
"ReinMax-CV". Our own TensorFlow; no code is copied. The class docstring says where that code's variable
names and its formula disagree, and which we follow.
"""

import math

import numpy as np
import tensorflow as tf
from tensorflow_probability.python.internal import prefer_static as ps

from estimators import base
from estimators import grmck
from estimators import reinmax_rao

# The authors' defaults: eta = 0.7 in the code's last version (their sweeps tried 0.5 to 2.0) and
# `repeats=100` conditional draws in `rao_gumbel_v4`.
DEFAULT_CV_WEIGHT = 0.7
DEFAULT_NUM_SAMPLES = reinmax_rao.DEFAULT_NUM_SAMPLES


def check_cv_weight(value):
  """The control variate's weight eta: a finite number >= 0 (0 is ReinMax at temperature 1)."""
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
      math.isfinite(value) and value >= 0):
    raise ValueError(f"cv_weight (eta) must be a finite number >= 0, got {value!r}")
  return float(value)


class ReinMaxCV(base.SampleCount, base.DiscreteGradientEstimator):
  """ReinMax plus eta times a Gumbel-Rao-minus-Gumbel-softmax correction at ReinMax's midpoint.

  Forward: D = onehot(argmax(z + g)), g ~ Gumbel(0, 1)^A (so D ~ Categorical(softmax(z))), and the relaxed
  sample y = softmax((z + g) / tau) is kept for the backward pass.
  Backward, for the upstream gradient g_up with respect to the sample (J(p) v = p * (v - <p, v>)):

    dL/dz = ReinMax + eta * (J_GR - J_GS) g_up
      ReinMax = 2 J(pi_half) g_up - J(pi) g_up / 2,   pi = softmax(z),  pi_half = (pi + D) / 2
      J_GR = (1/K) sum_k J(softmax((theta' + G_k) / tau)) / tau,   G_k ~ Gumbel given argmax(theta' + G_k) = D
      J_GS = J(softmax(theta' + y)) / tau
      theta' = log pi_half (`reinmax_rao.shifted_logits`), eta = `cv_weight`, K = `num_samples`.

  J_GR is ReinMax-Rao's Jacobian (the same conditional sampler, `reinmax_rao.conditional_jacobian_vjp`). As
  in the authors' last version, ReinMax's midpoint is taken at temperature 1 (pi, not softmax(z / tau)); the
  temperature acts in the two correction terms only. eta = 0 is ReinMax at temperature 1.

  J_GS is the authors' code as it ran: its `gumbel_softmax` returns (y, g) and the code keeps y, under the
  name G, and evaluates the softmax Jacobian at log pi_half + y, without a temperature inside. The code's
  comments ("Gumbel softmax evaluated at pi+D/2") suggest the Gumbels g were meant, i.e.
  J(softmax((theta' + g) / tau)) / tau. We keep what produced the paper's results, because the paper's own
  equation could not be read. Neither form is an exact control variate: J_GS depends only on D and g,
  and its mean given D is not J_GR's (the G_k are conditioned under theta', g under z). On the lab's
  quadratic test (tests/test_estimator_lab.py) the form here lowers ReinMax's variance at tau = 1 and adds a
  little bias, while the Gumbel form raised the variance (0.94 -> 1.29 at eta = 0.7): with y, J_GS is
  close to J(pi_half), and the correction moves ReinMax's midpoint Jacobian towards ReinMax-Rao's.
  """

  def __init__(self, logits, temperature=None, num_samples=DEFAULT_NUM_SAMPLES, cv_weight=DEFAULT_CV_WEIGHT,
               **kwargs):
    parameters = base.record_parameters(locals())
    self._set_num_samples(num_samples)
    self._cv_weight = check_cv_weight(cv_weight)
    super().__init__(logits, temperature, parameters=parameters, **kwargs)

  @property
  def cv_weight(self):
    return self._cv_weight

  def _relax(self, logits, temperature, seed):
    action_seed, noise_seed = base.split_seed(seed)
    perturbed = logits + base.gumbel(ps.shape(logits), action_seed, logits.dtype)
    hard = base.one_hot_argmax(perturbed)
    relaxed = tf.math.softmax(perturbed / temperature)
    num_samples, cv_weight = self._num_samples, self._cv_weight
    power = grmck.integer_inverse(self._temperature)  # the temperature as given: one form everywhere

    @tf.custom_gradient
    def reinmax_cv_sample(z):
      def gradient(upstream):
        probs = tf.math.softmax(z)
        reinmax = (2. * base.softmax_vjp(0.5 * (probs + hard), upstream)
                   - 0.5 * base.softmax_vjp(probs, upstream))
        theta = reinmax_rao.shifted_logits(tf.stop_gradient(z), hard)
        rao = reinmax_rao.conditional_jacobian_vjp(theta, hard, temperature, num_samples, noise_seed,
                                                   upstream, power)
        gumbel_softmax = base.softmax_vjp(tf.math.softmax(theta + tf.stop_gradient(relaxed)), upstream)
        return reinmax + cv_weight * (rao - gumbel_softmax / temperature)
      return tf.identity(hard), gradient

    return reinmax_cv_sample(logits)
