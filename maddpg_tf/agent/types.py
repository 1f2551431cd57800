"""A batch of joint transitions (`Transition`): what the replay buffer stores and samples, and the learner
updates from."""

from typing import NamedTuple

import numpy as np


class Transition(NamedTuple):
  """A batch of joint transitions. B rows, N agents, O observation size.

  observation, next_observation: [B, N, O] float; action: [B, N] int; reward: [B, N] float32;
  terminal: [B] float32, 1.0 where the episode ended and the critic must not bootstrap.
  """
  observation: np.ndarray
  action: np.ndarray
  reward: np.ndarray
  terminal: np.ndarray
  next_observation: np.ndarray


def random_transitions(rng, rows, agents, observation_size, actions, terminal_rate=0.0):
  """A Transition batch of the given shapes from `rng` (a `np.random.Generator`): normal observations and
  rewards, uniform actions, terminals with probability `terminal_rate` (none drawn at 0). For benchmarks and
  tests that need an update's inputs without an environment."""
  observation = rng.normal(size=(rows, agents, observation_size)).astype(np.float32)
  action = rng.integers(0, actions, (rows, agents)).astype(np.int32)
  reward = rng.normal(size=(rows, agents)).astype(np.float32)
  terminal = ((rng.random(rows) < terminal_rate).astype(np.float32) if terminal_rate
              else np.zeros(rows, np.float32))
  return Transition(observation, action, reward, terminal,
                    rng.normal(size=(rows, agents, observation_size)).astype(np.float32))
