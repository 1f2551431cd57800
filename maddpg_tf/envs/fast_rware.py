"""The Robotic Warehouse (rware 2.0.0 dynamics, flattened observations) for all envs at once: numba kernels.

`FastRWAREVectorEnvironment` steps the same episodes as the reference `VectorEnvironment` bit for bit (from
the same seeds and actions); see `fast_common`. One env's state (agent i, shelf s; ids are index + 1, as the
package numbers them, and 0 means none in the grids):

  position [N, 2] (x, y), direction [N] (UP 0, DOWN 1, LEFT 2, RIGHT 3), carrying [N] (shelf index or -1),
  delivered [N] (the package's `has_delivered`), requested_action [N] and previous [N, 2] (the package's
  `req_action` and `prev_x, prev_y`, -1 for None), shelf_position [S, 2], agent_grid and shelf_grid
  [H, W] (ids by cell), queue [Q] (requested shelves), requested [S], steps, inactive (the package's
  `_cur_steps`, `_cur_inactive_steps`).

Step (the package's rules). FORWARD targets the next cell in the agent's direction, clipped to the map;
every other action targets the agent's own cell. A carrying agent's move onto a cell holding a shelf is
cancelled (becomes NOOP) unless an agent carrying a shelf stands there. Moves are resolved on the graph of
cells with an edge from each agent's cell to its target: every agent has one out-edge, so each weakly
connected component holds at most one cycle. A component with a cycle commits the agents on the cycle,
except a 2-cycle (two agents swapping), which commits nobody; a component without one (a tree into one
free cell) commits the agents on one longest path into that cell, found by networkx's `dag_longest_path`.
Where two longest paths tie, the one networkx picks follows the iteration order of the component's node
set, so that component is resolved by networkx itself, on the same graph (`networkx_commits`); every
other case is resolved here. Uncommitted agents stand still. Then, in agent order: FORWARD moves (with the
carried shelf), LEFT/RIGHT turn, TOGGLE_LOAD picks up the shelf under an empty agent (read from the grids
before this step's moves) or drops the carried one off the highway. A goal cell holding a requested shelf
delivers it: the env's generator picks its replacement among the shelves not requested (in shelf order;
the goals are taken in order, so a replacement can be delivered at the next goal at once), and the agent
there gets +1 (INDIVIDUAL; GLOBAL: every agent; TWO_STAGE: +0.5 here and +0.5 at the next drop).

Observation of agent i (float32, 8 + (2r + 1)^2 * 7 values, sensor range r): x, y (divided by W - 1, H - 1
with normalised coordinates), carrying, one-hot direction, on highway; then, for each cell of the
(2r + 1)^2 window in row-major order (off-map cells are empty): has agent, that agent's one-hot direction
(UP's for none), has shelf, shelf requested.
"""

from __future__ import annotations

import networkx as nx
import numba
import numpy as np
from rware.warehouse import RewardType

from maddpg_tf.envs import snapshots
from maddpg_tf.envs.fast_common import FastVectorEnvironment

__all__ = ["FastRWAREVectorEnvironment", "networkx_commits"]

_NOOP, _FORWARD, _LEFT, _RIGHT, _TOGGLE = range(5)
_UP, _DOWN, _WEST, _EAST = range(4)  # Direction values: UP, DOWN, LEFT, RIGHT
# Turning through the package's clockwise list UP, RIGHT, DOWN, LEFT (indexed by direction value).
_TURN_RIGHT = np.array([_EAST, _WEST, _UP, _DOWN], np.int64)
_TURN_LEFT = np.array([_WEST, _EAST, _DOWN, _UP], np.int64)
_GLOBAL, _INDIVIDUAL, _TWO_STAGE = RewardType.GLOBAL.value, RewardType.INDIVIDUAL.value, RewardType.TWO_STAGE.value


# --------------------------------------------------------------------------------------------------
# Move resolution

def networkx_commits(starts, targets) -> np.ndarray:
  """Committed agents (bool [N]) for agents at cells `starts` requesting `targets` ((x, y) int pairs, in
  agent order), found with networkx on the graph the package builds, in the same order of calls."""
  graph = nx.DiGraph()
  for start, target in zip(starts, targets):
    graph.add_edge(start, target)
  agent_at = {start: i for i, start in enumerate(starts)}
  committed = np.zeros(len(starts), bool)
  components = [graph.subgraph(nodes).copy() for nodes in nx.weakly_connected_components(graph)]
  for component in components:
    try:
      cycle = nx.algorithms.find_cycle(component)
    except nx.NetworkXNoCycle:
      cells = nx.algorithms.dag_longest_path(component)
    else:
      if len(cycle) == 2:
        continue
      cells = [edge[0] for edge in cycle]
    for cell in cells:
      if cell in agent_at:
        committed[agent_at[cell]] = True
  return committed


