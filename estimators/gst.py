"""Gapped Straight-Through (GST; Fan et al. 2022; paper sec. 3.5, eq. 10-12)."""

import tensorflow as tf

from estimators import base, schedules


class GappedStraightThrough(base.DiscreteGradientEstimator):
  """Forward: a ~ Categorical(softmax(z)) as a hard one-hot.

  Backward: the gradient of softmax((z + m1 + m2) / temperature) with the deterministic perturbations
  (constants, no gradient):
    m1 = (max_j z_j - <z, a>) * a                  raises the chosen logit to the maximum;
    m2 = -(gap + z - max_j z_j)_+ * (1 - a)        keeps every other logit at least `gap` below it.
  """

  def __init__(self, logits, temperature=None, gap=1.0, **kwargs):
    parameters = base.record_parameters(locals())
    schedules.check_positive("gap", gap)
    self._gap = gap
    super().__init__(logits, temperature, parameters=parameters, **kwargs)

  @property
  def gap(self):
    return self._gap

  def _relax(self, logits, temperature, seed):
    # The barriers change no number; they keep XLA on CPU from recomputing (and multithreading) these
    # inside each of the softmax's fusions (see `base.fusion_barrier_xla`).
    hard = base.fusion_barrier_xla(tf.stop_gradient(base.categorical_one_hot(logits, seed)))
    perturbation = tf.stop_gradient(base.fusion_barrier_xla(self.perturbation(logits, hard)))
    return base.straight_through(hard, tf.math.softmax((logits + perturbation) / temperature))

  def perturbation(self, logits, hard):
    """m1 + m2 of eq. 10-11 for one-hot actions `hard`."""
    max_logit = tf.reduce_max(logits, axis=-1, keepdims=True)
    chosen_logit = tf.reduce_sum(logits * hard, axis=-1, keepdims=True)
    gap = schedules.to_dtype(self._gap, logits.dtype)
    m1 = (max_logit - chosen_logit) * hard
    m2 = -tf.nn.relu(gap + logits - max_logit) * (1. - hard)
    return m1 + m2
