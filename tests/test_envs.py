"""maddpg_tf.envs.builder (LBF / RWARE behind one batched API) and the fake env in tests/fakes.py."""

import gymnasium as gym
import numpy as np
import pytest
from lbforaging.foraging import ForagingEnv

from maddpg_tf.envs import builder as environments
from maddpg_tf.envs import vector
from maddpg_tf.envs.builder import EnvironmentSpec, Step, TaskSpec
from tests.fakes import FakeVectorEnvironment, make_fake, right_actions

# (short name, gym id, agents, obs size, actions, cut-off, env limit): FACTS.md, "The environments".
NINE = [
  ("lbf-8x8-2p-2f-coop", "Foraging-8x8-2p-2f-coop-v3", 2, 12, 6, 25, 50),
  ("lbf-8x8-2p-2f-2s-coop", "Foraging-2s-8x8-2p-2f-coop-v3", 2, 12, 6, 25, 50),
  ("lbf-10x10-3p-3f", "Foraging-10x10-3p-3f-v3", 3, 18, 6, 25, 50),
  ("lbf-10x10-3p-3f-2s", "Foraging-2s-10x10-3p-3f-v3", 3, 18, 6, 25, 50),
  ("lbf-15x15-3p-5f", "Foraging-15x15-3p-5f-v3", 3, 24, 6, 25, 50),
  ("lbf-15x15-4p-3f", "Foraging-15x15-4p-3f-v3", 4, 21, 6, 25, 50),
  ("lbf-15x15-4p-5f", "Foraging-15x15-4p-5f-v3", 4, 27, 6, 25, 50),
  ("rware-tiny-2ag", "rware-tiny-2ag-v2", 2, 71, 5, 500, 500),
  ("rware-tiny-4ag", "rware-tiny-4ag-v2", 4, 71, 5, 500, 500),
]


def run(env, num_steps, action_seed=123):
  """Random-action rollout from a fresh reset: (first observations, list of Steps, actions)."""
  rng = np.random.default_rng(action_seed)
  first = env.reset()
  steps, actions = [], []
  for _ in range(num_steps):
    action = env.random_actions(rng)
    actions.append(action)
    steps.append(env.step(action))
  return first, steps, actions


def ended(step):
  return step.terminated | step.truncated


def assert_steps_equal(a, b):
  for field in Step._fields:
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


# ------------------------------------------------------------------------------------------------
# Task table and resolution

def test_task_table_has_the_nine_paper_tasks():
  assert list(environments.TASKS) == [row[0] for row in NINE]
  for name, gym_id, _, _, _, cutoff, limit in NINE:
    task = environments.resolve_task(name)
    assert task == TaskSpec(name, gym_id, limit, cutoff, "lbf" if name.startswith("lbf") else "rware")
    assert gym_id in gym.registry
    # The hard-coded env limits agree with what the registrations say.
    assert environments.resolve_task(gym_id).env_episode_limit == limit


def test_task_spec_is_frozen():
  with pytest.raises(Exception):
    environments.TASKS["rware-tiny-2ag"].code_cutoff = 3


def test_five_food_15x15_ids_registered_like_lbforaging_registers_its_own():
  vector._register_extra_lbf_ids()  # again: must be idempotent
  for players in (3, 4):
    ours = gym.spec(f"Foraging-15x15-{players}p-5f-v3")
    stock = gym.spec(f"Foraging-15x15-{players}p-4f-v3")  # registered by lbforaging itself
    assert ours.entry_point == stock.entry_point == "lbforaging.foraging:ForagingEnv"
    assert ours.kwargs == {**stock.kwargs, "max_num_food": 5}
    assert ours.kwargs["sight"] == 15 and ours.kwargs["force_coop"] is False