@numba.njit(cache=True)
def _targets(actions, position, direction, carrying, agent_grid, shelf_grid, requested_action, target):
  """Each agent's requested action and target cell (FORWARD moves one cell, within the grid); a carried
  shelf cannot move onto a shelf's cell unless a shelf-carrying agent is there (the action becomes NOOP)."""
  height, width = agent_grid.shape
  num_agents = actions.shape[0]
  for i in range(num_agents):
    a = actions[i]
    x, y = position[i, 0], position[i, 1]
    tx, ty = x, y
    if a == _FORWARD:
      d = direction[i]
      if d == _UP:
        ty = max(0, y - 1)
      elif d == _DOWN:
        ty = min(height - 1, y + 1)
      elif d == _WEST:
        tx = max(0, x - 1)
      else:
        tx = min(width - 1, x + 1)
    if carrying[i] >= 0 and (tx != x or ty != y) and shelf_grid[ty, tx] != 0:
      there = agent_grid[ty, tx]
      if not (there != 0 and carrying[there - 1] >= 0):
        a = _NOOP
        tx, ty = x, y
    requested_action[i] = a
    target[i, 0], target[i, 1] = tx, ty


@numba.njit(cache=True)
def _agent_graph(position, target, agent_grid):
  """(next_agent, terminal, on_cycle): the agent on each agent's target (itself for a self-loop, -1 for a
  free cell), each agent's component (its free cell, or H*W + its cycle's first agent) and cycle membership."""
  height, width = agent_grid.shape
  num_agents = position.shape[0]
  # The graph on agents: next_agent[i] = the agent standing on i's target (i itself for a self-loop),
  # or -1 when the target is a free cell (the sink of i's component).
  next_agent = np.empty(num_agents, np.int64)
  for i in range(num_agents):
    tx, ty = target[i, 0], target[i, 1]
    if tx == position[i, 0] and ty == position[i, 1]:
      next_agent[i] = i
    else:
      next_agent[i] = agent_grid[ty, tx] - 1
  # terminal[i]: the component, named by its free cell (0..H*W-1) or H*W + its cycle's first agent.
  terminal = np.empty(num_agents, np.int64)
  on_cycle = np.zeros(num_agents, np.bool_)
  for i in range(num_agents):
    v = i
    steps = 0
    while next_agent[v] >= 0 and steps <= num_agents:
      v = next_agent[v]
      steps += 1
    if next_agent[v] < 0:
      terminal[i] = target[v, 1] * width + target[v, 0]
    else:
      first = v
      u = next_agent[v]
      while u != v:
        first = min(first, u)
        u = next_agent[u]
      terminal[i] = height * width + first
  for i in range(num_agents):
    v = next_agent[i]
    steps = 0
    while v >= 0 and v != i and steps < num_agents:
      v = next_agent[v]
      steps += 1
    on_cycle[i] = v == i
  return next_agent, terminal, on_cycle


@numba.njit(cache=True)
def _resolve_env(actions, position, direction, carrying, agent_grid, shelf_grid, requested_action, target,
                 committed):
  """Targets, cancellations and commits of one env (nothing else changes); True where networkx must
  settle a tie between longest paths (then `committed` is not set)."""
  height, width = agent_grid.shape
  num_agents = actions.shape[0]
  _targets(actions, position, direction, carrying, agent_grid, shelf_grid, requested_action, target)
  next_agent, terminal, on_cycle = _agent_graph(position, target, agent_grid)
  committed[:] = False
  depth = np.zeros(num_agents, np.int64)  # longest chain of agents queued behind each agent
  for _ in range(num_agents):
    for j in range(num_agents):
      v = next_agent[j]
      if v >= 0 and v != j and not on_cycle[j] and depth[j] + 1 > depth[v]:
        depth[v] = depth[j] + 1
  done = np.zeros(num_agents, np.bool_)
  for i in range(num_agents):
    if done[i]:
      continue
    if terminal[i] >= height * width:
      length = 0
      for j in range(num_agents):
        if terminal[j] == terminal[i] and on_cycle[j]:
          length += 1
      for j in range(num_agents):
        if terminal[j] == terminal[i]:
          done[j] = True
          committed[j] = on_cycle[j] and length != 2
      continue
    for j in range(num_agents):
      if terminal[j] == terminal[i]:
        done[j] = True
    # Walk back from the free cell along the deepest predecessor; a tie is networkx's to settle.
    v = -1
    while True:
      best, best_depth, ties = -1, -1, 0
      for j in range(num_agents):
        into = (next_agent[j] < 0 and terminal[j] == terminal[i]) if v < 0 else (next_agent[j] == v and j != v)
        if into:
          if depth[j] > best_depth:
            best, best_depth, ties = j, depth[j], 1
          elif depth[j] == best_depth:
            ties += 1
      if best < 0:
        break
      if ties > 1:
        return True
      committed[best] = True
      v = best
  return False


