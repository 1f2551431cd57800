"""The estimator's actor-loss gradient against the exact one, under the learner's current critic.

`ExactGradientDiagnostics(learner)` compiles the comparison once; `own_action_function(learner, batch,
agent)` is the critic as a function of one agent's action, for `estimators.lab`. Nothing is updated.
"""

import tensorflow as tf

import estimators
from estimators import base as estimator_base
from estimators import lab as estimator_lab

PREFIX = "exact_gradient"


def _as_tensors(batch):
  return type(batch)(*(tf.convert_to_tensor(x) for x in batch))


def _critic_inputs(learner, batch):
  """(observation features [N, B, H], replayed joint actions [B, N*A]) of a batch."""
  flat = lambda tensor: tf.reshape(tensor, [tf.shape(tensor)[0], -1])
  return (learner.critics.observation_features(flat(batch.observation)),
          flat(tf.one_hot(batch.action, learner.num_actions)))


def own_action_function(learner, batch, agent):
  """f(actions [..., B, A]) -> Q_agent(o, a_-agent, actions) [..., B] on this batch (the replayed actions of
  the other agents fixed); actions may be relaxed (any point of the simplex)."""
  features, replay = _critic_inputs(learner, _as_tensors(batch))
  n, a = learner.num_agents, learner.num_actions

  def f(actions):
    actions = tf.cast(actions, tf.float32)
    leading = tf.shape(actions)[:-2]
    flat = tf.reshape(actions, [1, -1, tf.shape(actions)[-2], a])                   # [1, K, B, A]
    own = tf.broadcast_to(flat, tf.concat([[n], tf.shape(flat)[1:]], axis=0))
    q = learner.critics.own_action_q(features, replay, own)[agent]                  # [K, B]
    return tf.reshape(q, tf.concat([leading, tf.shape(q)[-1:]], axis=0))
  return f


class ExactGradientDiagnostics:
  """Per agent [N], over `num_repeats` estimator samples g_r on one batch against the exact gradient g of
  the expected actor loss (agent i's own actions summed over, the other agents' replayed actions fixed):

    exact_gradient/cosine          mean over repeats of cos(g_r, g), over the whole [B, A] gradient
    exact_gradient/relative_error  mean over repeats of ||g_r - g|| / ||g||
    exact_gradient/relative_bias   ||mean_r g_r - g|| / ||g|| (includes the repeats' noise)
    exact_gradient/variance        per row, the trace of the covariance of the repeats' gradients,
                                   averaged over rows (row gradients of Q_i, i.e. of the per-sample loss)
    exact_gradient/norm            root mean square over rows of the exact row gradient
  The logit penalty's gradient is exact in both and left out.
  """

  def __init__(self, learner, num_repeats=16):
    if isinstance(num_repeats, bool) or int(num_repeats) != num_repeats or int(num_repeats) < 2:
      raise ValueError(f"num_repeats must be an integer >= 2, got {num_repeats!r}")
    self.learner = learner
    self.num_repeats = int(num_repeats)
    self._exact = estimators.resolve(learner.estimator_name).objective_form == estimator_base.EXACT
    self._compiled = tf.function(self._compute, jit_compile=learner.jit_compile, reduce_retracing=True)

  def __call__(self, batch, seed, estimator_step):
    """The metrics above for `batch`, with the stateless `seed` [2] at schedule position `estimator_step`."""
    return self._compiled(_as_tensors(batch), tf.cast(seed, tf.int32), tf.cast(estimator_step, tf.float32))

  def _sampled_gradients(self, logits, features, replay, seed, estimator_step, exact):
    learner, repeats = self.learner, self.num_repeats
    shape = [learner.num_agents, repeats, tf.shape(logits)[1], learner.num_actions]
    if self._exact:  # the estimator's gradient is the exact one, every repeat
      return tf.broadcast_to(exact[:, tf.newaxis], shape)
    repeated = tf.broadcast_to(logits[:, tf.newaxis], shape)                        # [N, R, B, A]
    with tf.GradientTape() as tape:
      tape.watch(repeated)
      q = learner.estimator(repeated, estimator_step).objective(
          learner.own_action_critic(features, replay), seed=seed, sample_axis=-3)    # [N, R, B]
    return tape.gradient(q, repeated)                                               # row gradients

  def _compute(self, batch, seed, estimator_step):
    learner, repeats = self.learner, self.num_repeats
    logits = learner.actor_logits(tf.transpose(batch.observation, [1, 0, 2]))       # [N, B, A]
    features, replay = _critic_inputs(learner, batch)
    exact = estimator_lab.expected_gradient_from_values(
        logits, learner.critics.own_action_values(features, replay))
    sampled = self._sampled_gradients(logits, features, replay, seed, estimator_step, exact)
    flat_exact = tf.reshape(exact, [learner.num_agents, 1, -1])
    flat = tf.reshape(sampled, [learner.num_agents, repeats, -1])
    exact_norm = tf.norm(flat_exact, axis=-1)                                       # [N, 1]
    cosine = tf.math.divide_no_nan(tf.reduce_sum(flat * flat_exact, -1), tf.norm(flat, axis=-1) * exact_norm)
    error = tf.math.divide_no_nan(tf.norm(flat - flat_exact, axis=-1), exact_norm)
    bias = tf.math.divide_no_nan(tf.norm(tf.reduce_mean(flat, 1) - flat_exact[:, 0], axis=-1),
                                 exact_norm[:, 0])
    variance = tf.reduce_sum(tf.math.reduce_variance(sampled, axis=1), axis=-1) * (
        repeats / (repeats - 1))                                                    # [N, B]
    rows = tf.cast(tf.shape(logits)[1], tf.float32)
    return {f"{PREFIX}/cosine": tf.reduce_mean(cosine, 1),
            f"{PREFIX}/relative_error": tf.reduce_mean(error, 1),
            f"{PREFIX}/relative_bias": bias,
            f"{PREFIX}/variance": tf.reduce_mean(variance, 1),
            f"{PREFIX}/norm": exact_norm[:, 0] / tf.sqrt(rows)}