@pytest.mark.parametrize("bad", ["lbf-8x8-2p-2f", "Foraging-8x8-2p-2f-coop-v2", "CartPole-v1", "", 42])
def test_unknown_task_raises_one_line_naming_value_and_listing_names(bad):
  with pytest.raises(ValueError) as info:
    environments.resolve_task(bad)
  message = str(info.value)
  assert repr(bad) in message
  assert "\n" not in message
  for name in environments.TASKS:
    assert name in message
  assert "lbforaging" in message and "rware" in message
  with pytest.raises(ValueError, match="unknown task"):
    environments.make(bad)


@pytest.mark.parametrize("gym_id,family,limit", [("Foraging-5x5-2p-1f-v3", "lbf", 50),
                                                 ("Foraging-2s-12x12-3p-2f-coop-v3", "lbf", 50),
                                                 ("rware-small-4ag-v2", "rware", 500)])
def test_any_lbforaging_or_rware_id_is_accepted_with_its_own_limit(gym_id, family, limit):
  task = environments.resolve_task(gym_id)
  assert task == TaskSpec(gym_id, gym_id, limit, limit, family)
  env = environments.make(gym_id, num_envs=2)
  assert env.spec.episode_limit == limit
  assert env.reset().shape == (2, env.spec.num_agents, env.spec.observation_size)
  env.close()


# ------------------------------------------------------------------------------------------------
# Shapes

@pytest.mark.parametrize("name,gym_id,agents,obs_size,actions,cutoff,limit", NINE)
def test_shapes_for_every_task(name, gym_id, agents, obs_size, actions, cutoff, limit):
  env = environments.make(name, num_envs=2, seed=3)
  assert env.spec == EnvironmentSpec(agents, obs_size, actions, cutoff)
  assert env.num_envs == 2 and env.task.name == name
  observation = env.reset()
  assert observation.shape == (2, agents, obs_size) and observation.dtype == np.float32
  rng = np.random.default_rng(0)
  for _ in range(3):
    action = env.random_actions(rng)
    assert action.shape == (2, agents) and np.issubdtype(action.dtype, np.integer)
    assert action.min() >= 0 and action.max() < actions
    step = env.step(action)
    assert isinstance(step, Step)
    assert step.observation.shape == step.next_observation.shape == (2, agents, obs_size)
    assert step.observation.dtype == step.next_observation.dtype == np.float32
    assert step.reward.shape == (2, agents) and step.reward.dtype == np.float32
    for flags in (step.terminated, step.truncated):
      assert flags.shape == (2,) and flags.dtype == np.bool_
    assert step.episode_return.shape == (2,) and step.episode_return.dtype == np.float32
    assert step.episode_length.shape == (2,) and np.issubdtype(step.episode_length.dtype, np.integer)
  env.close()


def test_random_actions_cover_every_action_and_follow_the_generator():
  env = environments.make("rware-tiny-4ag", num_envs=3)
  a = env.random_actions(np.random.default_rng(7))
  b = env.random_actions(np.random.default_rng(7))
  np.testing.assert_array_equal(a, b)
  many = np.concatenate([env.random_actions(np.random.default_rng(s)).ravel() for s in range(40)])
  assert set(many.tolist()) == set(range(5))
  env.close()


# ------------------------------------------------------------------------------------------------
# Argument checks

@pytest.mark.parametrize("bad", [0, -1, 51, 2.5, "25", True])
def test_bad_episode_limit_raises_naming_value_and_range(bad):
  with pytest.raises(ValueError) as info:
    environments.make("lbf-8x8-2p-2f-coop", episode_limit=bad)
  assert repr(bad) in str(info.value) and "1..50" in str(info.value)


def test_episode_limit_range_follows_the_task():
  with pytest.raises(ValueError, match=r"1\.\.500.*501"):
    environments.make("rware-tiny-2ag", episode_limit=501)
  assert environments.make("lbf-10x10-3p-3f", episode_limit=50).spec.episode_limit == 50
  assert environments.make("lbf-10x10-3p-3f", episode_limit=np.int64(7)).spec.episode_limit == 7


