"""Keras actor and critic networks with every agent's weights stacked on a leading agent axis.

No parameter sharing by default (paper sec. 8): agent i owns slice i of every weight. Stacking turns N
small matmuls into one batched matmul, which is what makes a 4-agent update cost one call, not four.

Parameter sharing (`shared=True`, `learner.share_parameters`): the leading axis has size S = 1, one
network broadcast over the N agents (tf.matmul broadcasts [N, B, in] @ [1, in, out]), and each agent's
input ends with its one-hot index e_i (EPyMARL's and BenchMARL's `agent id` input):
  actor:  [o_i, e_i]            (O + N inputs)
  critic: [o_1..o_N, a_1..a_N, e_i]  (N*O + N*A + N inputs): Q_i is the one critic evaluated with e_i.

Shapes: N agents, S = N (or 1 shared) weight stacks, B batch rows, O observation size per agent,
A actions per agent.

Packed seeds (`num_seeds=K`, the learner's `seeds`): K independent runs' networks stacked on the same leading
axis, seed-major: K*S weight stacks, seed k's in rows k*S .. (k+1)*S - 1, and K*N agent rows of inputs
(seed k's agents in rows k*N .. (k+1)*N - 1). Each seed's critics see that seed's observations and joint
actions, [K, B, N*O] and [K, B, N*A].
  actors:  [N, B, O] -> logits [N, B, A]  (shared: [N, B, O + N], `with_agent_index`)
  critics: observations [B, N*O] and joint one-hot actions [B, N*A] (shared by all critics) or
           [N, B, N*A] (one joint action per critic) -> Q values [N, B]
"""

import math

import keras
import numpy as np
import tensorflow as tf


