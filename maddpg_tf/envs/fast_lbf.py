"""Level-Based Foraging (lbforaging 2.0.0 dynamics) for all envs at once: numba kernels over arrays.

`FastLBFVectorEnvironment` steps the same episodes as the reference `VectorEnvironment` bit for bit (from
the same seeds and actions); see `fast_common`. One env's state, per player p and food cell:

  field       int32 [R, C]   food level per cell (0 = none); foods never move
  position    int64 [P, 2]   (row, col); `placed` says whether the player has ever been placed
  level       int64 [P]
  reward      float64 [P]    the latest step's reward (the package's `player.reward`), score its running sum
  food_cells  int64 [F]      flat cells (row * C + col) of the foods on the field, ascending (the
                             row-major order observations list them in), then -1
  steps, spawned, game_over  the package's `current_step`, `_food_spawned` (sum of spawned levels), `_game_over`

Step (the package's rules): an action that is not valid now becomes NONE (a move is valid when the target
is inside the field and holds no food, whatever players stand there; LOAD when a 4-neighbour holds food).
Each player's target is its own cell (NONE, LOAD) or the neighbour it moves to; a player moves iff no other
player has the same target (so two players can end on one cell, as in the package). Then the loading
players are taken one at a time: the player's food is the first of its north (only from row 2 on), south,
west (only from column 2 on), east neighbours that holds food; the group is every loading player not yet
taken that is 4-adjacent to that food; all of the group are taken; if the sum of their levels reaches the
food's level, member i gets level_i * food / (sum * spawned) (or level_i * food without normalisation)
and the food is removed, else each loses `penalty`. The episode ends when no food is left or at the env's
step limit. Observations (per observer, float32): for each food in the observer's view (rows and columns
within `sight`, clipped to the field; in row-major order) its (row, col) relative to the view's clipped
top-left corner and level, then -1, -1, 0 for the rest; then the observer and every other player (in
player order) whose shifted position p - c + min(sight, c) lies in [0, 2 sight] in both coordinates,
as that shifted position and level, then -1, -1, 0 for the rest.

Order-dependent loads. The package takes its loading players by popping a Python `set` of player objects,
so the order follows memory addresses. The outcome can depend on that order only when a loading player
touches two foods; lbforaging's spawn rule never places two foods at Manhattan distance 2 (no food in a
spawned food's 3x3 block nor 2 cells along its row or column), so no cell touches two foods and no step of
an episode started by `reset` is order-dependent (0 in 1M random steps per task:
`tools/check_env_parity.py`). Such states can still be built by hand (or restored from a hand-edited
reference env). The fixed rule here is player index order: the loading player taken next is always the
lowest-indexed one not yet taken. A step where the result would differ under some other order is counted
in `order_dependent_steps` and marked in `last_order_dependent` (every order of up to 6 loading players is
tried; with more, a touching player is enough to mark the step); `touching_steps()` counts the steps where
a loading player touched two foods, order-dependent or not.
"""

from __future__ import annotations

import numba
import numpy as np

from maddpg_tf.envs import snapshots
from maddpg_tf.envs.fast_common import FastVectorEnvironment

__all__ = ["FastLBFVectorEnvironment", "load_foods"]

_NONE, _NORTH, _SOUTH, _WEST, _EAST, _LOAD = range(6)
_MAX_ENUMERATED_LOADERS = 6


# --------------------------------------------------------------------------------------------------
# Kernels (one env's arrays unless the name says otherwise)

@numba.njit(cache=True)
def _food_of(field, row, col):
  """The cell of the food a loading player at (row, col) takes (the package's search order), or -1."""
  rows, cols = field.shape
  if row > 1 and field[row - 1, col] > 0:
    return (row - 1) * cols + col
  if row < rows - 1 and field[row + 1, col] > 0:
    return (row + 1) * cols + col
  if col > 1 and field[row, col - 1] > 0:
    return row * cols + col - 1
  if col < cols - 1 and field[row, col + 1] > 0:
    return row * cols + col + 1
  return -1


