"""Any PettingZoo `ParallelEnv` with Discrete actions and Box observations, stepped as a batch.

`ParallelVectorEnvironment` has `VectorEnvironment`'s interface and `Step` semantics over `num_envs`
copies built by a factory (a callable, or an import path "module:factory"; `factory()` returns a fresh
env, `factory(render_mode="rgb_array")` one that can draw itself). What fits, checked on every copy:

* one agent set for the whole episode: `env.agents` after `reset` is `possible_agents`, and an episode
  ends for every agent at the same step (no agent appears or leaves in between);
* observations: `Box` of any shape, flattened. Agents may differ in size: agent i's observation fills
  the first `observation_sizes[i]` entries of a vector of size O = max_i observation_sizes[i] and the
  rest are zeros (the learner sizes every agent's networks by O; the critic sees all N padded vectors);
* actions: `Discrete(n_i, start=s_i)`. The learner has one action count A = max_i n_i for every agent;
  agent i's action a in 0..A-1 is sent to the env as s_i + (a mod n_i), so an agent with fewer actions
  has some twice (its policy and the critic learn that they act alike).

Time steps. Per agent, `terminations`/`truncations` come from the env. An episode of env k ends at step t
when every agent is terminated or truncated, or at the cut-off t = episode_limit; then
``terminated[k]`` = every agent terminated (a real end: no bootstrap), ``truncated[k]`` = some agent
truncated (the env's own time limit) or t reached the cut-off. Whether a time-out is treated as terminal
is the run's setting (`loop.truncation_is_terminal`), as for LBF.

Seeding and state. Episode e of env k (counted from 0 over the vector's life, `reset()` included) starts
with ``reset(seed=episode_seed(seed, first_index + k, e))``; e = 0 gives `env_seed(seed, first_index + k)`
as the reference vector's first reset. Every episode is seeded, not only the first, so an env's whole
state is its episode number and the actions since that reset: checkpoints and env workers carry that
record (many PettingZoo envs cannot be pickled with their state: MPE's pickle rebuilds a fresh env), and
`set_state` replays it on live envs. A replay that does not give back the saved return and observation
raises `UnsupportedEnv` (the env is not a function of its reset seed and actions).

Checked before a run starts. Resolving a factory's task (`pettingzoo_task`, which every program does
before it writes anything) builds its env, checks the spaces, and probes it: `PROBE_STEPS` steps of seeded
random actions on one env, with the checks above at every step, and at a few points the current episode
replayed (its reset seed and actions) on that env and on a fresh one, as a resume or an evaluation would.
Agents that leave mid-episode, or an env that does not replay, are refused there in one line; what a
probe misses is refused in one line when it happens.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import math
import operator
import os
import sys
from typing import Callable, NamedTuple

import numpy as np

from maddpg_tf.envs.task_spec import TaskSpec
from maddpg_tf.envs.vector import (EnvironmentSpec, Step, VectorEnvironment, check_same_vector, env_seed,
                                   state_header)

__all__ = ["ParallelVectorEnvironment", "AgentSpaces", "UnsupportedEnv", "describe_spaces", "resolve_factory",
           "factory_path", "pettingzoo_task", "probe", "adapter_note", "episode_seed", "source_of",
           "LIMIT_ATTRIBUTES", "RENDER_MODES", "PROBE_STEPS"]

FAMILY = "pettingzoo"
# Where an env's own episode limit is read, in this order: the factory's attribute, then the env's
# (and its `unwrapped`'s) attributes; PettingZoo's own envs use `max_cycles`.
LIMIT_ATTRIBUTES = ("episode_limit", "max_cycles", "max_episode_steps", "max_steps")
RENDER_MODES = (None, "rgb_array")
# The probe at start (see the module docstring): enough steps for agents of a game like pettingzoo's
# knights_archers_zombies to die under random actions (the first does at 100-300 steps), split in
# PROBE_CHECKS parts with a replay after each; about 3 s for that env, nothing for a cheap one.
PROBE_STEPS = 600
PROBE_CHECKS = 3
PROBE_SEED = 2_718
# Where an env that declares no limit is cut while probed (a run cuts it at loop.episode_limit).
PROBE_CUTOFF = 1_000
REPLAY_HINT = ("draw every random number from the generator that reset(seed=...) seeds (e.g. self.np_random), "
               "not from a global or unseeded one")


class UnsupportedEnv(ValueError):
  """A user's env does something the adapter cannot follow (agents that leave, an env that does not
  replay), found while it steps: one line naming what was found and what is supported."""


# --------------------------------------------------------------------------------------------------
# Factories

def resolve_factory(factory) -> Callable:
  """`factory` itself if callable, else the object named by the import path "package.module:name"
  (`name` may be dotted: "module:Class.method"). ValueError (one line) for a path that does not resolve."""
  if callable(factory):
    return factory
  if not isinstance(factory, str) or factory.count(":") != 1 or not all(factory.split(":")):
    raise ValueError(f"env factory must be a callable or an import path 'module:factory', got {factory!r}")
  module_name, qualname = factory.split(":")
  try:
    target = _import_module(module_name)
  except Exception as error:  # pylint: disable=broad-except  (a user's module may fail in any way)
    raise ValueError(f"env factory {factory!r}: cannot import module {module_name!r} "
                     f"({type(error).__name__}: {error})") from None
  for part in qualname.split("."):
    if not hasattr(target, part):
      raise ValueError(f"env factory {factory!r}: module {module_name!r} has no attribute {qualname!r}")
    target = getattr(target, part)
  if not callable(target):
    raise ValueError(f"env factory {factory!r} is a {type(target).__name__}, not a callable")
  return target


def _import_module(name):
  """`importlib.import_module(name)`, trying the working directory too when the module's top package is not
  found: a console script's sys.path lacks it (`python -m` has it), and estimators by path find it so."""
  try:
    return importlib.import_module(name)
  except ModuleNotFoundError as error:
    if error.name != name.partition(".")[0] or os.getcwd() in sys.path or "" in sys.path:
      raise
  sys.path.append(os.getcwd())  # kept: env workers and later imports of the same module need it too
  return importlib.import_module(name)


