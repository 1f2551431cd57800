"""The paper's tasks (Level-Based Foraging and the Robotic Warehouse), stepped as a batch.

The reference backend: the packages' own envs. Only `maddpg_tf.envs` knows LBF/RWARE details. The learner sees a `VectorEnvironment`:
arrays in, arrays out, with auto-reset and the episode cut-off handled here.

Env quirks handled here (lbforaging 2.0.0, rware 2.0.0, gymnasium 1.4):

* `step` returns ONE shared `done` bool, and `truncated` is always False. The env's own time limit is
  reported as done=True, so time-outs are detected with our own step counter.
* Neither package registers `max_episode_steps`; the limit is the ctor kwarg `max_episode_steps`
  (LBF) or `max_steps` (rware). So `gym.make` adds no TimeLimit wrapper.
* LBF's `reset(seed=s)` is not a pure function of `s` on a used env: players are placed while the
  previous episode's player positions still block cells. Only the very first reset of a fresh env is
  fully determined by the seed, which is all the seeding scheme below relies on.
* Gymnasium's vector envs fail on these envs (list rewards), so `num_envs` copies are stepped as a
  plain list in this process.

Time-step semantics of `VectorEnvironment.step` (see `Step`):
``terminated`` = the env ended the episode for a real reason (LBF: all food eaten); ``truncated`` =
the episode reached the cut-off (which is at most the env's own limit). Both can be True when the
last food is eaten exactly at the cut-off step (gymnasium's convention); a learner that bootstraps
should use ``terminated`` for that, and ``terminated | truncated`` for "the episode ended".
"""

from __future__ import annotations

import dataclasses
import operator
from typing import NamedTuple, Sequence

import gymnasium as gym
import numpy as np
import rware  # noqa: F401  (registers the rware-*-v2 ids)
from lbforaging.foraging import ForagingEnv  # (its package registers the Foraging-*-v3 ids)

from maddpg_tf.envs import snapshots
from maddpg_tf.envs.task_spec import TaskSpec

__all__ = ["EnvironmentSpec", "Step", "VectorEnvironment", "env_seed", "check_int", "check_same_vector",
           "state_header", "split_state", "concatenate_states", "LBF_FOOD_RULES"]


# --------------------------------------------------------------------------------------------------
# Extra registrations: the two 15x15 five-food tasks (lbforaging 2.0.0 stops at 4 food).

def _lbf_kwargs(size: int, players: int, food: int, coop: bool, partial: bool) -> dict:
  """The kwargs lbforaging 2.0.0 uses for `Foraging{-2s}-{s}x{s}-{p}p-{f}f{-coop}-v3`."""
  return {
    "players": players,
    "min_player_level": 1,
    "max_player_level": 2,
    "field_size": (size, size),
    "min_food_level": 1,
    "max_food_level": None,
    "max_num_food": food,
    "sight": 2 if partial else size,
    "max_episode_steps": 50,
    "force_coop": coop,
    "grid_observation": False,
    "penalty": 0.0,
  }


_EXTRA_LBF_IDS = {
  "Foraging-15x15-3p-5f-v3": _lbf_kwargs(15, 3, 5, coop=False, partial=False),
  "Foraging-15x15-4p-5f-v3": _lbf_kwargs(15, 4, 5, coop=False, partial=False),
}


def _register_extra_lbf_ids() -> None:
  for gym_id, kwargs in _EXTRA_LBF_IDS.items():
    if gym_id not in gym.registry:
      gym.register(id=gym_id, entry_point="lbforaging.foraging:ForagingEnv", kwargs=kwargs)


_register_extra_lbf_ids()


# --------------------------------------------------------------------------------------------------
# The old (paper-era) LBF food rule

