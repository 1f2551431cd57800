"""The fast LBF / RWARE backends (maddpg_tf.envs.fast_*) against the packages, step for step."""

import pickle

import lbforaging.foraging.environment as lbf_environment
import numpy as np
import pytest
from rware.warehouse import Direction

from maddpg_tf.envs.builder import TASKS, Step, VectorEnvironment, resolve_task
from maddpg_tf.envs.fast import FastVectorEnvironment
from maddpg_tf.envs.fast_lbf import FastLBFVectorEnvironment
from maddpg_tf.envs.fast_rware import FastRWAREVectorEnvironment
from tools import check_env_parity

LBF_TASKS = [name for name in TASKS if name.startswith("lbf")]
RWARE_TASKS = [name for name in TASKS if name.startswith("rware")]


def assert_same_step(x: Step, y: Step):
  for name in Step._fields:
    a, b = getattr(x, name), getattr(y, name)
    assert a.dtype == b.dtype and a.shape == b.shape, name
    assert a.tobytes() == b.tobytes(), f"{name}: {a} vs {b}"


def both(task, num_envs, seed=0, episode_limit=None):
  spec = resolve_task(task)
  limit = spec.code_cutoff if episode_limit is None else episode_limit
  return VectorEnvironment(spec, num_envs, seed, limit), FastVectorEnvironment(spec, num_envs, seed, limit)


def step_both(reference, fast, actions):
  x, y = reference.step(actions), fast.step(actions)
  assert_same_step(x, y)
  return y


# --------------------------------------------------------------------------------------------------
# Parity on every task (the short run of tools/check_env_parity.py)

@pytest.mark.parametrize("task", LBF_TASKS)
def test_lbf_parity_random_actions_through_resets(task):
  counts = check_env_parity.check_parity(task, steps=3200, num_envs=16, seed=3, state_every=50, log=lambda _: None)
  assert counts["compared_env_steps"] == counts["env_steps"] == 3200
  assert counts["excluded_order_dependent"] == 0
  assert counts["truncated"] >= 16 * 7  # every env went through 7 cut-offs and resets


@pytest.mark.parametrize("task", LBF_TASKS)
def test_lbf_parity_episodes_end_by_food_and_by_the_env_limit(task):
  """At the env's own limit (50): the env reports done, terminated only where no food is left."""
  counts = check_env_parity.check_parity(task, steps=4000, num_envs=8, seed=5, episode_limit=50, greedy=0.8,
                                         state_every=100, log=lambda _: None)
  assert counts["terminated"] > 0  # the last food was eaten
  assert counts["episodes"] > counts["terminated"]  # and some episodes ran to the limit


@pytest.mark.parametrize("task", RWARE_TASKS)
def test_rware_parity_random_actions_through_resets(task):
  counts = check_env_parity.check_parity(task, steps=2 * 1100, num_envs=2, seed=4, state_every=100,
                                         log=lambda _: None)
  assert counts["truncated"] == 4  # both envs reached the 500-step limit twice


@pytest.mark.parametrize("task", ["lbf-8x8-2p-2f-2s-coop", "lbf-10x10-3p-3f-2s"])
def test_partial_views_occur_and_match(task):
  """Sight 2: some observations miss a player or food that exists; the parity runs above cover them."""
  fast = FastVectorEnvironment(task, 16, 0, 25)
  obs = fast.reset()
  rng = np.random.default_rng(0)
  hidden_player = hidden_food = 0
  num_agents, num_food = fast.spec.num_agents, (fast.spec.observation_size - 3 * fast.spec.num_agents) // 3
  for _ in range(50):
    players = obs[..., 3 * num_food:].reshape(16, num_agents, num_agents, 3)
    hidden_player += int((players[..., 0] == -1).sum())
    foods_seen = (obs[..., 2:3 * num_food:3] > 0).sum(axis=-1)
    foods_left = (fast._arrays["field"] > 0).sum(axis=(1, 2))[:, None]
    hidden_food += int((foods_seen < foods_left).sum())
    obs = fast.step(fast.random_actions(rng)).next_observation
  assert hidden_player > 0 and hidden_food > 0