def factory_path(factory) -> str:
  """The import path "module:qualname" of `factory` (a path is checked and returned as it is). Runs need
  a path: env workers and resumed runs rebuild the envs from it. ValueError for a callable that cannot
  be found again by its path (a lambda, a local function)."""
  if isinstance(factory, str):
    resolve_factory(factory)
    return factory
  module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", None)
  path = f"{module}:{qualname}"
  if not module or not qualname or "<" in qualname:
    raise ValueError(f"env factory {factory!r} has no import path (a lambda or local function); define it "
                     f"at the top level of a module and pass 'module:factory'")
  try:
    found = resolve_factory(path)
  except ValueError:
    found = None
  if found is not factory:
    raise ValueError(f"env factory {factory!r} is not found again at its import path {path!r}; define it "
                     f"at the top level of an importable module")
  return path


def _build(factory, path, render_mode=None):
  try:
    env = factory() if render_mode is None else factory(render_mode=render_mode)
  except TypeError as error:
    if render_mode is not None and "render_mode" in str(error):
      raise ValueError(f"env factory {path!r} does not take render_mode; rendering needs "
                       f"factory(render_mode='rgb_array')") from None
    raise
  missing = [name for name in ("possible_agents", "reset", "step", "observation_space", "action_space")
             if not hasattr(env, name)]
  if missing:
    hint = " (an AEC env: wrap it with pettingzoo.utils.aec_to_parallel)" if hasattr(env, "agent_iter") else ""
    raise ValueError(f"env factory {path!r} returned a {type(env).__name__} without {', '.join(missing)}; "
                     f"supported: a PettingZoo ParallelEnv{hint}")
  return env


# --------------------------------------------------------------------------------------------------
# Spaces

class AgentSpaces(NamedTuple):
  """What the adapter needs from an env's spaces, per agent in `possible_agents` order."""

  agents: tuple  # agent ids
  observation_shapes: tuple  # Box shapes
  observation_sizes: tuple  # their flattened sizes
  action_counts: tuple  # Discrete n
  action_starts: tuple  # Discrete start


