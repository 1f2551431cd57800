"""Parameter sharing (learner.share_parameters): one actor mu(o_i, e_i) and one critic Q(o, a, e_i) for every
agent, each network's loss the mean over agents. Exact values against a NumPy reference, acting and export
from the shared actor, Figure 4's variances, the run's identity, resume and heterogeneous agents."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import lbf
from maddpg_tf import config as common
from maddpg_tf.agent import learner as learner_lib
from maddpg_tf.agent import types
from maddpg_tf.agent.actor import NumpyActor
from maddpg_tf.run import errors
from maddpg_tf.run import workdir as workdir_lib
from tests.fakes import BATCH, random_batch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, O, A, HIDDEN, C = 2, 3, 3, (4, 4), 0.1
SETTINGS = dict(hidden_sizes=HIDDEN, standardise_rewards=False, logit_l2=0.01, actor_learning_rate=0.01,
                critic_learning_rate=0.02, adam_epsilon=0.5, max_grad_norm=1.0)


def shared_learner(estimator="expected", params=None, **settings):
  config = learner_lib.LearnerConfig(**{**SETTINGS, "share_parameters": True, **settings})
  return learner_lib.MADDPGLearner(N, O, A, config, estimator=estimator, estimator_params=params or {},
                                   initializer=keras.initializers.Constant(C), jit_compile=False)


# ---- a NumPy reference: the losses by hand, their gradients by central differences (float64) -------------

def constant_params(sizes):
  """[(W [in, out], b [out])] of an MLP with layer sizes `sizes`, every entry C."""
  return [(np.full((i, o), C), np.full(o, C)) for i, o in zip(sizes[:-1], sizes[1:])]


def mlp(params, x):
  for k, (w, b) in enumerate(params):
    x = x @ w + b
    if k < len(params) - 1:
      x = np.maximum(x, 0.0)
  return x


def flat(params):
  return np.concatenate([np.concatenate([w.ravel(), b.ravel()]) for w, b in params])


def unflat(vector, like):
  out, start = [], 0
  for w, b in like:
    out.append((vector[start:start + w.size].reshape(w.shape), vector[start + w.size:start + w.size + b.size]))
    start += w.size + b.size
  return out


def gradient(loss, vector, h=1e-6):
  return np.array([(loss(vector + h * e) - loss(vector - h * e)) / (2 * h) for e in np.eye(len(vector))])


def critic_q(params, observation, one_hot_actions, agent):
  """Q(o, a, e_agent) [B]: the shared critic on [all observations, all actions, e_agent]."""
  rows = len(observation)
  inputs = np.concatenate([observation.reshape(rows, -1), one_hot_actions.reshape(rows, -1),
                           np.tile(np.eye(N)[agent], (rows, 1))], axis=1)
  return mlp(params, inputs)[:, 0]


def actor_logits(params, observation, agent):
  """mu(o_agent, e_agent) [B, A]."""
  return mlp(params, np.concatenate([observation[:, agent], np.tile(np.eye(N)[agent], (len(observation), 1))], 1))


def adam_first_step(vector, grad, learning_rate, max_norm=1.0, epsilon=0.5):
  """Clipped as one network (torch's clip_grad_norm_), then Adam's first step: m_hat = g, sqrt(v_hat) = |g|."""
  grad = grad * min(1.0, max_norm / (np.linalg.norm(grad) + 1e-6))
  return vector - learning_rate * grad / (np.abs(grad) + epsilon)


def reference_update(over_agents=np.mean):
  """The shared critic's and actor's weights after one update, as flat vectors (critic, actor)."""
  obs, actions = BATCH.observation.astype(np.float64), np.eye(A)[BATCH.action]
  critic0 = constant_params([N * O + N * A + N, *HIDDEN, 1])
  # Constant weights see only the sum of their inputs: any sampled next action gives the same Q.
  targets = [BATCH.reward[:, i] + 0.95 * (1 - BATCH.terminal) * critic_q(critic0, BATCH.next_observation,
                                                                        np.eye(A)[np.zeros((2, N), int)], i)
             for i in range(N)]

  def critic_loss(vector):
    params = unflat(vector, critic0)
    return over_agents([np.mean((critic_q(params, obs, actions, i) - targets[i]) ** 2) for i in range(N)])
  critic = adam_first_step(flat(critic0), gradient(critic_loss, flat(critic0)), 0.02)

  actor0, critic1 = constant_params([O + N, *HIDDEN, A]), unflat(critic, critic0)
  own_values = []                                    # Q(o, a_-i, e_a, e_i) [B, A] per agent i
  for i in range(N):
    columns = []
    for a in range(A):
      replaced = actions.copy()
      replaced[:, i] = np.eye(A)[a]
      columns.append(critic_q(critic1, obs, replaced, i))
    own_values.append(np.stack(columns, 1))

  def actor_loss(vector):
    params, losses = unflat(vector, actor0), []
    for i in range(N):
      logits = actor_logits(params, obs, i)
      probs = np.exp(logits - logits.max(1, keepdims=True))
      probs /= probs.sum(1, keepdims=True)
      losses.append(np.mean(-(probs * own_values[i]).sum(1) + 0.01 * np.mean(logits ** 2, 1)))
    return over_agents(losses)
  actor = adam_first_step(flat(actor0), gradient(actor_loss, flat(actor0)), 0.01)
  return critic, actor


def learner_vector(model):
  return np.concatenate([np.concatenate([layer.kernel.numpy()[0].ravel(), layer.bias.numpy()[0, 0]])
                         for layer in model])


def test_one_shared_update_equals_the_hand_written_losses_mean_over_agents():
  """Two agents, constant weights, the exact expectation as the actor's objective: after one `step` the
  shared critic and actor are those of the NumPy reference (losses averaged over the agents, one gradient
  clipped as one network, Adam's first step). The sum over agents gives other weights (the check can fail)."""
  learner = shared_learner()
  assert learner.actors.dense_layers[0].kernel.shape == (1, O + N, HIDDEN[0])
  assert learner.critics.input_layer.kernel.shape == (1, N * O + N * A + N, HIDDEN[0])
  learner.step(BATCH, seed=np.array([1, 2]), estimator_step=0)
  critic = learner_vector([learner.critics.input_layer, *learner.critics.body.dense_layers])
  actor = learner_vector(learner.actors.dense_layers)
  expected_critic, expected_actor = reference_update(np.mean)
  np.testing.assert_allclose(critic, expected_critic, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(actor, expected_actor, rtol=1e-5, atol=1e-6)
  for summed, got in zip(reference_update(np.sum), (critic, actor)):  # 10x beyond the tolerance
    assert np.max(np.abs(summed - got) / (1e-6 + 1e-5 * np.abs(got))) > 10


def test_the_shared_critic_tells_the_agents_apart_by_their_index():
  """Q(o, a, e_0) != Q(o, a, e_1) once the index rows have learnt (agent 0's rewards are not agent 1's)."""
  learner = shared_learner()
  batch = types.Transition(*map(tf.constant, BATCH))
  _, q = learner.critic_loss(batch, tf.zeros([N, 2]))
  np.testing.assert_allclose(q.numpy()[0], q.numpy()[1])                   # constant weights: the same
  learner.step(BATCH, seed=np.array([1, 2]), estimator_step=0)
  _, q = learner.critic_loss(batch, tf.zeros([N, 2]))
  assert np.abs(q.numpy()[0] - q.numpy()[1]).min() > 1e-4


def random_shared_learner(estimator="gst", params=None, agents=3, observation_size=4, actions=5):
  config = learner_lib.LearnerConfig(hidden_sizes=(8, 8), share_parameters=True)
  return learner_lib.MADDPGLearner(agents, observation_size, actions, config, estimator,
                                   params if params is not None else {"temperature": 0.7}, seed=2,
                                   jit_compile=False)


def test_acting_and_export_read_the_shared_actor_as_one_actor_per_agent():
  """`actor_weights()` folds e_i into agent i's first bias: the NumPy actor and the SavedModel's `act` give
  the shared actor's logits for every agent."""
  from maddpg_tf.media import export
  learner = random_shared_learner()
  observations = np.random.default_rng(0).normal(size=(7, 3, 4)).astype(np.float32)
  expected = learner.policy_logits(observations).numpy()
  assert not np.allclose(expected[:, 0], expected[:, 1], atol=1e-3)       # the index matters
  actor = NumpyActor(seed=0)
  actor.set_weights(learner.actor_weights())
  np.testing.assert_allclose(actor.logits(observations), expected, rtol=1e-5, atol=1e-6)
  exported = export.ExportedActors(learner.actor_weights())
  np.testing.assert_allclose(exported.act(observations)["logits"].numpy(), expected, rtol=1e-5, atol=1e-6)
  assert int(exported.num_agents.numpy()) == 3 and int(exported.observation_size.numpy()) == 4


def test_shared_per_sample_variance_pools_the_agents_rows():
  """Figure 4's per-sample reading for the shared actor: the variance over the N x B (agent, row) samples
  of their per-sample gradients, as a brute-force jacobian gives it; the code's reading has one value."""
  from estimators import base as estimator_base
  from maddpg_tf.agent import optimizers
  rows = 6
  batch = random_batch(np.random.default_rng(1), rows=rows, agents=2, observation_size=3, actions=3)
  make = lambda: random_shared_learner(agents=2, observation_size=3, actions=3)
  reference, stepped = make(), make()
  seed = tf.constant([9, 10])
  tensors = types.Transition(*map(tf.constant, batch))
  targets = reference.target_values(tensors, estimator_base.split_seed(seed)[0])
  with tf.GradientTape() as tape:
    critic_loss = tf.reduce_mean(reference.critic_loss(tensors, targets)[0])
  critic_grads, _ = optimizers.clip_per_agent(tape.gradient(critic_loss, reference.critics.trainable_weights), 1.)
  reference.critic_optimiser.apply(critic_grads, reference.critics.trainable_weights)
  with tf.GradientTape() as tape:
    per_sample = reference.actor_loss(tensors, estimator_base.split_seed(seed)[1], tf.constant(0.0),
                                      per_sample=True)                               # [N, B]
  jacobians = tape.jacobian(per_sample, reference.actors.trainable_weights)          # [N, B, 1, ...] each
  metrics = stepped.step(batch, seed=seed, estimator_step=0, per_sample_variance=True)
  names = [v.path.split("/", 1)[-1] for v in reference.actors.trainable_weights]
  for name, jacobian in zip(names, jacobians):
    per_sample_grads = jacobian.numpy().reshape(2 * rows, -1)
    expected = per_sample_grads.var(axis=0, ddof=1).mean()
    np.testing.assert_allclose(metrics[f"per_sample_grad_variance/{name}"].numpy(), [expected], rtol=2e-4,
                               atol=1e-10)
    assert metrics[f"policy_grad_variance/{name}"].shape == (1,)
  assert metrics["actor_grad_norm"].shape == (1,) and metrics["actor_loss"].shape == (2,)


@pytest.mark.parametrize("estimator,params", [("stgs", {"temperature": 1.0}), ("grmck", {"temperature": 0.5,
                                              "num_samples": 3}), ("rloo", {"num_samples": 4}), ("expected", {}),
                                              ("reinmax", {"temperature": 1.0}), ("zgr", {})])
def test_every_kind_of_estimator_updates_the_shared_networks(estimator, params):
  learner = random_shared_learner(estimator, params)
  before = learner.actor_weights()
  batch = random_batch(np.random.default_rng(2), rows=8, agents=3, observation_size=4, actions=5)
  metrics = learner.step(batch, seed=np.array([0, 1]), estimator_step=0)
  assert np.all(np.isfinite(metrics["actor_loss"].numpy())) and int(metrics["non_finite/update"]) == -1
  after = learner.actor_weights()
  assert all(np.abs(a[0] - b[0]).max() > 0 for a, b in zip(after, before))


def test_diagnostics_run_on_the_shared_learner():
  from maddpg_tf.agent import diagnostics
  learner = random_shared_learner("stgs", {"temperature": 1.0})
  rng = np.random.default_rng(3)
  batch = random_batch(rng, rows=8, agents=3, observation_size=4, actions=5)
  values = diagnostics.ExactGradientDiagnostics(learner, num_repeats=4)(batch, np.array([0, 1]), 0.0)
  assert values["exact_gradient/cosine"].shape == (3,)
  assert np.all(np.isfinite(values["exact_gradient/relative_error"].numpy()))
  f = diagnostics.own_action_function(learner, batch, agent=1)
  assert f(np.eye(5)[rng.integers(0, 5, 8)].astype(np.float32)).shape == (8,)


# ---- the run's identity -------------------------------------------------------------------------------------

def test_the_switch_is_off_by_default_and_old_configs_read_as_unshared():
  config = common.resolve(lbf.get_config("smoke"))
  assert config.learner.share_parameters is False and common.learner_config(config).share_parameters is False
  assert "share_parameters" not in common.checkpoint_metadata(config)
  old = config.to_dict()
  del old["learner"]["share_parameters"]
  assert common.upgrade(old)["learner"]["share_parameters"] is False
  config.learner.share_parameters = True
  assert common.checkpoint_metadata(config)["share_parameters"] is True
  assert common.hparams(config)["share_parameters"] is True
  with pytest.raises(common.ConfigError, match=r"learner.share_parameters must be True or False, got 1"):
    bad = lbf.get_config("smoke").to_dict()
    bad["learner"]["share_parameters"] = 1
    common.resolve(bad)


def test_a_workdir_of_the_other_setting_is_refused_in_one_line(tmp_path):
  unshared = common.resolve(lbf.get_config("smoke"))
  workdir = workdir_lib.Workdir(str(tmp_path / "run"))
  workdir.write_run_files(unshared, {})
  shared = common.resolve(lbf.get_config("smoke"))
  shared.learner.share_parameters = True
  with pytest.raises(errors.RunError,
                     match=r"holds a different run \(learner.share_parameters: False there, True here\)") as error:
    workdir.check(shared)
  assert "\n" not in str(error.value)


def test_a_learner_refuses_the_other_settings_arrays_in_one_line():
  config = learner_lib.LearnerConfig(hidden_sizes=(8,))
  unshared = learner_lib.MADDPGLearner(2, 3, 3, config, "gst", jit_compile=False)
  shared = learner_lib.MADDPGLearner(2, 3, 3, learner_lib.LearnerConfig(hidden_sizes=(8,), share_parameters=True),
                                     "gst", jit_compile=False)
  with pytest.raises(ValueError, match=r"holds per-agent networks, this run has learner.share_parameters=True"):
    shared.restore(unshared.save())
  with pytest.raises(ValueError, match=r"holds shared networks, this run has learner.share_parameters=False"):
    unshared.restore(shared.save())


def parameter_count(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.mark.slow
def test_shared_run_resumes_exactly_and_counts_its_parameters(tmp_path):
  """LBF 8x8-2p-2f-coop (2 agents, O = 12, A = 6, hidden 64x64), seed 0: the shared run has one actor of
  (12 + 2) x 64 + 64 + 64 x 64 + 64 + 64 x 6 + 6 parameters and one critic of (2 x 12 + 2 x 6 + 2) x 64 + 64 +
  64 x 64 + 64 + 64 + 1, the unshared run two of each without the index inputs. A run stopped at 1,000 steps
  and resumed to 2,000 ends with the evaluations, networks and optimiser state of a straight run; config.json
  and provenance.json record the setting; maddpg-evaluate evaluates it and exports actors for both agents."""
  from maddpg_tf.run import experiment

  def config(**overrides):
    c = lbf.get_config("smoke")
    c.learner.share_parameters = True
    c.jit_compile = False
    for key, value in overrides.items():
      common.set_value(c, key, value)
    return c

  straight_dir, resumed_dir = str(tmp_path / "straight"), str(tmp_path / "resumed")
  straight = experiment.Experiment(config(env_workers=0), straight_dir, progress=False)
  straight.run()
  straight.close()
  assert parameter_count(straight.learner.actors) == 14 * 64 + 64 + 64 * 64 + 64 + 64 * 6 + 6
  assert parameter_count(straight.learner.critics) == 38 * 64 + 64 + 64 * 64 + 64 + 64 + 1
  unshared = experiment.Experiment(config(**{"learner.share_parameters": False}), str(tmp_path / "unshared"),
                                   progress=False)
  unshared.close()
  assert parameter_count(unshared.learner.actors) == 2 * (12 * 64 + 64 + 64 * 64 + 64 + 64 * 6 + 6)
  assert parameter_count(unshared.learner.critics) == 2 * (36 * 64 + 64 + 64 * 64 + 64 + 64 + 1)

  experiment.Experiment(config(total_steps=1000, env_workers=1), resumed_dir, progress=False).run()
  resumed = experiment.Experiment(config(env_workers=0), resumed_dir, progress=False)
  resumed.run()
  resumed.close()
  with open(os.path.join(straight_dir, "evaluations.csv")) as a, open(os.path.join(resumed_dir,
                                                                                  "evaluations.csv")) as b:
    assert a.read() == b.read()
  for name, value in straight.learner.save().items():
    np.testing.assert_array_equal(value, resumed.learner.save()[name], err_msg=name)
  with open(os.path.join(straight_dir, "config.json")) as handle:
    assert json.load(handle)["learner"]["share_parameters"] is True
  with open(os.path.join(straight_dir, "provenance.json")) as handle:
    assert json.load(handle)["share_parameters"] is True

  # maddpg-evaluate restores the shared learner, evaluates it and exports actors that act for both agents.
  evaluate = lambda *args: subprocess.run(
      [sys.executable, "-m", "maddpg_tf.cli.evaluate", f"--workdir={straight_dir}", *args], capture_output=True,
      text=True, cwd=REPO, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO))
  done = evaluate("--episodes=4")
  assert done.returncode == 0, done.stderr
  with open(os.path.join(straight_dir, "evaluations", "ckpt-2000-sampled-4.json")) as handle:
    assert json.load(handle)["share_parameters"] is True
  done = evaluate(f"--export={tmp_path / 'exported'}")
  assert done.returncode == 0, done.stderr
  policy = tf.saved_model.load(str(tmp_path / "exported"))
  observations = np.random.default_rng(0).normal(size=(5, 2, 12)).astype(np.float32)
  np.testing.assert_allclose(policy.act(observations)["logits"].numpy(),
                             straight.learner.policy_logits(observations).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_agents_of_different_sizes_share_one_network_through_padding(tmp_path):
  """The PettingZoo toy (agent a observes 2 numbers and has 3 actions, b 3 and 2): padded to O = 3, A = 3,
  one actor on [padded o_i, e_i] trains, evaluates and exports for both agents."""
  from configs import pettingzoo as pettingzoo_config
  from maddpg_tf.media import export
  from maddpg_tf.run import experiment
  config = pettingzoo_config.get_config("env=tests.pettingzoo_toy:counter,smoke")
  config.learner.share_parameters = True
  config.jit_compile = False
  run = experiment.Experiment(config, str(tmp_path / "run"), progress=False)
  summary = run.run()
  run.close()
  assert summary["env_steps"] == config.total_steps and summary["updates"] > 0
  assert run.learner.actors.dense_layers[0].kernel.shape[:2] == (1, 3 + 2)
  path = export.export_actors(run.learner, str(tmp_path / "exported"))
  policy = tf.saved_model.load(str(path))
  observations = np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32)
  np.testing.assert_allclose(policy.act(observations)["logits"].numpy(),
                             run.learner.policy_logits(observations).numpy(), rtol=1e-5, atol=1e-6)


# ---- maddpg-reproduce: shared runs beside the unshared ones --------------------------------------------------

def test_the_grid_plans_shared_runs_in_their_own_directories():
  import ml_collections
  from maddpg_tf.grid import runs
  estimators = runs.choose_estimators(["gst", "gst+shared", "stgs-1+shared"], ())
  specs = runs.plan_outputs("all", "r", ("lbf-8x8-2p-2f-coop",), estimators, (0,), "lbf-8x8-2p-2f-coop", (0,),
                            "smoke", figure4_estimators=("gst+shared",))
  by_dir = {os.path.relpath(spec.workdir, "r"): spec.config["learner"]["share_parameters"] for spec in specs}
  assert by_dir == {"lbf-8x8-2p-2f-coop/gst/seed0": False, "lbf-8x8-2p-2f-coop/gst+shared/seed0": True,
                    "lbf-8x8-2p-2f-coop/stgs-1+shared/seed0": True}
  for spec in specs:
    config = common.resolve(ml_collections.ConfigDict(spec.config))
    assert config.estimator.label == spec.estimator.split("+")[0]
  with pytest.raises(runs.UsageError, match=r"unknown estimator 'gumbel' in --estimators"):
    runs.choose_estimators(["gumbel+shared"], ())


def test_reproduce_share_parameters_reads_the_shared_runs(tmp_path):
  """--share_parameters gives every estimator of the grid its suffix: --norun over an empty --results
  looks for <task>/<estimator>+shared runs (one line, exit 2)."""
  done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", "--what=table1", "--budget=smoke",
                         "--norun", "--share_parameters", f"--results={tmp_path}"], cwd=REPO, capture_output=True,
                        text=True, timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert done.returncode == 2, (done.stdout, done.stderr)
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and "estimators stgs-1+shared,gst+shared" in lines[0], lines


def test_shared_target_networks_follow_polyak_averaging():
  config = learner_lib.LearnerConfig(hidden_sizes=(8,), share_parameters=True, use_target_networks=True, tau=0.25)
  learner = learner_lib.MADDPGLearner(3, 4, 5, config, "gst", {"temperature": 0.7}, seed=1, jit_compile=False)
  before = [v.numpy() for v in learner.actors.weights + learner.critics.weights]
  batch = random_batch(np.random.default_rng(4), rows=8, agents=3, observation_size=4, actions=5)
  learner.step(batch, seed=np.array([0, 1]), estimator_step=0)
  after = [v.numpy() for v in learner.actors.weights + learner.critics.weights]
  targets = learner.target_actors.weights + learner.target_critics.weights
  assert [t.shape for t in targets] == [a.shape for a in after] and targets[0].shape[0] == 1
  for target, old, new in zip(targets, before, after):
    np.testing.assert_allclose(target.numpy(), 0.75 * old + 0.25 * new, rtol=1e-5, atol=1e-7)
