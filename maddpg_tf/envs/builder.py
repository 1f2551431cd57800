"""Environments for training: `make(task, ...)` builds a batch of one task's envs, the one way in.

The learner sees a `VectorEnvironment`-like object: arrays in, arrays out, with auto-reset and the episode
cut-off handled by the backend (see `maddpg_tf.envs.vector` for the time-step semantics). This module
chooses where the envs step; the backends live beside it in `maddpg_tf.envs`:

* `maddpg_tf.envs.tasks`: the paper's tasks and any lbforaging/rware gymnasium id (`TaskSpec`).
* `maddpg_tf.envs.vector`: `VectorEnvironment`, the packages' own envs stepped as a list in this process.
* `maddpg_tf.envs.workers`: `ProcessVectorEnvironment`, the same envs in worker processes.
* `maddpg_tf.envs.pettingzoo`: `ParallelVectorEnvironment`, any PettingZoo ParallelEnv (a user's factory
  "module:factory", family "pettingzoo") and the multi-particle tasks of `maddpg_tf.envs.mpe` ("mpe").
"""

from __future__ import annotations

from maddpg_tf.envs import workers as env_workers
from maddpg_tf.envs.pettingzoo import LIMIT_ATTRIBUTES, ParallelVectorEnvironment
from maddpg_tf.envs.tasks import TASKS, TaskSpec, resolve_task
from maddpg_tf.envs.vector import (LBF_FOOD_RULES, EnvironmentSpec, Step, VectorEnvironment, check_int,
                                   env_seed)

__all__ = ["TaskSpec", "TASKS", "resolve_task", "EnvironmentSpec", "Step", "VectorEnvironment", "env_seed",
           "make", "vector_class", "BACKENDS", "LBF_FOOD_RULES"]


BACKENDS = ("reference", "fast")
PETTINGZOO_FAMILIES = ("mpe", "pettingzoo")  # stepped by maddpg_tf.envs.pettingzoo


def vector_class(task: TaskSpec, backend: str = "reference"):
  """The class that steps `task` under `backend`: "reference" (the packages themselves) or "fast" (the
  step-for-step re-implementations in `maddpg_tf.envs.fast_lbf` / `fast_rware`)."""
  if backend not in BACKENDS:
    raise ValueError(f"env_backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
  if task.family in PETTINGZOO_FAMILIES and backend == "reference":
    return ParallelVectorEnvironment
  if backend == "reference":
    return VectorEnvironment
  if task.family == "lbf":
    from maddpg_tf.envs.fast_lbf import FastLBFVectorEnvironment  # pylint: disable=g-import-not-at-top
    return FastLBFVectorEnvironment
  if task.family == "rware":
    from maddpg_tf.envs.fast_rware import FastRWAREVectorEnvironment  # pylint: disable=g-import-not-at-top
    return FastRWAREVectorEnvironment
  raise ValueError(f"env_backend 'fast' has no implementation for {task.name} (family {task.family!r}); "
                   f"use env_backend=reference")


def make(task: str | TaskSpec, num_envs: int = 1, seed: int = 0, episode_limit: int | None = None,
         lbf_food_rule: str = "v3", workers: int = 0, backend: str = "reference", render_mode: str | None = None):
  """Build a `VectorEnvironment`.

  task: a short name from `TASKS` or `maddpg_tf.envs.mpe.MPE_TASKS`, a `TaskSpec`, any lbforaging/rware
    gymnasium id, or a PettingZoo ParallelEnv factory's import path "module:factory".
  episode_limit: None = the authors' cut-off (`task.code_cutoff`: LBF 25, RWARE 500); an int in
    1..`task.env_episode_limit` = that cut-off.
  lbf_food_rule: "v3" = lbforaging 2.0.0 as installed; "v2" = the paper-era rule (a non-coop food's
    level is drawn below, never equal to, the sum of the three lowest player levels). Ignored for
    RWARE.
  backend: "reference" (the packages' envs) or "fast" (numba re-implementations, the same numbers).
  workers: 0 = step the envs in this process (a `VectorEnvironment`); N >= 1 = in N worker processes
    (a `maddpg_tf.envs.workers.ProcessVectorEnvironment`, at most one per env), with the same numbers.
  render_mode: None, or "rgb_array" for PettingZoo envs that draw themselves (`render_frame`; in this
    process only). LBF and RWARE ignore it: `maddpg_tf.media.rendering` draws them.
  """
  spec = resolve_task(task)
  num_envs = check_int(num_envs, "num_envs", 1)
  seed = check_int(seed, "seed", 0)
  if episode_limit is None:
    episode_limit = spec.code_cutoff
    if episode_limit is None:
      raise ValueError(f"env {spec.name!r} declares no episode limit: give episode_limit (the cut-off), or "
                       f"give the env an integer attribute {' or '.join(LIMIT_ATTRIBUTES[1:])}")
  else:
    episode_limit = check_int(episode_limit, f"episode_limit for {spec.name}", 1,
                               spec.env_episode_limit)
  if lbf_food_rule not in LBF_FOOD_RULES:
    raise ValueError(f"lbf_food_rule must be one of {', '.join(LBF_FOOD_RULES)}, got {lbf_food_rule!r}")
  workers = check_int(workers, "env workers", 0, num_envs)
  if render_mode not in (None, "rgb_array"):
    raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
  cls = vector_class(spec, backend)
  if render_mode is not None and spec.family in PETTINGZOO_FAMILIES:
    if workers:
      raise ValueError(f"render_mode={render_mode!r} needs the envs in this process (workers=0), got "
                       f"workers={workers}")
    return cls(spec, num_envs, seed, episode_limit, lbf_food_rule, render_mode=render_mode)
  if workers:
    return env_workers.ProcessVectorEnvironment(spec, num_envs, seed, episode_limit, lbf_food_rule, workers,
                                                vector_class=cls)
  return cls(spec, num_envs, seed, episode_limit, lbf_food_rule)
