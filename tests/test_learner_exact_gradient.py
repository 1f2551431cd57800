"""The learner's exact-expectation parts: the `expected` actor loss, Q over an agent's own actions, the
exact-gradient diagnostics, and config validation of `expected`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import lbf
from maddpg_tf import config as common
from maddpg_tf.agent import diagnostics
from maddpg_tf.run import experiment
from maddpg_tf.agent import learner as learner_lib
from maddpg_tf.agent import types

N, O, A = 2, 3, 3
BATCH = types.Transition(
    observation=np.array([[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [2, 0, 1]], [[1, 1, 0], [0, 0, 3]]], np.float32),
    action=np.array([[0, 2], [1, 1], [2, 0]], np.int32),
    reward=np.zeros((3, 2), np.float32), terminal=np.zeros(3, np.float32),
    next_observation=np.zeros((3, 2, 3), np.float32))


def make_learner(estimator, params=None, initializer=None, logit_l2=0.0, seed=0):
  config = learner_lib.LearnerConfig(hidden_sizes=(4, 4), standardise_rewards=False, logit_l2=logit_l2)
  return learner_lib.MADDPGLearner(N, O, A, config, estimator=estimator, estimator_params=params,
                                   initializer=initializer, seed=seed, jit_compile=False)


def numpy_weights(layers):
  return [(layer.kernel.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64)) for layer in layers]


def numpy_mlp(x, weights, agent, relu_last=False):
  """Agent `agent`'s slice of stacked dense layers: ReLU between layers, linear output."""
  for k, (kernel, bias) in enumerate(weights):
    x = x @ kernel[agent] + bias[agent, 0]
    if k < len(weights) - 1 or relu_last:
      x = np.maximum(x, 0.)
  return x


def numpy_logits(learner, batch):
  """[N, B, A] from the actors' weights, in NumPy."""
  weights = numpy_weights(learner.actors.dense_layers)
  return np.stack([numpy_mlp(batch.observation[:, i].astype(np.float64), weights, i) for i in range(N)])


def numpy_own_action_values(learner, batch):
  """[N, B, A]: critic i on (all observations, replayed actions with agent i's replaced by e_a)."""
  first = numpy_weights([learner.critics.input_layer])
  body = numpy_weights(learner.critics.body.dense_layers)
  rows = len(batch.action)
  values = np.zeros((N, rows, A))
  for i in range(N):
    for a in range(A):
      actions = np.eye(A)[batch.action].copy()                                        # [B, N, A]
      actions[:, i] = np.eye(A)[a]
      x = np.concatenate([batch.observation.reshape(rows, -1), actions.reshape(rows, -1)], axis=1)
      hidden = numpy_mlp(x, first, i, relu_last=True)
      values[i, :, a] = numpy_mlp(hidden, body, i)[:, 0]
  return values


def softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def constant_learner_with_distinct_values():
  """Constant-initialised networks (every weight 0.1), then distinct action weights in the critic's first
  layer and distinct actor output biases, so Q depends on the action and the policy is not uniform."""
  learner = make_learner("expected", initializer=keras.initializers.Constant(0.1), logit_l2=0.01)
  kernel = learner.critics.input_layer.kernel.numpy()
  kernel[:, N * O:, :] = np.linspace(-0.3, 0.5, N * A)[np.newaxis, :, np.newaxis] * np.array([1., -1.])[
      :, np.newaxis, np.newaxis]
  learner.critics.input_layer.kernel.assign(kernel)
  last = learner.actors.dense_layers[-1]
  last.bias.assign(np.array([[[0.5, -0.4, 0.1]], [[-0.2, 0.3, 0.9]]], np.float32))
  return learner


