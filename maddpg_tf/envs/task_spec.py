"""`TaskSpec`, what names one task: the type every environment module shares (the catalogue of tasks and
the resolution of a name are `maddpg_tf.envs.tasks`)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One task: `env_episode_limit` is the env's own limit, `code_cutoff` the authors' cut-off. Both are
  None for a user's PettingZoo env that declares no limit (it ends its own episodes): a run of it needs
  `loop.episode_limit`."""

  name: str
  gym_id: str
  env_episode_limit: int | None
  code_cutoff: int | None
  # "lbf", "rware", "mpe" or "pettingzoo": the family decides the settings (maddpg_tf.config). For the
  # last two, `gym_id` is the import path of the env factory.
  family: str