def _space_kind(space) -> str:
  return type(space).__name__


def describe_spaces(env, path: str) -> AgentSpaces:
  """`AgentSpaces` of `env`; ValueError (one line naming what was found and what is supported) for
  spaces that do not fit (see the module docstring)."""
  agents = tuple(env.possible_agents)
  if not agents:
    raise ValueError(f"env {path!r} has no possible_agents; supported: a fixed set of one or more agents")
  shapes, counts, starts = [], [], []
  for agent in agents:
    observation_space, action_space = env.observation_space(agent), env.action_space(agent)
    # By the space's attributes rather than isinstance: gymnasium and gym spaces both fit.
    if _space_kind(observation_space) != "Box" or getattr(observation_space, "shape", None) is None:
      raise ValueError(f"env {path!r}: agent {agent!r} observes {observation_space}; supported: Box "
                       f"observations (flattened), not Dict, Tuple or Discrete ones")
    if _space_kind(action_space) != "Discrete":
      raise ValueError(f"env {path!r}: agent {agent!r} acts in {action_space}; supported: Discrete actions "
                       f"(not continuous Box, MultiDiscrete or Dict actions)")
    shapes.append(tuple(int(d) for d in observation_space.shape))
    counts.append(int(action_space.n))
    starts.append(int(getattr(action_space, "start", 0)))
  sizes = tuple(int(math.prod(shape)) for shape in shapes)
  if min(sizes) < 1:
    raise ValueError(f"env {path!r}: observation shapes {shapes} include an empty one; supported: sizes >= 1")
  return AgentSpaces(agents, tuple(shapes), sizes, tuple(counts), tuple(starts))


def _declared_limit(factory, env) -> int | None:
  for holder in (factory, env, getattr(env, "unwrapped", env)):
    for name in LIMIT_ATTRIBUTES:
      value = getattr(holder, name, None)
      if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return int(value)
  return None


@functools.lru_cache(maxsize=None)
def _task_of(path: str, family: str, name: str) -> TaskSpec:
  factory = resolve_factory(path)
  env = _build(factory, path)
  try:
    spaces = describe_spaces(env, path)
    limit = _declared_limit(factory, env)
  finally:
    _close(env)
  _SPACES[path] = spaces
  task = TaskSpec(name, path, env_episode_limit=limit, code_cutoff=limit, family=family)
  probe(task)
  return task


_SPACES = {}  # import path -> AgentSpaces, of the tasks resolved in this process (for `adapter_note`)


def pettingzoo_task(factory, name: str | None = None, family: str = FAMILY) -> TaskSpec:
  """The `TaskSpec` of a user's env: `gym_id` (and, unless `name` is given, `name`) is the factory's
  import path; the env's own limit (see `LIMIT_ATTRIBUTES`) is both `env_episode_limit` and
  `code_cutoff`, or both are None for an env that declares none (it ends its own episodes; a run then
  needs `loop.episode_limit`). One env is built to check its spaces and the env is probed (`probe`);
  ValueError naming what does not fit, once per process and path."""
  path = factory_path(factory)
  return _task_of(path, family, name or path)


def probe(task: TaskSpec, steps: int = PROBE_STEPS, checks: int = PROBE_CHECKS) -> None:
  """Steps one env of `task` with seeded random actions for `steps` steps (episodes cut at the env's limit,
  or `PROBE_CUTOFF`), in `checks` parts; after each, the current episode is replayed on the same env and on
  a fresh one. `UnsupportedEnv`, one line, for agents that appear or leave or an env that does not replay
  (what a resume, env workers and maddpg-evaluate rely on)."""
  cutoff = task.code_cutoff or PROBE_CUTOFF
  env = ParallelVectorEnvironment(task, 1, PROBE_SEED, cutoff)
  fresh = None
  try:
    rng = np.random.default_rng(PROBE_SEED)
    env.reset()
    done = 0
    for check in range(checks):
      part = (steps * (check + 1)) // checks - done
      for _ in range(part):
        env.step(rng.integers(0, env.spec.num_actions, size=(1, env.spec.num_agents)))
      done += part
      state = env.get_state()
      env.set_state(state)  # the same env reset again with the episode's seed, its actions replayed
      if fresh is None:
        fresh = ParallelVectorEnvironment(task, 1, PROBE_SEED, cutoff)
      fresh.set_state(state)  # a new env, as a resumed run or maddpg-evaluate builds
  except UnsupportedEnv as error:
    raise UnsupportedEnv(f"{error} (found by the {steps}-step probe of random actions every run of a "
                         f"user env starts with)") from None
  finally:
    env.close()
    if fresh is not None:
      fresh.close()