@numba.njit(cache=True)
def _resolve_envs(actions, position, direction, carrying, agent_grid, shelf_grid, requested_action, target,
                  committed, tie):
  """`_resolve_env` for every env; False (nothing computed) if an action is outside 0..4."""
  num_envs, num_agents = actions.shape
  for e in range(num_envs):
    for i in range(num_agents):
      if actions[e, i] < 0 or actions[e, i] > _TOGGLE:
        return False
  for e in range(num_envs):
    tie[e] = _resolve_env(actions[e], position[e], direction[e], carrying[e], agent_grid[e], shelf_grid[e],
                          requested_action[e], target[e], committed[e])
  return True


# --------------------------------------------------------------------------------------------------
# Moves, loads, deliveries found, observations

@numba.njit(cache=True)
def _apply_envs(target, committed, position, direction, carrying, delivered, requested_action, previous,
                shelf_position, agent_grid, shelf_grid, requested, steps, inactive, highways, goals,
                reward_type, reward, delivery):
  """Applies the resolved step to every env; `delivery[e]`: a goal holds a requested shelf (the caller
  draws the replacements; the inactivity clock of such an env is left to it)."""
  num_envs, num_agents = committed.shape
  num_shelves = shelf_position.shape[1]
  for e in range(num_envs):
    for i in range(num_agents):
      reward[e, i] = 0.0
      if not committed[e, i]:
        requested_action[e, i] = _NOOP
    for i in range(num_agents):
      x, y = position[e, i, 0], position[e, i, 1]
      previous[e, i, 0], previous[e, i, 1] = x, y
      a = requested_action[e, i]
      if a == _FORWARD:
        position[e, i, 0], position[e, i, 1] = target[e, i, 0], target[e, i, 1]
        s = carrying[e, i]
        if s >= 0:
          shelf_position[e, s, 0], shelf_position[e, s, 1] = target[e, i, 0], target[e, i, 1]
      elif a == _LEFT:
        direction[e, i] = _TURN_LEFT[direction[e, i]]
      elif a == _RIGHT:
        direction[e, i] = _TURN_RIGHT[direction[e, i]]
      elif a == _TOGGLE:
        if carrying[e, i] < 0:
          s = shelf_grid[e, y, x]
          if s != 0:
            carrying[e, i] = s - 1
        elif not highways[y, x]:
          carrying[e, i] = -1
          if delivered[e, i] and reward_type == _TWO_STAGE:
            reward[e, i] += 0.5
          delivered[e, i] = False
    shelf_grid[e] = 0
    for s in range(num_shelves):
      shelf_grid[e, shelf_position[e, s, 1], shelf_position[e, s, 0]] = s + 1
    agent_grid[e] = 0
    for i in range(num_agents):
      agent_grid[e, position[e, i, 1], position[e, i, 0]] = i + 1
    delivery[e] = False
    for g in range(goals.shape[0]):
      s = shelf_grid[e, goals[g, 1], goals[g, 0]]
      if s != 0 and requested[e, s - 1]:
        delivery[e] = True
    if not delivery[e]:
      inactive[e] += 1
    steps[e] += 1


@numba.njit(cache=True)
def _observe_envs(position, direction, carrying, agent_grid, shelf_grid, requested, highways, sensor_range,
                  normalised, indices, obs):
  height, width = highways.shape
  num_agents = position.shape[1]
  for e in indices:
    for i in range(num_agents):
      out = obs[e, i]
      out[:] = 0.0
      x, y = position[e, i, 0], position[e, i, 1]
      if normalised:
        out[0] = x / (width - 1)
        out[1] = y / (height - 1)
      else:
        out[0] = x
        out[1] = y
      out[2] = 1.0 if carrying[e, i] >= 0 else 0.0
      out[3 + direction[e, i]] = 1.0
      out[7] = highways[y, x]
      k = 8
      for cy in range(y - sensor_range, y + sensor_range + 1):
        for cx in range(x - sensor_range, x + sensor_range + 1):
          inside = 0 <= cx < width and 0 <= cy < height
          agent = agent_grid[e, cy, cx] if inside else 0
          shelf = shelf_grid[e, cy, cx] if inside else 0
          if agent == 0:
            out[k + 1] = 1.0
          else:
            out[k] = 1.0
            out[k + 1 + direction[e, agent - 1]] = 1.0
          k += 5
          if shelf != 0:
            out[k] = 1.0
            out[k + 1] = 1.0 if requested[e, shelf - 1] else 0.0
          k += 2


