"""States as plain data: random generators and the packages' LBF and RWARE envs.

A checkpoint holds no live object, only what these functions give: a generator as its bit generator's
`state` dict (`generator_state`, `generator`), an env as named arrays (`lbf_arrays`, `rware_arrays`, one
row per env once stacked). The arrays are the fast backends' own (`maddpg_tf.envs.fast_lbf` /
`fast_rware` `_arrays`, under the same names), so a state of either backend restores into a package env
(`lbf_to_env`, `rware_to_env`), and a fast vector reads a reference state through `from_reference`.

What makes a package env exactly resumable (lbforaging 2.0.0's `ForagingEnv`, rware 2.0.0's `Warehouse`):
its generator (`_np_random`, `_np_random_seed`) and
  LBF: `field`, each player's position, level, score and last reward, `current_step`, `_food_spawned`,
    `_game_over` (`_valid_actions` is derived: `_gen_valid_moves`);
  RWARE: each shelf's position, each agent's position, direction, carried shelf, `has_delivered`,
    requested action and previous position, the request queue, `_cur_steps`, `_cur_inactive_steps`
    (`grid` is derived: `_recalc_grid`).
Everything else in them is set by the constructor from the task.
"""

import copy

import numpy as np
from rware.warehouse import Action, Agent, Direction, Shelf

BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def generator_state(rng):
  """`rng`'s state as plain data (its bit generator's `state` dict; None for None)."""
  return None if rng is None else copy.deepcopy(rng.bit_generator.state)


def generator(state):
  """The `numpy.random.Generator` in `state` (from `generator_state`); None for None."""
  if state is None:
    return None
  name = state.get("bit_generator") if isinstance(state, dict) else None
  if name not in BIT_GENERATORS:
    raise ValueError(f"a generator state must name a bit generator among {', '.join(BIT_GENERATORS)}, got "
                     f"{name if name is not None else state!r}")
  bits = getattr(np.random, name)()
  bits.state = state
  return np.random.Generator(bits)


# ---- LBF ------------------------------------------------------------------------------------------------

def lbf_arrays(env):
  """{name: array} of a reset `ForagingEnv`'s state."""
  players = env.players
  return {
      "field": np.array(env.field, np.int32),
      "placed": np.array([p.position is not None for p in players], bool),
      "position": np.array([p.position if p.position is not None else (0, 0) for p in players], np.int64),
      "level": np.array([p.level or 0 for p in players], np.int64),
      "score": np.array([p.score or 0.0 for p in players], np.float64),
      "reward": np.array([p.reward for p in players], np.float64),
      "steps": np.int64(env.current_step or 0),
      "spawned": np.int64(env._food_spawned),
      "game_over": np.bool_(bool(env._game_over)),
  }


def lbf_to_env(s, k, env):
  """Puts row `k` of the arrays `s` (`lbf_arrays` stacked, or a fast LBF vector's) into `env`."""
  env.field = np.array(s["field"][k], np.int32)
  for i, player in enumerate(env.players):
    if s["placed"][k, i]:
      player.setup((int(s["position"][k, i, 0]), int(s["position"][k, i, 1])), int(s["level"][k, i]),
                   env.field.shape)
    player.score = float(s["score"][k, i])
    player.reward = float(s["reward"][k, i])
  env.current_step = int(s["steps"][k])
  env._food_spawned = np.int64(s["spawned"][k])
  env._game_over = bool(s["game_over"][k])
  env._gen_valid_moves()


# ---- RWARE ----------------------------------------------------------------------------------------------

def rware_arrays(env):
  """{name: array} of a reset `Warehouse`'s state (shelf and agent ids are list positions + 1, as reset
  numbers them)."""
  agents = env.agents
  return {
      "shelf_position": np.array([(shelf.x, shelf.y) for shelf in env.shelfs], np.int64).reshape(-1, 2),
      "position": np.array([(a.x, a.y) for a in agents], np.int64).reshape(-1, 2),
      "direction": np.array([a.dir.value for a in agents], np.int64),
      "carrying": np.array([a.carrying_shelf.id - 1 if a.carrying_shelf is not None else -1 for a in agents],
                           np.int64),
      "delivered": np.array([a.has_delivered for a in agents], bool),
      "requested_action": np.array([a.req_action.value if a.req_action is not None else -1 for a in agents],
                                   np.int64),
      "previous": np.array([(a.prev_x, a.prev_y) if a.prev_x is not None else (-1, -1) for a in agents],
                           np.int64).reshape(-1, 2),
      "queue": np.array([shelf.id - 1 for shelf in env.request_queue], np.int64),
      "steps": np.int64(env._cur_steps),
      "inactive": np.int64(env._cur_inactive_steps),
  }


def rware_to_env(s, k, env):
  """Puts row `k` of the arrays `s` (`rware_arrays` stacked, or a fast RWARE vector's) into `env`."""
  shelves = []
  for index, (x, y) in enumerate(s["shelf_position"][k].tolist()):
    shelf = Shelf(x, y)
    shelf.id = index + 1
    shelves.append(shelf)
  agents = []
  for i in range(len(s["position"][k])):
    x, y = s["position"][k, i].tolist()
    agent = Agent(x, y, Direction(int(s["direction"][k, i])), env.msg_bits)
    agent.id = i + 1
    carrying = int(s["carrying"][k, i])
    agent.carrying_shelf = shelves[carrying] if carrying >= 0 else None
    agent.has_delivered = bool(s["delivered"][k, i])
    action = int(s["requested_action"][k, i])
    agent.req_action = Action(action) if action >= 0 else None
    px, py = s["previous"][k, i].tolist()
    agent.prev_x, agent.prev_y = (px, py) if px >= 0 else (None, None)
    agents.append(agent)
  env.shelfs = shelves
  env.agents = agents
  env.request_queue = [shelves[q] for q in s["queue"][k].tolist()]
  env._recalc_grid()
  env._cur_steps = int(s["steps"][k])
  env._cur_inactive_steps = int(s["inactive"][k])


FAMILY_ARRAYS = {"lbf": (lbf_arrays, lbf_to_env), "rware": (rware_arrays, rware_to_env)}