def test_lbf_view_of_players_is_not_clipped_like_the_food_view():
  """The package places other players by p - c + min(sight, c): near the top edge the player window
  reaches 2 * sight rows down, while the food window is clipped to sight rows."""
  reference, fast = both("lbf-8x8-2p-2f-2s-coop", 1)
  reference.reset()
  env = reference.envs[0]
  env.field[:] = 0
  env.field[4, 4] = 2
  env.players[0].position, env.players[1].position = (0, 0), (4, 0)
  env._gen_valid_moves()
  fast = FastVectorEnvironment.from_reference(reference)
  obs = fast.step(np.array([[0, 0]])).observation
  ref_obs = env._make_gym_obs()
  np.testing.assert_array_equal(obs[0], np.stack(ref_obs))
  assert obs[0, 0, 6:9].tolist() == [0, 0, env.players[0].level]
  assert obs[0, 0, 9:11].tolist() == [4, 0]  # player 1, 4 rows down, is seen by player 0
  assert obs[0, 1, 9:11].tolist() == [-1, -1]  # but player 0 is not seen by player 1 (2 rows up at most)


def test_lbf_spawned_foods_never_share_a_neighbour():
  """Why no reset-started LBF episode has an order-dependent load: foods are >= 3 apart (Manhattan)."""
  fast = FastVectorEnvironment("lbf-15x15-4p-5f", 32, 1, 25)
  for _ in range(20):
    fast.reset()
    for field in fast._arrays["field"]:
      cells = np.argwhere(field > 0)
      gaps = np.abs(cells[:, None, :] - cells[None, :, :]).sum(-1) + 99 * np.eye(len(cells), dtype=int)
      assert gaps.min() >= 3


# --------------------------------------------------------------------------------------------------
# LBF: the pinned rule for the package's order-dependent loads

class _PopInOrder(set):
  """A set whose pop() returns the player of lowest `rank` (the package pops an arbitrary member)."""

  rank = None

  def pop(self):
    item = min(self, key=type(self).rank)
    self.remove(item)
    return item

  def __sub__(self, other):
    return type(self)(set.__sub__(self, other))


def _two_foods_touching_one_loader():
  """Player 0 at (2, 4) touches food A (1, 4), level 1, north and food B (2, 5), level 2, east; player 1
  at (3, 5) touches only B. Both level 1, both LOAD.
  Player 0 taken first: it loads A alone (1 >= 1, reward 1 * 1 / (1 * 3)); player 1 alone fails B.
  Player 1 taken first: B's group is both players (2 >= 2, rewards 1 * 2 / (2 * 3) each); A stays."""
  reference = VectorEnvironment(resolve_task("lbf-8x8-2p-2f-coop"), 1, 0, 25)
  reference.reset()
  env = reference.envs[0]
  env.field[:] = 0
  env.field[1, 4], env.field[2, 5] = 1, 2
  env._food_spawned = env.field.sum()
  for player, position in zip(env.players, [(2, 4), (3, 5)]):
    player.position, player.level = position, 1
  env._gen_valid_moves()
  return reference


def test_lbf_pinned_rule_is_player_index_order(monkeypatch):
  reference = _two_foods_touching_one_loader()
  fast = FastVectorEnvironment.from_reference(reference)
  load = np.array([[5, 5]])
  y = fast.step(load)
  assert y.reward.tolist() == [[np.float32(1 / 3), 0.0]]
  field = fast._arrays["field"][0]
  assert field[1, 4] == 0 and field[2, 5] == 2
  assert fast.last_order_dependent.tolist() == [True]
  assert fast.order_dependent_steps.tolist() == [1] and fast.touching_steps().tolist() == [1]

  def popping(reference, sign):
    index = {id(p): i for i, p in enumerate(reference.envs[0].players)}
    return type("Popping", (_PopInOrder,), {"rank": staticmethod(lambda p: sign * index[id(p)])})

  before = pickle.dumps(reference)
  monkeypatch.setattr(lbf_environment, "set", popping(reference, 1), raising=False)
  assert_same_step(reference.step(load), y)  # the package in index order = the pinned rule

  reference = pickle.loads(before)
  monkeypatch.setattr(lbf_environment, "set", popping(reference, -1), raising=False)
  other = reference.step(load)
  assert other.reward.tolist() == [[np.float32(1 / 3), np.float32(1 / 3)]]  # the other order: B is loaded
  assert reference.envs[0].field[2, 5] == 0 and reference.envs[0].field[1, 4] == 1


