"""What the fast LBF and RWARE backends share: the batch clock, auto-reset, `Step`, state and slices.

`FastVectorEnvironment(task, num_envs, seed, episode_limit, lbf_food_rule="v3", first_index=0)` has
`maddpg_tf.envs.vector.VectorEnvironment`'s interface and semantics, and gives the same `Step`s bit for bit
from the same seeds and actions: the dynamics are re-implemented as numba kernels over all envs at once
(`fast_lbf`, `fast_rware`), and every random draw is made by the same `numpy.random.Generator` per env,
seeded as gymnasium seeds it, with the same calls in the same order as the packages make them.

Clock semantics (as the reference): env k is seeded with `env_seed(seed, first_index + k)` at the first
`reset()` only; an env whose episode ends (the env's own end, or the cut-off `episode_limit`) is reset at
once, and `Step.next_observation` holds its first observation. `terminated` = the env ended the episode
for a real reason (LBF: no food left), `truncated` = the cut-off was reached.

Why numba, not NumPy over the env axis: at 16 envs a NumPy version of LBF's moves alone (action validity,
collisions) took 62 us per step, the whole numba step (moves, loads, observations) 20 us; RWARE's move
resolution walks chains and cycles, a loop per env. The kernels are compiled once per checkout
(`cache=True`; the first use compiles for about 15 s, later processes load them in well under a second).

Checkpoints: `get_state()` is plain data (`maddpg_tf.envs.vector.state_header`, with the arrays, generator
states and clocks of every env), and `set_state` reads a state of either backend, so a run can change
backend at a checkpoint; `to_reference()` gives a reference `VectorEnvironment` in exactly the same state
and `from_reference(vector)` the inverse.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numba
import numpy as np
from gymnasium.utils import seeding

from maddpg_tf.envs import snapshots
from maddpg_tf.envs.task_spec import TaskSpec
from maddpg_tf.envs.tasks import resolve_task
from maddpg_tf.envs.vector import Step, VectorEnvironment, check_same_vector, env_seed, state_header

__all__ = ["FastVectorEnvironment", "check_actions_dtype"]

# family -> its subclass of FastVectorEnvironment, filled as `fast_lbf` and `fast_rware` define theirs: the
# base class builds them without importing their modules, which import this one.
_FAMILY_CLASSES: dict = {}


def check_actions_dtype(actions: np.ndarray) -> np.ndarray:
  """`actions` as int64, refusing values that are not whole numbers (the packages' Enums refuse them)."""
  if actions.dtype.kind in "iub":
    return actions.astype(np.int64, copy=False)
  as_int = actions.astype(np.int64)
  if not np.array_equal(as_int, actions):
    raise ValueError(f"actions must be whole numbers, got dtype {actions.dtype} with a fractional value")
  return as_int


_PROBES: dict = {}


def _probe(task: TaskSpec, episode_limit: int, lbf_food_rule: str):
  """(EnvironmentSpec, one fresh reference env) for a task: the spec exactly as the reference computes it."""
  key = (task, int(episode_limit), lbf_food_rule)
  if key not in _PROBES:
    probe = VectorEnvironment(task, 1, 0, episode_limit, lbf_food_rule)
    _PROBES[key] = (probe.spec, probe.envs[0])
  return _PROBES[key]


class FastVectorEnvironment:
  """`num_envs` copies of one task as arrays, stepped by numba kernels; `VectorEnvironment`'s interface.

  Calling `FastVectorEnvironment(task, ...)` builds the family's class (`fast_lbf.FastLBFVectorEnvironment`
  or `fast_rware.FastRWAREVectorEnvironment`; each registers itself when its module is imported, and
  `maddpg_tf.envs.fast` imports both). Subclasses hold each env's state in `self._arrays`
  (name -> array with a leading env axis) and `self._rngs` (one Generator per env, None before the first
  reset), and implement `_configure`, `_reset_env`, `_step_envs`, `_observe`, and the
  per-env conversions `_env_to_reference` / `_env_from_reference`.
  """

  family = ""
  diagnostics: tuple = ()  # names in `_arrays` that count events of this backend, not env state
  _async_actions = None

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    if cls.family:
      _FAMILY_CLASSES[cls.family] = cls

  def __new__(cls, task=None, *args, **kwargs):
    if cls is FastVectorEnvironment:
      cls = _family_class(resolve_task(task).family)
    return super().__new__(cls)

  def __init__(self, task: TaskSpec | str, num_envs: int, seed: int, episode_limit: int,
               lbf_food_rule: str = "v3", first_index: int = 0):
    task = resolve_task(task)
    if task.family != self.family:
      raise ValueError(f"task {task.name!r} is a {task.family!r} task; {type(self).__name__} steps "
                       f"{self.family!r} tasks")
    self.task = task
    self.num_envs = int(num_envs)
    self.seed = int(seed)
    self.lbf_food_rule = lbf_food_rule
    self.first_index = int(first_index)
    self.spec, probe_env = _probe(task, episode_limit, lbf_food_rule)
    self._cutoff = self.spec.episode_limit
    self._env_limit = task.env_episode_limit
    n, a, o = self.num_envs, self.spec.num_agents, self.spec.observation_size
    self._obs_shape = (n, a, o)
    self._reward_shape = (n, a)
    self._action_shape = (n, a)
    self._configure(probe_env)
    self._arrays = self._new_arrays(n)
    self._rngs: list = [None] * n
    self._rng_seeds: list = [None] * n
    self._t = np.zeros(n, np.int64)  # steps taken in each env's current episode
    self._returns = np.zeros(n, np.float64)  # team return so far of each current episode
    self._seeded = False
    self._ready = False
    self._closed = False
    # Per env, the number of steps whose outcome in the reference package depends on the process (see
    # the family's module); `last_order_dependent` marks those of the latest step.
    self.order_dependent_steps = np.zeros(n, np.int64)
    self.last_order_dependent = np.zeros(n, bool)
    # Counts the times the per-env arrays or generators were replaced rather than written in place
    # (`set_state`, `split`): a `joint.JointStep` holding views of them joins them again.
    self.layout_version = 0

  # ---- family hooks ----------------------------------------------------------------------------------
  def _configure(self, env) -> None:
    raise NotImplementedError

  def _new_arrays(self, num_envs: int) -> dict:
    raise NotImplementedError

  def _reset_env(self, k: int) -> None:
    raise NotImplementedError

  def _step_envs(self, actions: np.ndarray):
    """Steps every env: (obs float32 [E, N, O], reward float32 [E, N], done bool [E], over bool [E]), where
    `over` says the episode is over for a real reason (the reference's `_really_over`, read after the
    step, before any reset)."""
    raise NotImplementedError

  def _observe(self, indices: np.ndarray, out: np.ndarray) -> None:
    raise NotImplementedError

  def _env_to_reference(self, k: int, env) -> None:
    raise NotImplementedError

  def _env_from_reference(self, k: int, env) -> None:
    raise NotImplementedError

  # ---- the VectorEnvironment interface -----------------------------------------------------------------
  def reset(self) -> np.ndarray:
    """Start a new episode in every env; float32 [num_envs, num_agents, observation_size]."""
    self._check_open()
    for k in range(self.num_envs):
      if not self._seeded:
        self._rngs[k], self._rng_seeds[k] = seeding.np_random(env_seed(self.seed, self.first_index + k))
      self._reset_env(k)
    obs = np.empty(self._obs_shape, np.float32)
    self._observe(np.arange(self.num_envs), obs)
    self._t[:] = 0
    self._returns[:] = 0.0
    self._seeded = True
    self._ready = True
    return obs

  def step(self, actions) -> Step:
    """Apply one joint action per env (int [num_envs, num_agents]); see `maddpg_tf.envs.vector.Step`."""
    if not self._ready:
      self._check_open()
      raise RuntimeError(f"{type(self).__name__}.step called before reset()")
    actions = np.asarray(actions)
    if actions.shape != self._action_shape:
      raise ValueError(f"actions must have shape {self._action_shape}, got {actions.shape}")
    obs, reward, done, over = self._step_envs(check_actions_dtype(actions))
    n = self.num_envs
    terminated = np.empty(n, bool)
    truncated = np.empty(n, bool)
    episode_return = np.empty(n, np.float32)
    episode_length = np.empty(n, np.int64)
    if reward.shape[1] < 8:
      ended = _advance_clocks(reward, done, over, self._t, self._returns, self._cutoff, self._env_limit,
                              terminated, truncated, episode_return, episode_length)
    else:
      ended = self._advance_clocks_numpy(reward, done, over, terminated, truncated, episode_return,
                                         episode_length)
    next_obs = obs.copy()
    if ended.size:
      for k in ended:
        self._reset_env(int(k))
      self._observe(ended, next_obs)
    return Step(obs, reward, terminated, truncated, next_obs, episode_return, episode_length)

  def _advance_clocks_numpy(self, reward, done, over, terminated, truncated, episode_return, episode_length):
    """`_advance_clocks` for 8 or more agents, where NumPy's float64 sum over agents is pairwise."""
    return _advance_clocks_numpy_impl(self, reward, done, over, terminated, truncated, episode_return,
                                      episode_length)

  def step_async(self, actions) -> None:
    """`step` in two halves, as the worker-process vector has them: here `step_wait` steps."""
    self._async_actions = actions

  def step_wait(self) -> Step:
    actions, self._async_actions = self._async_actions, None
    return self.step(actions)

  def random_actions(self, rng: np.random.Generator) -> np.ndarray:
    """Uniform random joint actions, int64 [num_envs, num_agents] (the same draws as the reference)."""
    return rng.integers(0, self.spec.num_actions, size=self._action_shape)

  @property
  def ready(self) -> bool:
    """Whether `step` may be called (reset and not closed)."""
    return self._ready

  # ---- state, slices, conversions ----------------------------------------------------------------------
  def get_state(self) -> dict:
    """The whole state (envs, random generators, clocks) as plain data: `state_header` with `envs` = every
    array of `_arrays` and "t", "returns", "rng", "rng_seed", "order_dependent_steps",
    "last_order_dependent", one row per env."""
    envs = {name: array.copy() for name, array in self._arrays.items()}
    envs.update(t=self._t.copy(), returns=self._returns.copy(),
                rng=[snapshots.generator_state(rng) for rng in self._rngs], rng_seed=list(self._rng_seeds),
                order_dependent_steps=self.order_dependent_steps.copy(),
                last_order_dependent=self.last_order_dependent.copy())
    return {**state_header(self, "fast"), "envs": envs}

  def set_state(self, state) -> None:
    """Continues from `state` (`get_state` of a vector of the same task, size and cut-off, of either
    backend: a reference state is converted through `from_reference`)."""
    return _set_state_impl(self, state)

  def split(self, sizes: Sequence[int]) -> list:
    """Consecutive slices of `sizes` envs each (they take over this vector's envs, generators and clocks)."""
    if sum(sizes) != self.num_envs or min(sizes) < 1:
      raise ValueError(f"split sizes {list(sizes)} must be >= 1 and sum to num_envs={self.num_envs}")
    parts, start = [], 0
    for size in sizes:
      part = self._like(size, self.first_index + start)
      part._take(self, slice(start, start + size))
      parts.append(part)
      start += size
    return parts

  @staticmethod
  def concatenate(parts: Sequence["FastVectorEnvironment"]) -> "FastVectorEnvironment":
    """The inverse of `split`: one vector of consecutive slices."""
    return _concatenate_impl(parts)

  def to_reference(self) -> VectorEnvironment:
    """A reference `VectorEnvironment` in exactly this state (its generators are copies)."""
    return _to_reference_impl(self)

  @classmethod
  def from_reference(cls, vector: VectorEnvironment) -> "FastVectorEnvironment":
    """A fast vector in exactly the state of the reference `vector` (its generators are copies)."""
    return _from_reference_impl(cls, vector)

  def _like(self, num_envs: int, first_index: int) -> "FastVectorEnvironment":
    return type(self)(self.task, num_envs, self.seed, self._cutoff, self.lbf_food_rule,
                      first_index=first_index)

  def _take(self, other: "FastVectorEnvironment", where: slice) -> None:
    for name in self._arrays:
      self._arrays[name] = other._arrays[name][where].copy()
    self._rngs = other._rngs[where]
    self._rng_seeds = other._rng_seeds[where]
    self._t = other._t[where].copy()
    self._returns = other._returns[where].copy()
    self.order_dependent_steps = other.order_dependent_steps[where].copy()
    self.last_order_dependent = other.last_order_dependent[where].copy()
    self._seeded, self._ready, self._closed = other._seeded, other._ready, other._closed
    self.layout_version += 1

  def close(self) -> None:
    self._closed = True
    self._ready = False

  def _check_open(self) -> None:
    if self._closed:
      raise RuntimeError(f"{type(self).__name__} is closed")

  def __enter__(self):
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def __getnewargs__(self):
    return (self.task,)

  def __repr__(self) -> str:
    return (f"{type(self).__name__}({self.task.name!r}, num_envs={self.num_envs}, seed={self.seed}, "
            f"episode_limit={self._cutoff}, lbf_food_rule={self.lbf_food_rule!r})")


@numba.njit(cache=True)
def _advance_clocks(reward, done, over, t, returns, cutoff, env_limit, terminated, truncated, episode_return,
                    episode_length):
  """One step of every env's episode clock and return (as the reference keeps them); the indices of the
  envs whose episode ended (their clocks are already zero for the next episode).

  reward float32 [E, N] (fewer than 8 agents: summed in float64 in agent order, as NumPy sums them);
  done: the env ended its episode; over: it also ended for a real reason (used at the env's own limit).
  """
  num_envs, num_agents = reward.shape
  ended = np.empty(num_envs, np.int64)
  count = 0
  for e in range(num_envs):
    total = 0.0
    for i in range(num_agents):
      total += np.float64(reward[e, i])
    returns[e] += total
    t[e] += 1
    truncated[e] = t[e] >= cutoff
    terminated[e] = done[e] and (t[e] < env_limit or over[e])
    if done[e] or truncated[e]:
      episode_return[e] = returns[e]
      episode_length[e] = t[e]
      t[e] = 0
      returns[e] = 0.0
      ended[count] = e
      count += 1
    else:
      episode_return[e] = np.nan
      episode_length[e] = 0
  return ended[:count]


def _family_class(family: str) -> type:
  if family in _FAMILY_CLASSES:
    return _FAMILY_CLASSES[family]
  if family in ("lbf", "rware"):
    raise ValueError(f"the fast backend of task family {family!r} is not loaded: import maddpg_tf.envs.fast")
  raise ValueError(f"no fast backend for task family {family!r}: expected 'lbf' or 'rware'")


# ---- bodies of FastVectorEnvironment's longer methods (state, slices, conversions, clocks) ----

def _advance_clocks_numpy_impl(self, reward, done, over, terminated, truncated, episode_return, episode_length):
  t = self._t
  t += 1
  self._returns += reward.sum(axis=1, dtype=np.float64)
  truncated[:] = t >= self._cutoff
  terminated[:] = done & ((t < self._env_limit) | over)
  ended = np.flatnonzero(done | truncated)
  episode_return[:] = np.nan
  episode_return[ended] = self._returns[ended]
  episode_length[:] = 0
  episode_length[ended] = t[ended]
  t[ended] = 0
  self._returns[ended] = 0.0
  return ended


def _set_state_impl(self, state) -> None:
  check_same_vector(self, state, backends=("reference", "fast"))
  layout_version = self.layout_version + 1
  if state["backend"] == "reference":
    reference = VectorEnvironment(self.task, self.num_envs, state["seed"], self._cutoff, self.lbf_food_rule,
                                  first_index=state["first_index"])
    reference.set_state(state)
    self.__dict__.update(copy.copy(type(self).from_reference(reference).__dict__))
    self.layout_version = layout_version
    return
  envs = state["envs"]
  self._arrays = {name: np.array(envs[name]) for name in self._arrays}
  self._rngs = [snapshots.generator(rng) for rng in envs["rng"]]
  self._rng_seeds = list(envs["rng_seed"])
  self._t = np.array(envs["t"], np.int64)
  self._returns = np.array(envs["returns"], np.float64)
  self.order_dependent_steps = np.array(envs["order_dependent_steps"], np.int64)
  self.last_order_dependent = np.array(envs["last_order_dependent"], bool)
  self.seed, self.first_index = state["seed"], state["first_index"]
  self._seeded, self._ready, self._closed = bool(state["seeded"]), bool(state["ready"]), bool(state["closed"])
  self.layout_version = layout_version


def _concatenate_impl(parts: Sequence["FastVectorEnvironment"]) -> "FastVectorEnvironment":
  first = parts[0]
  for previous, part in zip(parts, parts[1:]):
    if (part.first_index != previous.first_index + previous.num_envs or part.task != first.task
        or type(part) is not type(first)):
      raise ValueError("concatenate needs consecutive slices of one task's vector")
  whole = first._like(sum(p.num_envs for p in parts), first.first_index)
  for name in whole._arrays:
    whole._arrays[name] = np.concatenate([p._arrays[name] for p in parts])
  whole._rngs = [g for p in parts for g in p._rngs]
  whole._rng_seeds = [s for p in parts for s in p._rng_seeds]
  whole._t = np.concatenate([p._t for p in parts])
  whole._returns = np.concatenate([p._returns for p in parts])
  whole.order_dependent_steps = np.concatenate([p.order_dependent_steps for p in parts])
  whole.last_order_dependent = np.concatenate([p.last_order_dependent for p in parts])
  whole._seeded, whole._ready = first._seeded, all(p._ready for p in parts)
  whole._closed = any(p._closed for p in parts)
  return whole


def _to_reference_impl(self) -> VectorEnvironment:
  vector = VectorEnvironment(self.task, self.num_envs, self.seed, self._cutoff, self.lbf_food_rule,
                             first_index=self.first_index)
  if self._seeded:
    for k, env in enumerate(vector.envs):
      env._np_random = copy.deepcopy(self._rngs[k])
      env._np_random_seed = self._rng_seeds[k]
      self._env_to_reference(k, env)
  vector._t = [int(t) for t in self._t]
  vector._returns = self._returns.copy()
  vector._seeded, vector._ready, vector._closed = self._seeded, self._ready, self._closed
  if self._closed:
    vector.close()
    vector._closed = True
  return vector


def _from_reference_impl(cls, vector: VectorEnvironment) -> "FastVectorEnvironment":
  if not isinstance(vector, VectorEnvironment):
    raise ValueError(f"from_reference needs a VectorEnvironment, got {type(vector).__name__}")
  if cls is FastVectorEnvironment:
    cls = _family_class(vector.task.family)
  fast = cls(vector.task, vector.num_envs, vector.seed, vector.spec.episode_limit, vector.lbf_food_rule,
             first_index=getattr(vector, "first_index", 0))
  if vector._seeded:
    for k, env in enumerate(vector.envs):
      fast._rngs[k] = copy.deepcopy(env._np_random)
      fast._rng_seeds[k] = getattr(env, "_np_random_seed", None)
      fast._env_from_reference(k, env)
  fast._t = np.asarray(vector._t, np.int64).copy()
  fast._returns = np.asarray(vector._returns, np.float64).copy()
  fast._seeded, fast._ready, fast._closed = vector._seeded, vector._ready, vector._closed
  return fast