class _LegacyFoodForagingEnv(ForagingEnv):
  """ForagingEnv whose food level upper bound is EXCLUSIVE, as in the lbforaging the paper ran.

  lbforaging 2.0.0 draws a non-coop food's level from [min, L] with L = the sum of the three lowest
  player levels; the paper's lbforaging (git a409b672) drew it from [min, L), so no non-coop food
  ever needed every low-level agent together. Coop tasks (level = L always) are unchanged. Only the
  level draw differs from 2.0.0's `spawn_food`; placement, permutation and RNG use are the same.
  """

  def spawn_food(self, max_num_food, min_levels, max_levels):
    food_count = 0
    attempts = 0
    min_levels = max_levels if self.force_coop else min_levels
    food_permutation = self.np_random.permutation(max_num_food)
    min_levels = min_levels[food_permutation]
    max_levels = max_levels[food_permutation]
    while food_count < max_num_food and attempts < 1000:
      attempts += 1
      row = self.np_random.integers(1, self.rows - 1)
      col = self.np_random.integers(1, self.cols - 1)
      if (
        self.neighborhood(row, col).sum() > 0
        or self.neighborhood(row, col, distance=2, ignore_diag=True) > 0
        or not self._is_empty_location(row, col)
      ):
        continue
      low, high = min_levels[food_count], max_levels[food_count]
      # The one change: integers(low, high) excludes `high` (2.0.0 uses high + 1).
      self.field[row, col] = low if low >= high else self.np_random.integers(low, high)
      food_count += 1
    self._food_spawned = self.field.sum()


# LBF's food-level rules, by name (the -v2 / -v3 of the two packages' gymnasium ids). A non-coop task draws
# each food's level up to L, the sum of the three lowest player levels; a coop task sets it to L, so both
# rules give coop tasks the same envs, draw for draw.
LBF_FOOD_RULES = {
    "v2": "lbforaging a409b672's rule, as the paper ran (food level below L)",
    "v3": "lbforaging 2.0.0's rule, as installed (food level up to L)",
}


# --------------------------------------------------------------------------------------------------
# The batched environment

class EnvironmentSpec(NamedTuple):
  """What the learner needs to size its networks and buffers."""

  num_agents: int
  observation_size: int  # the same for every agent
  num_actions: int  # the same for every agent
  episode_limit: int  # the cut-off in force


class Step(NamedTuple):
  """The result of one `VectorEnvironment.step` (leading axis = env; returned arrays are fresh).

  observation:      float32 [E, N, obs] the real next observation, also where an episode ended
                    (store this in the replay buffer).
  reward:           float32 [E, N].
  terminated:       bool [E] the episode ended for a real reason (LBF: all food eaten), not a time limit.
  truncated:        bool [E] the episode reached the cut-off (or the env's own limit).
  next_observation: float32 [E, N, obs] what to act on next: `observation`, except where an episode
                    ended, where it is the first observation of the next (auto-reset) episode.
  episode_return:   float32 [E] team return (sum over agents and steps) of the episode that ended
                    at this step; NaN where none ended.
  episode_length:   int64 [E] that episode's length in steps; 0 where none ended.
  """

  observation: np.ndarray
  reward: np.ndarray
  terminated: np.ndarray
  truncated: np.ndarray
  next_observation: np.ndarray
  episode_return: np.ndarray
  episode_length: np.ndarray


def _uniform_spaces(spaces: Sequence[gym.Space], what: str, gym_id: str) -> list:
  if any(space != spaces[0] for space in spaces[1:]):
    raise ValueError(f"{gym_id}: agents have different {what} spaces {list(spaces)}; not supported")
  return list(spaces)


def _environment_spec(env: gym.Env, gym_id: str, episode_limit: int) -> EnvironmentSpec:
  obs_spaces = _uniform_spaces(tuple(env.observation_space), "observation", gym_id)
  act_spaces = _uniform_spaces(tuple(env.action_space), "action", gym_id)
  obs_space, act_space = obs_spaces[0], act_spaces[0]
  if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
    raise ValueError(f"{gym_id}: observations must be flat vectors, got {obs_space}")
  if not isinstance(act_space, gym.spaces.Discrete):
    raise ValueError(f"{gym_id}: actions must be Discrete, got {act_space}")
  return EnvironmentSpec(
    num_agents=len(obs_spaces),
    observation_size=int(obs_space.shape[0]),
    num_actions=int(act_space.n),
    episode_limit=int(episode_limit),
  )


