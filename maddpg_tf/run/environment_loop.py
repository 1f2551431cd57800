"""The environment loop: act, step, store. It knows the vector environment's API, an actor and the replay
buffer, nothing of learning; what it sees reaches observers.

One `step()` is one vector step of every env: the actor picks every agent's action in every env in one
call, the envs step (in worker processes, if any), and while they do the previous step's transitions are
stored. Observers get each step's `Step` and actions (`observe(step, actions)`); they measure, the loop
does not.
"""

from typing import Protocol

import numpy as np

from maddpg_tf.envs import snapshots


class Observer(Protocol):
  """Sees every step the loop takes; `metrics()` says what it measured (a dict of numbers)."""

  def observe(self, step, actions): ...

  def metrics(self): ...


class EpisodeReturns:
  """The team returns of recently finished episodes (the last `keep` after each `metrics()`)."""

  def __init__(self, keep=100):
    self.keep = keep
    self.returns = []

  def observe(self, step, actions):
    del actions
    ended = ~np.isnan(step.episode_return)
    if np.any(ended):
      self.returns.extend(step.episode_return[ended].tolist())

  def metrics(self):
    """{"train/episode_return": mean} of the returns since the last call (and up to `keep` before)."""
    values = {"train/episode_return": float(np.mean(self.returns))} if self.returns else {}
    self.returns = self.returns[-self.keep:]
    return values

  def save(self):
    return {"recent_returns": list(self.returns)}

  def restore(self, state):
    self.returns = list(state.get("recent_returns", []))


def terminal_flags(step, truncation_is_terminal):
  """float32 [E]: 1 where the critic must not bootstrap (`truncation_is_terminal`: time-outs too)."""
  if truncation_is_terminal:
    return (step.terminated | step.truncated).astype(np.float32)
  return step.terminated.astype(np.float32)


class EnvironmentLoop:
  """Steps `env` with `actor` and stores every transition in `replay` (a `StagedReplay`); counts the env
  steps and finished episodes in `counter` (a `counting.Counter`)."""

  def __init__(self, *, env, actor, replay, counter, truncation_is_terminal, observers=()):
    self.env, self.actor, self.replay, self.counter = env, actor, replay, counter
    self.truncation_is_terminal = truncation_is_terminal
    self.observers = list(observers)
    self.observations = None

  def reset(self):
    self.observations = self.env.reset()

  def warm_up(self, episodes, rng):
    """Uniform random actions until `episodes` episodes have finished in all (not training steps)."""
    while self.counter.warmup_episodes < episodes:
      actions = self.env.random_actions(rng)
      step = self.env.step(actions)
      self.replay.add(self.observations, actions, step.reward,
                      terminal_flags(step, self.truncation_is_terminal), step.observation)
      self.observations = step.next_observation
      self.counter.increment(warmup_episodes=int(np.sum(~np.isnan(step.episode_return))))

  def step(self):
    """One vector step; returns the number of episodes it finished."""
    actions = self.actor.select_actions(self.observations)
    self.env.step_async(actions)
    self.replay.flush()  # the previous step's transitions, while the envs step
    return self.record(actions, self.env.step_wait())

  def record(self, actions, step):
    """What follows the envs' `step` under `actions` (taken here by `step()`, or by a driver that steps
    several loops' envs and actors together, having flushed the replay first): stores, counts, observes.
    Returns the number of episodes it finished."""
    self.replay.stage(self.observations, actions, step.reward,
                      terminal_flags(step, self.truncation_is_terminal), step.observation)
    self.observations = step.next_observation
    self.counter.increment(env_steps=self.env.num_envs)  # observers see the step counted
    for observer in self.observers:
      observer.observe(step, actions)
    ended = int(np.sum(~np.isnan(step.episode_return)))
    self.counter.increment(episodes=ended)
    return ended

  def save(self):
    return {"env": self.env.get_state(), "observations": self.observations,
            "actor_rng": snapshots.generator_state(self.actor.rng)}

  def restore(self, state):
    self.env.set_state(state["env"])
    self.observations = state["observations"]
    self.actor.rng = snapshots.generator(state["actor_rng"])
