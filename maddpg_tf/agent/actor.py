"""Acting: every agent's action in every environment in one call.

`NumpyActor` (used by the training loop) acts from a NumPy snapshot of the actors' weights, taken when the
learner is idle: on a CPU a TF call costs more than the arithmetic (8 envs x 64x64 MLPs), and the env thread
then never competes with the learner thread for TF's thread pools. `Actor` is the TF version.
"""

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


class NumpyActor:
  """a_i ~ Categorical(softmax(mu_i(o_i))) from a NumPy copy of the stacked actor weights.

  Gumbel-max sampling with its own `np.random.Generator` (seeded from (seed, stream); its state is part of
  a checkpoint), so acting is reproducible and resumable.
  """

  def __init__(self, seed, stream=0):
    self.rng = np.random.default_rng([int(seed), 977, int(stream)])
    self._layers = None

  def set_weights(self, layers):
    """`layers`: [(kernel [N, in, out], bias [N, 1, out])], e.g. `MADDPGLearner.actor_weights()`."""
    self._layers = [(np.asarray(k, np.float32), np.asarray(b, np.float32)) for k, b in layers]

  @property
  def weights(self):
    """The layers acting uses now, as `set_weights` takes them."""
    return self._layers

  def logits(self, observations):
    """[E, N, O] -> [E, N, A].

    Weights that have diverged overflow here silently (no RuntimeWarning on stderr): the learner's check of
    its losses stops the run at the next update block, naming the step and the loss.
    """
    return _forward(np.asarray(observations, np.float32).transpose(1, 0, 2), self._layers).transpose(1, 0, 2)

  def select_actions(self, observations):
    """[E, N, O] observations -> [E, N] int actions."""
    return _gumbel_max(self.logits(observations), self.rng)


def _forward(hidden, layers):
  """The actors' MLP on [..., N, E, in] inputs with [..., N, in, out] kernels: ReLU between layers, logits
  out. Each agent's (and seed's) slice is its own matmul, so stacking seeds changes no bit."""
  with np.errstate(over="ignore", invalid="ignore"):
    for index, (kernel, bias) in enumerate(layers):
      hidden = np.matmul(hidden, kernel) + bias
      if index < len(layers) - 1:
        np.maximum(hidden, 0.0, out=hidden)
  return hidden


def _gumbel_max(logits, rng):
  """a ~ Categorical(softmax(logits)) per row, by Gumbel-max with `rng`'s draws."""
  return np.argmax(logits + rng.gumbel(size=logits.shape).astype(np.float32), axis=-1)


class GreedyNumpyActor(NumpyActor):
  """a_i = argmax_a mu_i(o_i)_a: the mode of the policy, from the same NumPy weights as `NumpyActor`.

  Ties go to the lowest action index (np.argmax). It keeps an `rng` like `NumpyActor` (an `Evaluator`
  saves and restores it) but never draws from it, so evaluating greedily leaves the stream untouched.
  """

  def select_actions(self, observations):
    """[E, N, O] observations -> [E, N] int actions."""
    return np.argmax(self.logits(observations), axis=-1)


class JointActing:
  """Several `NumpyActor`s of one shape (a packed run's seeds) acting through one stacked matmul per layer.

  `select_actions(observations)` returns each actor's `select_actions(observations[k])`, bit for bit: the
  stacked matmul computes each actor's slice as its own would, and each actor's noise comes from its own
  generator in the same order. The stacked weights are rebuilt only when an actor's weights change.
  """

  def __init__(self, actors):
    if not actors or any(type(actor) is not NumpyActor for actor in actors):
      raise ValueError("JointActing needs NumpyActors (sampling, not greedy)")
    self.actors = list(actors)
    self._sources, self._stacked = None, None

  def _layers(self):
    sources = [actor.weights for actor in self.actors]
    if self._sources is None or any(a is not b for a, b in zip(sources, self._sources)):
      self._stacked = [(np.stack(kernels), np.stack(biases))
                       for kernels, biases in (zip(*layer) for layer in zip(*sources))]
      self._sources = sources  # held, so that no weights object is freed and its id reused
    return self._stacked

  def select_actions(self, observations):
    """K arrays [E, N, O] (equal shapes) -> K arrays [E, N] of int actions."""
    hidden = np.stack([np.asarray(o, np.float32) for o in observations]).transpose(0, 2, 1, 3)  # [K, N, E, O]
    logits = _forward(hidden, self._layers()).transpose(0, 2, 1, 3)  # [K, E, N, A]
    return [_gumbel_max(logits[k], actor.rng) for k, actor in enumerate(self.actors)]