def adapter_note(task: TaskSpec) -> str:
  """What the adapter changes about `task`'s env, in words ('' when nothing; a run prints it at start and
  records it in provenance.json): observations zero-padded, actions sent mod an agent's count."""
  if task.family != FAMILY or task.gym_id not in _SPACES:
    return ""
  spaces = _SPACES[task.gym_id]
  return _note_of(spaces.observation_sizes, spaces.action_counts)


def source_of(task: TaskSpec) -> dict | None:
  """Where a user env's code comes from, for a run's provenance, as `estimators.source_of` has it:
  dict(name, path, module_file, sha256) (the hash of the module file's bytes now), or None for an env
  of another family (the MPE short names: this package and mpe2's version identify them)."""
  if task.family != FAMILY:
    return None
  module = task.gym_id.split(":", 1)[0]
  resolve_factory(task.gym_id)
  module_file = getattr(sys.modules.get(module), "__file__", None)
  digest = None
  if module_file and os.path.isfile(module_file):
    module_file = os.path.abspath(module_file)
    with open(module_file, "rb") as handle:
      digest = hashlib.sha256(handle.read()).hexdigest()
  else:
    module_file = None
  return dict(name=task.name, path=task.gym_id, module_file=module_file, sha256=digest)


def episode_seed(seed, index, episode) -> int:
  """The reset seed of episode `episode` of env `index` in a run seeded `seed` (episode 0: `env_seed`)."""
  if episode == 0:
    return env_seed(seed, index)
  return int(np.random.SeedSequence([int(seed), int(index), int(episode)]).generate_state(1)[0])


def _close(env) -> None:
  close = getattr(env, "close", None)
  if close is not None:
    close()


# --------------------------------------------------------------------------------------------------
# The batched environment