def check_int(value, what: str, low: int, high: int | None = None) -> int:
  """`value` as an int in [low, high], else ValueError naming the value and the range."""
  span = f"{low}..{high}" if high is not None else f">= {low}"
  try:
    if isinstance(value, bool):
      raise TypeError
    number = operator.index(value)
  except TypeError:
    raise ValueError(f"{what} must be an integer in {span}, got {value!r}") from None
  if number < low or (high is not None and number > high):
    raise ValueError(f"{what} must be in {span}, got {value!r}")
  return number


class VectorEnvironment:
  """`num_envs` copies of one task, stepped in this process, with auto-reset at episode ends.

  Build it with `make`. Env k is seeded with `env_seed(seed, first_index + k)` at its first reset only; later
  resets carry on with the env's own RNG, so a whole run is reproducible from `seed`. `first_index` lets a
  slice of a larger vector (`split_state`, as worker processes hold them) seed its envs as the whole would.
  """

  first_index = 0  # (class default: vectors pickled before slices existed)
  _async_actions = None

  def __init__(self, task: TaskSpec, num_envs: int, seed: int, episode_limit: int,
               lbf_food_rule: str = "v3", first_index: int = 0, _wrapped: list | None = None):
    self.task = task
    self.num_envs = num_envs
    self.seed = seed
    self.lbf_food_rule = lbf_food_rule
    self.first_index = first_index
    if _wrapped is None:
      spec = gym.spec(task.gym_id)
      if task.family == "lbf" and lbf_food_rule == "v2":
        spec = dataclasses.replace(spec, entry_point=_LegacyFoodForagingEnv)
      # We keep and step `.unwrapped`: that skips gym.make's OrderEnforcing wrapper on every call
      # (and there is no TimeLimit wrapper to lose: the cut-off is enforced by our step counter).
      _wrapped = [gym.make(spec, disable_env_checker=True) for _ in range(num_envs)]
    self._wrapped = _wrapped
    self.envs = [w.unwrapped for w in self._wrapped]
    self.spec = _environment_spec(self.envs[0], task.gym_id, episode_limit)
    self._cutoff = self.spec.episode_limit
    self._env_limit = task.env_episode_limit
    self._step_fns = [env.step for env in self.envs]
    self._reset_fns = [env.reset for env in self.envs]
    n, a, o = num_envs, self.spec.num_agents, self.spec.observation_size
    self._obs_shape = (n, a, o)
    self._reward_shape = (n, a)
    self._action_shape = (n, a)
    self._t = [0] * n  # steps taken in each env's current episode (Python ints: cheap to bump)
    self._returns = np.zeros(n, np.float64)  # team return so far of each current episode
    self._seeded = False
    self._ready = False
    self._closed = False

  # ----------------------------------------------------------------------------------------------
  def reset(self) -> np.ndarray:
    """Start a new episode in every env; float32 [num_envs, num_agents, observation_size]."""
    self._check_open()
    obs = np.empty(self._obs_shape, np.float32)
    for k, reset in enumerate(self._reset_fns):
      first_obs, _ = reset(seed=env_seed(self.seed, self.first_index + k)) if not self._seeded else reset()
      obs[k] = first_obs
      self._t[k] = 0
    self._returns[:] = 0.0
    self._seeded = True
    self._ready = True
    return obs

  def step(self, actions) -> Step:
    """Apply one joint action per env (int [num_envs, num_agents]); see `Step`."""
    if not self._ready:
      self._check_open()
      raise RuntimeError("VectorEnvironment.step called before reset()")
    actions = np.asarray(actions)
    if actions.shape != self._action_shape:
      raise ValueError(f"actions must have shape {self._action_shape}, got {actions.shape}")
    joint = actions.tolist()  # Python ints: the envs turn each into an Enum, fastest from int
    obs = np.empty(self._obs_shape, np.float32)
    reward = np.empty(self._reward_shape, np.float32)
    t_list, cutoff = self._t, self._cutoff
    ended = None
    for k, step in enumerate(self._step_fns):
      o, r, done, _, _ = step(joint[k])
      obs[k] = o
      reward[k] = r
      t = t_list[k] + 1
      t_list[k] = t
      if done or t >= cutoff:
        if ended is None:
          ended = [(k, done)]
        else:
          ended.append((k, done))
    self._returns += reward.sum(axis=1, dtype=np.float64)

    n = self.num_envs
    terminated = np.zeros(n, bool)
    truncated = np.zeros(n, bool)
    episode_return = np.full(n, np.nan, np.float32)
    episode_length = np.zeros(n, np.int64)
    next_obs = obs.copy()
    if ended is not None:
      for k, done in ended:
        t = t_list[k]
        # The env reports its own time limit as done=True: count that as a real end only if
        # the episode is over anyway (LBF: no food left).
        terminated[k] = done and (t < self._env_limit or self._really_over(k))
        truncated[k] = t >= cutoff
        episode_return[k] = self._returns[k]
        episode_length[k] = t
        next_obs[k] = self._reset_fns[k]()[0]
        t_list[k] = 0
        self._returns[k] = 0.0
    return Step(obs, reward, terminated, truncated, next_obs, episode_return, episode_length)

  def step_async(self, actions) -> None:
    """`step` in two halves, as `ProcessVectorEnvironment` has them (where the envs step in between):
    here the actions are kept and `step_wait` steps."""
    self._async_actions = actions

  def step_wait(self) -> Step:
    actions, self._async_actions = self._async_actions, None
    return self.step(actions)

  def _really_over(self, k: int) -> bool:
    """At the env's own time limit: did the episode also end for a real reason?"""
    if self.task.family == "lbf":
      return not self.envs[k].field.any()
    return False  # rware has no terminal state in the paper's tasks

  def random_actions(self, rng: np.random.Generator) -> np.ndarray:
    """Uniform random joint actions, int64 [num_envs, num_agents]."""
    return rng.integers(0, self.spec.num_actions, size=self._action_shape)

  # ----------------------------------------------------------------------------------------------
  # State: plain data (see `state_header`), the same whatever backend or process steps the envs.

  def get_state(self) -> dict:
    """The whole state (envs, generators, episode clocks and returns) as plain data: `state_header` with
    `envs` = {"t", "returns", "rng", "rng_seed", and the family's arrays of `maddpg_tf.envs.snapshots`
    once seeded}, one row per env."""
    envs = {"t": np.asarray(self._t, np.int64), "returns": self._returns.copy(),
            "rng": [snapshots.generator_state(env._np_random) if self._seeded else None for env in self.envs],
            "rng_seed": [getattr(env, "_np_random_seed", None) if self._seeded else None for env in self.envs]}
    if self._seeded:
      to_arrays = snapshots.FAMILY_ARRAYS[self.task.family][0]
      rows = [to_arrays(env) for env in self.envs]
      envs.update({name: np.stack([row[name] for row in rows]) for name in rows[0]})
    return {**state_header(self, "reference"), "envs": envs}

  def set_state(self, state: dict) -> None:
    """Continues from `state` (`get_state` of a vector of the same task and size, of either backend, e.g.
    from a checkpoint)."""
    check_same_vector(self, state, backends=("reference", "fast"))
    envs = state["envs"]
    self.seed, self.first_index = state["seed"], state["first_index"]
    if state["seeded"]:
      to_env = snapshots.FAMILY_ARRAYS[self.task.family][1]
      for k, env in enumerate(self.envs):
        env._np_random = snapshots.generator(envs["rng"][k])
        env._np_random_seed = envs["rng_seed"][k]
        to_env(envs, k, env)
    self._t = [int(t) for t in envs["t"]]
    self._returns = np.array(envs["returns"], np.float64)
    self._seeded, self._ready = bool(state["seeded"]), bool(state["ready"])
    if state["closed"]:
      self.close()

  def close(self) -> None:
    if not self._closed:
      for env in self._wrapped:
        env.close()
      self._closed = True
      self._ready = False

  @property
  def ready(self) -> bool:
    """Whether `step` may be called (reset and not closed)."""
    return self._ready

  def _check_open(self) -> None:
    if self._closed:
      raise RuntimeError("VectorEnvironment is closed")

  def __enter__(self) -> "VectorEnvironment":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def __repr__(self) -> str:
    return (f"VectorEnvironment({self.task.name!r}, num_envs={self.num_envs}, seed={self.seed}, "
            f"episode_limit={self._cutoff}, lbf_food_rule={self.lbf_food_rule!r})")


