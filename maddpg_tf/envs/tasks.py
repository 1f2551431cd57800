"""The paper's tasks and every lbforaging/rware gymnasium id, as `TaskSpec`s (no environment is built here),
plus the multi-particle short names (`maddpg_tf.envs.mpe`) and a user's PettingZoo env by import path
"module:factory" (`maddpg_tf.envs.pettingzoo`; one env is built to check its spaces and read its limit).

lbforaging 2.0.0 registers at most 4 food; the two 15x15 ...-5f tasks are registered by `maddpg_tf.envs.vector`
(on import, idempotently) with the same kwargs lbforaging uses for its own ids. Neither package registers
`max_episode_steps`: the limit is the ctor kwarg `max_episode_steps` (LBF) or `max_steps` (rware).
"""

from __future__ import annotations

import gymnasium as gym

from maddpg_tf.envs import mpe, pettingzoo
from maddpg_tf.envs import vector  # noqa: F401  (registers the packages' ids and our two 15x15 five-food ids)
from maddpg_tf.envs.task_spec import TaskSpec

__all__ = ["TaskSpec", "TASKS", "resolve_task", "FAMILIES", "food_rule_matters"]


# --------------------------------------------------------------------------------------------------
# Tasks

def _lbf(name: str, gym_id: str) -> TaskSpec:
  return TaskSpec(name, gym_id, env_episode_limit=50, code_cutoff=25, family="lbf")


def _rware(name: str, gym_id: str) -> TaskSpec:
  return TaskSpec(name, gym_id, env_episode_limit=500, code_cutoff=500, family="rware")


TASKS: dict[str, TaskSpec] = {
  t.name: t
  for t in (
    _lbf("lbf-8x8-2p-2f-coop", "Foraging-8x8-2p-2f-coop-v3"),
    _lbf("lbf-8x8-2p-2f-2s-coop", "Foraging-2s-8x8-2p-2f-coop-v3"),
    _lbf("lbf-10x10-3p-3f", "Foraging-10x10-3p-3f-v3"),
    _lbf("lbf-10x10-3p-3f-2s", "Foraging-2s-10x10-3p-3f-v3"),
    _lbf("lbf-15x15-3p-5f", "Foraging-15x15-3p-5f-v3"),
    _lbf("lbf-15x15-4p-3f", "Foraging-15x15-4p-3f-v3"),
    _lbf("lbf-15x15-4p-5f", "Foraging-15x15-4p-5f-v3"),
    _rware("rware-tiny-2ag", "rware-tiny-2ag-v2"),
    _rware("rware-tiny-4ag", "rware-tiny-4ag-v2"),
  )
}

FAMILIES = ("lbf", "rware", "mpe", "pettingzoo")
_FAMILY_BY_PACKAGE = {"lbforaging": "lbf", "rware": "rware"}


def _family_of(spec: gym.envs.registration.EnvSpec) -> str | None:
  entry = spec.entry_point
  module = entry if isinstance(entry, str) else getattr(entry, "__module__", "") or ""
  return _FAMILY_BY_PACKAGE.get(module.split(".", 1)[0].split(":", 1)[0])


def _env_limit_of(spec: gym.envs.registration.EnvSpec) -> int | None:
  """The smallest of the spec's TimeLimit and the env's own max-steps kwarg (None if neither)."""
  limits = [spec.max_episode_steps, spec.kwargs.get("max_episode_steps"), spec.kwargs.get("max_steps")]
  limits = [int(x) for x in limits if x is not None]
  return min(limits) if limits else None


def food_rule_matters(task: TaskSpec) -> bool:
  """Whether the LBF food-level rule changes `task`'s envs: non-coop LBF tasks only (a coop task's food is
  always at the level cap, under either rule, and the draws are the same)."""
  if task.family != "lbf" or task.gym_id not in gym.registry:
    return False
  return not gym.spec(task.gym_id).kwargs.get("force_coop", False)


def _unknown_task_error(name: object) -> ValueError:
  return ValueError(
    f"unknown task {name!r}: expected one of {', '.join(TASKS)}, "
    f"a multi-particle task ({', '.join(_mpe_tasks())}), "
    "any gymnasium id registered by lbforaging or rware "
    "(e.g. 'Foraging-5x5-2p-1f-v3', 'rware-small-4ag-v2'), "
    "or a PettingZoo ParallelEnv factory 'module:factory'"
  )


def _mpe_tasks() -> dict:
  return mpe.MPE_TASKS


def resolve_task(name: str | TaskSpec) -> TaskSpec:
  """A short task name (see `TASKS` and `maddpg_tf.envs.mpe.MPE_TASKS`), any lbforaging/rware gymnasium
  id, or the import path "module:factory" of a PettingZoo ParallelEnv factory, as a `TaskSpec`.

  A raw gymnasium id (including the ids behind the nine short names) runs the env as registered:
  its limit comes from the registration, and the cut-off equals it. Use the short names for the
  paper's settings (LBF cut at 25 steps). A factory path that does not import, or whose env's spaces do
  not fit, raises ValueError naming what was found and what is supported.
  """
  if isinstance(name, TaskSpec):
    return name
  if isinstance(name, str):
    if name in TASKS:
      return TASKS[name]
    if name in _mpe_tasks():
      return _mpe_tasks()[name]
    if name in gym.registry:
      spec = gym.spec(name)
      family = _family_of(spec)
      limit = _env_limit_of(spec)
      if family is not None and limit is not None:
        return TaskSpec(name, name, env_episode_limit=limit, code_cutoff=limit, family=family)
    elif ":" in name:
      return pettingzoo.pettingzoo_task(name)
  raise _unknown_task_error(name)