def test_other_bad_arguments():
  with pytest.raises(ValueError, match="num_envs.*0"):
    environments.make("lbf-8x8-2p-2f-coop", num_envs=0)
  with pytest.raises(ValueError, match="seed.*-1"):
    environments.make("lbf-8x8-2p-2f-coop", seed=-1)
  with pytest.raises(ValueError, match="lbf_food_rule.*'v1'"):
    environments.make("lbf-8x8-2p-2f-coop", lbf_food_rule="v1")
  env = environments.make("lbf-8x8-2p-2f-coop", num_envs=2)
  with pytest.raises(RuntimeError, match="before reset"):
    env.step(np.zeros((2, 2), np.int64))
  env.reset()
  with pytest.raises(ValueError, match=r"\(2, 2\)"):
    env.step(np.zeros((2, 3), np.int64))
  env.close()
  with pytest.raises(RuntimeError, match="closed"):
    env.reset()


# ------------------------------------------------------------------------------------------------
# Seeding

def test_same_seed_same_trajectory_different_seed_different():
  def trajectory(seed):
    return run(environments.make("lbf-8x8-2p-2f-coop", num_envs=3, seed=seed), 60)

  first_a, steps_a, _ = trajectory(5)
  first_b, steps_b, _ = trajectory(5)
  np.testing.assert_array_equal(first_a, first_b)
  for a, b in zip(steps_a, steps_b):  # 60 steps: two auto-resets per env at the 25-step cut-off
    assert_steps_equal(a, b)
  first_c, steps_c, _ = trajectory(6)
  assert not np.array_equal(first_a, first_c)
  assert not np.array_equal(np.stack([s.observation for s in steps_a]),
                            np.stack([s.observation for s in steps_c]))


def test_rware_same_seed_same_trajectory():
  first_a, steps_a, _ = run(environments.make("rware-tiny-2ag", num_envs=2, seed=1), 40)
  first_b, steps_b, _ = run(environments.make("rware-tiny-2ag", num_envs=2, seed=1), 40)
  np.testing.assert_array_equal(first_a, first_b)
  for a, b in zip(steps_a, steps_b):
    assert_steps_equal(a, b)
  first_c, _, _ = run(environments.make("rware-tiny-2ag", num_envs=2, seed=2), 0)
  assert not np.array_equal(first_a, first_c)


def test_env_streams_do_not_overlap_across_runs():
  """Env k of run s gets env_seed(s, k); run 0's env 1 is not run 1's env 0 (as seed + k would make it)."""
  seeds = {environments.env_seed(s, k) for s in range(5) for k in range(8)}
  assert len(seeds) == 40
  three = environments.make("lbf-15x15-4p-3f", num_envs=3, seed=10).reset()
  assert not np.array_equal(three[1], environments.make("lbf-15x15-4p-3f", num_envs=1, seed=11).reset()[0])
  assert not np.array_equal(three[0], three[1])


def test_only_the_first_reset_of_each_env_is_seeded(monkeypatch):
  calls = []
  original = ForagingEnv.reset

  def spy(self, seed=None, options=None):
    calls.append((id(self), seed))
    return original(self, seed=seed, options=options)

  monkeypatch.setattr(ForagingEnv, "reset", spy)
  env = environments.make("lbf-8x8-2p-2f-coop", num_envs=2, seed=7, episode_limit=3)
  run(env, 7)  # reset, then auto-resets after steps 3 and 6
  env.reset()
  for k, lbf in enumerate(env.envs):
    seeds = [seed for who, seed in calls if who == id(lbf)]
    assert seeds == [environments.env_seed(7, k), None, None, None]


def test_later_resets_continue_the_rng_instead_of_reseeding():
  env = environments.make("lbf-10x10-3p-3f", num_envs=1, seed=0, episode_limit=1)
  first = env.reset()
  again = env.reset()  # an explicit second reset is not seeded again
  assert not np.array_equal(first, again)
  starts = [env.step(np.zeros((1, 3), np.int64)).next_observation for _ in range(10)]
  assert len({s.tobytes() for s in [first, again] + starts}) == 12


