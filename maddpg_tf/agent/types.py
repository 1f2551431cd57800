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