STATE_FIELDS = ("backend", "task", "num_envs", "seed", "episode_limit", "lbf_food_rule", "first_index",
                "seeded", "ready", "closed", "envs")


def state_header(env, backend: str) -> dict:
  """What every vector state holds besides `envs` (each backend's rows: lists or arrays, env axis first)."""
  return {"backend": backend, "task": env.task.gym_id, "num_envs": int(env.num_envs), "seed": int(env.seed),
          "episode_limit": int(env.spec.episode_limit), "lbf_food_rule": env.lbf_food_rule,
          "first_index": int(env.first_index), "seeded": bool(env._seeded), "ready": bool(env._ready),
          "closed": bool(env._closed)}


def check_same_vector(env, state, backends=None) -> None:
  """ValueError unless `state` is a vector state (`get_state`) of `env`'s task, size, cut-off and LBF food
  rule, from one of `backends` (None: any)."""
  if not isinstance(state, dict) or any(field not in state for field in STATE_FIELDS):
    raise ValueError(f"environment state must be a vector's get_state() (a dict of {', '.join(STATE_FIELDS)}), "
                     f"got {type(state).__name__}")
  if backends is not None and state["backend"] not in backends:
    raise ValueError(f"environment state must be a state of the {' or '.join(backends)} backend, got one of "
                     f"{state['backend']!r}")
  mine = (env.task.gym_id, env.num_envs, env.spec.episode_limit)
  theirs = (state["task"], state["num_envs"], state["episode_limit"])
  if mine != theirs:
    raise ValueError(f"environment state is for (task, num_envs, cut-off) {theirs}, this run has {mine}")
  if env.task.family == "lbf" and state["lbf_food_rule"] != env.lbf_food_rule:
    raise ValueError(f"environment state is for lbf_food_rule {state['lbf_food_rule']!r}, this run has "
                     f"{env.lbf_food_rule!r}")