# ------------------------------------------------------------------------------------------------
# Episode ends, cut-off, auto-reset

def test_cutoff_25_truncates_lbf_episodes_at_25_steps():
  env = environments.make("lbf-15x15-4p-5f", num_envs=4, seed=0)  # default cut-off 25
  assert env.spec.episode_limit == 25
  _, steps, _ = run(env, 100)
  t = np.zeros(4, int)
  truncations = 0
  for step in steps:
    t += 1
    for k in np.flatnonzero(ended(step)):
      assert step.episode_length[k] == t[k]
      if step.terminated[k]:  # all 5 food eaten by a random policy: possible, rare
        assert t[k] <= 25
      else:
        assert step.truncated[k] and t[k] == 25
        truncations += 1
      t[k] = 0
    assert np.all(t < 25)  # nothing runs past the cut-off
  assert truncations >= 14  # 4 envs x 4 episodes, almost all cut at 25


def test_env_own_time_limit_counts_as_truncation_not_termination():
  # The env says done=True at its 50-step limit; that must come out as truncated, not terminated.
  env = environments.make("lbf-15x15-4p-5f", num_envs=3, seed=1, episode_limit=50)
  _, steps, _ = run(env, 50)
  for step in steps[:-1]:
    assert not step.truncated.any()
    assert not (step.terminated & (step.episode_length == 0)).any()
  last = steps[-1]
  survivors = ~np.array([s.terminated for s in steps[:-1]]).any(axis=0)
  assert survivors.sum() >= 2
  assert np.all(last.truncated[survivors]) and not np.any(last.terminated[survivors])
  np.testing.assert_array_equal(last.episode_length[survivors], 50)


def test_rware_runs_500_steps_then_truncates():
  env = environments.make("rware-tiny-2ag", num_envs=2, seed=0)
  _, steps, _ = run(env, 501)
  for i, step in enumerate(steps):
    assert not step.terminated.any()
    assert np.all(step.reward >= 0)
    if i == 499:
      assert step.truncated.all()
      np.testing.assert_array_equal(step.episode_length, [500, 500])
      returns = np.sum([s.reward.sum(axis=1) for s in steps[:500]], axis=0)
      np.testing.assert_allclose(step.episode_return, returns, rtol=1e-6)
    else:
      assert not step.truncated.any()


def test_real_termination_when_all_food_is_eaten():
  env = environments.make("Foraging-5x5-2p-1f-v3", num_envs=8, seed=0)  # cut-off = env limit 50
  _, steps, _ = run(env, 300)
  terminations = 0
  for step in steps:
    for k in np.flatnonzero(ended(step)):
      if step.terminated[k]:
        terminations += 1
        # All food eaten: the normalised team return of the episode is exactly 1.
        np.testing.assert_allclose(step.episode_return[k], 1.0, rtol=1e-5)
        assert step.truncated[k] == (step.episode_length[k] == 50)
      else:
        assert step.truncated[k] and step.episode_length[k] == 50
  assert terminations >= 5


@pytest.mark.parametrize("task", ["Foraging-5x5-2p-1f-v3",
                                  # env limit 1: the env's own done at step 1 must be told apart
                                  # from a real end by looking at the food left
                                  TaskSpec("5x5-limit-1", "Foraging-5x5-2p-1f-v3", 1, 1, "lbf")])
def test_food_eaten_on_the_cutoff_step_is_both_terminated_and_truncated(task):
  env = environments.make(task, num_envs=8, seed=0, episode_limit=1)
  _, steps, _ = run(env, 300)
  both = 0
  for step in steps:
    assert step.truncated.all() and np.all(step.episode_length == 1)
    eaten = step.reward.sum(axis=1) > 0  # one food: any reward means no food left
    np.testing.assert_array_equal(step.terminated, eaten)
    both += eaten.sum()
  assert both >= 5


