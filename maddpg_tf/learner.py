"""The MADDPG learner: every agent's critic and actor updated in one compiled step.

It knows nothing of environments: it sees batches of `types.Transition` and an `EnvironmentSpec`-like
(num_agents, observation_size, num_actions). The update follows the authors' code (NOTES section 1a):

  1. target actions a'_j ~ Categorical(softmax(mu_j(o'_j))) for every agent, before any update;
  2. rewards standardised with running per-agent statistics merged from the batch;
  3. critic_i: y = r_i + gamma (1 - terminal) Q_i(o', a'), loss mean (Q_i(o, a) - y)^2;
  4. actor_i, with the critic just updated: -mean Q_i(o, a_-i, a~_i) + l2 * mean(logits_i^2), where a~_i
     is the estimator's sample (hard one-hot forward, surrogate gradient backward). Beyond the paper,
     estimator `expected` replaces the sample by the exact expectation over agent i's own action,
     -mean sum_a softmax(logits_i)_a Q_i(o, a_-i, e_a): the exact gradient, no estimator variance.
Agents' parameters are disjoint, so updating all critics, then all actors, with stacked weights is the
same computation as the code's agent-by-agent loop.

`use_target_networks=False` ("code" fidelity) bootstraps with the online critic and online actors, as the
paper's runs did; True ("text") uses Polyak-averaged target networks as MADDPG describes.
"""

import dataclasses

import numpy as np
import tensorflow as tf

import estimators
from estimators import base as estimator_base
from estimators import lab as estimator_lab
from maddpg_tf import networks, optimizers

# The actor loss as the exact expectation over the agent's own action (needs the critic, so it lives here,
# not in the estimators registry).
EXPECTED = "expected"


def estimator_names():
  """Every estimator the learner accepts: the registry's and `expected`, sorted."""
  return tuple(sorted(estimators.names() + (EXPECTED,)))


def check_estimator(name, params):
  """Raises ValueError (naming the value) unless `name` is a learner estimator and `params` fit it; builds
  the estimator once on dummy logits, so bad values (temperature <= 0, K < 1, ...) fail here."""
  if name == EXPECTED:
    if params:
      raise ValueError(f"estimator {EXPECTED!r} has no parameter {', '.join(map(repr, sorted(params)))} "
                       f"(it has none: choose it with estimator={EXPECTED} after the config file's colon)")
    return
  if not isinstance(name, str) or name not in estimators.names():
    raise ValueError(f"unknown estimator {name!r}; allowed: {', '.join(estimator_names())}")
  estimators.check_parameters(name, params)
  scheduled = name == "tags" or "start_temperature" in params or "period" in params
  estimators.make(name, logits=tf.zeros([1, 2]), **dict(params, **({"step": 0} if scheduled else {})))


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
  """MADDPG hyperparameters; defaults are the authors' LBF settings (NOTES section 1)."""
  hidden_sizes: tuple = (64, 64)
  actor_learning_rate: float = 3e-4
  critic_learning_rate: float = 3e-4
  adam_epsilon: float = 1e-3
  max_grad_norm: float = 1.0
  logit_l2: float = 1e-3
  gamma: float = 0.95
  tau: float = 0.01
  use_target_networks: bool = False
  standardise_rewards: bool = True

  def __post_init__(self):
    for name in ("actor_learning_rate", "critic_learning_rate", "adam_epsilon", "max_grad_norm"):
      if not getattr(self, name) > 0:
        raise ValueError(f"learner.{name} must be > 0, got {getattr(self, name)!r}")
    if not 0 <= self.gamma <= 1:
      raise ValueError(f"learner.gamma must be in [0, 1], got {self.gamma!r}")
    if not 0 < self.tau <= 1:
      raise ValueError(f"learner.tau must be in (0, 1], got {self.tau!r}")
    if self.logit_l2 < 0:
      raise ValueError(f"learner.logit_l2 must be >= 0, got {self.logit_l2!r}")
    if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
      raise ValueError(f"learner.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")