def test_lbf_touching_without_order_dependence_is_not_excluded():
  """A lone loader touching two foods picks by the package's search order whatever the set order."""
  reference = _two_foods_touching_one_loader()
  reference.envs[0].players[1].position = (6, 1)
  reference.envs[0]._gen_valid_moves()
  fast = FastVectorEnvironment.from_reference(reference)
  step_both(reference, fast, np.array([[5, 5]]))
  assert fast.last_order_dependent.tolist() == [False] and fast.touching_steps().tolist() == [1]


# --------------------------------------------------------------------------------------------------
# RWARE: deliveries, request-queue refills, move resolution

def _rware_scene(task="rware-tiny-4ag", seed=0):
  reference = VectorEnvironment(resolve_task(task), 1, seed, 500)
  reference.reset()
  return reference, reference.envs[0]


def _place(env, agent, x, y, direction, shelf=None):
  agent.x, agent.y, agent.dir = x, y, direction
  agent.carrying_shelf = shelf
  if shelf is not None:
    shelf.x, shelf.y = x, y


def test_rware_deliveries_at_both_goals_refill_the_queue():
  reference, env = _rware_scene()
  (gx0, gy0), (gx1, gy1) = env.goals
  far = [(0, 0), (9, 0)]
  _place(env, env.agents[0], gx0, gy0 - 1, Direction.DOWN, env.request_queue[0])
  _place(env, env.agents[1], gx1, gy1 - 1, Direction.DOWN, env.request_queue[1])
  for agent, (x, y) in zip(env.agents[2:], far):
    _place(env, agent, x, y, Direction.UP)
  env._recalc_grid()
  fast = FastVectorEnvironment.from_reference(reference)
  queue_before = list(fast._arrays["queue"][0])
  y = step_both(reference, fast, np.array([[1, 1, 0, 0]]))
  assert y.reward.tolist() == [[1.0, 1.0, 0.0, 0.0]]
  queue_after = list(fast._arrays["queue"][0])
  assert queue_after[0] != queue_before[0] and queue_after[1] != queue_before[1]
  assert queue_after[2:] == queue_before[2:]
  # Staying on the goal with a shelf no longer requested earns nothing; then random play to the limit.
  assert step_both(reference, fast, np.array([[0, 0, 0, 0]])).reward.sum() == 0
  rng = np.random.default_rng(0)
  for _ in range(500):
    step_both(reference, fast, fast.random_actions(rng))


