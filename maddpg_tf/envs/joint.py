"""Several fast vectors of one task stepped by one kernel call: a packed run's seeds (`run/packing.py`).

    joint = JointStep([env_seed0, env_seed1, env_seed2])   # FastVectorEnvironments, each reset
    steps = joint.step([actions0, actions1, actions2])     # one `Step` per part, as part.step would give

Each part keeps its own envs, generators and clocks, and stays an ordinary vector (its `get_state`,
`set_state`, `step`, `reset` work as before): the joint vector holds every part's arrays back to back and
each part's arrays are views of its rows, so one `_step_envs` and one clock call step them all. Envs share
nothing across the env axis (each has its own generator, its resets draw only from it), so a part's
numbers are those of its own `step`, bit for bit.

A part whose arrays or generators were replaced since (its `set_state`: its `layout_version` moved on) is
noticed at the next `step`, and the joint vector is built again from the parts as they are.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from maddpg_tf.envs.fast_common import FastVectorEnvironment
from maddpg_tf.envs.vector import Step

__all__ = ["JointStep", "joinable"]

# Per-env arrays besides `_arrays` that the parts hold as views of the joint vector's rows (the step assigns
# `last_order_dependent` anew, so the parts get it after each joint step).
_PER_ENV = ("_t", "_returns", "order_dependent_steps", "last_order_dependent")


def joinable(parts: Sequence) -> bool:
  """Whether `parts` can be stepped by one `JointStep`: fast vectors of one class, task, cut-off and food
  rule (each in this process: worker vectors, the reference and PettingZoo step on their own)."""
  if not parts or not all(isinstance(p, FastVectorEnvironment) for p in parts):
    return False
  first = parts[0]
  return all(type(p) is type(first) and p.task == first.task and p._cutoff == first._cutoff
             and p.lbf_food_rule == first.lbf_food_rule for p in parts)


class JointStep:
  """Steps `parts` (see the module docstring) together; each must have been reset."""

  def __init__(self, parts: Sequence[FastVectorEnvironment]):
    if not joinable(parts):
      raise ValueError("JointStep needs fast vectors of one task, cut-off and food rule, got "
                       + ", ".join(repr(p) for p in parts))
    self.parts = list(parts)
    sizes = [p.num_envs for p in self.parts]
    starts = np.cumsum([0] + sizes)
    self.slices = [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
    self._whole = None
    self._versions = None  # each part's layout_version when joined

  @property
  def num_envs(self) -> int:
    return self.slices[-1].stop

  def step(self, actions: Sequence[np.ndarray]) -> list:
    """`actions`: one int [part.num_envs, num_agents] per part. Returns one `Step` per part."""
    if len(actions) != len(self.parts):
      raise ValueError(f"JointStep of {len(self.parts)} parts got {len(actions)} action arrays")
    for part, part_actions in zip(self.parts, actions):
      if not part.ready:
        part._check_open()
        raise RuntimeError(f"{part!r}: step called before reset()")
      if np.shape(part_actions) != part._action_shape:
        raise ValueError(f"actions must have shape {part._action_shape}, got {np.shape(part_actions)}")
    whole = self._joined()
    step = whole.step(np.concatenate(actions))  # its own step checks the dtype
    for part, where in zip(self.parts, self.slices):
      part.last_order_dependent = whole.last_order_dependent[where]  # the step assigns it anew
    return [Step(*(field[where] for field in step)) for where in self.slices]

  def _joined(self) -> FastVectorEnvironment:
    versions = [part.layout_version for part in self.parts]
    if versions != self._versions:
      self._whole, self._versions = self._join(), versions
    return self._whole

  def _join(self) -> FastVectorEnvironment:
    """A vector of every part's envs; the parts' arrays become views of its rows."""
    first = self.parts[0]
    whole = first._like(self.num_envs, 0)
    for name in whole._arrays:
      whole._arrays[name] = np.concatenate([p._arrays[name] for p in self.parts])
    for name in _PER_ENV:
      setattr(whole, name, np.concatenate([getattr(p, name) for p in self.parts]))
    whole._rngs = [g for p in self.parts for g in p._rngs]  # the parts' generator objects themselves
    whole._rng_seeds = [s for p in self.parts for s in p._rng_seeds]
    whole._seeded = whole._ready = True
    for part, where in zip(self.parts, self.slices):
      for name in whole._arrays:
        part._arrays[name] = whole._arrays[name][where]
      for name in _PER_ENV:
        setattr(part, name, getattr(whole, name)[where])
    return whole