@numba.njit(cache=True)
def load_foods(field, position, level, loading, order, spawned, penalty, normalize, reward):
  """Resolves the loads with the loading players taken in `order` (int [P], a permutation of 0..P-1).

  field int32 [R, C] is updated in place (loaded foods removed); reward float64 [P] must hold the
  rewards before loading (zeros) and receives the loaders' rewards.
  """
  num_players = loading.shape[0]
  cols = field.shape[1]
  pending = loading.copy()
  member = np.zeros(num_players, np.bool_)
  for index in range(num_players):
    p = order[index]
    if not pending[p]:
      continue
    cell = _food_of(field, position[p, 0], position[p, 1])
    if cell < 0:  # (the package would fail here; unreachable from its own states)
      pending[p] = False
      continue
    frow, fcol = cell // cols, cell % cols
    food = field[frow, fcol]
    total = 0
    for j in range(num_players):
      dr, dc = position[j, 0] - frow, position[j, 1] - fcol
      touches = (abs(dr) == 1 and dc == 0) or (abs(dc) == 1 and dr == 0)
      member[j] = touches and (pending[j] or j == p)
      if member[j]:
        total += level[j]
        pending[j] = False
    if total < food:
      for j in range(num_players):
        if member[j]:
          reward[j] -= penalty
      continue
    for j in range(num_players):
      if member[j]:
        reward[j] = float(level[j] * food)
        if normalize:
          reward[j] = reward[j] / float(total * spawned)
    field[frow, fcol] = 0


@numba.njit(cache=True)
def _order_dependent(field_before, position, level, loading, spawned, penalty, normalize, field_after,
                     reward_after):
  """0: no loading player touches two foods; 1: one does, but every order of taking the loading players
  gives the outcome of index order; 2: some order gives another outcome."""
  num_players = loading.shape[0]
  rows, cols = field_before.shape
  touching = False
  loaders = 0
  for p in range(num_players):
    if not loading[p]:
      continue
    loaders += 1
    r, c = position[p, 0], position[p, 1]
    foods = 0
    if r > 0 and field_before[r - 1, c] > 0:
      foods += 1
    if r < rows - 1 and field_before[r + 1, c] > 0:
      foods += 1
    if c > 0 and field_before[r, c - 1] > 0:
      foods += 1
    if c < cols - 1 and field_before[r, c + 1] > 0:
      foods += 1
    if foods > 1:
      touching = True
  if not touching:
    return 0
  if loaders > _MAX_ENUMERATED_LOADERS:
    return 2
  ids = np.empty(loaders, np.int64)
  n = 0
  for p in range(num_players):
    if loading[p]:
      ids[n] = p
      n += 1
  # Heap's algorithm over the orders of the loaders (the others never start a group).
  counters = np.zeros(loaders, np.int64)
  if _differs(field_before, position, level, loading, _pad_order(ids, loaders, num_players), spawned,
              penalty, normalize, field_after, reward_after):
    return 2
  i = 1
  while i < loaders:
    if counters[i] < i:
      if i % 2 == 0:
        ids[0], ids[i] = ids[i], ids[0]
      else:
        ids[counters[i]], ids[i] = ids[i], ids[counters[i]]
      if _differs(field_before, position, level, loading, _pad_order(ids, loaders, num_players), spawned,
                  penalty, normalize, field_after, reward_after):
        return 2
      counters[i] += 1
      i = 1
    else:
      counters[i] = 0
      i += 1
  return 1


@numba.njit(cache=True)
def _differs(field_before, position, level, loading, order, spawned, penalty, normalize, field_after,
             reward_after):
  """Whether loading in `order` gives another field or other rewards than (field_after, reward_after)."""
  field = field_before.copy()
  reward = np.zeros(loading.shape[0], np.float64)
  load_foods(field, position, level, loading, order, spawned, penalty, normalize, reward)
  for p in range(reward.shape[0]):
    if reward[p] != reward_after[p]:
      return True
  rows, cols = field.shape
  for r in range(rows):
    for c in range(cols):
      if field[r, c] != field_after[r, c]:
        return True
  return False


@numba.njit(cache=True)
def _pad_order(order, loaders, num_players):
  """`order[:loaders]` followed by the players not in it (they are not loading, so they start nothing)."""
  out = np.empty(num_players, np.int64)
  used = np.zeros(num_players, np.bool_)
  for k in range(loaders):
    out[k] = order[k]
    used[order[k]] = True
  n = loaders
  for p in range(num_players):
    if not used[p]:
      out[n] = p
      n += 1
  return out


