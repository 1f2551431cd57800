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

Packed seeds (`seeds=(s_0, .., s_K-1)`): K independent runs of one configuration in one learner and one
compiled update. Every network weight and Adam moment is stacked seed-major on the agent axis, [K*N, ...]
(shared parameters: [K, ...]), seed k's slice initialised as a learner of `seed=s_k` would be; Adam step
counts, the reward statistics and `num_updates` get a leading [K] axis. Batches, Philox seeds and schedule
positions get a leading seed axis ([K, B, ...], [K, 2], [K]); `active` [K] says which seeds update, and an
inactive seed's state is left exactly as it was. Each seed's update is the one a learner of that seed would
make on that seed's batch: the networks run batched over seeds; the random draws (target actions, the
estimator's objective, with its critic evaluations) run once per seed on that seed's slice, since an
estimator takes one Philox seed. Metrics get a leading [K] axis. `save(seed=k)` / `restore(arrays, seed=k)`
/ `actor_weights(seed=k)` are seed k's view, with exactly a single learner's arrays.
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

  Packed seeds (`num_seeds` K): statistics per seed, mean and var [K, N], count [K]; rewards [K, B, N], and
  only the `active` [K] seeds' statistics merge their batch.
  """

  def __init__(self, num_agents, num_seeds=None):
    super().__init__(name="reward_standardiser")
    self.num_seeds = num_seeds
    seed_axis = [] if num_seeds is None else [num_seeds]
    self.mean = tf.Variable(tf.zeros(seed_axis + [num_agents]), trainable=False, name="mean")
    self.var = tf.Variable(tf.ones(seed_axis + [num_agents]), trainable=False, name="var")
    self.count = tf.Variable(tf.fill(seed_axis, 1e-4), trainable=False, name="count")

  def __call__(self, rewards, active=None):
    """rewards [B, N] -> standardised [B, N], after merging the batch into the statistics (packed seeds:
    [K, B, N], each seed's own statistics)."""
    if self.num_seeds is None:
      mean, var, count = self.merged(rewards, self.mean, self.var, self.count)
      self.mean.assign(mean)
      self.var.assign(var)
      self.count.assign(count)
      return (rewards - self.mean) / tf.sqrt(self.var)
    # Seed by seed with one run's ops on its scalar count: graph optimisation reorders the products of a
    # scalar count differently from a [K] one (the last bit of the statistics).
    merged = [self.merged(rewards[k], self.mean[k], self.var[k], self.count[k]) for k in range(self.num_seeds)]
    mean, var, count = (tf.stack(parts) for parts in zip(*merged))
    active = tf.ones([self.num_seeds], tf.bool) if active is None else active
    self.mean.assign(tf.where(active[:, tf.newaxis], mean, self.mean))
    self.var.assign(tf.where(active[:, tf.newaxis], var, self.var))
    self.count.assign(tf.where(active, count, self.count))
    return tf.stack([(rewards[k] - self.mean[k]) / tf.sqrt(self.var[k]) for k in range(self.num_seeds)])

  @staticmethod
  def merged(rewards, mean, var, count):
    """(mean, var, count) after merging rewards [B, N] into statistics mean, var [N] and count []."""
    batch_count = tf.cast(tf.shape(rewards)[0], tf.float32)
    batch_mean = tf.reduce_mean(rewards, axis=0)
    batch_var = tf.reduce_sum(tf.square(rewards - batch_mean), axis=0) / (batch_count - 1.)
    total = count + batch_count
    delta = batch_mean - mean
    second_moment = (var * count + batch_var * batch_count
                     + tf.square(delta) * count * batch_count / total)
    return mean + delta * batch_count / total, second_moment / total, total


def one_hot_sample(logits, seed):
  """A behaviour action Categorical(softmax(logits)) as a one-hot, no gradient."""
  return tf.stop_gradient(estimator_base.categorical_one_hot(logits, seed))


def _record_non_finite(metrics, index, first_bad, bad_loss, active=True):
  """(first_bad, bad_loss) updated with update `index`'s losses (see `NON_FINITE_UPDATE`); packed seeds:
  per seed, [K], counting only the `active` [K] seeds."""
  critic_ok = tf.reduce_all(tf.math.is_finite(metrics["critic_loss"]), axis=-1)
  actor_ok = tf.reduce_all(tf.math.is_finite(metrics["actor_loss"]), axis=-1)
  new = active & (first_bad < 0) & ~(critic_ok & actor_ok)
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
              shared=False, num_seeds=None):
  """Built (actors, critics) with every agent's weights stacked (shared: one of each, agent index inputs);
  `num_seeds` K: K seeds' stacks, seed-major (initialised from `seed`, not per seed: see `_packed_networks`)."""
  hidden = tuple(int(h) for h in hidden_sizes)
  stacks, index_width = (1, num_agents) if shared else (num_agents, 0)
  stacks *= num_seeds or 1
  actors = networks.StackedMLP(stacks, hidden, num_actions, initializer=initializer,
                               seed=seed * 1000 + 1, name=f"{prefix}actors")
  actors.build((stacks, None, observation_size + index_width))
  critics = networks.StackedCritic(num_agents, observation_size, num_actions, hidden, initializer=initializer,
                                   seed=seed * 1000 + 101, shared=shared, name=f"{prefix}critics",
                                   num_seeds=num_seeds)
  return actors, critics


