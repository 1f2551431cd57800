"""PettingZoo ParallelEnvs and the multi-particle tasks: the adapter on a hand-derived toy env
(tests/pettingzoo_toy.py), seeding, state replay, slices and workers, frames, the MPE short names, configs,
provenance, every bad input, and (slow) learning and exact resume on simple_spread."""

import os
import pickle

import numpy as np
import pytest

from maddpg_tf import config as config_lib
from maddpg_tf.envs import builder as environments
from maddpg_tf.envs import pettingzoo, tasks, vector
from maddpg_tf.envs.pettingzoo import ParallelVectorEnvironment, episode_seed
from tests import pettingzoo_toy as toy

TOY = "tests.pettingzoo_toy:counter"


def make_toy(num_envs=1, seed=0, episode_limit=None, path=TOY, **kwargs):
  return environments.make(path, num_envs=num_envs, seed=seed, episode_limit=episode_limit, **kwargs)


def first_position(seed, index=0, episode=0):
  return episode_seed(seed, index, episode) % 7


def seed_with_position(positions, index=0):
  """The smallest run seed whose env `index` starts (episode 0) at a position in `positions`."""
  return next(s for s in range(1000) if first_position(s, index) in positions)


# --------------------------------------------------------------------------------------------------
# The toy env, by hand

def test_toy_task_spec_reads_the_declared_limit():
  spec = environments.resolve_task(TOY)
  assert spec == tasks.TaskSpec(TOY, TOY, env_episode_limit=5, code_cutoff=5, family="pettingzoo")
  assert environments.resolve_task("tests.pettingzoo_toy:long_counter").env_episode_limit == 8


def test_reset_pads_observations_and_seeds_each_env_by_its_index():
  env = make_toy(num_envs=2, seed=4)
  assert env.spec == vector.EnvironmentSpec(num_agents=2, observation_size=3, num_actions=3, episode_limit=5)
  assert env.agents == ("a", "b") and env.observation_sizes == (2, 3) and env.action_counts == (3, 2)
  assert "zero-padded to 3 from sizes [2, 3]" in env.note and "mod n for action counts [3, 2]" in env.note
  obs = env.reset()
  assert obs.dtype == np.float32 and obs.shape == (2, 2, 3)
  for k in range(2):
    assert env.envs[k].resets == [vector.env_seed(4, k)]  # episode 0: the reference vector's first seed
    p = first_position(4, k)
    np.testing.assert_array_equal(obs[k], [[p, 0, 0], [p, 0, 10 * p]])  # a's third entry is padding


def test_a_timed_out_episode_is_truncated_not_terminated_and_auto_resets():
  """Actions (0, 0): a moves 0, b moves 1 + 0 = 1 (its Discrete starts at 1), rewards 0 and -1; from p <= 6
  five steps reach p + 5 < 12, so the env's own limit (5) ends the episode."""
  env = make_toy(seed=1)
  env.reset()
  p = first_position(1)
  for t in range(1, 6):
    step = env.step(np.array([[0, 0]]))
    np.testing.assert_array_equal(step.observation[0], [[p + t, t, 0], [p + t, t, 10 * p]])
    np.testing.assert_array_equal(step.reward[0], [0.0, -1.0])
    if t < 5:
      assert not step.terminated[0] and not step.truncated[0] and np.isnan(step.episode_return[0])
      np.testing.assert_array_equal(step.next_observation, step.observation)
  assert step.truncated[0] and not step.terminated[0]
  assert step.episode_return[0] == -5.0 and step.episode_length[0] == 5
  q = first_position(1, 0, 1)
  assert env.envs[0].resets == [episode_seed(1, 0, 0), episode_seed(1, 0, 1)]
  np.testing.assert_array_equal(step.next_observation[0], [[q, 0, 0], [q, 0, 10 * q]])
  from maddpg_tf.run import environment_loop
  assert environment_loop.terminal_flags(step, truncation_is_terminal=False)[0] == 0.0  # text: bootstrap
  assert environment_loop.terminal_flags(step, truncation_is_terminal=True)[0] == 1.0  # code: terminal