def torch_default_initializer(fan_in, seed):
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's nn.Linear default, which the authors' code used."""
  bound = 1.0 / math.sqrt(fan_in)
  return keras.initializers.RandomUniform(-bound, bound, seed=seed)


class StackedDense(keras.layers.Layer):
  """N independent dense layers applied to N stacked inputs: [N, B, in] -> [N, B, units]."""

  def __init__(self, num_stacks, units, activation=None, initializer=None, seed=None, **kwargs):
    super().__init__(**kwargs)
    self.num_stacks = num_stacks
    self.units = units
    self.activation = keras.activations.get(activation)
    self._initializer = initializer
    self._seed = seed

  def build(self, input_shape):
    fan_in = int(input_shape[-1])
    kernel_init = self._initializer or torch_default_initializer(fan_in, self._seed)
    bias_init = self._initializer or torch_default_initializer(
        fan_in, None if self._seed is None else self._seed + 1)
    self.kernel = self.add_weight(shape=(self.num_stacks, fan_in, self.units), initializer=kernel_init,
                                  name="kernel")
    self.bias = self.add_weight(shape=(self.num_stacks, 1, self.units), initializer=bias_init,
                                name="bias")

  def weights_of(self, stacks=None):
    """(kernel, bias), or their rows `stacks` = (start, stop) (one seed's networks)."""
    if stacks is None:
      return self.kernel, self.bias
    return self.kernel[stacks[0]:stacks[1]], self.bias[stacks[0]:stacks[1]]

  def pre_activation(self, inputs, stacks=None):
    """inputs [R, B, in] @ kernel + bias -> [R, B, units]; R the kernel's stacks, 1 stack broadcast, or a
    multiple of them (packed seeds of a shared network: R/stacks rows of inputs per stack)."""
    kernel, bias = self.weights_of(stacks)
    rows, num_stacks = inputs.shape[0], kernel.shape[0]
    if rows == num_stacks or num_stacks == 1:
      return tf.matmul(inputs, kernel) + bias
    shape = tf.shape(inputs)
    grouped = tf.reshape(inputs, [num_stacks, rows // num_stacks, shape[1], shape[2]])
    outputs = tf.matmul(grouped, kernel[:, tf.newaxis]) + bias[:, tf.newaxis]
    return tf.reshape(outputs, [rows, shape[1], self.units])

  def call(self, inputs, stacks=None):
    return self.activation(self.pre_activation(inputs, stacks))


class StackedMLP(keras.Model):
  """N independent MLPs (ReLU hidden layers, linear output) applied to [N, B, in]."""

  def __init__(self, num_stacks, hidden_sizes, output_size, initializer=None, seed=0, **kwargs):
    super().__init__(**kwargs)
    sizes = list(hidden_sizes) + [output_size]
    self.dense_layers = [
        StackedDense(num_stacks, units, activation="relu" if k < len(hidden_sizes) else None,
                     initializer=initializer, seed=seed + 2 * k, name=f"dense_{k}")
        for k, units in enumerate(sizes)]

  def build(self, input_shape):
    shape = tuple(input_shape)
    for layer in self.dense_layers:
      layer.build(shape)
      shape = shape[:-1] + (layer.units,)

  def call(self, inputs, stacks=None):
    outputs = inputs
    for layer in self.dense_layers:
      outputs = layer.call(outputs, stacks)
    return outputs


def with_agent_index(inputs, num_agents=None):
  """[N, B, X] -> [N, B, X + N]: row i of agent i's inputs followed by the one-hot e_i (a shared network's
  agent index). Packed seeds: [K*N, B, X] with `num_agents` N, each seed's rows indexed 0 .. N - 1."""
  shape = tf.shape(inputs)
  num_agents = num_agents or inputs.shape[0]
  eye = tf.eye(num_agents, dtype=inputs.dtype)
  if inputs.shape[0] != num_agents:
    eye = tf.tile(eye, [inputs.shape[0] // num_agents, 1])
  index = tf.broadcast_to(eye[:, tf.newaxis], [shape[0], shape[1], num_agents])
  return tf.concat([inputs, index], axis=-1)


def per_agent_layers(layers, num_agents):
  """A shared actor's NumPy layers [(kernel [1, O + N, out], bias [1, 1, out])] as the stacked per-agent
  layers [(kernel [N, in, out], bias [N, 1, out])] that compute the same logits from o_i alone:
  [o_i, e_i] W + b = o_i W[:O] + (b + W[O + i]), so agent i's first bias takes row O + i of the kernel."""
  (kernel, bias), rest = layers[0], layers[1:]
  observation_size = kernel.shape[1] - num_agents
  first = (np.repeat(kernel[:, :observation_size], num_agents, axis=0),
           bias + kernel[0, observation_size:][:, np.newaxis, :])
  return [first] + [(np.repeat(k, num_agents, axis=0), np.repeat(b, num_agents, axis=0)) for k, b in rest]


class StackedCritic(keras.Model):
  """N centralised critics Q_i(o_1..o_N, a_1..a_N), as an MLP on [all observations, all actions]; with
  `shared=True` one critic on [all observations, all actions, e_i], evaluated once per agent i.

  The first layer is split into its observation (and agent index) and action parts, so the observation
  part is computed once per batch and shared by every joint action evaluated on it (the critic loss and
  the actor loss).
  """

  def __init__(self, num_agents, observation_size, num_actions, hidden_sizes, initializer=None, seed=0,
               shared=False, num_seeds=None, **kwargs):
    super().__init__(**kwargs)
    self.num_agents, self.num_actions = int(num_agents), int(num_actions)
    self.shared = bool(shared)
    # None: one run, inputs [B, ...]; K: K packed seeds, inputs [K, B, ...] (see the module docstring).
    self.num_seeds = None if num_seeds is None else int(num_seeds)
    self.stacks_per_seed = 1 if self.shared else self.num_agents
    stacks = self.stacks_per_seed * (self.num_seeds or 1)
    self.observation_width = num_agents * observation_size
    self.action_width = num_agents * num_actions
    index_width = self.num_agents if self.shared else 0
    self.input_layer = StackedDense(stacks, hidden_sizes[0], activation=None, initializer=initializer,
                                    seed=seed, name="dense_0")
    self.body = StackedMLP(stacks, hidden_sizes[1:], 1, initializer=initializer, seed=seed + 2,
                           name="body")
    self.input_layer.build((stacks, None, self.observation_width + self.action_width + index_width))
    self.body.build((stacks, None, hidden_sizes[0]))

  def _seed_stacks(self, k):
    return k * self.stacks_per_seed, (k + 1) * self.stacks_per_seed

  def observation_features(self, observations, stacks=None):
    """[B, N*O] -> the observation (and agent index) part of the first layer, [N, B, H] (bias included).
    Packed seeds: [K, B, N*O] -> [K*N, B, H]; or with `stacks` = (start, stop), one seed's critics (those
    weight rows) on that seed's [B, N*O]."""
    if self.num_seeds is not None and stacks is None:
      # Seed by seed, the ops of one run: graph rewrites (oneDNN fusions) round a 4-D batched einsum and its
      # gradient differently in the last bit.
      return tf.concat([self.observation_features(observations[k], self._seed_stacks(k))
                        for k in range(self.num_seeds)], axis=0)
    kernel, bias = self.input_layer.weights_of(stacks)
    features = tf.einsum("bi,nih->nbh", observations, kernel[:, :self.observation_width]) + bias
    if self.shared:  # + e_i's rows: agent i's row of the index block, [N, 1, H]
      index_rows = kernel[0, self.observation_width + self.action_width:]
      features = features + index_rows[:, tf.newaxis, :]
    return features

  def q_values(self, observation_features, actions, stacks=None):
    """Q values [N, B] from precomputed observation features and joint one-hot actions.

    `actions`: [B, N*A] (every critic sees the same joint action) or [N, B, N*A] (one per critic).
    Packed seeds: features [K*N, B, H] and each seed's joint action [K, B, N*A] -> [K*N, B]; or, with
    `stacks` = (start, stop), one seed's critics (those weight rows) on that seed's unpacked inputs.
    """
    kernel, _ = self.input_layer.weights_of(stacks)
    kernel = kernel[:, self.observation_width:self.observation_width + self.action_width]
    if self.num_seeds is not None and stacks is None:  # the first layer seed by seed (see above), the rest batched
      n = self.num_agents
      hidden = tf.concat([
          tf.nn.relu(observation_features[k * n:(k + 1) * n]
                     + tf.einsum("bi,nih->nbh", actions[k], kernel[slice(*self._seed_stacks(k))]))
          for k in range(self.num_seeds)], axis=0)
    elif actions.shape.rank == 2:
      hidden = tf.nn.relu(observation_features + tf.einsum("bi,nih->nbh", actions, kernel))
    else:
      hidden = tf.nn.relu(observation_features + tf.matmul(actions, kernel))
    return tf.squeeze(self.body(hidden) if stacks is None else self.body.call(hidden, stacks), axis=-1)

  def own_action_q(self, observation_features, replay, own_actions, stacks=None):
    """Q_i(o, a_-i, x_i) [N, K, B]: critic i on the replayed joint action with agent i's block replaced by
    `own_actions` [N, K, B, A] (K candidate actions per row; features [N, B, H], replay [B, N*A]).
    Unpacked inputs only: with packed seeds, one seed's (`stacks`: its weight rows)."""
    n, a = self.num_agents, self.num_actions
    k = tf.shape(own_actions)[1]
    own_block = tf.reshape(tf.repeat(tf.eye(n), a, axis=1), [n, 1, 1, n * a])    # [N, 1, 1, N*A]
    blocks = tf.reshape(tf.einsum("nkba,nm->nkbma", own_actions, tf.eye(n)), [n, k, -1, n * a])
    joint = replay * (1. - own_block) + blocks                                   # [N, K, B, N*A]
    q = self.q_values(tf.tile(observation_features, [1, k, 1]), tf.reshape(joint, [n, -1, n * a]), stacks)
    return tf.reshape(q, [n, k, -1])

  def own_action_values(self, observation_features, replay):
    """[N, B, A]: Q_i(o, a_-i, e_a) for every own action a of every agent i (the other agents' replayed
    actions fixed): what the exact expectation over agent i's action sums."""
    batch = tf.shape(replay)[0]
    vertices = tf.broadcast_to(tf.eye(self.num_actions)[tf.newaxis, :, tf.newaxis],
                               [self.num_agents, self.num_actions, batch, self.num_actions])
    return tf.transpose(self.own_action_q(observation_features, replay, vertices), [0, 2, 1])

  def call(self, observations, actions):
    if self.num_seeds is None:
      return self.q_values(self.observation_features(observations), actions)
    # Packed seeds: each seed's first layer as one run computes it, whole (Grappler's arithmetic optimiser
    # rewrites one run's chain of adds, features + bias + action features; split by a concat it would
    # not, and the sum would round differently), then the other layers batched.
    width = self.observation_width
    hidden = []
    for k in range(self.num_seeds):
      stacks = self._seed_stacks(k)
      action_kernel = self.input_layer.weights_of(stacks)[0][:, width:width + self.action_width]
      hidden.append(tf.nn.relu(self.observation_features(observations[k], stacks)
                               + tf.einsum("bi,nih->nbh", actions[k], action_kernel)))
    return tf.squeeze(self.body(tf.concat(hidden, axis=0)), axis=-1)


def variables_by_name(model, prefix):
  """{prefix/path: variable} for a Keras model's weights, for checkpoints and logs."""
  return {f"{prefix}/{variable.path}": variable for variable in model.weights}