def test_rware_move_resolution_cases():
  """A 2-cycle (swap) moves nobody; a queue behind a mover follows it and beats a lone rival; a carrying
  agent cannot enter a standing shelf's cell; two equal rivals for one free cell: networkx's pick."""
  reference, env = _rware_scene(seed=1)
  a = env.agents
  _place(env, a[0], 0, 0, Direction.RIGHT)  # swaps with agent 1: nobody moves
  _place(env, a[1], 1, 0, Direction.LEFT)
  _place(env, a[2], 9, 0, Direction.UP)  # forward into the wall: a self-loop
  _place(env, a[3], 9, 10, Direction.DOWN)
  env._recalc_grid()
  fast = FastVectorEnvironment.from_reference(reference)
  step_both(reference, fast, np.array([[1, 1, 1, 1]]))
  assert fast._arrays["position"][0].tolist() == [[0, 0], [1, 0], [9, 0], [9, 10]]

  reference, env = _rware_scene(seed=2)
  a = env.agents
  _place(env, a[0], 3, 3, Direction.RIGHT)  # agents 0 and 1 both into the free cell (4, 3)
  _place(env, a[1], 5, 3, Direction.LEFT)
  _place(env, a[2], 2, 3, Direction.RIGHT)  # queued behind agent 0
  _place(env, a[3], 0, 5, Direction.RIGHT, shelf=env.shelfs[0])  # carrying, facing a shelf column
  env._recalc_grid()
  fast = FastVectorEnvironment.from_reference(reference)
  step_both(reference, fast, np.array([[1, 1, 1, 1]]))
  assert fast._arrays["networkx_steps"].tolist() == [0]  # depths 1 (agents 2 -> 0) and 0: no tie
  assert fast._arrays["position"][0, 3].tolist() == [0, 5]

  reference, env = _rware_scene(seed=3)
  a = env.agents
  _place(env, a[0], 3, 3, Direction.RIGHT)
  _place(env, a[1], 5, 3, Direction.LEFT)
  _place(env, a[2], 0, 0, Direction.UP)
  _place(env, a[3], 9, 0, Direction.UP)
  env._recalc_grid()
  fast = FastVectorEnvironment.from_reference(reference)
  step_both(reference, fast, np.array([[1, 1, 1, 1]]))
  assert fast._arrays["networkx_steps"].tolist() == [1]  # equal depths: networkx picks
  assert sorted(fast._arrays["position"][0, :2, 0].tolist()) in ([3, 4], [4, 5])


def test_rware_rotation_of_four_agents():
  reference, env = _rware_scene(seed=4)
  cells = [((0, 9), Direction.RIGHT), ((1, 9), Direction.DOWN), ((1, 10), Direction.LEFT),
           ((0, 10), Direction.UP)]
  for agent, ((x, y), direction) in zip(env.agents, cells):
    _place(env, agent, x, y, direction)
  env._recalc_grid()
  fast = FastVectorEnvironment.from_reference(reference)
  step_both(reference, fast, np.array([[1, 1, 1, 1]]))
  assert fast._arrays["position"][0].tolist() == [[1, 9], [1, 10], [0, 10], [0, 9]]


# --------------------------------------------------------------------------------------------------
# Interface, checkpoints (both ways), slices

@pytest.mark.parametrize("task", ["lbf-10x10-3p-3f", "rware-tiny-2ag"])
def test_interface_matches_the_reference(task):
  reference, fast = both(task, 3, seed=7)
  assert isinstance(fast, FastLBFVectorEnvironment if task.startswith("lbf") else FastRWAREVectorEnvironment)
  for name in ("task", "num_envs", "seed", "spec", "first_index", "lbf_food_rule"):
    assert getattr(fast, name) == getattr(reference, name), name
  assert not fast.ready
  with pytest.raises(RuntimeError, match="before reset"):
    fast.step(np.zeros((3, fast.spec.num_agents), int))
  np.testing.assert_array_equal(reference.reset(), fast.reset())
  assert fast.ready
  with pytest.raises(ValueError, match="shape"):
    fast.step(np.zeros((2, fast.spec.num_agents), int))
  with pytest.raises(ValueError, match=f"0..{fast.spec.num_actions - 1}"):
    fast.step(np.full((3, fast.spec.num_agents), fast.spec.num_actions))
  with pytest.raises(ValueError, match="whole numbers"):
    fast.step(np.full((3, fast.spec.num_agents), 0.5))
  fast.step_async(np.zeros((3, fast.spec.num_agents), int))
  reference.step_async(np.zeros((3, fast.spec.num_agents), int))
  assert_same_step(reference.step_wait(), fast.step_wait())
  rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
  np.testing.assert_array_equal(reference.random_actions(rng_a), fast.random_actions(rng_b))
  fast.close()
  with pytest.raises(RuntimeError, match="closed"):
    fast.reset()