def _packed_networks(num_agents, observation_size, num_actions, hidden_sizes, initializer, seeds, shared):
  """(actors, critics) of K = len(seeds) packed seeds, seed k's slice equal to `_networks(..., seeds[k])`'s
  weights."""
  actors, critics = _networks(num_agents, observation_size, num_actions, hidden_sizes, initializer, seeds[0],
                              shared=shared, num_seeds=len(seeds))
  singles = [_networks(num_agents, observation_size, num_actions, hidden_sizes, initializer, seed,
                       shared=shared) for seed in seeds]
  for position, packed in enumerate((actors, critics)):
    for index, weight in enumerate(packed.weights):
      weight.assign(tf.concat([single[position].weights[index] for single in singles], axis=0))
  return actors, critics


class MADDPGLearner(tf.Module):
  """Stacked MADDPG. `step(batch)` runs one update of every agent and returns a dict of metrics."""

  def __init__(self, num_agents, observation_size, num_actions, config=LearnerConfig(),
               estimator="gst", estimator_params=None, seed=0, initializer=None, jit_compile=True,
               seeds=None):
    super().__init__(name="maddpg_learner")
    self.num_agents = int(num_agents)
    self.observation_size = int(observation_size)
    self.num_actions = int(num_actions)
    self.config = config
    self.shared = bool(config.share_parameters)
    # Packed seeds (module docstring): `seeds` replaces `seed`; None is one run without a seed axis.
    self.seeds = None if seeds is None else tuple(int(s) for s in seeds)
    if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
      raise ValueError(f"seeds must be one or more distinct integers, got {seeds!r}")
    self.num_seeds = None if self.seeds is None else len(self.seeds)
    self.stacks_per_seed = 1 if self.shared else self.num_agents
    self.num_stacks = self.stacks_per_seed * (self.num_seeds or 1)  # the weights' leading axis
    # A network's loss from the agents' losses [N]: their sum (disjoint weights: each agent's own gradient)
    # or, shared, their mean.
    self._over_agents = tf.reduce_mean if self.shared else tf.reduce_sum
    self.estimator_name = estimator
    self.estimator_params = dict(estimator_params or {})
    estimators.check(estimator, self.estimator_params)  # bad values fail here, not mid-run
    self._scheduled = estimators.resolve(estimator).scheduled(self.estimator_params)

    if self.seeds is None:
      self.actors, self.critics = _networks(num_agents, observation_size, num_actions, config.hidden_sizes,
                                            initializer, seed, shared=self.shared)
    else:
      self.actors, self.critics = _packed_networks(num_agents, observation_size, num_actions,
                                                   config.hidden_sizes, initializer, self.seeds, self.shared)
    self.actor_optimiser = optimizers.Adam(self.actors.trainable_weights, config.actor_learning_rate,
                                           config.adam_epsilon, name="actor_adam", num_seeds=self.num_seeds)
    self.critic_optimiser = optimizers.Adam(self.critics.trainable_weights, config.critic_learning_rate,
                                            config.adam_epsilon, name="critic_adam", num_seeds=self.num_seeds)
    if config.use_target_networks:
      self.target_actors, self.target_critics = _networks(num_agents, observation_size, num_actions,
                                                          config.hidden_sizes, None, 0, prefix="target_",
                                                          shared=self.shared, num_seeds=self.num_seeds)
      for target, online in ((self.target_actors, self.actors), (self.target_critics, self.critics)):
        for t, o in zip(target.weights, online.weights):
          t.assign(o)
    else:
      # The paper's runs never read their target networks (maddpg_tf/FIDELITY.md: Target networks): keeping none is equivalent.
      self.target_actors, self.target_critics = self.actors, self.critics
    self.reward_standardiser = RewardStandardiser(num_agents, self.num_seeds)
    self.num_updates = tf.Variable(tf.zeros(self._seed_axis(), tf.int64), trainable=False, name="num_updates")
    self._compiled_step = tf.function(self._step, jit_compile=jit_compile, reduce_retracing=True)
    block = self._block if self.seeds is None else self._packed_block
    self._compiled_block = tf.function(block, jit_compile=jit_compile, reduce_retracing=True)
    self.jit_compile = jit_compile

  @property
  def device(self):
    """Where the update runs: the device holding the critics' weights (TensorFlow places the compiled
    update beside the variables it reads and writes), e.g. '/job:localhost/replica:0/task:0/device:GPU:0'."""
    weight = self.critics.trainable_weights[0]
    return getattr(weight, "value", weight).device

  def _seed_axis(self):
    return [] if self.num_seeds is None else [self.num_seeds]

  def _seed_rows(self, k, per_seed):
    """(start, stop) of seed k's `per_seed` rows on a packed leading axis."""
    return k * per_seed, (k + 1) * per_seed

  def _per_seed(self, values):
    """Packed [K*X, ...] -> [K, X, ...] (a metric's seed axis); unpacked: unchanged."""
    if self.num_seeds is None:
      return values
    return tf.reshape(values, [self.num_seeds, -1] + values.shape[1:].as_list())

  def _row_active(self, active, variable):
    """[K] -> [K*S, 1, ...]: a weight row's seed's flag, broadcastable against `variable`."""
    rows = tf.repeat(active, variable.shape[0] // self.num_seeds)
    return tf.reshape(rows, [-1] + [1] * (variable.shape.rank - 1))

  # ---- the estimator ------------------------------------------------------------------------------------

  def estimator(self, logits, estimator_step):
    """The estimator distribution over `logits` at schedule position `estimator_step` (used if it follows
    a temperature schedule)."""
    params = dict(self.estimator_params)
    if self._scheduled:
      params["step"] = estimator_step
    return estimators.make(self.estimator_name, logits=logits, **params)

  def own_action_critic(self, features, replay, stacks=None):
    """f(actions [N, ..., B, A]) -> [N, ..., B]: critic i on the replayed joint action with agent i's own
    action replaced by `actions`[i] (features [N, B, H], replay [B, N*A]): the function of agent i's
    action whose expectation agent i's actor maximises. Packed seeds: one seed's, `stacks` its weight rows."""
    def f(actions):
      shape = tf.shape(actions)
      own = tf.reshape(actions, [self.num_agents, -1, shape[-2], self.num_actions])    # [N, K, B, A]
      return tf.reshape(self.critics.own_action_q(features, replay, own, stacks), shape[:-1])
    return f

  # ---- losses (public, checkable) -----------------------------------------------------------------------

  def _flatten(self, tensor):
    """[B, N, X] -> [B, N*X] (packed seeds: [K, B, N, X] -> [K, B, N*X])."""
    if self.num_seeds is not None:
      return tf.reshape(tensor, [self.num_seeds, tf.shape(tensor)[1], -1])
    return tf.reshape(tensor, [tf.shape(tensor)[0], -1])

  def _agent_major(self, tensor):
    """[B, N, X] -> [N, B, X] (packed seeds: [K, B, N, X] -> [K*N, B, X])."""
    if self.num_seeds is None:
      return tf.transpose(tensor, [1, 0, 2])
    shape = tf.shape(tensor)
    return tf.reshape(tf.transpose(tensor, [0, 2, 1, 3]), [self.num_seeds * self.num_agents, shape[1], shape[3]])

  def _batch_major(self, tensor):
    """The inverse of `_agent_major`."""
    if self.num_seeds is None:
      return tf.transpose(tensor, [1, 0, 2])
    shape = tf.shape(tensor)
    return tf.transpose(tf.reshape(tensor, [self.num_seeds, self.num_agents, shape[1], shape[2]]), [0, 2, 1, 3])

  def _split_seeds(self, seed):
    """Stateless seed [2] -> (target, estimator) seeds; packed [K, 2] -> two [K, 2], each seed's own split."""
    if self.num_seeds is None:
      return estimator_base.split_seed(seed)
    pairs = [estimator_base.split_seed(seed[k]) for k in range(self.num_seeds)]
    return tf.stack([p[0] for p in pairs]), tf.stack([p[1] for p in pairs])

  def actor_inputs(self, observations):
    """[N, B, O] -> what the actors see: the observations, or shared [N, B, O + N] with e_i appended."""
    return networks.with_agent_index(observations, self.num_agents) if self.shared else observations

  def actor_logits(self, observations, target=False):
    """[N, B, O] -> logits [N, B, A] of every agent's (target) actor."""
    return (self.target_actors if target else self.actors)(self.actor_inputs(observations))

  def target_values(self, batch, seed, active=None):
    """y [N, B] = r_std + gamma (1 - terminal) Q_i(o', a'), a' sampled from the (target) actors.
    Packed seeds: [K*N, B] from seeds [K, 2]; only the `active` [K] seeds' reward statistics merge."""
    next_logits = self.actor_logits(self._agent_major(batch.next_observation), target=True)
    if self.num_seeds is None:
      next_actions = one_hot_sample(next_logits, seed)
    else:
      n = self.num_agents
      next_actions = tf.concat([one_hot_sample(next_logits[k * n:(k + 1) * n], seed[k])
                                for k in range(self.num_seeds)], axis=0)
    next_actions = self._batch_major(next_actions)
    rewards = tf.cast(batch.reward, tf.float32)
    if self.config.standardise_rewards:
      rewards = self.reward_standardiser(rewards, active) if self.num_seeds else self.reward_standardiser(rewards)
    next_q = self.target_critics(self._flatten(batch.next_observation), self._flatten(next_actions))
    if self.num_seeds is None:
      continuing = 1. - tf.cast(batch.terminal, tf.float32)[tf.newaxis, :]
      return tf.stop_gradient(tf.transpose(rewards) + self.config.gamma * continuing * next_q)
    continuing = 1. - tf.cast(batch.terminal, tf.float32)[:, tf.newaxis, :]                  # [K, 1, B]
    next_q = tf.reshape(next_q, [self.num_seeds, self.num_agents, -1])
    targets = tf.transpose(rewards, [0, 2, 1]) + self.config.gamma * continuing * next_q
    return tf.stop_gradient(tf.reshape(targets, [self.num_seeds * self.num_agents, -1]))

  def critic_loss(self, batch, targets):
    """Per-agent mean squared TD error [N], and the Q values [N, B] (packed seeds: [K*N], [K*N, B])."""
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
    """(per-sample actor losses [N, B], the estimator's temperature or None); packed seeds: [K*N, B] and
    [K] temperatures, from seeds [K, 2] and schedule positions [K]."""
    logits = self.actor_inputs(self._agent_major(batch.observation))
    for layer in self.actors.dense_layers:                                       # = self.actors(...)
      pre_activation = layer.pre_activation(logits)
      if layer_inputs is not None:
        layer_inputs.append(logits)
        pre_activations.append(pre_activation)
      logits = layer.activation(pre_activation)                                  # last: [N, B, A]
    features = self.critics.observation_features(self._flatten(batch.observation))
    replay = self._flatten(tf.one_hot(batch.action, self.num_actions))           # [B, N*A]
    # Actions the objective evaluates the critic at (K samples, or the A actions) go on axis 1: [N, K, B, A].
    if self.num_seeds is None:
      estimator = self.estimator(logits, estimator_step)
      q = estimator.objective(self.own_action_critic(features, replay), seed=seed, sample_axis=-3)  # [N, B]
      per_sample_loss = -q + self.config.logit_l2 * tf.reduce_mean(tf.square(logits), axis=2)   # [N, B]
      return per_sample_loss, estimator.temperature
    # An estimator draws from one Philox seed: each seed's own, on its slice and its critics; the loss too,
    # seed by seed, as one run's graph (Grappler rewrites a run's sum whole, not split by a concat).
    losses, temperatures = [], []
    for k in range(self.num_seeds):
      start, stop = self._seed_rows(k, self.num_agents)
      estimator = self.estimator(logits[start:stop], estimator_step[k])
      critic = self.own_action_critic(features[start:stop], replay[k], self._seed_rows(k, self.stacks_per_seed))
      q = estimator.objective(critic, seed=seed[k], sample_axis=-3)
      losses.append(-q + self.config.logit_l2 * tf.reduce_mean(tf.square(logits[start:stop]), axis=2))
      temperatures.append(estimator.temperature)
    temperature = None if temperatures[0] is None else tf.stack([tf.convert_to_tensor(t) for t in temperatures])
    return tf.concat(losses, axis=0), temperature

  def own_action_values(self, batch):
    """[N, B, A]: Q_i(o, a_-i, e_a), critic i with the other agents' replayed actions and each of agent
    i's own actions: what the exact expectation over agent i's action sums."""
    if self.num_seeds is not None:
      raise ValueError("own_action_values takes one run's batch; this learner packs seeds")
    batch = type(batch)(*(tf.convert_to_tensor(x) for x in batch))
    return self.critics.own_action_values(self.critics.observation_features(self._flatten(batch.observation)),
                                   self._flatten(tf.one_hot(batch.action, self.num_actions)))

  # ---- the update -----------------------------------------------------------------------------------

  def _total(self, losses):
    """A network's loss from the agents' losses [N] (packed seeds: [K*N], each seed's, summed)."""
    if self.num_seeds is None:
      return self._over_agents(losses)
    return tf.reduce_sum(self._over_agents(tf.reshape(losses, [self.num_seeds, self.num_agents]), axis=1))

  def _step(self, batch, seed, estimator_step, per_sample_variance=False, active=None):
    packed = self.num_seeds is not None
    if packed and active is None:
      active = tf.ones([self.num_seeds], tf.bool)
    target_seed, estimator_seed = self._split_seeds(seed)
    targets = self.target_values(batch, target_seed, active)
    with tf.GradientTape() as tape:
      critic_loss, q = self.critic_loss(batch, targets)
      total = self._total(critic_loss)
    critic_grads, critic_norms = optimizers.clip_per_agent(
        tape.gradient(total, self.critics.trainable_weights), self.config.max_grad_norm)
    self.critic_optimiser.apply(critic_grads, self.critics.trainable_weights, active)

    layer_inputs, pre_activations = ([], []) if per_sample_variance else (None, None)
    with tf.GradientTape() as tape:
      per_sample_loss, temperature = self._actor_objective(batch, estimator_seed, estimator_step, layer_inputs,
                                                           pre_activations)
      actor_loss = tf.reduce_mean(per_sample_loss, axis=1)
      total = self._total(actor_loss)
    weights = self.actors.trainable_weights
    gradients = tape.gradient(total, weights + (pre_activations or []))
    actor_grads, actor_norms = optimizers.clip_per_agent(gradients[:len(weights)],
                                                         self.config.max_grad_norm)
    self.actor_optimiser.apply(actor_grads, self.actors.trainable_weights, active)

    if self.config.use_target_networks:
      for target, online in ((self.target_actors, self.actors), (self.target_critics, self.critics)):
        for t, o in zip(target.weights, online.weights):
          averaged = (1. - self.config.tau) * t + self.config.tau * o
          t.assign(tf.where(self._row_active(active, t), averaged, t) if packed else averaged)
    self.num_updates.assign_add(tf.cast(active, tf.int64) if packed else 1)

    per_seed = self._per_seed
    metrics = {"critic_loss": per_seed(critic_loss), "actor_loss": per_seed(actor_loss),
               "q_mean": per_seed(tf.reduce_mean(q, axis=1)),
               "target_mean": per_seed(tf.reduce_mean(targets, axis=1)),
               "critic_grad_norm": per_seed(critic_norms), "actor_grad_norm": per_seed(actor_norms)}
    if temperature is not None:
      metrics["temperature"] = tf.convert_to_tensor(temperature)
    names = self._policy_parameter_names()
    variances = gradient_variance.entry_variance(names, actor_grads, self.num_stacks)
    if per_sample_variance:
      deltas = gradients[len(weights):]
      if self.shared:  # the shared actor's samples are the N x B (agent, row) pairs: one [1] value per layer
        groups = self.num_seeds or 1
        layer_inputs = gradient_variance.pooled(layer_inputs, groups)
        deltas = gradient_variance.pooled(deltas, groups)
      variances.update(gradient_variance.per_sample_variance(names, layer_inputs, deltas))
    metrics.update({name: per_seed(value) for name, value in variances.items()})
    return metrics

  def _policy_parameter_names(self):
    return [v.path.split("/", 1)[-1] for v in self.actors.trainable_weights]

  def step(self, batch, seed=None, estimator_step=None, per_sample_variance=False, active=None):
    """One update of every agent. `seed`: stateless [2] ints; `estimator_step`: schedule position
    (defaults to the number of updates so far); `per_sample_variance`: also return the text's Figure 4
    metric (costs about one more actor backward pass). Returns {name: tensor}, per-agent values [N] (with
    shared parameters the gradient norms and variances are the one network's, [1]).

    Packed seeds: batch [K, B, ...], seeds [K, 2], schedule positions [K] (defaults per seed as above);
    `active` [K] bool (default all) selects the seeds that update. Metrics [K, ...]; the non-finite
    record per seed, [K]."""
    packed = self.num_seeds is not None
    if seed is None:
      seed = tf.stack([tf.zeros_like(self.num_updates), self.num_updates], axis=-1)
    if estimator_step is None:
      estimator_step = self.num_updates
    batch = type(batch)(*(tf.convert_to_tensor(x) for x in batch))
    if packed:
      active = tf.ones([self.num_seeds], tf.bool) if active is None else tf.convert_to_tensor(active, tf.bool)
      metrics = self._compiled_step(batch, tf.cast(seed, tf.int32), tf.cast(estimator_step, tf.float32),
                                    bool(per_sample_variance), active)
      none = -tf.ones([self.num_seeds], tf.int32)
      first_bad, bad_loss = _record_non_finite(metrics, tf.constant(0), none, none, active)
      return {**metrics, NON_FINITE_UPDATE: first_bad, NON_FINITE_LOSS: bad_loss}
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

  def _packed_block(self, batches, seeds, estimator_steps, counts):
    """`_block` for packed seeds: batches [U, K, B, ...], seeds [U, K, 2], positions [U, K]; seed k runs
    its first counts[k] updates and is left unchanged by the rest (U >= max(counts)). Returns (each seed's
    metrics of its last update, [K] first non-finite update index or -1, [K] which loss)."""
    def take(index):
      return type(batches)(*(tf.gather(x, index) for x in batches))

    none = -tf.ones_like(counts)
    active = counts > 0
    metrics = self._step(take(0), seeds[0], estimator_steps[0], active=active)
    first_bad, bad_loss = _record_non_finite(metrics, tf.constant(0), none, none, active)

    def body(index, metrics, first_bad, bad_loss):
      active = index < counts
      new = self._step(take(index), tf.gather(seeds, index), tf.gather(estimator_steps, index), active=active)
      first_bad, bad_loss = _record_non_finite(new, index, first_bad, bad_loss, active)
      metrics = {name: tf.where(tf.reshape(active, [-1] + [1] * (value.shape.rank - 1)), new[name], value)
                 for name, value in metrics.items()}
      return index + 1, metrics, first_bad, bad_loss

    _, metrics, first_bad, bad_loss = tf.while_loop(
        lambda index, *_: index < tf.reduce_max(counts), body, (tf.constant(1), metrics, first_bad, bad_loss))
    return metrics, first_bad, bad_loss

  def step_block(self, batches, seeds, estimator_steps, block_size=8):
    """Consecutive updates, several per compiled call (cheaper per update than `step`): the same
    updates, in the same order, as calling `step` on each. Returns the last update's metrics.

    Every compiled call holds exactly `block_size` batches (chunks of that size; fewer are padded with
    copies that are not run): XLA compiles once per shape, and blocks of every size from 1 to `block_size`
    occur once episodes desynchronise, each new shape a compilation (seconds) mid-run. A NaN or infinite
    loss stops at the end of its chunk: `NON_FINITE_UPDATE` gives its index in `batches`.

    Packed seeds: `batches`, `seeds`, `estimator_steps` are K lists, seed k's updates in order (lengths may
    differ, 0 included); seed k runs exactly its own, each chunk running every seed's next ones at once.
    A seed with a non-finite loss stops at the end of its chunk while the others go on; `NON_FINITE_UPDATE`
    and `NON_FINITE_LOSS` are [K]. Metrics [K, ...], each seed's last update's (NaN for a seed that ran none).
    """
    if self.num_seeds is not None:
      return self._packed_step_block(batches, seeds, estimator_steps, block_size)
    metrics = None
    for start in range(0, len(batches), block_size):
      stop = min(start + block_size, len(batches))
      metrics, first_bad, bad_loss = self._compiled_block(
          *_padded_chunk(batches[start:stop], seeds[start:stop], estimator_steps[start:stop], block_size),
          tf.constant(stop - start))
      if int(first_bad) >= 0:
        return {**metrics, NON_FINITE_UPDATE: tf.constant(start + int(first_bad)), NON_FINITE_LOSS: bad_loss}
    return {**metrics, NON_FINITE_UPDATE: tf.constant(-1), NON_FINITE_LOSS: tf.constant(-1)}

  def _packed_step_block(self, batches, seeds, estimator_steps, block_size):
    num_seeds = self.num_seeds
    if not len(batches) == len(seeds) == len(estimator_steps) == num_seeds:
      raise ValueError(f"step_block takes one list of batches, seeds and schedule positions per seed "
                       f"({num_seeds}), got {len(batches)}, {len(seeds)}, {len(estimator_steps)}")
    counts = np.array([len(b) for b in batches])
    if any(len(s) != c or len(e) != c for s, e, c in zip(seeds, estimator_steps, counts)):
      raise ValueError(f"each seed needs a seed and schedule position per batch, got {counts.tolist()} batches, "
                       f"{[len(s) for s in seeds]} seeds, {[len(e) for e in estimator_steps]} positions")
    if not counts.any():
      raise ValueError("step_block needs at least one batch")
    filler = next(b[-1] for b in batches if b)  # shapes for a seed with nothing to run in a chunk
    first_bad, bad_loss = np.full(num_seeds, -1), np.full(num_seeds, -1)
    metrics, ran = None, np.zeros(num_seeds, bool)
    for start in range(0, int(counts.max()), block_size):
      chunk_counts = np.clip(counts - start, 0, block_size) * (first_bad < 0)
      if not chunk_counts.any():
        break
      parts = [_padded_chunk(b[start:start + block_size] or [b[-1] if b else filler],
                             s[start:start + block_size] or [np.zeros(2, np.int64)],
                             e[start:start + block_size] or [0.], block_size)
               for b, s, e in zip(batches, seeds, estimator_steps)]
      stacked = type(parts[0][0])(*(tf.stack(x, axis=1) for x in zip(*(p[0] for p in parts))))
      chunk_metrics, bad, which = self._compiled_block(
          stacked, tf.stack([p[1] for p in parts], axis=1), tf.stack([p[2] for p in parts], axis=1),
          tf.constant(chunk_counts, tf.int32))
      ran_now = chunk_counts > 0
      metrics = chunk_metrics if metrics is None else {
          name: tf.where(tf.reshape(ran_now, [-1] + [1] * (value.shape.rank - 1)), value, metrics[name])
          for name, value in chunk_metrics.items()}
      ran |= ran_now
      bad = bad.numpy()
      newly = ran_now & (bad >= 0)
      first_bad[newly], bad_loss[newly] = start + bad[newly], which.numpy()[newly]
    metrics = {name: tf.where(tf.reshape(ran, [-1] + [1] * (value.shape.rank - 1)), value, np.nan)
               for name, value in metrics.items()}
    return {**metrics, NON_FINITE_UPDATE: tf.constant(first_bad, tf.int32),
            NON_FINITE_LOSS: tf.constant(bad_loss, tf.int32)}

  # ---- acting and state ------------------------------------------------------------------------------

  def _check_seed(self, seed):
    """Seed k's index, or None; ValueError for a seed view of an unpacked learner or a k out of range."""
    if seed is None:
      return None
    if self.num_seeds is None:
      raise ValueError(f"seed={seed!r}: this learner packs no seeds")
    if not 0 <= int(seed) < self.num_seeds:
      raise ValueError(f"seed must be an index in [0, {self.num_seeds}), got {seed!r}")
    return int(seed)

  def policy_logits(self, observations, seed=None):
    """[E, N, O] -> [E, N, A] logits of every agent's actor. Packed seeds: [K, E, N, O] -> [K, E, N, A],
    or with `seed` k, seed k's actors on [E, N, O]."""
    observations = tf.cast(observations, tf.float32)
    k = self._check_seed(seed)
    if k is None:
      return self._batch_major(self.actor_logits(self._agent_major(observations)))
    inputs = tf.transpose(observations, [1, 0, 2])
    if self.shared:
      inputs = networks.with_agent_index(inputs)
    return tf.transpose(self.actors.call(inputs, self._seed_rows(k, self.stacks_per_seed)), [1, 0, 2])

  def actor_weights(self, seed=None):
    """[(kernel [N, in, out], bias [N, 1, out])] of every agent's actor layers, as NumPy arrays (for acting):
    with shared parameters, the shared actor as N stacked ones from o_i alone (`networks.per_agent_layers`).
    Packed seeds: seed k's (`seed`=k), or with no `seed` every seed's, [K*N, ...] seed-major."""
    k = self._check_seed(seed)
    rows = slice(None) if k is None else slice(*self._seed_rows(k, self.stacks_per_seed))
    layers = [(layer.kernel.numpy()[rows], layer.bias.numpy()[rows]) for layer in self.actors.dense_layers]
    if not self.shared:
      return layers
    if k is None and self.num_seeds is not None:  # each seed's shared actor as its N stacked ones
      per_seed = [networks.per_agent_layers([(w[j:j + 1], b[j:j + 1]) for w, b in layers], self.num_agents)
                  for j in range(self.num_seeds)]
      return [tuple(np.concatenate(parts, axis=0) for parts in zip(*layer)) for layer in zip(*per_seed)]
    return networks.per_agent_layers(layers, self.num_agents)

  # Packed state with a [K] seed axis (the rest is stacked seed-major on the weights' leading axis).
  SEED_INDEXED = ("actor_adam/iterations", "critic_adam/iterations", "reward/mean", "reward/var", "reward/count",
                  "num_updates")

  def _seed_index(self, name, k):
    """Seed k's part of packed state `name`: an index on the seed axis or seed k's rows."""
    return k if name in self.SEED_INDEXED else slice(*self._seed_rows(k, self.stacks_per_seed))

  def save(self, seed=None):
    """{name: array} of everything an exact resume needs (the checkpointer's `Saveable` protocol).
    Packed seeds: every seed's, or with `seed` k seed k's alone: a learner of that seed's arrays."""
    k = self._check_seed(seed)
    arrays = {name: variable.numpy() for name, variable in self.state_variables().items()}
    if k is None:
      return arrays
    return {name: array[self._seed_index(name, k)] for name, array in arrays.items()}

  def restore(self, arrays, seed=None):
    """Assigns `save()`'s arrays; ValueError naming a missing variable or a wrong shape (another run's).
    With `seed` k (packed seeds): assigns seed k's part from one seed's arrays (`save(seed=k)`, or a
    learner of one seed's `save()`), leaving the other seeds as they are."""
    k = self._check_seed(seed)
    variables = self.state_variables()
    shapes = {name: tuple(variable.shape) for name, variable in variables.items()}
    if k is not None:
      shapes = {name: tuple(np.zeros(shape, np.int8)[self._seed_index(name, k)].shape)
                for name, shape in shapes.items()}
    missing = sorted(set(variables) - set(arrays))
    if missing:
      raise ValueError(f"lacks {missing[0]}: not this run's")
    first = arrays[f"actors/{self.actors.dense_layers[0].kernel.path}"]
    per_seed_stacks = first.shape[0] // ((self.num_seeds or 1) if k is None else 1)
    if self.num_agents > 1 and (per_seed_stacks == 1) != self.shared:
      raise ValueError(f"holds {'shared' if per_seed_stacks == 1 else 'per-agent'} networks, this run has "
                       f"learner.share_parameters={self.shared}: not this run's")
    for name in variables:
      if tuple(arrays[name].shape) != shapes[name]:
        raise ValueError(f"{name} has shape {arrays[name].shape}, this run needs {shapes[name]}")
    for name, variable in variables.items():
      if k is None:
        variable.assign(arrays[name])
      else:
        variable[self._seed_index(name, k)].assign(arrays[name])

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

