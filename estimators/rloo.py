"""REINFORCE leave-one-out (RLOO; Kool et al. 2019): the unbiased score-function gradient with K samples,
each sample's baseline the mean of the other K - 1."""

import tensorflow as tf

from estimators import base


def leave_one_out(f, logits, seed, num_samples, sample_axis=0):
  """[*batch] whose value is the mean of f(a_k) over K = `num_samples` actions a_k ~ softmax(logits) and
  whose gradient with respect to `logits` is RLOO's, (1/K) sum_k grad log p(a_k) (f(a_k) - mean_{j != k}
  f(a_j)). The K actions lie along a new axis at `sample_axis` (see `DiscreteGradientEstimator.objective`)."""
  tiled, axis = base.tile_along(logits, sample_axis, num_samples)                    # [..., K, ..., A]
  actions = tf.stop_gradient(base.categorical_one_hot(tiled, seed))
  values = tf.stop_gradient(tf.cast(f(actions), logits.dtype))
  advantage = values - (tf.reduce_sum(values, axis=axis, keepdims=True) - values) / (num_samples - 1.)
  log_p = tf.reduce_sum(actions * tf.math.log_softmax(tiled), axis=-1)
  score = tf.reduce_mean(log_p * advantage, axis=axis)
  return tf.reduce_mean(values, axis=axis) + score - tf.stop_gradient(score)


class ReinforceLeaveOneOut(base.SampleCount, base.ObjectiveEstimator):
  """`objective` is `leave_one_out`: unbiased, K evaluations of f per row. `num_samples` (K) >= 2."""

  objective_form = base.SCORE_FUNCTION
  min_num_samples = 2  # the baseline is the mean of the other K - 1

  def __init__(self, logits, num_samples=None, *, validate_args=False, allow_nan_stats=True, name=None):
    parameters = base.record_parameters(locals())
    self._set_num_samples(num_samples)
    super().__init__(logits, validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name,
                     parameters=parameters)

  def objective(self, f, seed, sample_axis=0):
    return leave_one_out(f, self.logits, seed, self._num_samples, sample_axis)
