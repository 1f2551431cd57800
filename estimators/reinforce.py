"""REINFORCE: the score-function gradient f(a) grad log p(a) of one sample, no baseline (unbiased, the
reference of the estimator lab)."""

import tensorflow as tf

from estimators import base


def score_function(f, logits, seed):
  """[*batch] whose value is f(a) for one action a ~ softmax(logits) (shaped like them) and whose gradient
  with respect to `logits` is f(a) (e_a - softmax(logits))."""
  actions = tf.stop_gradient(base.categorical_one_hot(logits, seed))
  values = tf.stop_gradient(tf.cast(f(actions), logits.dtype))
  score = tf.reduce_sum(actions * tf.math.log_softmax(logits), axis=-1) * values
  return values + score - tf.stop_gradient(score)


class Reinforce(base.ObjectiveEstimator):
  """`objective` is `score_function`: unbiased, one evaluation of f per row. No parameters."""

  objective_form = base.SCORE_FUNCTION

  def __init__(self, logits, *, validate_args=False, allow_nan_stats=True, name=None):
    parameters = base.record_parameters(locals())
    super().__init__(logits, validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name,
                     parameters=parameters)

  def objective(self, f, seed, sample_axis=0):
    del sample_axis  # one sample, shaped like the logits
    return score_function(f, self.logits, seed)