@numba.njit(cache=True)
def _observe_env(field, position, level, food_cells, sight, observe_levels, obs):
  """obs float32 [P, O] of one env."""
  rows, cols = field.shape
  num_players = position.shape[0]
  num_food = food_cells.shape[0]
  per_player = 3 if observe_levels else 2
  base = 3 * num_food
  for i in range(num_players):
    out = obs[i]
    r, c = position[i, 0], position[i, 1]
    r0, r1 = max(r - sight, 0), min(r + sight + 1, rows)
    c0, c1 = max(c - sight, 0), min(c + sight + 1, cols)
    seen = 0
    for f in range(num_food):
      cell = food_cells[f]
      if cell < 0:
        continue
      fr, fc = cell // cols, cell % cols
      value = field[fr, fc]
      if value > 0 and r0 <= fr < r1 and c0 <= fc < c1 and seen < num_food:
        out[3 * seen] = fr - r0
        out[3 * seen + 1] = fc - c0
        out[3 * seen + 2] = value
        seen += 1
    for f in range(seen, num_food):
      out[3 * f] = -1.0
      out[3 * f + 1] = -1.0
      out[3 * f + 2] = 0.0
    shift_r, shift_c = min(sight, r), min(sight, c)
    slot = 0
    for k in range(num_players + 1):
      j = i if k == 0 else k - 1
      if k > 0 and j == i:
        continue
      tr = position[j, 0] - r + shift_r
      tc = position[j, 1] - c + shift_c
      if min(tr, tc) >= 0 and max(tr, tc) <= 2 * sight:
        out[base + per_player * slot] = tr
        out[base + per_player * slot + 1] = tc
        if observe_levels:
          out[base + per_player * slot + 2] = level[j]
        slot += 1
    for s in range(slot, num_players):
      out[base + per_player * s] = -1.0
      out[base + per_player * s + 1] = -1.0
      if observe_levels:
        out[base + per_player * s + 2] = 0.0


@numba.njit(cache=True)
def _observe_envs(field, position, level, food_cells, sight, observe_levels, indices, obs):
  for e in indices:
    _observe_env(field[e], position[e], level[e], food_cells[e], sight, observe_levels, obs[e])