class ParallelVectorEnvironment(VectorEnvironment):
  """`num_envs` copies of a ParallelEnv task with auto-reset (see the module docstring).

  task: a `TaskSpec` whose `gym_id` is the factory's import path (`pettingzoo_task`, or an MPE short
    name's spec). `lbf_food_rule` is accepted for the common signature and ignored. `render_mode`:
    None, or "rgb_array" to build envs that draw themselves (`render_frame`, `final_frames`).
  Extra attributes: `agents`, `observation_sizes` (true sizes before padding), `action_counts`,
  `envs` (the ParallelEnvs; None in a record unpickled from a checkpoint of the first, pickled format).
  """

  def __init__(self, task: TaskSpec, num_envs: int, seed: int, episode_limit: int,
               lbf_food_rule: str = "v3", first_index: int = 0, render_mode: str | None = None):
    # Not VectorEnvironment.__init__: it builds gymnasium envs.
    if render_mode not in RENDER_MODES:
      raise ValueError(f"render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    self.task = task
    self.num_envs = int(num_envs)
    self.seed = seed
    self.lbf_food_rule = lbf_food_rule
    self.first_index = int(first_index)
    self.render_mode = render_mode
    factory = resolve_factory(task.gym_id)
    self.envs = []
    try:
      for _ in range(self.num_envs):
        self.envs.append(_build(factory, task.gym_id, render_mode))
        spaces = describe_spaces(self.envs[-1], task.gym_id)
        if spaces != describe_spaces(self.envs[0], task.gym_id):
          raise ValueError(f"env {task.gym_id!r}: copies differ in their spaces ({spaces} vs "
                           f"{describe_spaces(self.envs[0], task.gym_id)}); supported: one set of spaces")
    except BaseException:
      for env in self.envs:
        _close(env)
      raise
    self.agents = spaces.agents
    self.observation_sizes = spaces.observation_sizes
    self.action_counts = spaces.action_counts
    self.spec = EnvironmentSpec(num_agents=len(spaces.agents), observation_size=max(spaces.observation_sizes),
                                num_actions=max(spaces.action_counts), episode_limit=int(episode_limit))
    self._action_starts = spaces.action_starts
    self._setup()
    n = self.num_envs
    self._episodes = [0] * n  # episodes started in each env (the next reset's episode number)
    self._actions = [[] for _ in range(n)]  # each env's joint actions since its last reset
    self._returns = np.zeros(n, np.float64)
    self._observations = np.zeros(self._obs_shape, np.float32)  # what to act on next (checks a replay)
    self._seeded = False
    self._ready = False
    self._closed = False
    self.final_frames = {}

  def _setup(self) -> None:
    """Shapes and the per-step fast paths (also after unpickling)."""
    n, a, o = self.num_envs, self.spec.num_agents, self.spec.observation_size
    self._obs_shape, self._reward_shape, self._action_shape = (n, a, o), (n, a), (n, a)
    self._cutoff = self.spec.episode_limit
    self._padded = any(size != o for size in self.observation_sizes)
    self._identity_actions = (all(c == self.spec.num_actions for c in self.action_counts)
                              and not any(self._action_starts))

  @property
  def note(self) -> str:
    """What the adapter changed about the env's spaces, in words ('' when nothing)."""
    return _note_impl(self)

  # ----------------------------------------------------------------------------------------------
  def _env_actions(self, row):
    if self._identity_actions:
      return dict(zip(self.agents, row))
    return {agent: start + action % count
            for agent, action, count, start in zip(self.agents, row, self.action_counts, self._action_starts)}

  def _write_observation(self, target, observations, k) -> None:
    """Row k of `target` [E, N, O] from an env's observation dict."""
    try:
      if not self._padded:
        target[k] = [np.reshape(observations[agent], -1) for agent in self.agents]
        return
      for i, agent in enumerate(self.agents):
        target[k, i, :self.observation_sizes[i]] = np.reshape(observations[agent], -1)
    except KeyError as error:
      raise self._agent_set_error(k, f"no observation for agent {error.args[0]!r}") from None

  def _agent_set_error(self, k, found) -> ValueError:
    return UnsupportedEnv(f"env {self.task.gym_id!r} (env {self.first_index + k}): {found}; supported: one agent "
                      f"set for the whole episode (agents that appear or disappear are not)")

  def _reset_env(self, k, target) -> None:
    """Starts env k's next episode and writes its first observation into row k of `target`."""
    env = self.envs[k]
    observations, _ = env.reset(seed=episode_seed(self.seed, self.first_index + k, self._episodes[k]))
    self._episodes[k] += 1
    if tuple(env.agents) != self.agents:
      raise self._agent_set_error(k, f"agents {list(env.agents)} after reset, possible_agents "
                                     f"{list(self.agents)}")
    self._write_observation(target, observations, k)
    self._actions[k] = []
    self._returns[k] = 0.0

  def _step_env(self, k, row, obs, reward):
    """Steps env k by joint action `row`; writes rows k of `obs` and `reward`; returns (ended by the env,
    every agent terminated, some agent truncated)."""
    observations, rewards, terminations, truncations, _ = self.envs[k].step(self._env_actions(row))
    self._write_observation(obs, observations, k)
    try:
      reward[k] = [rewards[agent] for agent in self.agents]
      ends = [(bool(terminations[agent]), bool(truncations[agent])) for agent in self.agents]
    except KeyError as error:
      raise self._agent_set_error(k, f"no reward or end flags for agent {error.args[0]!r}") from None
    self._actions[k].append(row)
    done = [t or u for t, u in ends]
    if any(done) and not all(done):
      raise self._agent_set_error(k, f"only agents {[a for a, d in zip(self.agents, done) if d]} ended at "
                                     f"step {len(self._actions[k])}")
    ended = all(done)
    return ended, ended and all(t for t, _ in ends), any(u for _, u in ends)

  def reset(self) -> np.ndarray:
    """Start a new (seeded) episode in every env; float32 [num_envs, num_agents, observation_size]."""
    self._check_open()
    obs = np.zeros(self._obs_shape, np.float32)
    for k in range(self.num_envs):
      self._reset_env(k, obs)
    self._seeded = True
    self._ready = True
    self._observations = obs.copy()
    self.final_frames = {}
    return obs

  def step(self, actions) -> Step:
    """Apply one joint action per env (int [num_envs, num_agents]); see `Step` and the module docstring."""
    return _step_impl(self, actions)

  # ----------------------------------------------------------------------------------------------
  # Frames

  def _render(self, k) -> np.ndarray:
    frame = self.envs[k].render()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
      raise ValueError(f"env {self.task.gym_id!r}: render() returned {type(frame).__name__} "
                       f"{getattr(frame, 'shape', '')}; supported: an RGB array [H, W, 3]")
    return np.ascontiguousarray(frame, dtype=np.uint8)

  def render_frame(self, index: int = 0) -> np.ndarray:
    """Env `index`'s current state drawn by the env itself: uint8 [H, W, 3]. The state an episode ended
    in is gone after the step's auto-reset; that step leaves its frame in `final_frames[index]`."""
    if self.render_mode != "rgb_array":
      raise ValueError(f"render_frame needs envs built with render_mode='rgb_array', these have "
                       f"{self.render_mode!r}")
    if not self._ready:
      raise RuntimeError("ParallelVectorEnvironment.render_frame called before reset()")
    operator.index(index)
    if not 0 <= index < self.num_envs:
      raise ValueError(f"render_frame index must be in 0..{self.num_envs - 1}, got {index!r}")
    return self._render(index)

  # ----------------------------------------------------------------------------------------------
  # State and slices: the replay record (see the module docstring).

  _RECORD = ("task", "num_envs", "seed", "lbf_food_rule", "first_index", "render_mode", "agents",
             "observation_sizes", "action_counts", "spec", "_action_starts", "_episodes", "_actions",
             "_returns", "_observations", "_seeded", "_ready", "_closed")

  # Pickles: checkpoints of the first format hold such records (`maddpg_tf.run.checkpointing.migrate` reads
  # them through `get_state`); env workers are sent `get_state()`'s plain data.
  def __getstate__(self) -> dict:
    return {name: getattr(self, name) for name in self._RECORD}

  def __setstate__(self, state: dict) -> None:
    self.__dict__.update(state)
    self.envs = None
    self.final_frames = {}
    self._setup()

  def get_state(self) -> dict:
    """The state as plain data, a record to replay (no envs): `state_header` with `agents` and `envs` =
    {"episodes": each env's episode number, "actions": its joint actions since that reset, "returns",
    "observations"}."""
    envs = {"episodes": [int(e) for e in self._episodes],
            "actions": [[[int(a) for a in row] for row in actions] for actions in self._actions],
            "returns": np.array(self._returns, np.float64), "observations": np.array(self._observations)}
    return {**state_header(self, "pettingzoo"), "agents": list(self.agents), "envs": envs}

  def set_state(self, state: dict) -> None:
    """Continues from `state` (`get_state` of a vector of the same task and size, e.g. from a checkpoint or
    joined from worker slices): each env replays its episode's reset and actions."""
    return _set_state_impl(self, state)

  def close(self) -> None:
    if not self._closed:
      for env in self.envs or ():
        _close(env)
      self._closed = True
      self._ready = False

  def __repr__(self) -> str:
    return (f"ParallelVectorEnvironment({self.task.name!r}, num_envs={self.num_envs}, seed={self.seed}, "
            f"episode_limit={self._cutoff})")


# ---- bodies of ParallelVectorEnvironment's longer methods (step, state, slices, provenance note) ----

def _note_impl(self) -> str:
  return _note_of(self.observation_sizes, self.action_counts)


def _note_of(observation_sizes, action_counts) -> str:
  parts = []
  size, count = max(observation_sizes), max(action_counts)
  if any(s != size for s in observation_sizes):
    parts.append(f"observations zero-padded to {size} from sizes {list(observation_sizes)}")
  if any(c != count for c in action_counts):
    parts.append(f"actions 0..{count - 1} sent as a mod n for action counts {list(action_counts)}")
  return "; ".join(parts)


def _step_impl(self, actions) -> Step:
  if not self._ready:
    self._check_open()
    raise RuntimeError("ParallelVectorEnvironment.step called before reset()")
  actions = np.asarray(actions)
  if actions.shape != self._action_shape:
    raise ValueError(f"actions must have shape {self._action_shape}, got {actions.shape}")
  joint = actions.tolist()
  n, cutoff = self.num_envs, self._cutoff
  obs = np.zeros(self._obs_shape, np.float32)
  reward = np.empty(self._reward_shape, np.float32)
  terminated = np.zeros(n, bool)
  truncated = np.zeros(n, bool)
  ended = []
  for k in range(n):
    over, terminated[k], env_truncated = self._step_env(k, joint[k], obs, reward)
    at_cutoff = len(self._actions[k]) >= cutoff
    truncated[k] = env_truncated or at_cutoff
    if over or at_cutoff:
      ended.append(k)
  self._returns += reward.sum(axis=1, dtype=np.float64)
  episode_return = np.full(n, np.nan, np.float32)
  episode_length = np.zeros(n, np.int64)
  next_obs = obs.copy()
  self.final_frames = {}
  for k in ended:
    episode_return[k] = self._returns[k]
    episode_length[k] = len(self._actions[k])
    if self.render_mode is not None:
      self.final_frames[k] = self._render(k)
    self._reset_env(k, next_obs)
  self._observations = next_obs.copy()
  return Step(obs, reward, terminated, truncated, next_obs, episode_return, episode_length)


def _set_state_impl(self, state: dict) -> None:
  if isinstance(state, dict) and state.get("backend", "pettingzoo") != "pettingzoo":
    raise ValueError(f"environment state must be a ParallelVectorEnvironment's, got a {state['backend']!r} "
                     f"backend's")
  check_same_vector(self, state)
  if list(state["agents"]) != list(self.agents):
    raise ValueError(f"environment state is for agents {list(state['agents'])}, this env has {list(self.agents)}")
  self._check_open()
  envs = state["envs"]
  self.seed, self.first_index = state["seed"], state["first_index"]
  self._seeded, self._ready = bool(state["seeded"]), bool(state["ready"])
  self._episodes = [int(e) for e in envs["episodes"]]
  self._actions = [[] for _ in range(self.num_envs)]
  self._returns = np.zeros(self.num_envs, np.float64)
  self._observations = np.array(envs["observations"], np.float32)
  self.final_frames = {}
  if not self._seeded:
    self._episodes = [0] * self.num_envs
    return
  obs = np.zeros(self._obs_shape, np.float32)
  reward = np.empty(self._reward_shape, np.float32)
  for k in range(self.num_envs):
    self._episodes[k] -= 1  # replay that episode's reset
    self._reset_env(k, obs)
    for row in envs["actions"][k]:
      self._step_env(k, [int(a) for a in row], obs, reward)
      self._returns[k] += reward[k].sum(dtype=np.float64)
    if self._returns[k] != envs["returns"][k] or not np.array_equal(obs[k], self._observations[k]):
      # float(): numpy 2 scalars print as np.float64(...) under repr
      same_return = self._returns[k] == envs["returns"][k]
      found = (f"the same return {float(self._returns[k])!r} but another observation" if same_return else
               f"return {float(self._returns[k])!r}, not the saved {float(envs['returns'][k])!r}")
      raise UnsupportedEnv(f"env {self.task.gym_id!r} (env {self.first_index + k}) replayed its episode "
                           f"(reset seed and {len(envs['actions'][k])} actions) to {found}: the env is not a "
                           f"function of reset(seed=...) and its actions, which resuming and maddpg-evaluate "
                           f"need; {REPLAY_HINT}")
  if state["closed"]:
    self.close()
