"""The exact expectation over the action: no sample, the exact gradient (an enumeration of the actions).

For f of a one-hot action a ~ Categorical(p), p = softmax(z), with v_a = f(e_a) the value at the a-th
vertex: E f = sum_a p_a v_a, whose gradient is p * (v - <p, v>). Only the values at the vertices enter, so
it costs A evaluations of f per row: cheap for small action sets (LBF has 6).
"""

import tensorflow as tf

from estimators import base


def vertex_values(f, logits, sample_axis=0):
  """v [*batch, A]: f at every one-hot action, row by row (f is called on the A vertices stacked along a new
  axis at `sample_axis` of the logits' shape, see `DiscreteGradientEstimator.objective`)."""
  logits = tf.convert_to_tensor(logits)
  num_actions = logits.shape[-1]
  rank = logits.shape.rank
  axis = base.sample_axis_index(sample_axis, rank)
  eye_shape = [1] * axis + [num_actions] + [1] * (rank - 1 - axis) + [num_actions]
  shape = tf.shape(logits)
  vertices = tf.broadcast_to(tf.reshape(tf.eye(num_actions, dtype=logits.dtype), eye_shape),
                             tf.concat([shape[:axis], [num_actions], shape[axis:]], axis=0))
  values = f(vertices)                                                   # the vertex axis at `axis`
  permutation = [k for k in range(rank) if k != axis] + [axis]
  return tf.cast(tf.transpose(values, permutation), logits.dtype)


def expectation(f, logits, sample_axis=0):
  """E_{a ~ softmax(logits)} f(a) [*batch], exactly: sum_a softmax(logits)_a f(e_a)."""
  return tf.reduce_sum(tf.math.softmax(logits) * vertex_values(f, logits, sample_axis), axis=-1)


class ExactExpectation(base.ObjectiveEstimator):
  """`objective` is the exact expectation sum_a softmax(z)_a f(e_a): the exact gradient, no variance, A
  evaluations of f per row. Samples carry no gradient; no parameters."""

  objective_form = base.EXACT

  def __init__(self, logits, *, validate_args=False, allow_nan_stats=True, name=None):
    parameters = base.record_parameters(locals())
    super().__init__(logits, validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name,
                     parameters=parameters)

  def objective(self, f, seed, sample_axis=0):
    del seed  # nothing is sampled
    return expectation(f, self.logits, sample_axis)
