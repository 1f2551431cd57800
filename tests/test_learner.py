"""The learner: exact loss values with constant-initialised networks, the reward standardiser, clipping,
and learning on the fake environment."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from fakes import BATCH, make_fake, random_batch
from maddpg_tf.agent import learner as learner_lib
from maddpg_tf.agent import optimizers, replay as replay_buffer, types
from maddpg_tf.agent.actor import Actor

C = 0.1  # every weight and bias


def constant_learner(**config):
  config = learner_lib.LearnerConfig(**{"hidden_sizes": (4, 4), "standardise_rewards": False, **config})
  return learner_lib.MADDPGLearner(2, 3, 3, config, estimator="gst", estimator_params={"temperature": 0.5},
                                   initializer=keras.initializers.Constant(C), jit_compile=False)


def constant_mlp(inputs, hidden=(4, 4)):
  """NumPy reference: an MLP whose every weight and bias is C, applied to rows of `inputs`."""
  x = np.asarray(inputs, np.float64)
  for units in hidden:
    x = np.maximum(0.0, x @ np.full((x.shape[-1], units), C) + C)
  return x @ np.full((x.shape[-1], 1), C) + C



def critic_input(observation, action):
  return np.concatenate([observation.reshape(len(observation), -1),
                         np.eye(3)[action].reshape(len(action), -1)], axis=1)


def test_critic_loss_exact_value():
  learner = constant_learner()
  targets = learner.target_values(types.Transition(*map(tf.constant, BATCH)), seed=tf.constant([1, 2]))
  # With constant weights Q depends on the sum of its inputs only; one-hot actions sum to one per agent,
  # so the sampled next actions do not matter.
  next_q = constant_mlp(critic_input(BATCH.next_observation, np.zeros((2, 2), int)))[:, 0]
  expected_targets = BATCH.reward.T + 0.95 * (1 - BATCH.terminal) * next_q
  np.testing.assert_allclose(targets.numpy(), expected_targets, rtol=1e-6)
  loss, q = learner.critic_loss(types.Transition(*map(tf.constant, BATCH)), targets)
  expected_q = constant_mlp(critic_input(BATCH.observation, BATCH.action))[:, 0]
  np.testing.assert_allclose(q.numpy(), np.stack([expected_q, expected_q]), rtol=1e-6)
  expected_loss = np.mean((expected_q - expected_targets) ** 2, axis=1)
  np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-6)
  # A hand check of one number: row 0 critic input sums to 1 + 1 + 1 + 1 = 4.
  h1 = max(0, 4 * C + C)
  h2 = 4 * h1 * C + C
  assert expected_q[0] == pytest.approx(4 * h2 * C + C)


def test_actor_loss_exact_value():
  learner = constant_learner(logit_l2=0.01)
  loss = learner.actor_loss(types.Transition(*map(tf.constant, BATCH)), seed=tf.constant([3, 4]),
                            estimator_step=tf.constant(0.0))
  q = constant_mlp(critic_input(BATCH.observation, BATCH.action))[:, 0]
  logits = constant_mlp(BATCH.observation.reshape(-1, 3), hidden=(4, 4))  # every logit equal
  logits = np.repeat(logits, 3, axis=1).reshape(2, 2, 3)                  # [B, N, A]
  expected = -q.mean() + 0.01 * np.mean(logits.transpose(1, 0, 2) ** 2, axis=(1, 2))
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)


def test_actor_gradient_flows_only_through_own_action():
  """Agent 0's loss must not depend on agent 1's actor: stacking must not mix agents."""
  learner = learner_lib.MADDPGLearner(2, 3, 3, learner_lib.LearnerConfig(hidden_sizes=(8, 8)), "stgs",
                                      {"temperature": 1.0}, seed=3, jit_compile=False)
  batch = types.Transition(*map(tf.constant, BATCH))
  with tf.GradientTape() as tape:
    loss = learner.actor_loss(batch, tf.constant([5, 6]), tf.constant(0.0))[0]
  gradients = tape.gradient(loss, learner.actors.trainable_weights)
  for gradient in gradients:
    assert np.abs(gradient.numpy()[1]).max() == 0.0
    assert np.abs(gradient.numpy()[0]).max() > 0.0


def test_reward_standardiser_matches_pooled_statistics():
  standardiser = learner_lib.RewardStandardiser(2)
  rng = np.random.default_rng(0)
  batches = [rng.normal(loc=[1.0, -2.0], scale=[0.5, 3.0], size=(64, 2)).astype(np.float32)
             for _ in range(5)]
  for batch in batches:
    output = standardiser(tf.constant(batch))
  pooled = np.concatenate(batches)
  np.testing.assert_allclose(standardiser.mean.numpy(), pooled.mean(0), rtol=1e-4)
  # Chan's merge of unbiased batch variances: close to the pooled variance (differs by the ddof only).
  np.testing.assert_allclose(standardiser.var.numpy(), pooled.var(0), rtol=0.02)
  np.testing.assert_allclose(output.numpy(), (batches[-1] - standardiser.mean.numpy())
                             / np.sqrt(standardiser.var.numpy()), rtol=1e-5)


def test_clip_per_agent_clips_each_agent_separately():
  gradients = [tf.constant([[3.0, 4.0], [0.3, 0.4]]), tf.constant([[[0.0]], [[0.0]]])]
  clipped, norms = optimizers.clip_per_agent(gradients, 1.0)
  np.testing.assert_allclose(norms.numpy(), [5.0, 0.5], rtol=1e-6)
  np.testing.assert_allclose(clipped[0].numpy(), [[0.6, 0.8], [0.3, 0.4]], rtol=1e-5)


def test_adam_matches_pytorch_update_rule():
  variable = tf.Variable([1.0, -2.0])
  adam = optimizers.Adam([variable], learning_rate=0.1, epsilon=1e-3)
  m = np.zeros(2); v = np.zeros(2); w = np.array([1.0, -2.0])
  for t, g in enumerate([np.array([0.5, -1.0]), np.array([0.2, 0.3]), np.array([-1.0, 2.0])], start=1):
    adam.apply([tf.constant(g, tf.float32)], [variable])
    m = 0.9 * m + 0.1 * g; v = 0.999 * v + 0.001 * g ** 2
    w = w - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-3)
  np.testing.assert_allclose(variable.numpy(), w, rtol=1e-5)


def test_bad_learner_settings_raise():
  with pytest.raises(ValueError, match=r"learner.gamma must be in \[0, 1\], got 1.5"):
    learner_lib.LearnerConfig(gamma=1.5)
  with pytest.raises(ValueError, match=r"estimator 'gst' has no parameter 'num_samples'"):
    learner_lib.MADDPGLearner(2, 3, 3, estimator="gst", estimator_params={"num_samples": 3})
  with pytest.raises(ValueError, match=r"temperature must be > 0"):
    learner_lib.MADDPGLearner(2, 3, 3, estimator="gst", estimator_params={"temperature": 0.0})


def evaluate(env, actor, episodes_per_env=4):
  observations, returns = env.reset(), []
  done = np.zeros(env.num_envs, int)
  while np.any(done < episodes_per_env):
    step = env.step(actor.select_actions(observations))
    ended = ~np.isnan(step.episode_return) & (done < episodes_per_env)
    returns.extend(step.episode_return[ended]); done += ended
    observations = step.next_observation
  return np.array(returns)


@pytest.mark.slow
@pytest.mark.parametrize("estimator,params", [("gst", {"temperature": 0.7}), ("stgs", {"temperature": 1.0})])
def test_learns_the_fake_task_far_above_random(estimator, params):
  """Random play scores 2 * 5 / 9 = 1.11 team return per 5-step episode; the optimum is 10.

  After 300 updates the policy must average at least 5.0 over 32 evaluation episodes (a random policy's
  32-episode mean has standard deviation about 0.2, so this is more than 15 of them above it)."""
  env = make_fake(num_envs=16, seed=0)
  spec = env.spec
  learner = learner_lib.MADDPGLearner(spec.num_agents, spec.observation_size, spec.num_actions,
                                      learner_lib.LearnerConfig(actor_learning_rate=3e-3,
                                                                critic_learning_rate=3e-3),
                                      estimator=estimator, estimator_params=params, seed=0)
  actor = Actor(learner.policy_logits, seed=0)
  buffer = replay_buffer.ReplayBuffer(10_000, spec.num_agents, spec.observation_size)
  rng = np.random.default_rng(0)
  observations = env.reset()
  random_returns = evaluate(make_fake(num_envs=8, seed=1), Actor(lambda o: tf.zeros(
      tf.concat([tf.shape(o)[:2], [spec.num_actions]], 0)), seed=1))
  updates = 0
  while updates < 300:
    actions = actor.select_actions(observations)
    step = env.step(actions)
    buffer.add(observations, actions, step.reward, step.terminated.astype(np.float32), step.observation)
    observations = step.next_observation
    if len(buffer) >= 256:
      for _ in range(4):
        learner.step(buffer.sample(128, rng), seed=np.array([0, updates]))
        updates += 1
  returns = evaluate(make_fake(num_envs=8, seed=2), actor)
  assert abs(random_returns.mean() - 10 / 9) < 0.5
  assert returns.mean() >= 5.0, (returns.mean(), random_returns.mean())


def test_per_sample_gradient_variance_matches_brute_force_jacobian():
  """Figure 4's text definition computed with two matmuls equals the variance of per-sample gradients
  taken one by one (a jacobian of the per-sample losses)."""
  from estimators import base as estimator_base
  rows = 6
  batch = random_batch(np.random.default_rng(1), rows=rows, agents=2, observation_size=3, actions=3)
  make = lambda: learner_lib.MADDPGLearner(2, 3, 3, learner_lib.LearnerConfig(hidden_sizes=(5, 4)), "gst",
                                           {"temperature": 0.7}, seed=4, jit_compile=False)
  reference, stepped = make(), make()
  seed = tf.constant([9, 10])
  tensors = types.Transition(*map(tf.constant, batch))
  # The step's critic update comes first and the actor loss uses the updated critic: do the same here.
  targets = reference.target_values(tensors, estimator_base.split_seed(seed)[0])
  with tf.GradientTape() as tape:
    critic_loss = tf.reduce_sum(reference.critic_loss(tensors, targets)[0])
  critic_grads, _ = optimizers.clip_per_agent(tape.gradient(critic_loss,
                                                            reference.critics.trainable_weights), 1.0)
  reference.critic_optimiser.apply(critic_grads, reference.critics.trainable_weights)
  with tf.GradientTape() as tape:
    per_sample = reference.actor_loss(tensors, estimator_base.split_seed(seed)[1], tf.constant(0.0),
                                      per_sample=True)
    summed = tf.reduce_sum(per_sample, axis=0)                                  # [B]
  jacobians = tape.jacobian(summed, reference.actors.trainable_weights)         # [B, N, ...] each
  metrics = stepped.step(batch, seed=seed, estimator_step=0, per_sample_variance=True)
  names = [v.path.split("/", 1)[-1] for v in reference.actors.trainable_weights]
  for name, jacobian in zip(names, jacobians):
    per_sample_grads = jacobian.numpy().reshape(rows, 2, -1)
    expected = per_sample_grads.var(axis=0, ddof=1).mean(axis=-1)
    np.testing.assert_allclose(metrics[f"per_sample_grad_variance/{name}"].numpy(), expected,
                               rtol=2e-4, atol=1e-10)


def test_numpy_actor_matches_the_learners_policy_and_samples_softmax():
  from maddpg_tf.agent.actor import NumpyActor
  import scipy.stats
  learner = learner_lib.MADDPGLearner(3, 4, 5, learner_lib.LearnerConfig(hidden_sizes=(8, 8)), "gst",
                                      seed=2, jit_compile=False)
  actor = NumpyActor(seed=0)
  actor.set_weights(learner.actor_weights())
  observations = np.random.default_rng(0).normal(size=(7, 3, 4)).astype(np.float32)
  np.testing.assert_allclose(actor.logits(observations), learner.policy_logits(observations).numpy(),
                             rtol=1e-5, atol=1e-6)
  one = np.repeat(observations[:1], 20_000, axis=0)
  actions = actor.select_actions(one)                                            # [E, N]
  probs = scipy.special.softmax(actor.logits(observations[:1])[0, 0].astype(np.float64))
  counts = np.bincount(actions[:, 0], minlength=5)
  assert scipy.stats.chisquare(counts, 20_000 * probs).pvalue > 1e-3
  again = NumpyActor(seed=0)
  again.set_weights(learner.actor_weights())
  np.testing.assert_array_equal(again.select_actions(one[:50]), actions[:50])


@pytest.mark.slow
def test_step_block_equals_consecutive_steps():
  rng = np.random.default_rng(3)
  batches = [types.Transition(rng.normal(size=(32, 2, 3)).astype(np.float32),
                              rng.integers(0, 3, (32, 2)).astype(np.int32),
                              rng.normal(size=(32, 2)).astype(np.float32),
                              (rng.random(32) < 0.2).astype(np.float32),
                              rng.normal(size=(32, 2, 3)).astype(np.float32)) for _ in range(5)]
  seeds = [np.array([0, k]) for k in range(5)]
  make = lambda: learner_lib.MADDPGLearner(2, 3, 3, learner_lib.LearnerConfig(hidden_sizes=(16, 16)),
                                           "grmck", {"temperature": 0.5, "num_samples": 4}, seed=1)
  one_by_one, blocked = make(), make()
  for batch, seed, step in zip(batches, seeds, range(5)):
    last = one_by_one.step(batch, seed=seed, estimator_step=step)
  block_last = blocked.step_block(batches, seeds, list(range(5)), block_size=4)  # a block of 4, then 1 padded
  np.testing.assert_allclose(block_last["critic_loss"].numpy(), last["critic_loss"].numpy(), rtol=1e-4)
  for name, variable in one_by_one.state_variables().items():
    np.testing.assert_allclose(blocked.state_variables()[name].numpy(), variable.numpy(), rtol=1e-4,
                               atol=1e-6, err_msg=name)
  assert int(blocked.num_updates.numpy()) == 5


def test_one_compiled_update_block_serves_every_block_length():
  """The number of updates in a block is a run-time argument of ONE XLA program: were it a compile-time
  constant, every new block length (they vary once episodes stop ending together) would compile the whole
  update again in the middle of a run. The program for 2 updates is the one for 3."""
  rng = np.random.default_rng(5)
  batch = lambda: types.Transition(rng.normal(size=(32, 2, 3)).astype(np.float32),
                                   rng.integers(0, 3, (32, 2)).astype(np.int32),
                                   rng.normal(size=(32, 2)).astype(np.float32),
                                   (rng.random(32) < 0.2).astype(np.float32),
                                   rng.normal(size=(32, 2, 3)).astype(np.float32))
  learner = learner_lib.MADDPGLearner(2, 3, 3, learner_lib.LearnerConfig(hidden_sizes=(16, 16)), "gst",
                                      {"temperature": 0.5}, seed=1)
  batches = [batch() for _ in range(4)]
  stacked = types.Transition(*(tf.convert_to_tensor(np.stack(parts)) for parts in zip(*batches)))
  program = lambda count: learner._compiled_block.experimental_get_compiler_ir(
      stacked, tf.zeros([4, 2], tf.int32), tf.zeros([4]), tf.constant(count))(stage="hlo")
  assert program(2) == program(3)
