"""The multi-particle tasks (the `mpe2` package, PettingZoo's maintained MPE) by short name, family "mpe".

Each short name is a factory here (its `TaskSpec.gym_id` is "maddpg_tf.envs.mpe:<name>"), stepped by
`maddpg_tf.envs.pettingzoo.ParallelVectorEnvironment`. The settings are those the MARL benchmarks run
(Lowe et al. 2017; Papoudakis et al. 2021, EPyMARL): discrete actions, episodes of 25 steps
(`max_cycles=25`, a time-out: `truncations`), and each scenario's defaults otherwise:

  simple_spread            3 agents, 3 landmarks, cooperative; local_ratio 0.5 (each agent's reward is
                           half the shared landmark-coverage term, half its own collision penalty).
                           Observations 18, actions 5.
  simple_speaker_listener  a speaker (sees the goal colour, 3 messages, cannot move) and a listener
                           (hears, moves: 5 actions); shared reward. Observations 3 and 11 (padded to
                           11), actions 3 and 5 (the speaker's 5 sent mod 3).
  simple_reference         2 agents, each moves and speaks (5 x 10 = 50 actions) and must reach the
                           landmark the other names; local_ratio 0.5. Observations 21.

mpe2 is imported only when an env is built.
"""

from __future__ import annotations

from maddpg_tf.envs.task_spec import TaskSpec

__all__ = ["MPE_TASKS", "EPISODE_LIMIT", "simple_spread", "simple_speaker_listener", "simple_reference"]

FAMILY = "mpe"
EPISODE_LIMIT = 25


def simple_spread(render_mode=None):
  from mpe2 import simple_spread_v3  # pylint: disable=g-import-not-at-top
  return simple_spread_v3.parallel_env(N=3, local_ratio=0.5, max_cycles=EPISODE_LIMIT, continuous_actions=False,
                                       render_mode=render_mode)


def simple_speaker_listener(render_mode=None):
  from mpe2 import simple_speaker_listener_v4  # pylint: disable=g-import-not-at-top
  return simple_speaker_listener_v4.parallel_env(max_cycles=EPISODE_LIMIT, continuous_actions=False,
                                                 render_mode=render_mode)


def simple_reference(render_mode=None):
  from mpe2 import simple_reference_v3  # pylint: disable=g-import-not-at-top
  return simple_reference_v3.parallel_env(local_ratio=0.5, max_cycles=EPISODE_LIMIT, continuous_actions=False,
                                          render_mode=render_mode)


def _task(name: str) -> TaskSpec:
  return TaskSpec(name, f"{__name__}:{name}", env_episode_limit=EPISODE_LIMIT, code_cutoff=EPISODE_LIMIT,
                  family=FAMILY)


MPE_TASKS: dict[str, TaskSpec] = {t.name: t for t in map(_task, ("simple_spread", "simple_speaker_listener",
                                                                 "simple_reference"))}