def test_expected_actor_loss_equals_the_numpy_expectation():
  learner = constant_learner_with_distinct_values()
  loss = learner.actor_loss(types.Transition(*map(tf.constant, BATCH)), seed=tf.constant([1, 2]),
                            estimator_step=tf.constant(0.0))
  logits = numpy_logits(learner, BATCH)
  values = numpy_own_action_values(learner, BATCH)
  assert np.ptp(values, axis=2).min() > 1e-3 and np.ptp(softmax(logits), axis=2).min() > 0.1  # not trivial
  expected = -(softmax(logits) * values).sum(-1).mean(1) + 0.01 * np.mean(logits ** 2, axis=(1, 2))
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
  # A hand check: agent 0's actor on observation (1, 0, 0): hidden units 0.2, then 0.18; logits 0.072 + bias.
  h1 = 1 * 0.1 + 0.1
  h2 = 4 * h1 * 0.1 + 0.1
  np.testing.assert_allclose(logits[0, 0], 4 * h2 * 0.1 + np.array([0.5, -0.4, 0.1]), rtol=1e-6)
  # The loss does not depend on the seed: nothing is sampled.
  again = learner.actor_loss(types.Transition(*map(tf.constant, BATCH)), seed=tf.constant([7, 8]),
                             estimator_step=tf.constant(0.0))
  np.testing.assert_array_equal(again.numpy(), loss.numpy())