class RewardStandardiser(tf.Module):
  """Running per-agent reward mean and variance, merged from each batch (Chan et al.).

  As in the authors' code: start mean 0, var 1, count 1e-4; the batch variance is unbiased; rewards
  become (r - mean) / sqrt(var) with no epsilon, using the statistics after this batch's merge.
  """

  def __init__(self, num_agents):
    super().__init__(name="reward_standardiser")
    self.mean = tf.Variable(tf.zeros([num_agents]), trainable=False, name="mean")
    self.var = tf.Variable(tf.ones([num_agents]), trainable=False, name="var")
    self.count = tf.Variable(1e-4, trainable=False, name="count")

  def __call__(self, rewards):
    """rewards [B, N] -> standardised [B, N], after merging the batch into the statistics."""
    batch_count = tf.cast(tf.shape(rewards)[0], tf.float32)
    batch_mean = tf.reduce_mean(rewards, axis=0)
    batch_var = tf.reduce_sum(tf.square(rewards - batch_mean), axis=0) / (batch_count - 1.)
    total = self.count + batch_count
    delta = batch_mean - self.mean
    second_moment = (self.var * self.count + batch_var * batch_count
                     + tf.square(delta) * self.count * batch_count / total)
    self.mean.assign(self.mean + delta * batch_count / total)
    self.var.assign(second_moment / total)
    self.count.assign(total)
    return (rewards - self.mean) / tf.sqrt(self.var)


def one_hot_sample(logits, seed):
  """A behaviour action Categorical(softmax(logits)) as a one-hot, no gradient."""
  return tf.stop_gradient(estimator_base.categorical_one_hot(logits, seed))