# --------------------------------------------------------------------------------------------------

class FastRWAREVectorEnvironment(FastVectorEnvironment):
  """RWARE tasks as arrays; see the module docstring and `fast_common.FastVectorEnvironment`."""

  family = "rware"
  diagnostics = ("networkx_steps",)

  def _configure(self, env) -> None:
    if not env.fast_obs or env.image_obs or env.image_dict_obs:
      raise ValueError(f"{self.task.gym_id}: only flattened observations have a fast backend")
    if env.msg_bits:
      raise ValueError(f"{self.task.gym_id}: message bits have no fast backend (msg_bits={env.msg_bits})")
    self._height, self._width = env.grid_size
    self._highways = np.asarray(env.highways, np.uint8).copy()
    self._goals = np.asarray(env.goals, np.int64).reshape(-1, 2)  # (x, y) per goal
    self._num_agents = int(env.n_agents)
    self._sensor_range = int(env.sensor_range)
    self._queue_size = int(env.request_queue_size)
    self._max_inactivity = env.max_inactivity_steps
    self._max_steps = env.max_steps
    self._reward_type = RewardType(env.reward_type).value
    self._normalised = bool(env.normalised_coordinates)
    ys, xs = np.nonzero(self._highways == 0)  # the package's shelves: off-highway cells, row-major
    self._shelf_home = np.stack([xs, ys], axis=1).astype(np.int64)
    self._cells = np.arange(self._height * self._width)
    self._no_terminal_state = np.zeros(self.num_envs, bool)  # episodes end by their step limit

  def _new_arrays(self, n: int) -> dict:
    a, s, h, w = self._num_agents, len(self._shelf_home), self._height, self._width
    return {
      "position": np.zeros((n, a, 2), np.int64),
      "direction": np.zeros((n, a), np.int64),
      "carrying": np.full((n, a), -1, np.int64),
      "delivered": np.zeros((n, a), bool),
      "requested_action": np.full((n, a), -1, np.int64),
      "previous": np.full((n, a, 2), -1, np.int64),
      "shelf_position": np.zeros((n, s, 2), np.int64),
      "agent_grid": np.zeros((n, h, w), np.int32),
      "shelf_grid": np.zeros((n, h, w), np.int32),
      "queue": np.zeros((n, self._queue_size), np.int64),
      "requested": np.zeros((n, s), bool),
      "steps": np.zeros(n, np.int64),
      "inactive": np.zeros(n, np.int64),
      "networkx_steps": np.zeros(n, np.int64),  # steps whose moves networkx resolved (a diagnostic)
    }

  # ---- reset: the package's draws, in its order --------------------------------------------------------
  def _reset_env(self, k: int) -> None:
    s = self._arrays
    rng = self._rngs[k]
    cells = rng.choice(self._cells, size=self._num_agents, replace=False)
    ys, xs = np.unravel_index(cells, (self._height, self._width))
    directions = rng.choice(4, size=self._num_agents)  # the same draws as choosing among the 4 Directions
    queue = rng.choice(len(self._shelf_home), size=self._queue_size, replace=False)
    s["position"][k, :, 0] = xs
    s["position"][k, :, 1] = ys
    s["direction"][k] = directions
    s["carrying"][k] = -1
    s["delivered"][k] = False
    s["requested_action"][k] = -1
    s["previous"][k] = -1
    s["shelf_position"][k] = self._shelf_home
    self._recalc_grids(k)
    s["queue"][k] = queue
    s["requested"][k] = False
    s["requested"][k, queue] = True
    s["steps"][k] = 0
    s["inactive"][k] = 0

  def _recalc_grids(self, k: int) -> None:
    s = self._arrays
    shelf_grid, agent_grid = s["shelf_grid"][k], s["agent_grid"][k]
    shelf_grid[:] = 0
    shelves = s["shelf_position"][k]
    shelf_grid[shelves[:, 1], shelves[:, 0]] = np.arange(1, len(shelves) + 1)
    agent_grid[:] = 0
    agents = s["position"][k]
    agent_grid[agents[:, 1], agents[:, 0]] = np.arange(1, len(agents) + 1)

  def _observe(self, indices: np.ndarray, out: np.ndarray) -> None:
    s = self._arrays
    _observe_envs(s["position"], s["direction"], s["carrying"], s["agent_grid"], s["shelf_grid"],
                  s["requested"], self._highways, self._sensor_range, self._normalised,
                  np.asarray(indices, np.int64), out)

  def _step_envs(self, actions: np.ndarray):
    s = self._arrays
    n, a = self._action_shape
    target = np.empty((n, a, 2), np.int64)
    committed = np.empty((n, a), bool)
    tie = np.empty(n, bool)
    if not _resolve_envs(actions, s["position"], s["direction"], s["carrying"], s["agent_grid"],
                         s["shelf_grid"], s["requested_action"], target, committed, tie):
      raise ValueError(f"actions must be in 0..{self.spec.num_actions - 1}, got values "
                       f"{sorted(set(actions[(actions < 0) | (actions > _TOGGLE)].tolist()))}")
    for k in np.flatnonzero(tie):
      starts = [tuple(p) for p in s["position"][k].tolist()]
      targets = [tuple(p) for p in target[k].tolist()]
      committed[k] = networkx_commits(starts, targets)
    s["networkx_steps"] += tie
    reward64 = np.empty((n, a), np.float64)
    delivery = np.empty(n, bool)
    _apply_envs(target, committed, s["position"], s["direction"], s["carrying"], s["delivered"],
                s["requested_action"], s["previous"], s["shelf_position"], s["agent_grid"], s["shelf_grid"],
                s["requested"], s["steps"], s["inactive"], self._highways, self._goals, self._reward_type,
                reward64, delivery)
    obs = np.empty(self._obs_shape, np.float32)
    if delivery.any():
      for k in np.flatnonzero(delivery):
        self._deliver(int(k), reward64[k])
    self._observe(np.arange(n), obs)
    done = np.zeros(n, bool)
    if self._max_inactivity:
      done |= s["inactive"] >= self._max_inactivity
    if self._max_steps:
      done |= s["steps"] >= self._max_steps
    return obs, reward64.astype(np.float32), done, self._no_terminal_state

  def _deliver(self, k: int, reward: np.ndarray) -> None:
    s = self._arrays
    requested, queue = s["requested"][k], s["queue"][k]
    delivered = False
    for gx, gy in self._goals.tolist():
      shelf = s["shelf_grid"][k, gy, gx] - 1
      if shelf < 0 or not requested[shelf]:
        continue
      delivered = True
      candidates = np.flatnonzero(~requested)
      new = candidates[self._rngs[k].choice(len(candidates))]  # the draws of choosing among the shelves
      queue[np.flatnonzero(queue == shelf)[0]] = new
      requested[shelf], requested[new] = False, True
      agent = s["agent_grid"][k, gy, gx] - 1
      if self._reward_type == _GLOBAL:
        reward += 1
      elif self._reward_type == _INDIVIDUAL:
        reward[agent] += 1
      else:
        s["delivered"][k, agent] = True
        reward[agent] += 0.5
    s["inactive"][k] = 0 if delivered else s["inactive"][k] + 1

  # ---- conversions --------------------------------------------------------------------------------------
  def _env_to_reference(self, k: int, env) -> None:
    snapshots.rware_to_env(self._arrays, k, env)

  def _env_from_reference(self, k: int, env) -> None:
    s = self._arrays
    if len(env.shelfs) != len(self._shelf_home) or len(env.agents) != self._num_agents:
      raise ValueError(f"env {k} has {len(env.shelfs)} shelves and {len(env.agents)} agents, expected "
                       f"{len(self._shelf_home)} and {self._num_agents}")
    for index, shelf in enumerate(env.shelfs):
      s["shelf_position"][k, index] = (shelf.x, shelf.y)
    for i, agent in enumerate(env.agents):
      s["position"][k, i] = (agent.x, agent.y)
      s["direction"][k, i] = agent.dir.value
      s["carrying"][k, i] = agent.carrying_shelf.id - 1 if agent.carrying_shelf is not None else -1
      s["delivered"][k, i] = agent.has_delivered
      s["requested_action"][k, i] = agent.req_action.value if agent.req_action is not None else -1
      s["previous"][k, i] = (agent.prev_x, agent.prev_y) if agent.prev_x is not None else (-1, -1)
    self._recalc_grids(k)
    queue = [shelf.id - 1 for shelf in env.request_queue]
    s["queue"][k] = queue
    s["requested"][k] = False
    s["requested"][k, queue] = True
    s["steps"][k] = env._cur_steps
    s["inactive"][k] = env._cur_inactive_steps
