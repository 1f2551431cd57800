"""A tiny deterministic stand-in for `maddpg_tf.envs.vector.VectorEnvironment`, for learner tests.

The "matching game" (per env copy):

* 2 agents, observation size 3, 3 actions, episode limit 5 steps (by default).
* Each step the env holds a hidden target ``c`` in {0, 1, 2}, drawn uniformly from the env's own RNG.
  Agent ``i`` observes the one-hot vector of ``(c + i) % 3`` (float32), so agent 0 and agent 1 see
  different vectors, and agent ``i``'s right action is the argmax of its own observation.
* If BOTH agents pick their right action, each agent gets reward 1.0; otherwise each gets 0.0.
  The next target is independent of the actions, so the best policy is the greedy one:
  team return 2.0 per step (10.0 per 5-step episode); a uniform random policy scores 1/9 per agent
  per step in expectation (team return 2/9 per step, 10/9 per episode).
* Episodes end at the limit with ``truncated=True``, ``terminated=False``. With
  ``terminate_on_miss=True`` an episode instead also ends with ``terminated=True`` at the first step
  where the joint action is wrong (to test that a learner stops bootstrapping at real terminals).

It has the same API as `VectorEnvironment`: ``spec``, ``task``, ``num_envs``, ``reset()``,
``step(actions) -> Step``, ``step_async``/``step_wait``, ``random_actions(rng)``, ``get_state``/``set_state``,
``close()``, with the same seeding (env ``k``
gets ``seed + k`` at its first reset only) and the same auto-reset semantics.
"""

from __future__ import annotations

import numpy as np

from maddpg_tf.agent import types
from maddpg_tf.envs import snapshots
from maddpg_tf.envs.builder import EnvironmentSpec, Step, TaskSpec

NUM_AGENTS = 2
OBSERVATION_SIZE = 3
NUM_ACTIONS = 3
EPISODE_LIMIT = 5

# A batch of two transitions of two agents (observation size 3, 3 actions), one terminal: the hand-computed
# learner tests' input.
BATCH = types.Transition(
    observation=np.array([[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [2, 0, 1]]], np.float32),
    action=np.array([[0, 2], [1, 1]], np.int32),
    reward=np.array([[1.0, 0.5], [0.0, -1.0]], np.float32),
    terminal=np.array([0.0, 1.0], np.float32),
    next_observation=np.array([[[0, 1, 0], [1, 1, 0]], [[3, 0, 0], [0, 0, 0]]], np.float32))


random_batch = types.random_transitions  # a Transition batch of the given shapes, no terminals


def right_actions(observation: np.ndarray) -> np.ndarray:
  """The rewarded joint action for observations [..., num_agents, 3]: each agent's argmax."""
  return np.argmax(observation, axis=-1)


class FakeVectorEnvironment:
  """`num_envs` copies of the matching game (see the module docstring)."""

  def __init__(self, num_envs: int = 1, seed: int = 0, episode_limit: int = EPISODE_LIMIT,
               terminate_on_miss: bool = False):
    if num_envs < 1 or episode_limit < 1:
      raise ValueError(f"num_envs and episode_limit must be >= 1, got {num_envs}, {episode_limit}")
    self.num_envs = num_envs
    self.seed = seed
    self.terminate_on_miss = terminate_on_miss
    self.task = TaskSpec("fake-matching", "fake-matching", env_episode_limit=episode_limit,
                         code_cutoff=episode_limit, family="fake")
    self.spec = EnvironmentSpec(NUM_AGENTS, OBSERVATION_SIZE, NUM_ACTIONS, episode_limit)
    self._rngs: list[np.random.Generator] | None = None
    self._targets = np.zeros(num_envs, np.int64)
    self._t = np.zeros(num_envs, np.int64)
    self._returns = np.zeros(num_envs, np.float64)
    self._ready = False

  def _observe(self, targets: np.ndarray) -> np.ndarray:
    shifted = (targets[:, None] + np.arange(NUM_AGENTS)[None, :]) % NUM_ACTIONS
    return np.eye(OBSERVATION_SIZE, dtype=np.float32)[shifted]

  def _draw(self, k: int) -> int:
    return int(self._rngs[k].integers(NUM_ACTIONS))

  def reset(self) -> np.ndarray:
    if self._rngs is None:
      self._rngs = [np.random.default_rng(self.seed + k) for k in range(self.num_envs)]
    self._targets[:] = [self._draw(k) for k in range(self.num_envs)]
    self._t[:] = 0
    self._returns[:] = 0.0
    self._ready = True
    return self._observe(self._targets)

  def step(self, actions) -> Step:
    if not self._ready:
      raise RuntimeError("step called before reset()")
    actions = np.asarray(actions)
    if actions.shape != (self.num_envs, NUM_AGENTS):
      raise ValueError(f"actions must have shape {(self.num_envs, NUM_AGENTS)}, got {actions.shape}")
    wanted = (self._targets[:, None] + np.arange(NUM_AGENTS)[None, :]) % NUM_ACTIONS
    hit = np.all(actions == wanted, axis=1)
    reward = np.repeat(hit.astype(np.float32)[:, None], NUM_AGENTS, axis=1)
    self._t += 1
    self._returns += reward.sum(axis=1)
    self._targets[:] = [self._draw(k) for k in range(self.num_envs)]
    observation = self._observe(self._targets)

    terminated = ~hit if self.terminate_on_miss else np.zeros(self.num_envs, bool)
    truncated = self._t >= self.spec.episode_limit
    ended = terminated | truncated
    episode_return = np.where(ended, self._returns, np.nan).astype(np.float32)
    episode_length = np.where(ended, self._t, 0).astype(np.int64)
    next_observation = observation.copy()
    for k in np.flatnonzero(ended):
      self._targets[k] = self._draw(k)
      self._t[k] = 0
      self._returns[k] = 0.0
    if ended.any():
      next_observation[ended] = self._observe(self._targets[ended])
    return Step(observation, reward, terminated, truncated, next_observation, episode_return,
                episode_length)

  def step_async(self, actions) -> None:
    self._pending_actions = actions

  def step_wait(self) -> Step:
    actions, self._pending_actions = self._pending_actions, None
    return self.step(actions)

  def random_actions(self, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, NUM_ACTIONS, size=(self.num_envs, NUM_AGENTS))

  def get_state(self) -> dict:
    """Everything a checkpoint needs to continue this vector, as plain data (copies)."""
    return {"rngs": [snapshots.generator_state(rng) for rng in self._rngs], "targets": self._targets.copy(),
            "t": self._t.copy(), "returns": self._returns.copy(), "ready": self._ready}

  def set_state(self, state: dict) -> None:
    self._rngs = [snapshots.generator(rng) for rng in state["rngs"]]
    self._targets, self._t, self._returns = state["targets"].copy(), state["t"].copy(), state["returns"].copy()
    self._ready = state["ready"]

  def close(self) -> None:
    self._ready = False


def make_fake(num_envs: int = 1, seed: int = 0, episode_limit: int = EPISODE_LIMIT,
              terminate_on_miss: bool = False) -> FakeVectorEnvironment:
  """The matching game as a `VectorEnvironment` look-alike (see the module docstring)."""
  return FakeVectorEnvironment(num_envs, seed, episode_limit, terminate_on_miss)