def test_wrong_family_is_refused():
  with pytest.raises(ValueError, match="'rware' task"):
    FastLBFVectorEnvironment("rware-tiny-2ag", 1, 0, 500)


@pytest.mark.parametrize("task", ["lbf-15x15-4p-5f", "rware-tiny-4ag"])
def test_checkpoints_convert_both_ways_mid_episode(task):
  reference, fast = both(task, 4, seed=11)
  reference.reset(), fast.reset()
  rng = np.random.default_rng(2)
  for _ in range(37):
    step_both(reference, fast, fast.random_actions(rng))
  # fast -> reference, reference -> fast, states of both into either backend (other seeds: the state
  # must win): all continue identically.
  as_reference = fast.to_reference()
  from_reference = FastVectorEnvironment.from_reference(reference)
  unpickled = FastVectorEnvironment(task, 4, 99, fast.spec.episode_limit)
  unpickled.set_state(pickle.loads(pickle.dumps(fast.get_state())))
  restored = FastVectorEnvironment(task, 4, 98, fast.spec.episode_limit)
  restored.set_state(reference.get_state())  # a reference checkpoint into a fast vector
  reference_of_fast = VectorEnvironment(resolve_task(task), 4, 97, fast.spec.episode_limit)
  reference_of_fast.set_state(fast.get_state())  # a fast checkpoint into a reference vector
  reference_of_reference = VectorEnvironment(resolve_task(task), 4, 96, fast.spec.episode_limit)
  reference_of_reference.set_state(reference.get_state())
  for _ in range(40):
    actions = fast.random_actions(rng)
    y = step_both(reference, fast, actions)
    for other in (as_reference, from_reference, unpickled, restored, reference_of_fast, reference_of_reference):
      assert_same_step(other.step(actions), y)


def test_set_state_refuses_another_task():
  fast = FastVectorEnvironment("lbf-8x8-2p-2f-coop", 2, 0, 25)
  with pytest.raises(ValueError, match="cut-off"):
    fast.set_state(FastVectorEnvironment("lbf-8x8-2p-2f-coop", 3, 0, 25).get_state())
  with pytest.raises(ValueError, match="must be a"):
    fast.set_state(object())


@pytest.mark.parametrize("task", ["lbf-8x8-2p-2f-coop", "rware-tiny-2ag"])
def test_split_and_concatenate_as_the_reference(task):
  reference, fast = both(task, 5, seed=13)
  rng = np.random.default_rng(3)
  parts = fast.split([2, 3])
  assert [p.first_index for p in parts] == [0, 2]
  first = np.concatenate([p.reset() for p in parts])
  np.testing.assert_array_equal(first, reference.reset())
  for _ in range(30):
    actions = fast.random_actions(rng)
    x = reference.step(actions)
    ys = [parts[0].step(actions[:2]), parts[1].step(actions[2:])]
    assert_same_step(x, Step(*[np.concatenate(fields) for fields in zip(*ys)]))
  whole = FastVectorEnvironment.concatenate(parts)
  actions = fast.random_actions(rng)
  assert_same_step(reference.step(actions), whole.step(actions))


def test_lbf_legacy_food_rule_v2():
  spec = resolve_task("lbf-15x15-3p-5f")
  reference = VectorEnvironment(spec, 8, 2, 25, lbf_food_rule="v2")
  fast = FastVectorEnvironment(spec, 8, 2, 25, lbf_food_rule="v2")
  np.testing.assert_array_equal(reference.reset(), fast.reset())
  rng = np.random.default_rng(4)
  for _ in range(60):
    step_both(reference, fast, fast.random_actions(rng))


def test_parity_tool_command_line(capsys):
  assert check_env_parity.main(["--task=lbf-8x8-2p-2f-coop", "--steps=320", "--count_steps=320"]) == 0
  out = capsys.readouterr().out
  assert "compared_env_steps=320" in out and "order_dependent=0" in out
  with pytest.raises(SystemExit) as error:
    check_env_parity.main(["--task=nope"])
  assert error.value.code == 2
