"""Trained actors as a TensorFlow SavedModel that needs nothing of this package to act.

    policy = tf.saved_model.load(directory)
    out = policy.act(observations)          # observations: float32 [B, N, O]
    out["logits"]                           # float32 [B, N, A]: mu_i(o_i) of every agent i
    out["actions"]                          # int32 [B, N]: argmax_a mu_i(o_i)_a (the greedy actions)

B is any batch size (environments, or 1), N the number of agents, O the observation size, A the number
of actions. Agent i's actor is an MLP with ReLU hidden layers and a linear output,

    h_0 = o_i,   h_{l+1} = relu(h_l W_l[i] + b_l[i]),   logits_i = h_L W_L[i] + b_L[i],

with every agent's weights stacked on a leading agent axis (`MADDPGLearner.actor_weights()`: kernels
[N, in, out], biases [N, 1, out]), the numbers `actor.NumpyActor` acts with. A stochastic policy samples
a_i ~ Categorical(softmax(logits_i)), e.g. `tf.random.categorical(out["logits"][:, i], 1)`.

The same function is the SavedModel's `serving_default` signature (input `observations`), and the model
carries what it was trained on as variables: `num_agents`, `observation_size`, `num_actions` (int64),
`task`, `estimator`, `checkpoint` (strings) and `step` (int64, the checkpoint's env step).
"""

import os
import pathlib
import shutil

import numpy as np
import tensorflow as tf
from absl import logging

from maddpg_tf import files

__all__ = ["check_export_directory", "export_actors", "ExportedActors"]


def check_export_directory(directory) -> pathlib.Path:
  """`directory` as a Path if a SavedModel may be written there: it must not exist (nothing is
  overwritten) and its parent must exist or be creatable (`export_actors` creates it). ValueError
  otherwise."""
  d = pathlib.Path(os.fspath(directory))
  if d.exists() or d.is_symlink():
    raise ValueError(f"export directory {str(d)!r} already exists: expected a new directory "
                     "(nothing is overwritten)")
  files.check_parent_creatable(str(d), "export directory")
  return d


class ExportedActors(tf.Module):
  """The stacked actors as constants-in-variables, with `act` (see the module docstring)."""

  def __init__(self, layers, metadata=None):
    super().__init__(name="maddpg_actors")
    if not layers:
      raise ValueError("layers is empty: expected [(kernel [N, in, out], bias [N, 1, out])] per layer")
    kernels = [np.asarray(k, np.float32) for k, _ in layers]
    biases = [np.asarray(b, np.float32) for _, b in layers]
    num_agents, observation_size = kernels[0].shape[:2]
    for index, (kernel, bias) in enumerate(zip(kernels, biases)):
      if kernel.ndim != 3 or kernel.shape[0] != num_agents or bias.shape != (num_agents, 1, kernel.shape[2]):
        raise ValueError(f"layer {index} has kernel {kernel.shape} and bias {bias.shape}: expected "
                         f"[{num_agents}, in, out] and [{num_agents}, 1, out]")
      if index and kernel.shape[1] != kernels[index - 1].shape[2]:
        raise ValueError(f"layer {index} takes {kernel.shape[1]} inputs, the layer before gives "
                         f"{kernels[index - 1].shape[2]}")
    self.kernels = [tf.Variable(k, trainable=False, name=f"kernel_{i}") for i, k in enumerate(kernels)]
    self.biases = [tf.Variable(b, trainable=False, name=f"bias_{i}") for i, b in enumerate(biases)]
    self.num_agents = tf.Variable(int(num_agents), dtype=tf.int64, trainable=False, name="num_agents")
    self.observation_size = tf.Variable(int(observation_size), dtype=tf.int64, trainable=False,
                                        name="observation_size")
    self.num_actions = tf.Variable(int(kernels[-1].shape[2]), dtype=tf.int64, trainable=False,
                                   name="num_actions")
    metadata = dict(metadata or {})
    for key in ("task", "estimator", "checkpoint"):
      setattr(self, key, tf.Variable(str(metadata.get(key, "")), trainable=False, name=key))
    self.step = tf.Variable(int(metadata.get("step", -1)), dtype=tf.int64, trainable=False, name="step")
    self.act = tf.function(self._act, input_signature=[
        tf.TensorSpec([None, int(num_agents), int(observation_size)], tf.float32, name="observations")])

  def _act(self, observations):
    hidden = tf.transpose(observations, [1, 0, 2])                    # [N, B, O]
    for index, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
      hidden = tf.matmul(hidden, kernel) + bias
      if index < len(self.kernels) - 1:
        hidden = tf.nn.relu(hidden)
    logits = tf.transpose(hidden, [1, 0, 2])                          # [B, N, A]
    return {"logits": logits, "actions": tf.argmax(logits, axis=-1, output_type=tf.int32)}


def export_actors(learner, directory, metadata=None) -> pathlib.Path:
  """Saves `learner`'s actors (anything with `actor_weights()`, e.g. a `MADDPGLearner`) as a SavedModel
  in the new directory `directory`; returns its Path. `metadata`: task, estimator, checkpoint, step.

  The directory is checked first (`check_export_directory`); the model is written beside it under a
  temporary name and renamed, so `directory` appears only complete.
  """
  target = check_export_directory(directory)
  module = ExportedActors(learner.actor_weights(), metadata)
  files.make_parent(str(target))
  partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
  shutil.rmtree(partial, ignore_errors=True)
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)  # the saver's INFO lines name the temporary directory
  try:
    tf.saved_model.save(module, str(partial),
                        signatures={"serving_default": module.act.get_concrete_function()})
    os.rename(partial, target)
  finally:
    logging.set_verbosity(verbosity)
    shutil.rmtree(partial, ignore_errors=True)
  return target
