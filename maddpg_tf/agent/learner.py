"""The MADDPG learner: every agent's critic and actor updated in one compiled step.

It knows nothing of environments: it sees batches of `types.Transition` and an `EnvironmentSpec`-like
(num_agents, observation_size, num_actions). The update follows the authors' code (maddpg_tf/FIDELITY.md: Update order):

  1. target actions a'_j ~ Categorical(softmax(mu_j(o'_j))) for every agent, before any update;
  2. rewards standardised with running per-agent statistics merged from the batch;
  3. critic_i: y = r_i + gamma (1 - terminal) Q_i(o', a'), loss mean (Q_i(o, a) - y)^2;
  4. actor_i, with the critic just updated: -mean E~ Q_i(o, a_-i, a_i) + l2 * mean(logits_i^2), where E~
     is the estimator's `objective` of the critic as a function of agent i's own action: Q_i at the
     estimator's sample (hard one-hot forward, surrogate gradient backward) in the paper; beyond it, the
     exact expectation sum_a softmax(logits_i)_a Q_i(o, a_-i, e_a) or a score-function estimate from K
     sampled actions. The learner asks the estimator (`objective`, `scheduled`, `temperature`), never
     its name.
Agents' parameters are disjoint, so updating all critics, then all actors, with stacked weights is the
same computation as the code's agent-by-agent loop.

`share_parameters=True` (not the paper's runs; EPyMARL's and BenchMARL's option): one actor mu(o_i, e_i) and
one critic Q(o, a, e_i) for every agent, e_i agent i's one-hot index (`networks`: what each sees). The
losses above are formed per agent as before ([N] values, the same formulas); each network's loss is their
mean over agents (EPyMARL's MADDPG: the mean over batch and agents), so its gradient is the mean of the
agents' gradients, clipped as one network (torch's clip_grad_norm_ on the shared module). Acting, export
and evaluation read the shared actor as N stacked actors (`actor_weights`: the same logits).

`use_target_networks=False` ("code" fidelity) bootstraps with the online critic and online actors, as the
paper's runs did; True ("text") uses Polyak-averaged target networks as MADDPG describes.
"""

import numpy as np
import tensorflow as tf

import estimators
from estimators import base as estimator_base
from maddpg_tf.agent import gradient_variance, networks, optimizers
from maddpg_tf.agent.hyperparameters import LearnerConfig

# Metrics of every update call that say whether a loss was NaN or infinite (values, not exceptions): the
# index in the call of the first such update (-1: none) and which loss (0 critic, 1 actor; -1: none).
NON_FINITE_UPDATE, NON_FINITE_LOSS = "non_finite/update", "non_finite/loss"
LOSS_NAMES = ("critic loss", "actor loss")


def estimator_names():
  """Every estimator the learner accepts by name: the registry's, pathwise or not."""
  return estimators.names(pathwise_only=False)


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


def _record_non_finite(metrics, index, first_bad, bad_loss):
  """(first_bad, bad_loss) updated with update `index`'s losses (see `NON_FINITE_UPDATE`)."""
  critic_ok = tf.reduce_all(tf.math.is_finite(metrics["critic_loss"]))
  actor_ok = tf.reduce_all(tf.math.is_finite(metrics["actor_loss"]))
  new = (first_bad < 0) & ~(critic_ok & actor_ok)
  return (tf.where(new, index, first_bad), tf.where(new, tf.where(critic_ok, 1, 0), bad_loss))


def _padded_chunk(batches, seeds, estimator_steps, block_size):
  """Stacked [block_size, ...] batches, seeds and schedule steps: the chunk, then copies of its last batch
  (which the block does not run)."""
  padding = block_size - len(batches)
  stacked = type(batches[0])(*(tf.convert_to_tensor(np.stack(parts))
                               for parts in zip(*(list(batches) + [batches[-1]] * padding))))
  chunk_seeds = np.stack(list(seeds) + [seeds[-1]] * padding)
  chunk_steps = np.array(list(estimator_steps) + [0] * padding, np.float32)
  return stacked, tf.cast(chunk_seeds, tf.int32), tf.convert_to_tensor(chunk_steps)


def _networks(num_agents, observation_size, num_actions, hidden_sizes, initializer, seed, prefix="",
              shared=False):
  """Built (actors, critics) with every agent's weights stacked (shared: one of each, agent index inputs)."""
  hidden = tuple(int(h) for h in hidden_sizes)
  stacks, index_width = (1, num_agents) if shared else (num_agents, 0)
  actors = networks.StackedMLP(stacks, hidden, num_actions, initializer=initializer,
                               seed=seed * 1000 + 1, name=f"{prefix}actors")
  actors.build((stacks, None, observation_size + index_width))
  critics = networks.StackedCritic(num_agents, observation_size, num_actions, hidden, initializer=initializer,
                                   seed=seed * 1000 + 101, shared=shared, name=f"{prefix}critics")
  return actors, critics