@numba.njit(cache=True)
def _step_envs(actions, field, position, level, reward, score, steps, spawned, game_over, food_cells,
               max_steps, penalty, normalize, sight, observe_levels, obs, reward_out, done, load_code):
  """Steps every env in place; False (and nothing changed) if an action is outside 0..5."""
  num_envs, num_players = actions.shape
  for e in range(num_envs):
    for i in range(num_players):
      if actions[e, i] < 0 or actions[e, i] > _LOAD:
        return False
  rows, cols = field.shape[1], field.shape[2]
  target = np.empty((num_players, 2), np.int64)
  loading = np.zeros(num_players, np.bool_)
  moves = np.zeros(num_players, np.bool_)
  order = np.arange(num_players)
  field_before = np.empty((rows, cols), field.dtype)
  for e in range(num_envs):
    f = field[e]
    pos = position[e]
    steps[e] += 1
    any_load = False
    for i in range(num_players):
      reward[e, i] = 0.0
      r, c = pos[i, 0], pos[i, 1]
      a = actions[e, i]
      tr, tc = r, c
      loading[i] = False
      if a == _NORTH and r > 0 and f[r - 1, c] == 0:
        tr = r - 1
      elif a == _SOUTH and r < rows - 1 and f[r + 1, c] == 0:
        tr = r + 1
      elif a == _WEST and c > 0 and f[r, c - 1] == 0:
        tc = c - 1
      elif a == _EAST and c < cols - 1 and f[r, c + 1] == 0:
        tc = c + 1
      elif a == _LOAD:
        # The package's test sums the 4 neighbours clipped to the field (a clipped one is the
        # player's own cell, which never holds food).
        adjacent = (f[max(r - 1, 0), c] + f[min(r + 1, rows - 1), c] + f[r, max(c - 1, 0)]
                    + f[r, min(c + 1, cols - 1)])
        if adjacent > 0:
          loading[i] = True
          any_load = True
      target[i, 0], target[i, 1] = tr, tc
    for i in range(num_players):
      same = 0
      for j in range(num_players):
        if target[j, 0] == target[i, 0] and target[j, 1] == target[i, 1]:
          same += 1
      moves[i] = same == 1
    for i in range(num_players):
      if moves[i]:
        pos[i, 0], pos[i, 1] = target[i, 0], target[i, 1]
    load_code[e] = 0
    if any_load:
      field_before[:] = f
      load_foods(f, pos, level[e], loading, order, spawned[e], penalty, normalize, reward[e])
      cells = food_cells[e]
      kept = 0
      for k in range(cells.shape[0]):
        if cells[k] >= 0 and f[cells[k] // cols, cells[k] % cols] > 0:
          cells[kept] = cells[k]
          kept += 1
      cells[kept:] = -1
      load_code[e] = _order_dependent(field_before, pos, level[e], loading, spawned[e], penalty,
                                      normalize, f, reward[e])
    left = 0
    for r in range(rows):
      for c in range(cols):
        left += f[r, c]
    game_over[e] = left == 0 or max_steps <= steps[e]
    done[e] = game_over[e]
    for i in range(num_players):
      score[e, i] += reward[e, i]
      reward_out[e, i] = reward[e, i]
    _observe_env(f, pos, level[e], food_cells[e], sight, observe_levels, obs[e])
  return True


# --------------------------------------------------------------------------------------------------

class FastLBFVectorEnvironment(FastVectorEnvironment):
  """LBF tasks as arrays; see the module docstring and `fast_common.FastVectorEnvironment`."""

  family = "lbf"
  diagnostics = ("touching_steps",)

  def _configure(self, env) -> None:
    if env._grid_observation:
      raise ValueError(f"{self.task.gym_id}: grid observations have no fast backend; use the reference")
    self._rows, self._cols = env.field.shape
    self._num_players = len(env.players)
    self._num_food = int(env.max_num_food)
    self._min_player_level = np.asarray(env.min_player_level)
    self._max_player_level = np.asarray(env.max_player_level)
    self._min_food_level = np.asarray(env.min_food_level)
    self._max_food_level = None if env.max_food_level is None else np.asarray(env.max_food_level)
    self._sight = int(env.sight)
    self._max_steps = int(env._max_episode_steps)
    self._force_coop = bool(env.force_coop)
    self._normalize = bool(env._normalize_reward)
    self._observe_levels = bool(env._observe_agent_levels)
    self._penalty = float(env.penalty)
    self._legacy_food = self.lbf_food_rule == "v2"

  def _new_arrays(self, n: int) -> dict:
    p = self._num_players
    return {
      "field": np.zeros((n, self._rows, self._cols), np.int32),
      "position": np.zeros((n, p, 2), np.int64),
      "placed": np.zeros((n, p), bool),
      "level": np.zeros((n, p), np.int64),
      "reward": np.zeros((n, p), np.float64),
      "score": np.zeros((n, p), np.float64),
      "steps": np.zeros(n, np.int64),
      "spawned": np.zeros(n, np.int64),
      "game_over": np.zeros(n, bool),
      "food_cells": np.full((n, self._num_food), -1, np.int64),
      "touching_steps": np.zeros(n, np.int64),  # steps where a loading player touched two foods
    }

  # ---- reset: the package's spawn_players and spawn_food, drawing from the env's generator ------------
  def _reset_env(self, k: int) -> None:
    s = self._arrays
    rng = self._rngs[k]
    integers = rng.integers
    rows, cols, num_players = self._rows, self._cols, self._num_players
    positions = s["position"][k].tolist()
    placed = s["placed"][k].tolist()
    levels = s["level"][k].tolist()
    score = s["score"][k]
    permutation = rng.permutation(num_players)
    low_levels = self._min_player_level[permutation]
    high_levels = self._max_player_level[permutation]
    for i in range(num_players):
      for _ in range(1000):
        row, col = int(integers(0, rows)), int(integers(0, cols))
        if not any(placed[j] and positions[j][0] == row and positions[j][1] == col
                   for j in range(num_players)):
          positions[i] = [row, col]
          placed[i] = True
          levels[i] = int(integers(low_levels[i], high_levels[i] + 1))
          score[i] = 0.0
          break

    if self._max_food_level is None:
      high = np.array([sum(sorted(levels)[:3])] * self._num_food)
    else:
      high = self._max_food_level
    low = high if self._force_coop else self._min_food_level
    permutation = rng.permutation(self._num_food)
    low, high = low[permutation], high[permutation]
    foods = []  # (row, col, level)
    attempts = 0
    while len(foods) < self._num_food and attempts < 1000:
      attempts += 1
      row, col = int(integers(1, rows - 1)), int(integers(1, cols - 1))
      # The package's test: no food in the 3x3 block or 2 cells along the row or column, no player here.
      if any((abs(fr - row) <= 1 and abs(fc - col) <= 1) or (fr == row and abs(fc - col) <= 2)
             or (fc == col and abs(fr - row) <= 2) for fr, fc, _ in foods):
        continue
      if any(placed[j] and positions[j][0] == row and positions[j][1] == col for j in range(num_players)):
        continue
      lo, hi = low[len(foods)], high[len(foods)]
      if self._legacy_food:
        value = lo if lo >= hi else integers(lo, hi)
      else:
        value = lo if lo == hi else integers(lo, hi + 1)
      foods.append((row, col, int(value)))

    field = s["field"][k]
    field[:] = 0
    cells = s["food_cells"][k]
    cells[:] = -1
    for f, (row, col, value) in enumerate(sorted(foods)):
      field[row, col] = value
      cells[f] = row * cols + col
    s["position"][k] = positions
    s["placed"][k] = placed
    s["level"][k] = levels
    s["reward"][k] = 0.0
    s["steps"][k] = 0
    s["spawned"][k] = sum(value for _, _, value in foods)
    s["game_over"][k] = False

  def touching_steps(self) -> np.ndarray:
    """Per env, the steps where a loading player touched two foods (int64 [num_envs])."""
    return self._arrays["touching_steps"].copy()

  def _observe(self, indices: np.ndarray, out: np.ndarray) -> None:
    s = self._arrays
    _observe_envs(s["field"], s["position"], s["level"], s["food_cells"], self._sight, self._observe_levels,
                  np.asarray(indices, np.int64), out)

  def _step_envs(self, actions: np.ndarray):
    s = self._arrays
    obs = np.empty(self._obs_shape, np.float32)
    reward = np.empty(self._reward_shape, np.float32)
    done = np.empty(self.num_envs, bool)
    load_code = np.empty(self.num_envs, np.int8)
    ok = _step_envs(actions, s["field"], s["position"], s["level"], s["reward"], s["score"], s["steps"],
                    s["spawned"], s["game_over"], s["food_cells"], self._max_steps, self._penalty,
                    self._normalize, self._sight, self._observe_levels, obs, reward, done, load_code)
    if not ok:
      raise ValueError(f"actions must be in 0..{self.spec.num_actions - 1}, got values "
                       f"{sorted(set(actions[(actions < 0) | (actions > _LOAD)].tolist()))}")
    self.last_order_dependent = load_code == 2
    self.order_dependent_steps += self.last_order_dependent
    s["touching_steps"] += load_code > 0
    return obs, reward, done, ~s["field"].any(axis=(1, 2))

  # ---- conversions --------------------------------------------------------------------------------------
  def _env_to_reference(self, k: int, env) -> None:
    snapshots.lbf_to_env(self._arrays, k, env)

  def _env_from_reference(self, k: int, env) -> None:
    s = self._arrays
    cells = np.flatnonzero(env.field)
    if cells.size > self._num_food:
      raise ValueError(f"env {k} holds {cells.size} foods, more than max_num_food={self._num_food}")
    s["field"][k] = env.field
    s["food_cells"][k] = -1
    s["food_cells"][k, :cells.size] = cells
    for i, player in enumerate(env.players):
      s["placed"][k, i] = player.position is not None
      if player.position is not None:
        s["position"][k, i] = player.position
        s["level"][k, i] = player.level
      s["score"][k, i] = player.score or 0.0
      s["reward"][k, i] = player.reward
    s["steps"][k] = env.current_step or 0
    s["spawned"][k] = env._food_spawned
    s["game_over"][k] = bool(env._game_over)
