"""Acting: one compiled call samples every agent's action in every environment."""

import numpy as np
import tensorflow as tf

from estimators import base as estimator_base


class Actor:
  """Samples behaviour actions a_i ~ Categorical(softmax(mu_i(o_i))) (no exploration noise, as the code).

  Randomness is stateless: call k uses seed (seed, stream, k), so acting is reproducible and resumable
  from the call counter alone.
  """

  def __init__(self, policy_logits, seed, stream=0, jit_compile=True):
    self._policy_logits = policy_logits
    self._seed = int(seed)
    self._stream = int(stream)
    self.calls = 0
    self._sample = tf.function(self._sample_actions, jit_compile=jit_compile, reduce_retracing=True)

  def _sample_actions(self, observations, seed):
    logits = self._policy_logits(observations)                  # [E, N, A]
    gumbel = estimator_base.gumbel(tf.shape(logits), seed, logits.dtype)
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)

  def select_actions(self, observations):
    """[E, N, O] observations -> [E, N] int actions."""
    seed = np.array([self._seed * 7919 + self._stream, self.calls], np.int32)
    self.calls += 1
    return self._sample(tf.convert_to_tensor(observations, tf.float32), seed).numpy()