def test_auto_reset_and_episode_statistics():
  env = environments.make("lbf-10x10-3p-3f", num_envs=4, seed=2)
  first, steps, _ = run(env, 60)
  returns = np.zeros(4)
  lengths = np.zeros(4, int)
  ends = 0
  for step in steps:
    returns += step.reward.sum(axis=1)
    lengths += 1
    done = ended(step)
    still = ~done
    np.testing.assert_array_equal(step.next_observation[still], step.observation[still])
    assert np.all(np.isnan(step.episode_return[still])) and np.all(step.episode_length[still] == 0)
    for k in np.flatnonzero(done):
      ends += 1
      assert not np.array_equal(step.next_observation[k], step.observation[k])
      assert np.isfinite(step.episode_return[k])
      np.testing.assert_allclose(step.episode_return[k], returns[k], rtol=1e-5, atol=1e-6)
      assert step.episode_length[k] == lengths[k]
      returns[k], lengths[k] = 0.0, 0
  assert ends >= 8


def test_returned_arrays_are_not_reused_by_later_steps():
  env = environments.make("lbf-8x8-2p-2f-coop", num_envs=2, seed=0, episode_limit=2)
  rng = np.random.default_rng(0)
  env.reset()
  step = env.step(env.random_actions(rng))
  saved = Step(*(np.copy(x) for x in step))
  for _ in range(5):
    env.step(env.random_actions(rng))
  assert_steps_equal(step, saved)


def test_lbf_team_return_is_between_0_and_1():
  env = environments.make("lbf-8x8-2p-2f-coop", num_envs=8, seed=0, episode_limit=50)
  _, steps, _ = run(env, 400)
  returns = np.concatenate([s.episode_return[ended(s)] for s in steps])
  assert len(returns) >= 64
  assert np.all(returns >= 0.0) and np.all(returns <= 1.0 + 1e-6)
  assert np.all(np.concatenate([s.reward for s in steps]) >= 0.0)


def test_explicit_reset_restarts_every_episode():
  env = environments.make("lbf-8x8-2p-2f-coop", num_envs=2, seed=0, episode_limit=4)
  env.reset()
  rng = np.random.default_rng(0)
  for _ in range(2):
    env.step(env.random_actions(rng))
  env.reset()  # mid-episode: the step counters start again
  lengths = [env.step(env.random_actions(rng)).episode_length for _ in range(4)]
  np.testing.assert_array_equal(lengths, [[0, 0], [0, 0], [0, 0], [4, 4]])


# ------------------------------------------------------------------------------------------------
# The paper-era LBF food rule

def _food_levels_and_cap(env, resets):
  """(food levels, L = sum of the 3 lowest player levels) after each of `resets` resets of env 0."""
  out = []
  for _ in range(resets):
    env.reset()
    lbf = env.envs[0]
    cap = sum(sorted(p.level for p in lbf.players)[:3])
    out.append((lbf.field[lbf.field > 0].tolist(), cap))
  return out


def test_v2_food_rule_never_spawns_food_at_the_cap_in_noncoop_tasks():
  v2 = _food_levels_and_cap(environments.make("lbf-10x10-3p-3f", seed=0, lbf_food_rule="v2"), 150)
  v3 = _food_levels_and_cap(environments.make("lbf-10x10-3p-3f", seed=0), 150)
  for levels, cap in v2:
    assert len(levels) == 3
    assert all(1 <= level < cap for level in levels)
  assert sum(level == cap for levels, cap in v3 for level in levels) > 20  # 2.0.0 is inclusive
  assert all(1 <= level <= cap for levels, cap in v3 for level in levels)


def test_v2_food_rule_keeps_coop_food_at_the_cap():
  env = environments.make("lbf-8x8-2p-2f-coop", seed=0, lbf_food_rule="v2")
  assert type(env.envs[0]).__name__ == "_LegacyFoodForagingEnv"
  for levels, cap in _food_levels_and_cap(env, 30):
    assert levels == [cap, cap]


