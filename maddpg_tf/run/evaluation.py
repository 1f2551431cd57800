"""Evaluation: a number of whole episodes of a policy on environments of their own.

`Evaluator.run()` plays `episodes` episodes on `env` (its envs share them out, the first ones one more
when they do not divide), acting with `actor` (the stochastic policy, as training's evaluations; or a
greedy one), and returns an `EvaluationResult`. `store` (a callable taking a batch of transitions, or
None) receives every evaluation transition: the authors' code trained on its evaluation episodes.
"""

from typing import NamedTuple

import numpy as np

from maddpg_tf.envs import snapshots
from maddpg_tf.run import environment_loop

# The evaluation envs' seeds: the run's seed plus this, apart from every training env's seed.
EVAL_SEED_OFFSET = 1_000_003


class EvaluationResult(NamedTuple):
  """Per finished episode, in the order they finished: team returns, per-agent returns [episodes, N] and
  lengths in steps."""
  returns: list
  agent_returns: np.ndarray
  lengths: list


class Evaluator:
  """Plays evaluation episodes (see the module docstring)."""

  def __init__(self, *, env, actor, episodes, truncation_is_terminal, store=None):
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
      raise ValueError(f"evaluation episodes must be an integer >= 1, got {episodes!r}")
    self.env, self.actor, self.episodes = env, actor, int(episodes)
    self.truncation_is_terminal = truncation_is_terminal
    self.store = store

  def run(self):
    env = self.env
    quota = np.full(env.num_envs, self.episodes // env.num_envs)
    quota[:self.episodes % env.num_envs] += 1
    finished = np.zeros(env.num_envs, int)
    returns, lengths, agent_returns = [], [], []
    running = np.zeros((env.num_envs, env.spec.num_agents), np.float64)  # per-agent returns so far
    observations = env.reset()
    while np.any(finished < quota):
      actions = self.actor.select_actions(observations)
      step = env.step(actions)
      active = finished < quota
      if self.store is not None:
        terminal = environment_loop.terminal_flags(step, self.truncation_is_terminal)
        self.store(observations[active], actions[active], step.reward[active], terminal[active],
                   step.observation[active])
      running += step.reward
      ended = active & ~np.isnan(step.episode_return)
      returns.extend(float(r) for r in step.episode_return[ended])
      lengths.extend(int(n) for n in step.episode_length[ended])
      agent_returns.extend(running[ended].copy())
      running[~np.isnan(step.episode_return)] = 0.0
      finished += ended
      observations = step.next_observation
    return EvaluationResult(returns, np.array(agent_returns, np.float64).reshape(-1, env.spec.num_agents),
                            lengths)

  def save(self):
    return {"eval_env": self.env.get_state(), "eval_actor_rng": snapshots.generator_state(self.actor.rng)}

  def restore(self, state):
    self.env.set_state(state["eval_env"])
    self.actor.rng = snapshots.generator(state["eval_actor_rng"])
