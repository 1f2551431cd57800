"""Figure 4's policy-gradient variance, in both of its readings, from an actor update's own tensors.

* `entry_variance` (the authors' code): per layer, the variance over the entries of the clipped batch-mean
  gradient.
* `per_sample_variance` (the paper's text): per layer, the variance over the mini-batch of the per-sample
  gradients (unclipped), averaged over the layer's entries.
Both return {"<prefix>/<layer>": [N]} (one value per agent) for stacked weights [N, ...]. A shared network
(`learner.share_parameters`) has one gradient: both give [1], the per-sample reading over its N x B
(agent, row) samples (`pooled`).
"""

import tensorflow as tf

ENTRY_PREFIX = "policy_grad_variance"
PER_SAMPLE_PREFIX = "per_sample_grad_variance"
PREFIXES = (ENTRY_PREFIX, PER_SAMPLE_PREFIX)


def pooled(tensors, groups=1):
  """[N, B, X] tensors as [1, N * B, X]: every (agent, row) pair one sample of a shared network's batch
  (whose loss is the mean over agents and rows, so `per_sample_variance`'s scaling holds). Packed seeds:
  [K*N, B, X] as [K, N * B, X] (`groups` K), one shared network per seed."""
  return [tf.reshape(t, [groups, -1, tf.shape(t)[-1]]) for t in tensors]


def entry_variance(names, gradients, num_agents):
  """Unbiased variance over the entries of each agent's slice of each gradient (names: one per tensor)."""
  metrics = {}
  for layer, gradient in zip(names, gradients):
    entries = tf.reshape(gradient, [num_agents, -1])
    metrics[f"{ENTRY_PREFIX}/{layer}"] = tf.math.reduce_variance(entries, axis=1) * (
        entries.shape[1] / max(entries.shape[1] - 1, 1))
  return metrics


def per_sample_variance(names, layer_inputs, pre_activation_grads):
  """The per-sample reading, from each dense layer's inputs [N, B, in] and the loss's gradients with
  respect to its pre-activations [N, B, out]; `names` alternate kernel, bias per layer.

  A dense layer's per-sample kernel gradient is outer(input_b, delta_b), so its batch mean and mean
  square are two matmuls: no per-sample gradient tensors are materialised.
  """
  batch = tf.cast(tf.shape(layer_inputs[0])[1], tf.float32)
  correction = batch / (batch - 1.)
  metrics = {}
  for k, (inputs, grad) in enumerate(zip(layer_inputs, pre_activation_grads)):
    delta = grad * batch  # the loss is a batch mean: per-sample deltas are B times its gradient
    mean = tf.einsum("nbi,nbo->nio", inputs, delta) / batch
    mean_square = tf.einsum("nbi,nbo->nio", tf.square(inputs), tf.square(delta)) / batch
    kernel_variance = tf.reduce_mean(mean_square - tf.square(mean), axis=[1, 2]) * correction
    bias_variance = tf.reduce_mean(tf.math.reduce_variance(delta, axis=1), axis=1) * correction
    metrics[f"{PER_SAMPLE_PREFIX}/{names[2 * k]}"] = kernel_variance
    metrics[f"{PER_SAMPLE_PREFIX}/{names[2 * k + 1]}"] = bias_variance
  return metrics