class MADDPGLearner(tf.Module):
  """Stacked MADDPG. `step(batch)` runs one update of every agent and returns a dict of metrics."""

  def __init__(self, num_agents, observation_size, num_actions, config=LearnerConfig(),
               estimator="gst", estimator_params=None, seed=0, initializer=None, jit_compile=True):
    super().__init__(name="maddpg_learner")
    self.num_agents = int(num_agents)
    self.observation_size = int(observation_size)
    self.num_actions = int(num_actions)
    self.config = config
    self.estimator_name = estimator
    self.estimator_params = dict(estimator_params or {})
    check_estimator(estimator, self.estimator_params)  # bad values fail here, not mid-run

    hidden = tuple(int(h) for h in config.hidden_sizes)
    self.actors = networks.StackedMLP(num_agents, hidden, num_actions, initializer=initializer,
                                      seed=seed * 1000 + 1, name="actors")
    self.actors.build((num_agents, None, observation_size))
    self.critics = networks.StackedCritic(num_agents, observation_size, num_actions, hidden,
                                          initializer=initializer, seed=seed * 1000 + 101, name="critics")
    self.actor_optimiser = optimizers.Adam(self.actors.trainable_weights, config.actor_learning_rate,
                                           config.adam_epsilon, name="actor_adam")
    self.critic_optimiser = optimizers.Adam(self.critics.trainable_weights, config.critic_learning_rate,
                                            config.adam_epsilon, name="critic_adam")
    if config.use_target_networks:
      self.target_actors = networks.StackedMLP(num_agents, hidden, num_actions, name="target_actors")
      self.target_actors.build((num_agents, None, observation_size))
      self.target_critics = networks.StackedCritic(num_agents, observation_size, num_actions, hidden,
                                                   name="target_critics")
      for target, online in ((self.target_actors, self.actors), (self.target_critics, self.critics)):
        for t, o in zip(target.weights, online.weights):
          t.assign(o)
    else:
      # The paper's runs never read their target networks (NOTES section 0): keeping none is equivalent.
      self.target_actors, self.target_critics = self.actors, self.critics
    self.reward_standardiser = RewardStandardiser(num_agents)
    self.num_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="num_updates")
    self._compiled_step = tf.function(self._step, jit_compile=jit_compile, reduce_retracing=True)
    self._compiled_block = tf.function(self._block, jit_compile=jit_compile, reduce_retracing=True)
    self._compiled_diagnostics = tf.function(self._exact_gradient_diagnostics, jit_compile=jit_compile,
                                             reduce_retracing=True)

  # ---- the estimator ------------------------------------------------------------------------------------

  def _estimator_kwargs(self, estimator_step):
    params = dict(self.estimator_params)
    if "start_temperature" in params or self.estimator_name == "tags":
      params["step"] = estimator_step
    return params

  def estimator(self, logits, estimator_step):
    """The estimator distribution over `logits` at schedule position `estimator_step` (none for
    `expected`, which is not a distribution's sample)."""
    if self.estimator_name == EXPECTED:
      raise ValueError(f"estimator {EXPECTED!r} is the exact expectation, not a distribution")
    return estimators.make(self.estimator_name, logits=logits, **self._estimator_kwargs(estimator_step))

  # ---- losses (public, checkable) -----------------------------------------------------------------------

  def _flatten(self, tensor):
    """[B, N, X] -> [B, N*X]."""
    return tf.reshape(tensor, [tf.shape(tensor)[0], -1])

  def target_values(self, batch, seed):
    """y [N, B] = r_std + gamma (1 - terminal) Q_i(o', a'), a' sampled from the (target) actors."""
    next_logits = self.target_actors(tf.transpose(batch.next_observation, [1, 0, 2]))
    next_actions = tf.transpose(one_hot_sample(next_logits, seed), [1, 0, 2])
    rewards = tf.cast(batch.reward, tf.float32)
    if self.config.standardise_rewards:
      rewards = self.reward_standardiser(rewards)
    next_q = self.target_critics(self._flatten(batch.next_observation), self._flatten(next_actions))
    continuing = 1. - tf.cast(batch.terminal, tf.float32)[tf.newaxis, :]
    return tf.stop_gradient(tf.transpose(rewards) + self.config.gamma * continuing * next_q)

  def critic_loss(self, batch, targets):
    """Per-agent mean squared TD error [N], and the Q values [N, B]."""
    actions = tf.one_hot(batch.action, self.num_actions)
    q = self.critics(self._flatten(batch.observation), self._flatten(actions))
    loss = tf.reduce_mean(tf.square(q - targets), axis=1)
    return tf.debugging.check_numerics(loss, "critic loss"), q

  def actor_loss(self, batch, seed, estimator_step, layer_inputs=None, pre_activations=None,
                 per_sample=False):
    """Per-agent actor loss [N]: -mean_b Q_i(o, a_-i, a~_i) + logit_l2 * mean(logits_i^2); for estimator
    `expected`, Q_i(o, a_-i, a~_i) is sum_a softmax(logits_i)_a Q_i(o, a_-i, e_a) (`seed` unused).

    `per_sample=True` returns the per-sample losses [N, B] instead (their batch mean is the loss).
    If lists are passed as `layer_inputs` / `pre_activations`, each actor layer's input and pre-activation
    ([N, B, .]) are appended to them (for per-sample gradients).
    """
    observations = tf.transpose(batch.observation, [1, 0, 2])
    logits = observations
    for layer in self.actors.dense_layers:                                       # = self.actors(...)
      pre_activation = tf.matmul(logits, layer.kernel) + layer.bias
      if layer_inputs is not None:
        layer_inputs.append(logits)
        pre_activations.append(pre_activation)
      logits = layer.activation(pre_activation)                                  # last: [N, B, A]
    features = self.critics.observation_features(self._flatten(batch.observation))
    replay = self._flatten(tf.one_hot(batch.action, self.num_actions))           # [B, N*A]
    if self.estimator_name == EXPECTED:
      values = self._own_action_values(features, replay)                         # [N, B, A]
      q = tf.reduce_sum(tf.math.softmax(logits) * values, axis=2)
    else:
      sampled = self.estimator(logits, estimator_step).sample(seed=seed)         # [N, B, A]
      q = self._own_action_q(features, replay, sampled[:, tf.newaxis])[:, 0]
    per_sample_loss = -q + self.config.logit_l2 * tf.reduce_mean(tf.square(logits), axis=2)   # [N, B]
    if per_sample:
      return per_sample_loss
    return tf.debugging.check_numerics(tf.reduce_mean(per_sample_loss, axis=1), "actor loss")

  def _own_action_q(self, observation_features, replay, own_actions):
    """Q_i(o, a_-i, x_i) [N, K, B]: critic i on the replayed joint action with agent i's block replaced by
    `own_actions` [N, K, B, A] (K candidate actions per row; features [N, B, H], replay [B, N*A])."""
    n, a = self.num_agents, self.num_actions
    k = tf.shape(own_actions)[1]
    own_block = tf.reshape(tf.repeat(tf.eye(n), a, axis=1), [n, 1, 1, n * a])    # [N, 1, 1, N*A]
    blocks = tf.reshape(tf.einsum("nkba,nm->nkbma", own_actions, tf.eye(n)), [n, k, -1, n * a])
    joint = replay * (1. - own_block) + blocks                                   # [N, K, B, N*A]
    q = self.critics.q_values(tf.tile(observation_features, [1, k, 1]), tf.reshape(joint, [n, -1, n * a]))
    return tf.reshape(q, [n, k, -1])

  def _own_action_values(self, observation_features, replay):
    """[N, B, A]: Q_i(o, a_-i, e_a) for every own action a of every agent i."""
    batch = tf.shape(replay)[0]
    vertices = tf.broadcast_to(tf.eye(self.num_actions)[tf.newaxis, :, tf.newaxis],
                               [self.num_agents, self.num_actions, batch, self.num_actions])
    return tf.transpose(self._own_action_q(observation_features, replay, vertices), [0, 2, 1])

  def own_action_values(self, batch):
    """[N, B, A]: Q_i(o, a_-i, e_a), critic i with the other agents' replayed actions and each of agent
    i's own actions: what the exact expectation over agent i's action sums."""
    batch = type(batch)(*(tf.convert_to_tensor(x) for x in batch))
    return self._own_action_values(self.critics.observation_features(self._flatten(batch.observation)),
                                   self._flatten(tf.one_hot(batch.action, self.num_actions)))

  def own_action_function(self, batch, agent):
    """f(actions [..., B, A]) -> Q_agent(o, a_-agent, actions) [..., B] on this batch (the replayed actions of
    the other agents fixed), for `estimators.lab`; actions may be relaxed (any point of the simplex)."""
    batch = type(batch)(*(tf.convert_to_tensor(x) for x in batch))
    features = self.critics.observation_features(self._flatten(batch.observation))
    replay = self._flatten(tf.one_hot(batch.action, self.num_actions))

    def f(actions):
      actions = tf.cast(actions, tf.float32)
      leading = tf.shape(actions)[:-2]
      flat = tf.reshape(actions, [1, -1, tf.shape(actions)[-2], self.num_actions])   # [1, K, B, A]
      own = tf.broadcast_to(flat, tf.concat([[self.num_agents], tf.shape(flat)[1:]], axis=0))
      q = self._own_action_q(features, replay, own)[agent]                        # [K, B]
      return tf.reshape(q, tf.concat([leading, tf.shape(q)[-1:]], axis=0))
    return f

  # ---- diagnostics: the estimator against the exact gradient ------------------------------------------

  def exact_gradient_diagnostics(self, batch, seed, estimator_step, num_repeats=16):
    """The estimator's gradient of the actor loss with respect to each agent's logits, against the exact
    gradient of the expected loss under the current critic (agent i's own actions summed over, the other
    agents' replayed actions fixed). Per agent [N]:
      exact_gradient/cosine          mean over repeats of cos(g_r, g), over the whole [B, A] gradient
      exact_gradient/relative_error  mean over repeats of ||g_r - g|| / ||g||
      exact_gradient/relative_bias   ||mean_r g_r - g|| / ||g|| (includes the repeats' noise)
      exact_gradient/variance        per row, the trace of the covariance of the repeats' gradients,
                                     averaged over rows (row gradients of Q_i, i.e. of the per-sample loss)
      exact_gradient/norm            root mean square over rows of the exact row gradient
    g_r: `num_repeats` estimator samples on the same batch, from the stateless `seed` (one call). The logit
    penalty's gradient is exact in both and left out. Nothing is updated.
    """
    if int(num_repeats) < 2:
      raise ValueError(f"num_repeats must be an integer >= 2, got {num_repeats!r}")
    batch = type(batch)(*(tf.convert_to_tensor(x) for x in batch))
    return self._compiled_diagnostics(batch, tf.cast(seed, tf.int32), tf.cast(estimator_step, tf.float32),
                                      int(num_repeats))

  def _exact_gradient_diagnostics(self, batch, seed, estimator_step, num_repeats):
    logits = self.actors(tf.transpose(batch.observation, [1, 0, 2]))                 # [N, B, A]
    features = self.critics.observation_features(self._flatten(batch.observation))
    replay = self._flatten(tf.one_hot(batch.action, self.num_actions))
    exact = estimator_lab.expected_gradient_from_values(logits, self._own_action_values(features, replay))
    repeated_shape = [self.num_agents, num_repeats, tf.shape(logits)[1], self.num_actions]
    if self.estimator_name == EXPECTED:
      sampled = tf.broadcast_to(exact[:, tf.newaxis], repeated_shape)
    else:
      repeated = tf.broadcast_to(logits[:, tf.newaxis], repeated_shape)            # [N, R, B, A]
      with tf.GradientTape() as tape:
        tape.watch(repeated)
        actions = self.estimator(repeated, estimator_step).sample(seed=seed)
        q = self._own_action_q(features, replay, actions)                          # [N, R, B]
      sampled = tape.gradient(q, repeated)                                          # row gradients
    flat_exact = tf.reshape(exact, [self.num_agents, 1, -1])
    flat = tf.reshape(sampled, [self.num_agents, num_repeats, -1])
    exact_norm = tf.norm(flat_exact, axis=-1)                                       # [N, 1]
    cosine = tf.math.divide_no_nan(tf.reduce_sum(flat * flat_exact, -1), tf.norm(flat, axis=-1) * exact_norm)
    error = tf.math.divide_no_nan(tf.norm(flat - flat_exact, axis=-1), exact_norm)
    bias = tf.math.divide_no_nan(tf.norm(tf.reduce_mean(flat, 1) - flat_exact[:, 0], axis=-1),
                                 exact_norm[:, 0])
    variance = tf.reduce_sum(tf.math.reduce_variance(sampled, axis=1), axis=-1) * (
        num_repeats / (num_repeats - 1))                                            # [N, B]
    rows = tf.cast(tf.shape(logits)[1], tf.float32)
    return {"exact_gradient/cosine": tf.reduce_mean(cosine, 1),
            "exact_gradient/relative_error": tf.reduce_mean(error, 1),
            "exact_gradient/relative_bias": bias,
            "exact_gradient/variance": tf.reduce_mean(variance, 1),
            "exact_gradient/norm": exact_norm[:, 0] / tf.sqrt(rows)}

  # ---- the update -----------------------------------------------------------------------------------

  def _step(self, batch, seed, estimator_step, per_sample_variance=False):
    target_seed, estimator_seed = estimator_base.split_seed(seed)
    targets = self.target_values(batch, target_seed)
    with tf.GradientTape() as tape:
      critic_loss, q = self.critic_loss(batch, targets)
      total = tf.reduce_sum(critic_loss)
    critic_grads, critic_norms = optimizers.clip_per_agent(
        tape.gradient(total, self.critics.trainable_weights), self.config.max_grad_norm)
    self.critic_optimiser.apply(critic_grads, self.critics.trainable_weights)

    layer_inputs, pre_activations = ([], []) if per_sample_variance else (None, None)
    with tf.GradientTape() as tape:
      actor_loss = self.actor_loss(batch, estimator_seed, estimator_step, layer_inputs, pre_activations)
      total = tf.reduce_sum(actor_loss)
    weights = self.actors.trainable_weights
    gradients = tape.gradient(total, weights + (pre_activations or []))
    actor_grads, actor_norms = optimizers.clip_per_agent(gradients[:len(weights)],
                                                         self.config.max_grad_norm)
    self.actor_optimiser.apply(actor_grads, self.actors.trainable_weights)

    if self.config.use_target_networks:
      for target, online in ((self.target_actors, self.actors), (self.target_critics, self.critics)):
        for t, o in zip(target.weights, online.weights):
          t.assign((1. - self.config.tau) * t + self.config.tau * o)
    self.num_updates.assign_add(1)

    metrics = {"critic_loss": critic_loss, "actor_loss": actor_loss, "q_mean": tf.reduce_mean(q, axis=1),
               "target_mean": tf.reduce_mean(targets, axis=1), "critic_grad_norm": critic_norms,
               "actor_grad_norm": actor_norms}
    if self.estimator_name != EXPECTED:
      metrics["temperature"] = tf.convert_to_tensor(
          self.estimator(tf.zeros([1, self.num_actions]), estimator_step).temperature)
    # Figure 4, the code's definition: variance over the entries of each clipped batch-mean gradient.
    for layer, gradient in zip(self._policy_parameter_names(), actor_grads):
      entries = tf.reshape(gradient, [self.num_agents, -1])
      metrics[f"policy_grad_variance/{layer}"] = tf.math.reduce_variance(entries, axis=1) * (
          entries.shape[1] / max(entries.shape[1] - 1, 1))
    if per_sample_variance:
      metrics.update(self._per_sample_gradient_variance(layer_inputs, gradients[len(weights):]))
    return metrics

  def _per_sample_gradient_variance(self, layer_inputs, pre_activation_grads):
    """Figure 4, the paper text's definition: per layer, the variance over the mini-batch of the
    per-sample actor gradients (unclipped), averaged over the layer's entries. [N] per tensor.

    A dense layer's per-sample kernel gradient is outer(input_b, delta_b), so its batch mean and mean
    square are two matmuls: no per-sample gradient tensors are materialised.
    """
    batch = tf.cast(tf.shape(layer_inputs[0])[1], tf.float32)
    correction = batch / (batch - 1.)
    metrics = {}
    names = self._policy_parameter_names()
    for k, (inputs, grad) in enumerate(zip(layer_inputs, pre_activation_grads)):
      delta = grad * batch  # the loss is a batch mean: per-sample deltas are B times its gradient
      mean = tf.einsum("nbi,nbo->nio", inputs, delta) / batch
      mean_square = tf.einsum("nbi,nbo->nio", tf.square(inputs), tf.square(delta)) / batch
      kernel_variance = tf.reduce_mean(mean_square - tf.square(mean), axis=[1, 2]) * correction
      bias_variance = tf.reduce_mean(tf.math.reduce_variance(delta, axis=1), axis=1) * correction
      metrics[f"per_sample_grad_variance/{names[2 * k]}"] = kernel_variance
      metrics[f"per_sample_grad_variance/{names[2 * k + 1]}"] = bias_variance
    return metrics

  def _policy_parameter_names(self):
    return [v.path.split("/", 1)[-1] for v in self.actors.trainable_weights]

  def step(self, batch, seed=None, estimator_step=None, per_sample_variance=False):
    """One update of every agent. `seed`: stateless [2] ints; `estimator_step`: schedule position
    (defaults to the number of updates so far); `per_sample_variance`: also return the text's Figure 4
    metric (costs about one more actor backward pass). Returns {name: tensor}, per-agent values [N]."""
    if seed is None:
      seed = tf.stack([tf.constant(0, tf.int64), self.num_updates])
    if estimator_step is None:
      estimator_step = self.num_updates
    batch = type(batch)(*(tf.convert_to_tensor(x) for x in batch))
    metrics = self._compiled_step(batch, tf.cast(seed, tf.int32), tf.cast(estimator_step, tf.float32),
                                  bool(per_sample_variance))
    # XLA compiles check_numerics away, so the compiled step's losses are checked here, eagerly.
    for name in ("critic_loss", "actor_loss"):
      tf.debugging.check_numerics(metrics[name], name.replace("_", " "))
    return metrics

  def _block(self, batches, seeds, estimator_steps, count):
    """`count` updates in one call, on stacked batches [S, B, ...] (S >= count; the rest is padding).

    A while loop runs the first count - 1 updates keeping only a finiteness record; the last update runs
    after it and returns its metrics. Returns (metrics of the last update, index of the first update
    with a non-finite loss or -1, and 0 = critic / 1 = actor loss for that update).
    """
    # tf.gather, not x[index]: an XLA slice would need `count - 1` as a compile-time constant, so every
    # block length would compile its own executable (seconds each, mid-run).
    def take(index):
      return type(batches)(*(tf.gather(x, index) for x in batches))

    def body(index, first_bad, bad_loss):
      metrics = self._step(take(index), seeds[index], estimator_steps[index])
      first_bad, bad_loss = self._record_non_finite(metrics, index, first_bad, bad_loss)
      return index + 1, first_bad, bad_loss

    _, first_bad, bad_loss = tf.while_loop(lambda index, *_: index < count - 1, body,
                                           (tf.constant(0), tf.constant(-1), tf.constant(-1)))
    last = count - 1
    metrics = self._step(take(last), tf.gather(seeds, last), tf.gather(estimator_steps, last))
    first_bad, bad_loss = self._record_non_finite(metrics, last, first_bad, bad_loss)
    return metrics, first_bad, bad_loss

  @staticmethod
  def _record_non_finite(metrics, index, first_bad, bad_loss):
    critic_ok = tf.reduce_all(tf.math.is_finite(metrics["critic_loss"]))
    actor_ok = tf.reduce_all(tf.math.is_finite(metrics["actor_loss"]))
    new = (first_bad < 0) & ~(critic_ok & actor_ok)
    return (tf.where(new, index, first_bad), tf.where(new, tf.where(critic_ok, 1, 0), bad_loss))

  def step_block(self, batches, seeds, estimator_steps, block_size=8):
    """Consecutive updates, several per compiled call (cheaper per update than `step`): the same
    updates, in the same order, as calling `step` on each. Returns the last update's metrics.

    Every call of the compiled block holds exactly `block_size` batches (more updates are split into
    chunks of that size, fewer are padded with copies that are not run): XLA compiles once per shape,
    and once the envs' episodes no longer end together, blocks of every size from 1 to `block_size`
    occur; each new shape would cost a compilation of the whole update (seconds) in the middle of a run.
    """
    metrics = None
    for start in range(0, len(batches), block_size):
      chunk = batches[start:start + block_size]
      count = len(chunk)
      padding = block_size - count
      stacked = type(chunk[0])(*(tf.convert_to_tensor(np.stack(parts))
                                 for parts in zip(*(chunk + [chunk[-1]] * padding))))
      chunk_seeds = np.stack(list(seeds[start:start + count]) + [seeds[start + count - 1]] * padding)
      chunk_steps = np.array(list(estimator_steps[start:start + count]) + [0] * padding, np.float32)
      metrics, first_bad, bad_loss = self._compiled_block(
          stacked, tf.cast(chunk_seeds, tf.int32), tf.convert_to_tensor(chunk_steps), tf.constant(count))
      if int(first_bad) >= 0:
        name = ("critic loss", "actor loss")[int(bad_loss)]
        raise tf.errors.InvalidArgumentError(
            None, None, f"{name} : Tensor had NaN or Inf values (update {start + int(first_bad) + 1} of the block)")
    return metrics

  # ---- acting and state ------------------------------------------------------------------------------

  def policy_logits(self, observations):
    """[E, N, O] -> [E, N, A] logits of every agent's actor."""
    return tf.transpose(self.actors(tf.transpose(observations, [1, 0, 2])), [1, 0, 2])

  def actor_weights(self):
    """[(kernel [N, in, out], bias [N, 1, out])] of every actor layer, as NumPy arrays (for acting)."""
    return [(layer.kernel.numpy(), layer.bias.numpy()) for layer in self.actors.dense_layers]

  def state_variables(self):
    """{name: tf.Variable} of everything an exact resume needs."""
    state = {}
    state.update(networks.variables_by_name(self.actors, "actors"))
    state.update(networks.variables_by_name(self.critics, "critics"))
    if self.config.use_target_networks:
      state.update(networks.variables_by_name(self.target_actors, "target_actors"))
      state.update(networks.variables_by_name(self.target_critics, "target_critics"))
    for name, optimiser in (("actor_adam", self.actor_optimiser), ("critic_adam", self.critic_optimiser)):
      state.update({f"{name}/{k}": v for k, v in optimiser.state().items()})
    state.update({"reward/mean": self.reward_standardiser.mean, "reward/var": self.reward_standardiser.var,
                  "reward/count": self.reward_standardiser.count, "num_updates": self.num_updates})
    return state