class MADDPGLearner(tf.Module):
  """Stacked MADDPG. `step(batch)` runs one update of every agent and returns a dict of metrics."""

  def __init__(self, num_agents, observation_size, num_actions, config=LearnerConfig(),
               estimator="gst", estimator_params=None, seed=0, initializer=None, jit_compile=True):
    super().__init__(name="maddpg_learner")
    self.num_agents = int(num_agents)
    self.observation_size = int(observation_size)
    self.num_actions = int(num_actions)
    self.config = config
    self.shared = bool(config.share_parameters)
    self.num_stacks = 1 if self.shared else self.num_agents  # the weights' leading axis
    # A network's loss from the agents' losses [N]: their sum (disjoint weights: each agent's own gradient)
    # or, shared, their mean.
    self._over_agents = tf.reduce_mean if self.shared else tf.reduce_sum
    self.estimator_name = estimator
    self.estimator_params = dict(estimator_params or {})
    estimators.check(estimator, self.estimator_params)  # bad values fail here, not mid-run
    self._scheduled = estimators.resolve(estimator).scheduled(self.estimator_params)

    self.actors, self.critics = _networks(num_agents, observation_size, num_actions, config.hidden_sizes,
                                          initializer, seed, shared=self.shared)
    self.actor_optimiser = optimizers.Adam(self.actors.trainable_weights, config.actor_learning_rate,
                                           config.adam_epsilon, name="actor_adam")
    self.critic_optimiser = optimizers.Adam(self.critics.trainable_weights, config.critic_learning_rate,
                                            config.adam_epsilon, name="critic_adam")
    if config.use_target_networks:
      self.target_actors, self.target_critics = _networks(num_agents, observation_size, num_actions,
                                                          config.hidden_sizes, None, 0, prefix="target_",
                                                          shared=self.shared)
      for target, online in ((self.target_actors, self.actors), (self.target_critics, self.critics)):
        for t, o in zip(target.weights, online.weights):
          t.assign(o)
    else:
      # The paper's runs never read their target networks (maddpg_tf/FIDELITY.md: Target networks): keeping none is equivalent.
      self.target_actors, self.target_critics = self.actors, self.critics
    self.reward_standardiser = RewardStandardiser(num_agents)
    self.num_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="num_updates")
    self._compiled_step = tf.function(self._step, jit_compile=jit_compile, reduce_retracing=True)
    self._compiled_block = tf.function(self._block, jit_compile=jit_compile, reduce_retracing=True)
    self.jit_compile = jit_compile

  @property
  def device(self):
    """Where the update runs: the device holding the critics' weights (TensorFlow places the compiled
    update beside the variables it reads and writes), e.g. '/job:localhost/replica:0/task:0/device:GPU:0'."""
    weight = self.critics.trainable_weights[0]
    return getattr(weight, "value", weight).device

  # ---- the estimator ------------------------------------------------------------------------------------

  def estimator(self, logits, estimator_step):
    """The estimator distribution over `logits` at schedule position `estimator_step` (used if it follows
    a temperature schedule)."""
    params = dict(self.estimator_params)
    if self._scheduled:
      params["step"] = estimator_step
    return estimators.make(self.estimator_name, logits=logits, **params)

  def own_action_critic(self, features, replay):
    """f(actions [N, ..., B, A]) -> [N, ..., B]: critic i on the replayed joint action with agent i's own
    action replaced by `actions`[i] (features [N, B, H], replay [B, N*A]): the function of agent i's
    action whose expectation agent i's actor maximises."""
    def f(actions):
      shape = tf.shape(actions)
      own = tf.reshape(actions, [self.num_agents, -1, shape[-2], self.num_actions])    # [N, K, B, A]
      return tf.reshape(self.critics.own_action_q(features, replay, own), shape[:-1])
    return f

  # ---- losses (public, checkable) -----------------------------------------------------------------------

  def _flatten(self, tensor):
    """[B, N, X] -> [B, N*X]."""
    return tf.reshape(tensor, [tf.shape(tensor)[0], -1])

  def actor_inputs(self, observations):
    """[N, B, O] -> what the actors see: the observations, or shared [N, B, O + N] with e_i appended."""
    return networks.with_agent_index(observations) if self.shared else observations

  def actor_logits(self, observations, target=False):
    """[N, B, O] -> logits [N, B, A] of every agent's (target) actor."""
    return (self.target_actors if target else self.actors)(self.actor_inputs(observations))

  def target_values(self, batch, seed):
    """y [N, B] = r_std + gamma (1 - terminal) Q_i(o', a'), a' sampled from the (target) actors."""
    next_logits = self.actor_logits(tf.transpose(batch.next_observation, [1, 0, 2]), target=True)
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
    return tf.reduce_mean(tf.square(q - targets), axis=1), q

  def actor_loss(self, batch, seed, estimator_step, layer_inputs=None, pre_activations=None,
                 per_sample=False):
    """Per-agent actor loss [N]: -mean_b E~ Q_i(o, a_-i, a_i) + logit_l2 * mean(logits_i^2), E~ the
    estimator's `objective` over agent i's own action a_i ~ softmax(logits_i) (for a pathwise estimator,
    Q_i at its sample a~_i; for the exact one, sum_a softmax(logits_i)_a Q_i(o, a_-i, e_a), `seed` unused).

    `per_sample=True` returns the per-sample losses [N, B] instead (their batch mean is the loss).
    If lists are passed as `layer_inputs` / `pre_activations`, each actor layer's input and pre-activation
    ([N, B, .]) are appended to them (for per-sample gradients).
    """
    per_sample_loss, _ = self._actor_objective(batch, seed, estimator_step, layer_inputs, pre_activations)
    if per_sample:
      return per_sample_loss
    return tf.reduce_mean(per_sample_loss, axis=1)

  def _actor_objective(self, batch, seed, estimator_step, layer_inputs=None, pre_activations=None):
    """(per-sample actor losses [N, B], the estimator distribution that formed them)."""
    logits = self.actor_inputs(tf.transpose(batch.observation, [1, 0, 2]))
    for layer in self.actors.dense_layers:                                       # = self.actors(...)
      pre_activation = tf.matmul(logits, layer.kernel) + layer.bias
      if layer_inputs is not None:
        layer_inputs.append(logits)
        pre_activations.append(pre_activation)
      logits = layer.activation(pre_activation)                                  # last: [N, B, A]
    features = self.critics.observation_features(self._flatten(batch.observation))
    replay = self._flatten(tf.one_hot(batch.action, self.num_actions))           # [B, N*A]
    estimator = self.estimator(logits, estimator_step)
    # Actions the objective evaluates the critic at (K samples, or the A actions) go on axis 1: [N, K, B, A].
    q = estimator.objective(self.own_action_critic(features, replay), seed=seed, sample_axis=-3)  # [N, B]
    per_sample_loss = -q + self.config.logit_l2 * tf.reduce_mean(tf.square(logits), axis=2)   # [N, B]
    return per_sample_loss, estimator

  def own_action_values(self, batch):
    """[N, B, A]: Q_i(o, a_-i, e_a), critic i with the other agents' replayed actions and each of agent
    i's own actions: what the exact expectation over agent i's action sums."""
    batch = type(batch)(*(tf.convert_to_tensor(x) for x in batch))
    return self.critics.own_action_values(self.critics.observation_features(self._flatten(batch.observation)),
                                   self._flatten(tf.one_hot(batch.action, self.num_actions)))

  # ---- the update -----------------------------------------------------------------------------------

  def _step(self, batch, seed, estimator_step, per_sample_variance=False):
    target_seed, estimator_seed = estimator_base.split_seed(seed)
    targets = self.target_values(batch, target_seed)
    with tf.GradientTape() as tape:
      critic_loss, q = self.critic_loss(batch, targets)
      total = self._over_agents(critic_loss)
    critic_grads, critic_norms = optimizers.clip_per_agent(
        tape.gradient(total, self.critics.trainable_weights), self.config.max_grad_norm)
    self.critic_optimiser.apply(critic_grads, self.critics.trainable_weights)

    layer_inputs, pre_activations = ([], []) if per_sample_variance else (None, None)
    with tf.GradientTape() as tape:
      per_sample_loss, estimator = self._actor_objective(batch, estimator_seed, estimator_step, layer_inputs,
                                                         pre_activations)
      actor_loss = tf.reduce_mean(per_sample_loss, axis=1)
      total = self._over_agents(actor_loss)
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
    if estimator.temperature is not None:
      metrics["temperature"] = tf.convert_to_tensor(estimator.temperature)
    names = self._policy_parameter_names()
    metrics.update(gradient_variance.entry_variance(names, actor_grads, self.num_stacks))
    if per_sample_variance:
      deltas = gradients[len(weights):]
      if self.shared:  # the shared actor's samples are the N x B (agent, row) pairs: one [1] value per layer
        layer_inputs, deltas = gradient_variance.pooled(layer_inputs), gradient_variance.pooled(deltas)
      metrics.update(gradient_variance.per_sample_variance(names, layer_inputs, deltas))
    return metrics

  def _policy_parameter_names(self):
    return [v.path.split("/", 1)[-1] for v in self.actors.trainable_weights]

  def step(self, batch, seed=None, estimator_step=None, per_sample_variance=False):
    """One update of every agent. `seed`: stateless [2] ints; `estimator_step`: schedule position
    (defaults to the number of updates so far); `per_sample_variance`: also return the text's Figure 4
    metric (costs about one more actor backward pass). Returns {name: tensor}, per-agent values [N] (with
    shared parameters the gradient norms and variances are the one network's, [1])."""
    if seed is None:
      seed = tf.stack([tf.constant(0, tf.int64), self.num_updates])
    if estimator_step is None:
      estimator_step = self.num_updates
    batch = type(batch)(*(tf.convert_to_tensor(x) for x in batch))
    metrics = self._compiled_step(batch, tf.cast(seed, tf.int32), tf.cast(estimator_step, tf.float32),
                                  bool(per_sample_variance))
    first_bad, bad_loss = _record_non_finite(metrics, tf.constant(0), tf.constant(-1), tf.constant(-1))
    return {**metrics, NON_FINITE_UPDATE: first_bad, NON_FINITE_LOSS: bad_loss}

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
      first_bad, bad_loss = _record_non_finite(metrics, index, first_bad, bad_loss)
      return index + 1, first_bad, bad_loss

    _, first_bad, bad_loss = tf.while_loop(lambda index, *_: index < count - 1, body,
                                           (tf.constant(0), tf.constant(-1), tf.constant(-1)))
    last = count - 1
    metrics = self._step(take(last), tf.gather(seeds, last), tf.gather(estimator_steps, last))
    first_bad, bad_loss = _record_non_finite(metrics, last, first_bad, bad_loss)
    return metrics, first_bad, bad_loss

  def step_block(self, batches, seeds, estimator_steps, block_size=8):
    """Consecutive updates, several per compiled call (cheaper per update than `step`): the same
    updates, in the same order, as calling `step` on each. Returns the last update's metrics.

    Every compiled call holds exactly `block_size` batches (chunks of that size; fewer are padded with
    copies that are not run): XLA compiles once per shape, and blocks of every size from 1 to `block_size`
    occur once episodes desynchronise, each new shape a compilation (seconds) mid-run. A NaN or infinite
    loss stops at the end of its chunk: `NON_FINITE_UPDATE` gives its index in `batches`.
    """
    metrics = None
    for start in range(0, len(batches), block_size):
      stop = min(start + block_size, len(batches))
      metrics, first_bad, bad_loss = self._compiled_block(
          *_padded_chunk(batches[start:stop], seeds[start:stop], estimator_steps[start:stop], block_size),
          tf.constant(stop - start))
      if int(first_bad) >= 0:
        return {**metrics, NON_FINITE_UPDATE: tf.constant(start + int(first_bad)), NON_FINITE_LOSS: bad_loss}
    return {**metrics, NON_FINITE_UPDATE: tf.constant(-1), NON_FINITE_LOSS: tf.constant(-1)}

  # ---- acting and state ------------------------------------------------------------------------------

  def policy_logits(self, observations):
    """[E, N, O] -> [E, N, A] logits of every agent's actor."""
    return tf.transpose(self.actor_logits(tf.transpose(tf.cast(observations, tf.float32),
                                                       [1, 0, 2])), [1, 0, 2])

  def actor_weights(self):
    """[(kernel [N, in, out], bias [N, 1, out])] of every agent's actor layers, as NumPy arrays (for acting):
    with shared parameters, the shared actor as N stacked ones from o_i alone (`networks.per_agent_layers`)."""
    layers = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in self.actors.dense_layers]
    return networks.per_agent_layers(layers, self.num_agents) if self.shared else layers

  def save(self):
    """{name: array} of everything an exact resume needs (the checkpointer's `Saveable` protocol)."""
    return {name: variable.numpy() for name, variable in self.state_variables().items()}

  def restore(self, arrays):
    """Assigns `save()`'s arrays; ValueError naming a missing variable or a wrong shape (another run's)."""
    variables = self.state_variables()
    missing = sorted(set(variables) - set(arrays))
    if missing:
      raise ValueError(f"lacks {missing[0]}: not this run's")
    first = arrays[f"actors/{self.actors.dense_layers[0].kernel.path}"]
    if self.num_agents > 1 and (first.shape[0] == 1) != self.shared:
      raise ValueError(f"holds {'shared' if first.shape[0] == 1 else 'per-agent'} networks, this run has "
                       f"learner.share_parameters={self.shared}: not this run's")
    for name, variable in variables.items():
      if tuple(arrays[name].shape) != tuple(variable.shape):
        raise ValueError(f"{name} has shape {arrays[name].shape}, this run needs {tuple(variable.shape)}")
    for name, variable in variables.items():
      variable.assign(arrays[name])

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