def test_v2_food_rule_is_ignored_for_rware():
  a = environments.make("rware-tiny-2ag", seed=4, lbf_food_rule="v2").reset()
  b = environments.make("rware-tiny-2ag", seed=4).reset()
  np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------------
# The fake env

def test_fake_has_the_vector_environment_api():
  env = make_fake(num_envs=3, seed=0)
  assert isinstance(env, FakeVectorEnvironment)
  assert env.spec == EnvironmentSpec(num_agents=2, observation_size=3, num_actions=3, episode_limit=5)
  assert env.num_envs == 3 and env.task.code_cutoff == 5
  for name in ("reset", "step", "random_actions", "close"):
    assert callable(getattr(env, name)) and callable(getattr(environments.VectorEnvironment, name))
  observation = env.reset()
  assert observation.shape == (3, 2, 3) and observation.dtype == np.float32
  assert np.all(observation.sum(axis=-1) == 1.0)  # one-hot per agent
  np.testing.assert_array_equal(np.argmax(observation[:, 1], -1), (np.argmax(observation[:, 0], -1) + 1) % 3)
  step = env.step(env.random_actions(np.random.default_rng(0)))
  assert step.reward.dtype == np.float32 and step.reward.shape == (3, 2)
  assert step.terminated.dtype == step.truncated.dtype == np.bool_
  assert step.episode_return.dtype == np.float32 and np.issubdtype(step.episode_length.dtype, np.integer)


def test_fake_rewards_the_right_joint_action_only():
  env = make_fake(num_envs=4, seed=1)
  observation = env.reset()
  right = right_actions(observation)
  np.testing.assert_array_equal(env.step(right).reward, np.ones((4, 2)))
  observation = env.step(right).next_observation
  wrong = right_actions(observation)
  wrong[:, 1] = (wrong[:, 1] + 1) % 3  # agent 1 misses
  np.testing.assert_array_equal(env.step(wrong).reward, np.zeros((4, 2)))


def test_fake_perfect_policy_episodes():
  env = make_fake(num_envs=2, seed=0)
  observation = env.reset()
  for t in range(1, 11):
    step = env.step(right_actions(observation))
    last = t % 5 == 0
    assert np.all(step.truncated == last) and not step.terminated.any()
    if last:
      np.testing.assert_array_equal(step.episode_return, [10.0, 10.0])
      np.testing.assert_array_equal(step.episode_length, [5, 5])
    else:
      assert np.all(np.isnan(step.episode_return)) and np.all(step.episode_length == 0)
      np.testing.assert_array_equal(step.next_observation, step.observation)
    observation = step.next_observation


def test_fake_random_policy_scores_one_ninth_per_agent_step():
  env = make_fake(num_envs=64, seed=0)
  _, steps, _ = run(env, 200)
  mean = np.mean([s.reward for s in steps])
  assert abs(mean - 1 / 9) < 0.02


def test_fake_is_deterministic_by_seed():
  _, a, _ = run(make_fake(num_envs=3, seed=2), 12)
  _, b, _ = run(make_fake(num_envs=3, seed=2), 12)
  _, c, _ = run(make_fake(num_envs=3, seed=3), 12)
  for x, y in zip(a, b):
    assert_steps_equal(x, y)
  assert not np.array_equal(np.stack([s.observation for s in a]), np.stack([s.observation for s in c]))
  # env k is seeded with seed + k
  np.testing.assert_array_equal(make_fake(3, seed=2).reset()[1], make_fake(1, seed=3).reset()[0])


def test_fake_terminate_on_miss():
  env = make_fake(num_envs=1, seed=0, terminate_on_miss=True)
  observation = env.reset()
  step = env.step(right_actions(observation))
  assert not step.terminated[0] and not step.truncated[0]
  wrong = (right_actions(step.next_observation) + 1) % 3
  step = env.step(wrong)
  assert step.terminated[0] and not step.truncated[0]
  assert step.episode_length[0] == 2 and step.episode_return[0] == 2.0