def test_own_action_values_match_the_critic_called_directly():
  learner = make_learner("gst", {"temperature": 0.7}, seed=3)
  np.testing.assert_allclose(learner.own_action_values(BATCH).numpy(), numpy_own_action_values(learner, BATCH),
                             rtol=1e-5, atol=1e-6)
  f = diagnostics.own_action_function(learner, BATCH, agent=1)
  one_hots = np.eye(A, dtype=np.float32)[np.array([[0, 1, 2], [2, 2, 1]])]            # [2 samples, B, A]
  expected = numpy_own_action_values(learner, BATCH)[1][np.arange(3), np.array([[0, 1, 2], [2, 2, 1]])]
  np.testing.assert_allclose(f(tf.constant(one_hots)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_expected_estimator_step_updates_and_gives_finite_losses():
  learner = make_learner("expected", seed=1)
  before = [w.numpy().copy() for w in learner.actors.trainable_weights]
  metrics = learner.step(BATCH, seed=np.array([0, 0]))
  assert "temperature" not in metrics
  assert np.all(np.isfinite(metrics["actor_loss"].numpy()))
  assert any(np.abs(b - w.numpy()).max() > 0 for b, w in zip(before, learner.actors.trainable_weights))


POSITIVE = keras.initializers.RandomUniform(0.0, 0.3, seed=3)


@pytest.mark.parametrize("estimator,params", [("st", {"temperature": 1.0}), ("expected", {})])
def test_diagnostics_are_exact_where_the_estimator_is(estimator, params):
  """With positive weights and non-negative observations every ReLU of the critic is active, so Q is
  linear in the action: then straight-through at temperature 1 is the exact gradient, sample by sample."""
  learner = make_learner(estimator, params, initializer=POSITIVE)
  metrics = {k: v.numpy() for k, v in diagnostics.ExactGradientDiagnostics(learner, 8)(BATCH, [1, 2], 0).items()}
  np.testing.assert_allclose(metrics["exact_gradient/cosine"], 1.0, atol=1e-5)
  np.testing.assert_allclose(metrics["exact_gradient/relative_error"], 0.0, atol=1e-4)
  np.testing.assert_allclose(metrics["exact_gradient/variance"], 0.0, atol=1e-12)
  # The exact gradient's size from NumPy: p * (v - <p, v>), root mean square over rows.
  p = softmax(numpy_logits(learner, BATCH))
  v = numpy_own_action_values(learner, BATCH)
  exact = p * (v - (p * v).sum(-1, keepdims=True))
  np.testing.assert_allclose(metrics["exact_gradient/norm"], np.sqrt((exact ** 2).sum(-1).mean(-1)),
                             rtol=1e-4)


def test_diagnostics_see_stgs_noise_and_bias():
  learner = make_learner("stgs", {"temperature": 1.0}, initializer=POSITIVE)
  metrics = {k: v.numpy() for k, v in diagnostics.ExactGradientDiagnostics(learner, 16)(BATCH, [1, 2], 0).items()}
  assert np.all(metrics["exact_gradient/cosine"] < 0.99) and np.all(metrics["exact_gradient/cosine"] > -1)
  assert np.all(metrics["exact_gradient/variance"] > 0) and np.all(metrics["exact_gradient/relative_error"] > 0.01)
  with pytest.raises(ValueError, match="num_repeats must be an integer >= 2, got 1"):
    diagnostics.ExactGradientDiagnostics(learner, 1)


def test_expected_is_selectable_in_configs_and_validated():
  config = experiment.resolve_config(lbf.get_config("smoke,estimator=expected"))
  assert config.estimator.name == "expected" and experiment.estimator_params(config) == {}
  assert config.diagnostics.exact_gradient_every == 0
  config = lbf.get_config("smoke,estimator=gst")
  common.set_value(config, "estimator.name", "expected")  # the gst preset's temperature and gap remain
  with pytest.raises(experiment.RunError, match=r"estimator 'expected' has no parameter 'gap', 'temperature'"):
    experiment.resolve_config(config)
  config = lbf.get_config("smoke")
  common.set_value(config, "estimator.name", "expectation")
  with pytest.raises(experiment.RunError, match=r"unknown estimator 'expectation'; allowed: expected, grmck"):
    experiment.resolve_config(config)
  config = lbf.get_config("smoke")
  common.set_value(config, "diagnostics.exact_gradient_every", -1)
  with pytest.raises(experiment.RunError, match=r"diagnostics.exact_gradient_every must be an integer >= 0"):
    experiment.resolve_config(config)
  with pytest.raises(ValueError, match=r"unknown estimator 'nope'"):
    make_learner("nope")
  assert "expected" in learner_lib.estimator_names() and "expected" not in __import__("estimators").names()


def test_rloo_gradient_is_unbiased_within_its_monte_carlo_interval():
  """RLOO's logit gradient, averaged over 4,000 independent K=3 estimates, equals the exact gradient of the
  expected critic value (entry by entry within 4 standard errors), and K=1 is refused."""
  learner = make_learner("rloo", {"num_samples": 3}, seed=1)
  batch = type(BATCH)(*(tf.convert_to_tensor(x) for x in BATCH))
  logits = learner.actors(tf.transpose(batch.observation, [1, 0, 2]))                     # [N, B, A]
  features = learner.critics.observation_features(tf.reshape(batch.observation, [3, -1]))
  replay = tf.reshape(tf.one_hot(batch.action, A), [3, -1])
  repeats = 4000
  repeated = tf.broadcast_to(logits[:, tf.newaxis], [N, repeats, 3, A])
  with tf.GradientTape() as tape:
    tape.watch(repeated)
    values = learner.estimator(repeated, 0).objective(learner.own_action_critic(features, replay),
                                                      seed=tf.constant([3, 4]), sample_axis=-3)
  gradients = tape.gradient(values, repeated).numpy()                                    # [N, R, B, A]
  f, p = numpy_own_action_values(learner, BATCH), tf.math.softmax(logits).numpy().astype(np.float64)
  exact = f * p - p * (f * p).sum(axis=-1, keepdims=True)                                # sum_a f(a) p_a (e_a - p)
  mean, standard_error = gradients.mean(axis=1), gradients.std(axis=1, ddof=1) / np.sqrt(repeats)
  assert np.all(np.abs(mean - exact) <= 4 * standard_error + 1e-7), (mean, exact, standard_error)
  assert np.abs(exact).max() > 10 * standard_error.max() / 4  # the gradient is not lost in the noise
  with pytest.raises(ValueError, match=r"estimator 'rloo': num_samples \(K\) must be an integer >= 2, got 1"):
    make_learner("rloo", {"num_samples": 1})
