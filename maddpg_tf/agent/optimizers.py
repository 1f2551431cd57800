"""Adam with PyTorch's epsilon placement, and per-agent gradient clipping for stacked weights.

The authors used torch.optim.Adam with eps = 1e-3. Keras adds epsilon to sqrt(v) before bias
correction, which with such a large epsilon acts up to 31x differently early in training (at
step 1 Keras's epsilon weighs sqrt(1 - b2) = 0.032 of PyTorch's, about 1/31), so this small
optimiser reproduces the PyTorch update exactly:
  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
  w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
Elementwise, so one optimiser over stacked [N, ...] weights is N independent per-agent optimisers.

Packed seeds (`num_seeds=K`, weights [K*S, ...] seed-major): a step count per seed, [K], and `apply(...,
active=[K] bool)` leaves an inactive seed's weights, moments and count exactly as they were: K independent
runs' optimisers.
"""

import tensorflow as tf


class Adam(tf.Module):
  """Adam over a fixed list of variables (PyTorch semantics)."""

  def __init__(self, variables, learning_rate, epsilon=1e-3, beta_1=0.9, beta_2=0.999, name=None,
               num_seeds=None):
    super().__init__(name=name)
    if not learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if not epsilon > 0:
      raise ValueError(f"adam epsilon must be > 0, got {epsilon!r}")
    self.learning_rate = learning_rate
    self.epsilon = epsilon
    self.beta_1 = beta_1
    self.beta_2 = beta_2
    self.num_seeds = num_seeds
    self.iterations = tf.Variable(tf.zeros([] if num_seeds is None else [num_seeds], tf.int64), trainable=False,
                                  name="iterations")
    self.m = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name="m") for v in variables]
    self.v = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name="v") for v in variables]

  def apply(self, gradients, variables, active=None):
    if self.num_seeds is not None:
      return self._apply_packed(gradients, variables, active)
    step = tf.cast(self.iterations.assign_add(1), tf.float32)
    first_correction = 1. - tf.pow(self.beta_1, step)
    second_correction = 1. - tf.pow(self.beta_2, step)
    for gradient, variable, m, v in zip(gradients, variables, self.m, self.v):
      m.assign(self.beta_1 * m + (1. - self.beta_1) * gradient)
      v.assign(self.beta_2 * v + (1. - self.beta_2) * tf.square(gradient))
      denominator = tf.sqrt(v / second_correction) + self.epsilon
      variable.assign_sub(self.learning_rate * (m / first_correction) / denominator)

  def _apply_packed(self, gradients, variables, active):
    """`apply` for K packed seeds: each seed's own step count and bias corrections; `active` [K] bool (None:
    all) selects the seeds that step."""
    active = tf.ones([self.num_seeds], tf.bool) if active is None else active
    step = tf.cast(self.iterations.assign_add(tf.cast(active, tf.int64)), tf.float32)            # [K]
    first_correction = 1. - tf.pow(self.beta_1, step)
    second_correction = 1. - tf.pow(self.beta_2, step)
    for gradient, variable, m, v in zip(gradients, variables, self.m, self.v):
      def per_row(values):  # [K] -> one value per weight row [K*S, 1, ...]
        return tf.reshape(tf.repeat(values, variable.shape[0] // self.num_seeds),
                          [-1] + [1] * (variable.shape.rank - 1))
      row_active = per_row(active)
      new_m = self.beta_1 * m + (1. - self.beta_1) * gradient
      new_v = self.beta_2 * v + (1. - self.beta_2) * tf.square(gradient)
      denominator = tf.sqrt(new_v / per_row(second_correction)) + self.epsilon
      new_variable = variable - self.learning_rate * (new_m / per_row(first_correction)) / denominator
      m.assign(tf.where(row_active, new_m, m))
      v.assign(tf.where(row_active, new_v, v))
      variable.assign(tf.where(row_active, new_variable, variable))

  def state(self):
    """Named slot variables, for checkpoints."""
    named = {"iterations": self.iterations}
    for k, (m, v) in enumerate(zip(self.m, self.v)):
      named[f"m_{k}"] = m
      named[f"v_{k}"] = v
    return named


def per_agent_global_norm(gradients):
  """[N]: each agent's global gradient norm over every stacked [N, ...] gradient tensor."""
  squares = [tf.reduce_sum(tf.square(g), axis=list(range(1, g.shape.rank))) for g in gradients]
  return tf.sqrt(tf.add_n(squares))


def clip_per_agent(gradients, max_norm):
  """Scales agent i's slice of every gradient so that agent's global norm is at most `max_norm`.

  The same as clipping each agent's network on its own (torch.nn.utils.clip_grad_norm_ per agent).
  Returns (clipped gradients, norms before clipping [N]).
  """
  norms = per_agent_global_norm(gradients)
  # torch.nn.utils.clip_grad_norm_'s rule, including its 1e-6.
  scale = tf.minimum(1., max_norm / (norms + 1e-6))
  clipped = [g * tf.reshape(scale, [-1] + [1] * (g.shape.rank - 1)) for g in gradients]
  return clipped, norms
