"""Tiny PettingZoo ParallelEnvs with dynamics simple enough to derive every number by hand.

`Counter`: agents "a" (observes Box(2,)) and "b" (observes Box(3,)); actions Discrete(3) for "a",
Discrete(2, start=1) for "b" (so b's env actions are 1 and 2). State: an integer position p and step
count t. `reset(seed=s)` sets p = s mod 7 and draws nothing else; a step with env actions (x, y) sets
p <- p + x + y and t <- t + 1. Then

  observation a = [p, t],  observation b = [p, t, 10 * seed_mod]   (seed_mod = s mod 7),
  reward a = x,            reward b = -y,
  terminated (both) when p >= GOAL (= 12), truncated (both) when t >= max_cycles (= 5).

Variants for the adapter's checks: `Counter(vanish_at=2)` drops agent "b" from the step output at t = 2;
`Counter(only_a_ends=True)` ends "a" alone at its goal; `continuous_counter` (Box actions), `dict_counter`
(Dict observations), `no_limit_counter` (ends its episodes, declares no limit), `late_agents_counter` (agents differ from
possible_agents after reset), `not_parallel` (an object without the ParallelEnv methods).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

GOAL = 12
MAX_CYCLES = 5


class Counter(ParallelEnv):
  metadata = {"name": "counter_v0", "render_modes": ["rgb_array"]}

  def __init__(self, max_cycles=MAX_CYCLES, render_mode=None, vanish_at=None, only_a_ends=False,
               action_space_a=None, observation_space_b=None, declare_limit=True):
    self.possible_agents = ["a", "b"]
    self.agents = []
    self._cycles = max_cycles  # the env ends its episodes there whether or not it declares the limit
    if declare_limit:
      self.max_cycles = max_cycles
    self.render_mode = render_mode
    self.vanish_at = vanish_at
    self.only_a_ends = only_a_ends
    self._observation_spaces = {"a": spaces.Box(-np.inf, np.inf, (2,), np.float32),
                                "b": observation_space_b or spaces.Box(-np.inf, np.inf, (3,), np.float32)}
    self._action_spaces = {"a": action_space_a or spaces.Discrete(3), "b": spaces.Discrete(2, start=1)}
    self.p = self.t = self.seed_mod = 0
    self.resets = []  # the seed of every reset (tests read it)

  def observation_space(self, agent):
    return self._observation_spaces[agent]

  def action_space(self, agent):
    return self._action_spaces[agent]

  def _observe(self):
    return {"a": np.array([self.p, self.t], np.float32),
            "b": np.array([self.p, self.t, 10 * self.seed_mod], np.float32)}

  def reset(self, seed=None, options=None):
    self.resets.append(seed)
    self.seed_mod = 0 if seed is None else seed % 7
    self.p, self.t = self.seed_mod, 0
    self.agents = list(self.possible_agents)
    return self._observe(), {agent: {} for agent in self.agents}

  def step(self, actions):
    x, y = int(actions["a"]), int(actions["b"])
    self.p += x + y
    self.t += 1
    at_goal, timed_out = self.p >= GOAL, self.t >= self._cycles
    observations, rewards = self._observe(), {"a": float(x), "b": float(-y)}
    terminations = {agent: at_goal for agent in self.agents}
    truncations = {agent: timed_out for agent in self.agents}
    if self.only_a_ends:
      terminations["b"] = truncations["b"] = False
    if self.vanish_at is not None and self.t >= self.vanish_at:
      for table in (observations, rewards, terminations, truncations):
        table.pop("b")
    if at_goal or timed_out:
      self.agents = []
    return observations, rewards, terminations, truncations, {agent: {} for agent in self.agents}

  def render(self):
    # A 4 x 6 frame whose red channel is p and green channel t.
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[..., 0], frame[..., 1] = self.p, self.t
    return frame


def counter(render_mode=None):
  return Counter(render_mode=render_mode)


def long_counter():
  return Counter(max_cycles=8)


def vanishing_counter():
  return Counter(vanish_at=2)


def lonely_end_counter():
  return Counter(only_a_ends=True)


def continuous_counter():
  return Counter(action_space_a=spaces.Box(-1.0, 1.0, (2,), np.float32))


def dict_counter():
  return Counter(observation_space_b=spaces.Dict({"p": spaces.Box(0, 1, (1,), np.float32)}))


def no_limit_counter():
  return Counter(declare_limit=False)  # still ends its own episodes (goal, or 5 steps)


class _LateAgents(Counter):
  def reset(self, seed=None, options=None):
    observations, infos = super().reset(seed, options)
    self.agents = ["a"]
    return observations, infos


def late_agents_counter():
  return _LateAgents()


def not_parallel():
  return object()


class Noisy(Counter):
  """A Counter whose reset ignores its seed (a global generator): it cannot be replayed."""

  _draws = np.random.default_rng(123)

  def reset(self, seed=None, options=None):
    observations, infos = super().reset(int(self._draws.integers(1000)), options)
    return observations, infos


def noisy_counter():
  return Noisy()


NOT_CALLABLE = 3