def split_state(state: dict, sizes: Sequence[int]) -> list:
  """Consecutive slices of a vector state, `sizes` envs each (what worker processes hold)."""
  if sum(sizes) != state["num_envs"] or min(sizes) < 1:
    raise ValueError(f"split sizes {list(sizes)} must be >= 1 and sum to num_envs={state['num_envs']}")
  parts, start = [], 0
  for size in sizes:
    rows = slice(start, start + size)
    parts.append({**state, "num_envs": size, "first_index": state["first_index"] + start,
                  "envs": {name: value[rows] for name, value in state["envs"].items()}})
    start += size
  return parts


def concatenate_states(parts: Sequence[dict]) -> dict:
  """The inverse of `split_state`: one state of consecutive slices."""
  first = parts[0]
  for previous, part in zip(parts, parts[1:]):
    if (part["first_index"] != previous["first_index"] + previous["num_envs"] or part["task"] != first["task"]
        or part["backend"] != first["backend"]):
      raise ValueError("concatenate needs consecutive slices of one task's vector state")
  envs = {}
  for name, value in first["envs"].items():
    rows = [part["envs"][name] for part in parts]
    envs[name] = np.concatenate(rows) if isinstance(value, np.ndarray) else [row for r in rows for row in r]
  return {**first, "num_envs": sum(p["num_envs"] for p in parts), "ready": all(p["ready"] for p in parts),
          "closed": any(p["closed"] for p in parts), "envs": envs}


def env_seed(seed, index):
  """Seed of env `index` in a run seeded `seed`: distinct streams across runs and envs (not seed + k,
  which would make run 0's env 1 the same as run 1's env 0)."""
  return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])