def test_reaching_the_goal_terminates_and_actions_wrap_mod_the_agents_count():
  """Actions (2, 2): a moves 2, b's action 2 is 2 mod 2 = 0, sent as 1 + 0 = 1: p grows by 3, rewards
  (2, -1); the goal p >= 12 comes after ceil((12 - p) / 3) <= 4 steps, before the limit."""
  env = make_toy(seed=2)
  env.reset()
  p = first_position(2)
  steps = -(-(12 - p) // 3)
  for t in range(1, steps + 1):
    step = env.step(np.array([[2, 2]]))
    np.testing.assert_array_equal(step.reward[0], [2.0, -1.0])
  assert step.terminated[0] and not step.truncated[0]
  assert step.observation[0, 0, 0] == p + 3 * steps
  assert step.episode_return[0] == steps and step.episode_length[0] == steps


def test_goal_at_the_limit_is_both_and_the_cutoff_truncates_early():
  seed = seed_with_position({2, 3})  # with (1, 0) p grows by 2: the goal at exactly step 5
  env = make_toy(seed=seed)
  env.reset()
  for _ in range(5):
    step = env.step(np.array([[1, 0]]))
  assert step.terminated[0] and step.truncated[0] and step.episode_length[0] == 5
  short = make_toy(seed=seed, episode_limit=3)
  short.reset()
  ends = [short.step(np.array([[0, 0]])) for _ in range(3)]
  assert [bool(s.truncated[0]) for s in ends] == [False, False, True] and not ends[-1].terminated[0]
  assert ends[-1].episode_length[0] == 3 and ends[-1].episode_return[0] == -3.0


def test_every_reset_starts_the_next_seeded_episode():
  env = make_toy(num_envs=2, seed=7)
  env.reset()
  env.step(np.zeros((2, 2), int))
  env.reset()  # abandons the running episodes: episode 1 of each env
  assert [e.resets for e in env.envs] == [[episode_seed(7, k, 0), episode_seed(7, k, 1)] for k in range(2)]


def test_random_actions_cover_the_padded_count():
  env = make_toy(num_envs=3)
  actions = env.random_actions(np.random.default_rng(0))
  assert actions.shape == (3, 2) and actions.min() >= 0 and actions.max() <= 2


# --------------------------------------------------------------------------------------------------
# State, slices, workers

def _play(env, steps, seed=0):
  rng = np.random.default_rng(seed)
  return [env.step(env.random_actions(rng)) for _ in range(steps)]


def _same_steps(a, b):
  return all(np.array_equal(x, y, equal_nan=True) for p, q in zip(a, b) for x, y in zip(p, q))


@pytest.mark.parametrize("path", [TOY, "simple_speaker_listener"])
def test_a_pickled_state_replays_to_the_same_future(path):
  env = make_toy(num_envs=3, seed=5, path=path)
  env.reset()
  _play(env, 13)
  state = pickle.loads(pickle.dumps(env.get_state()))
  assert sorted(state["envs"]) == ["actions", "episodes", "observations", "returns"]  # a record, no envs
  expected = _play(env, 20, seed=1)
  other = make_toy(num_envs=3, seed=99, path=path)
  other.set_state(state)
  assert other.seed == 5 and _same_steps(_play(other, 20, seed=1), expected)


def test_state_before_the_first_reset_and_after_close():
  env = make_toy(num_envs=2)
  fresh = env.get_state()
  assert not fresh["ready"]
  other = make_toy(num_envs=2)
  other.set_state(fresh)
  assert not other.ready
  env.close()
  with pytest.raises(RuntimeError, match="closed"):
    env.reset()


def test_split_and_concatenate_keep_seeds_and_clocks():
  whole = make_toy(num_envs=5, seed=3)
  whole.reset()
  _play(whole, 3)
  parts = vector.split_state(whole.get_state(), [2, 3])
  assert [p["first_index"] for p in parts] == [0, 2] and [p["num_envs"] for p in parts] == [2, 3]
  joined = vector.concatenate_states(parts)
  fresh = make_toy(num_envs=5, seed=3)
  fresh.set_state(joined)
  assert _same_steps(_play(fresh, 9, seed=2), _play(whole, 9, seed=2))
  with pytest.raises(ValueError, match="consecutive"):
    vector.concatenate_states([parts[1], parts[0]])


def unprobed(path, num_envs=1, seed=0):
  """A vector of the env at `path` built past `resolve_task` (which probes it and refuses what follows):
  the adapter's own checks while it steps, for what a probe does not meet."""
  spec = tasks.TaskSpec(path, path, env_episode_limit=5, code_cutoff=5, family="pettingzoo")
  return ParallelVectorEnvironment(spec, num_envs, seed, 5)


def test_an_env_that_ignores_its_seed_cannot_resume():
  env = unprobed("tests.pettingzoo_toy:noisy_counter")
  env.reset()
  _play(env, 2)
  other = unprobed("tests.pettingzoo_toy:noisy_counter")
  with pytest.raises(pettingzoo.UnsupportedEnv, match="not a function of reset.*its actions") as raised:
    other.set_state(env.get_state())
  assert "np.float" not in str(raised.value)  # plain numbers: "return 3.0, not the saved 1.0"
  assert "self.np_random" in str(raised.value)  # what to do


def test_the_probe_at_start_refuses_an_env_that_ignores_its_seed():
  with pytest.raises(pettingzoo.UnsupportedEnv, match=r"not a function of reset.*-step probe") as raised:
    environments.resolve_task("tests.pettingzoo_toy:noisy_counter")
  assert "np.float" not in str(raised.value) and "\n" not in str(raised.value)


def test_an_env_that_declares_no_limit_runs_with_the_configs_cut_off():
  spec = environments.resolve_task("tests.pettingzoo_toy:no_limit_counter")
  assert (spec.env_episode_limit, spec.code_cutoff) == (None, None)
  from configs import pettingzoo as pettingzoo_config
  config = pettingzoo_config.get_config("env=tests.pettingzoo_toy:no_limit_counter,smoke")
  with pytest.raises(config_lib.ConfigError, match=r"declares no episode limit: give --config.loop.episode_limit"):
    config_lib.resolve(config)
  config.loop.episode_limit = 3
  assert config_lib.resolve(config).loop.episode_limit == 3
  # Updates follow the episode length: one per 25 steps of the cut-off (LBF's rate), unless given.
  config.loop.episode_limit = 200
  assert config_lib.resolve(config).loop.updates_per_episode == 8
  config.loop.updates_per_episode = 2
  assert config_lib.resolve(config).loop.updates_per_episode == 2
  with pytest.raises(ValueError, match="declares no episode limit: give episode_limit"):
    make_toy(path="tests.pettingzoo_toy:no_limit_counter")
  env = make_toy(path="tests.pettingzoo_toy:no_limit_counter", episode_limit=3)
  env.reset()
  steps = [env.step(np.array([[0, 0]])) for _ in range(3)]
  assert steps[-1].truncated[0] and steps[-1].episode_length[0] == 3  # cut at 3, before the env's own 5


def test_the_adapter_note_names_padding_and_action_counts():
  note = pettingzoo.adapter_note(environments.resolve_task(TOY))
  assert note == "observations zero-padded to 3 from sizes [2, 3]; actions 0..2 sent as a mod n for action counts [3, 2]"
  assert pettingzoo.adapter_note(environments.resolve_task("simple_spread")) == ""


def test_state_of_another_task_or_size_is_refused():
  env = make_toy(num_envs=2)
  with pytest.raises(ValueError, match="num_envs"):
    env.set_state(make_toy(num_envs=3).get_state())
  with pytest.raises(ValueError, match="must be a ParallelVectorEnvironment"):
    env.set_state(environments.make("lbf-8x8-2p-2f-coop", num_envs=2).get_state())


def _worker_run(num_envs, workers):
  env = make_toy(num_envs=num_envs, seed=11, workers=workers)
  try:
    env.reset()
    first = _play(env, 7)
    state = env.get_state()
    second = _play(env, 7, seed=3)
  finally:
    env.close()
  return first, state, second


def test_env_workers_give_the_same_numbers_and_states():
  local_first, local_state, local_second = _worker_run(5, 0)
  first, state, second = _worker_run(5, 2)
  assert _same_steps(first, local_first) and _same_steps(second, local_second)
  assert state["envs"]["episodes"] == local_state["envs"]["episodes"]
  assert state["envs"]["actions"] == local_state["envs"]["actions"]
  resumed = make_toy(num_envs=5, seed=11, workers=2)
  try:
    resumed.set_state(local_state)
    assert _same_steps(_play(resumed, 7, seed=3), local_second)
  finally:
    resumed.close()


# --------------------------------------------------------------------------------------------------
# Frames

def test_frames_come_from_the_env_and_the_final_state_is_kept():
  env = make_toy(render_mode="rgb_array")
  env.reset()
  p = first_position(0)
  frame = env.render_frame()
  assert frame.dtype == np.uint8 and frame.shape == (4, 6, 3) and frame[0, 0, 0] == p and frame[0, 0, 1] == 0
  for _ in range(5):
    step = env.step(np.array([[0, 0]]))
  assert step.truncated[0] and list(env.final_frames) == [0]
  assert env.final_frames[0][0, 0, 0] == p + 5 and env.final_frames[0][0, 0, 1] == 5
  assert env.render_frame()[0, 0, 1] == 0  # the next episode's first state


def test_mpe_renders_rgb_frames():
  env = environments.make("simple_spread", num_envs=1, render_mode="rgb_array")
  env.reset()
  frame = env.render_frame()
  assert frame.dtype == np.uint8 and frame.shape == (700, 700, 3) and len(np.unique(frame.reshape(-1, 3), axis=0)) > 2
  env.close()


# --------------------------------------------------------------------------------------------------
# The multi-particle tasks

@pytest.mark.parametrize("name, agents, sizes, counts", [
    ("simple_spread", 3, (18, 18, 18), (5, 5, 5)),
    ("simple_speaker_listener", 2, (3, 11), (3, 5)),
    ("simple_reference", 2, (21, 21), (50, 50)),
])
def test_mpe_short_names(name, agents, sizes, counts):
  spec = environments.resolve_task(name)
  assert spec.family == "mpe" and spec.code_cutoff == spec.env_episode_limit == 25
  assert spec.gym_id == f"maddpg_tf.envs.mpe:{name}"
  env = environments.make(name, num_envs=2, seed=0)
  assert env.spec == vector.EnvironmentSpec(agents, max(sizes), max(counts), 25)
  assert env.observation_sizes == sizes and env.action_counts == counts
  obs = env.reset()
  again = environments.make(name, num_envs=2, seed=0).reset()
  np.testing.assert_array_equal(obs, again)
  assert not np.array_equal(obs[0], obs[1])
  steps = _play(env, 25)
  assert all(steps[-1].truncated) and not any(steps[-1].terminated)
  assert all(steps[-1].episode_length == 25) and not any(s.truncated.any() for s in steps[:-1])
  for step in steps:  # every agent's reward is its own, and the team return sums them
    assert step.reward.shape == (2, agents)


def test_mpe_team_return_is_the_sum_of_agent_rewards():
  env = environments.make("simple_reference", num_envs=1, seed=3)
  env.reset()
  steps = _play(env, 25)
  total = np.sum([s.reward[0].astype(np.float64).sum() for s in steps])
  assert steps[-1].episode_return[0] == np.float32(total)


# --------------------------------------------------------------------------------------------------
# Configs and provenance

def test_mpe_config_settings():
  from configs import mpe as mpe_config
  config = mpe_config.get_config("task=simple_reference,estimator=grmck")
  assert config.task == "simple_reference" and config.learner.actor_learning_rate == 1e-3
  assert config.learner.critic_learning_rate == 1e-3 and config.total_steps == 2_000_000
  assert config.replay.observation_dtype == "float32" and config.replay.capacity == 1_000_000
  assert config.estimator.temperature == 0.5 and config.estimator.num_samples == 10  # LBF's GRMCK
  assert mpe_config.get_config().task == "simple_spread"
  smoke = mpe_config.get_config("smoke")
  assert smoke.total_steps == 2_000 and smoke.num_envs == 4
  resolved = config_lib.resolve(config)
  assert resolved.loop.episode_limit == 25 and resolved.loop.truncation_is_terminal is True
  text = config.copy_and_resolve_references()
  text.fidelity = "text"
  assert config_lib.resolve(text).loop.truncation_is_terminal is False
  # The paper's families are unchanged.
  lbf = config_lib.get_config("task=lbf-8x8-2p-2f-coop")
  assert lbf.learner.actor_learning_rate == 3e-4 and lbf.replay.observation_dtype == "float16"


def test_pettingzoo_config_takes_the_env_path():
  from configs import pettingzoo as pettingzoo_config
  config = pettingzoo_config.get_config(f"env={TOY},estimator=stgs-t,smoke")
  assert config.task == TOY and config.estimator.temperature == 0.5
  assert config_lib.resolve(config).loop.episode_limit == 5


def test_provenance_record_of_a_user_env():
  record = pettingzoo.source_of(environments.resolve_task(TOY))
  assert record["name"] == TOY and record["path"] == TOY
  assert record["module_file"] == os.path.abspath(toy.__file__)
  import hashlib
  with open(toy.__file__, "rb") as handle:
    assert record["sha256"] == hashlib.sha256(handle.read()).hexdigest()
  assert pettingzoo.source_of(environments.resolve_task("simple_spread")) is None


def test_a_factory_given_as_a_callable_is_known_by_its_path():
  assert pettingzoo.factory_path(toy.counter) == TOY
  assert pettingzoo.pettingzoo_task(toy.counter, name="toy").name == "toy"


# --------------------------------------------------------------------------------------------------
# Bad input: one line naming what was found and what is supported

@pytest.mark.parametrize("task, message", [
    ("tests.pettingzoo_toy:continuous_counter", r"agent 'a' acts in Box.*supported: Discrete actions"),
    ("tests.pettingzoo_toy:dict_counter", r"agent 'b' observes Dict.*supported: Box observations"),
    ("tests.pettingzoo_toy:not_parallel", r"returned a object without possible_agents.*ParallelEnv"),
    ("tests.pettingzoo_toy:NOT_CALLABLE", r"is a int, not a callable"),
    ("tests.pettingzoo_toy:missing", r"has no attribute 'missing'"),
    ("tests.no_such_module:factory", r"cannot import module 'tests.no_such_module'"),
    ("a:b:c", r"an import path 'module:factory', got 'a:b:c'"),
    ("spread", r"unknown task 'spread'.*simple_spread.*module:factory"),
])
def test_bad_env_paths_and_spaces(task, message):
  with pytest.raises(ValueError, match=message) as raised:
    environments.resolve_task(task)
  assert "\n" not in str(raised.value)


def test_bad_paths_through_the_config_are_config_errors():
  with pytest.raises(config_lib.ConfigError, match="supported: Discrete actions"):
    config_lib.get_config("env=tests.pettingzoo_toy:continuous_counter")
  with pytest.raises(ValueError, match="env must be an import path module:factory"):
    config_lib.get_config("env=simple_spread")
  with pytest.raises(ValueError, match="both name the task"):
    config_lib.get_config(f"task=simple_spread,env={TOY}")
  from configs import pettingzoo as pettingzoo_config
  with pytest.raises(config_lib.ConfigError, match="needs env=module:factory"):
    pettingzoo_config.get_config("smoke")


@pytest.mark.parametrize("path, message", [
    ("tests.pettingzoo_toy:late_agents_counter", r"agents \['a'\] after reset.*one agent set"),
    ("tests.pettingzoo_toy:vanishing_counter", r"no observation for agent 'b'.*one agent set"),
    ("tests.pettingzoo_toy:lonely_end_counter", r"only agents \['a'\] ended at step \d.*one agent set"),
])
def test_agents_that_appear_or_disappear(path, message):
  # Refused before any run starts, by the probe...
  with pytest.raises(pettingzoo.UnsupportedEnv, match=message + r".*-step probe"):
    environments.resolve_task(path)
  # ...and by the adapter, when an env does so only after a probe.
  env = unprobed(path, seed=seed_with_position({0}))
  with pytest.raises(pettingzoo.UnsupportedEnv, match=message):
    env.reset()
    for _ in range(5):
      env.step(np.array([[2, 1]]))  # p grows by 4: the goal at step 3


def test_bad_factories_and_arguments():
  with pytest.raises(ValueError, match="no import path"):
    pettingzoo.factory_path(lambda: toy.Counter())
  with pytest.raises(ValueError, match="must be a callable or an import path"):
    pettingzoo.resolve_factory("no_colon")
  with pytest.raises(ValueError, match="render_mode must be None or 'rgb_array'"):
    make_toy(render_mode="human")
  with pytest.raises(ValueError, match="needs the envs in this process"):
    make_toy(num_envs=2, workers=1, render_mode="rgb_array")
  with pytest.raises(ValueError, match="does not take render_mode"):
    make_toy(path="tests.pettingzoo_toy:long_counter", render_mode="rgb_array")
  with pytest.raises(ValueError, match="needs envs built with render_mode='rgb_array'"):
    env = make_toy()
    env.reset()
    env.render_frame()
  with pytest.raises(ValueError, match="env_backend 'fast' has no implementation for simple_spread"):
    environments.make("simple_spread", backend="fast")
  with pytest.raises(ValueError, match=r"episode_limit for tests.pettingzoo_toy:counter must be in 1..5"):
    make_toy(episode_limit=6)
  env = make_toy(num_envs=2)
  env.reset()
  with pytest.raises(ValueError, match=r"actions must have shape \(2, 2\)"):
    env.step(np.zeros((2, 3), int))


# --------------------------------------------------------------------------------------------------
# Training (slow)

def _mpe_config(**overrides):
  from configs import mpe as mpe_config
  config = mpe_config.get_config("task=simple_spread,smoke")
  for key, value in {"jit_compile": False, **overrides}.items():
    config_lib.set_value(config, key, value)
  return config


@pytest.mark.slow
def test_resumed_mpe_run_equals_the_uninterrupted_run(tmp_path):
  from maddpg_tf.run import experiment
  straight = str(tmp_path / "straight")
  experiment.Experiment(_mpe_config(), straight, progress=False).run()
  resumed = str(tmp_path / "resumed")
  experiment.Experiment(_mpe_config(total_steps=1000), resumed, progress=False).run()
  summary = experiment.Experiment(_mpe_config(), resumed, progress=False).run()
  assert summary["env_steps"] == 2000
  with open(os.path.join(straight, "evaluations.csv")) as a, open(os.path.join(resumed, "evaluations.csv")) as b:
    assert a.read() == b.read()


# Random joint actions on simple_spread (20 envs of the evaluation stream of seed 0, 400 episodes): team
# return -77.8 (standard error 1.2).
RANDOM_SPREAD_RETURN = -77.8
MARGIN = 12.0


@pytest.mark.slow
def test_simple_spread_learns_beyond_a_random_policy(tmp_path):
  """A 40k-step run (about a minute on 2 cores) ends with an evaluation return above random + MARGIN."""
  from maddpg_tf.run import experiment
  config = _mpe_config(**{"total_steps": 40_000, "num_envs": 16, "replay.capacity": 200_000,
                          "replay.batch_size": 512, "loop.warmup_episodes": 100, "loop.updates_per_episode": 4,
                          "loop.eval_every_steps": 40_000, "loop.eval_episodes": 100, "loop.eval_num_envs": 20,
                          "checkpoint.every_steps": 40_000, "jit_compile": True})
  summary = experiment.Experiment(config, str(tmp_path / "run"), progress=False).run()
  assert summary["final_return"] > RANDOM_SPREAD_RETURN + MARGIN, summary


def test_evaluate_draws_pettingzoo_episodes_with_the_envs_own_frames():
  """maddpg-evaluate's `play` on a PettingZoo task: one frame per state (the first, then one per step,
  the ending state kept), the episode's return as the evaluation vector gives it."""
  from configs import pettingzoo as pettingzoo_config
  from maddpg_tf.run import saved_policies
  config = config_lib.resolve(pettingzoo_config.get_config(f"env={TOY},estimator=stgs-t,smoke"))
  spec = environments.make(TOY, num_envs=1).spec
  weights = [(np.zeros((spec.num_agents, spec.observation_size, spec.num_actions), np.float32),
              np.zeros((spec.num_agents, 1, spec.num_actions), np.float32))]
  frames, returns, lengths = saved_policies.play(config, weights, episodes=2, seed=4)
  assert lengths == [5, 5] and len(frames) == 2 * (1 + 5)
  assert all(frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[-1] == 3 for frame in frames)
  assert len(returns) == 2 and all(np.isfinite(returns))
