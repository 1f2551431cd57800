"""`maddpg_tf.envs.joint.JointStep`: several fast vectors of one task (a packed run's seeds, each with its
own seed) stepped by one kernel call give each vector the steps it gives alone, bit for bit, through
episode ends and resets; a part restored from a checkpoint is joined again; what cannot be joined is said."""

import numpy as np
import pytest

from maddpg_tf.envs.builder import VectorEnvironment, resolve_task
from maddpg_tf.envs.fast import FastVectorEnvironment
from maddpg_tf.envs.joint import JointStep, joinable

SEEDS_AND_SIZES = ((0, 3), (7, 3), (2, 1))


def vectors(task, limit, food_rule="v2"):
  out = [FastVectorEnvironment(task, n, seed, limit, food_rule) for seed, n in SEEDS_AND_SIZES]
  for vector in out:
    vector.reset()
  return out


def assert_same_steps(joined, alone):
  for a, b in zip(joined, alone):
    for name, x, y in zip(a._fields, a, b):
      np.testing.assert_array_equal(x, y, err_msg=name)


def run_both(task, limit, steps, restore_at=None, from_reference=False):
  together, alone = vectors(task, limit), vectors(task, limit)
  joint = JointStep(together)
  rng = np.random.default_rng(5)
  ended = 0
  for t in range(steps):
    actions = [part.random_actions(rng) for part in alone]
    if t == restore_at:  # part 1 comes back from its state (as a resumed seed's env does)
      source = alone[1].to_reference() if from_reference else alone[1]
      together[1].set_state(source.get_state())
    joined = joint.step(actions)
    single = [part.step(a) for part, a in zip(alone, actions)]
    assert_same_steps(joined, single)
    ended += sum(int(np.sum(~np.isnan(s.episode_return))) for s in single)
  for a, b in zip(together, alone):  # and the parts' own states
    sa, sb = a.get_state(), b.get_state()
    for name in sb["envs"]:
      assert np.array_equal(np.asarray(sa["envs"][name], dtype=object), np.asarray(sb["envs"][name], dtype=object)), name
  return ended


@pytest.mark.parametrize("task, limit", [("lbf-8x8-2p-2f-coop", 25), ("lbf-15x15-4p-5f", 25), ("rware-tiny-2ag", 25)])
def test_joint_steps_equal_each_part_alone_through_episode_ends(task, limit):
  assert run_both(task, limit, steps=120) >= 7 * 4  # every env ended an episode at least four times


@pytest.mark.parametrize("from_reference", [False, True], ids=["fast-state", "reference-state"])
def test_a_part_restored_from_its_state_is_joined_again(from_reference):
  assert run_both("lbf-8x8-2p-2f-coop", 25, steps=60, restore_at=30, from_reference=from_reference) > 0


def test_a_restore_moves_the_layout_version_on():
  vector = vectors("lbf-8x8-2p-2f-coop", 25)[0]
  before = vector.layout_version
  vector.step(vector.random_actions(np.random.default_rng(0)))
  assert vector.layout_version == before  # a step writes in place
  vector.set_state(vector.get_state())
  vector.set_state(vector.to_reference().get_state())
  assert vector.layout_version == before + 2


def test_parts_stepped_alone_between_joint_steps_stay_joined():
  """A seed that steps alone (the others done) writes through to the joint arrays."""
  together, alone = vectors("lbf-8x8-2p-2f-coop", 25), vectors("lbf-8x8-2p-2f-coop", 25)
  joint = JointStep(together)
  rng = np.random.default_rng(1)
  for t in range(40):
    actions = [part.random_actions(rng) for part in alone]
    single = [part.step(a) for part, a in zip(alone, actions)]
    if t % 3 == 0:
      assert_same_steps([p.step(a) for p, a in zip(together, actions)], single)
    else:
      assert_same_steps(joint.step(actions), single)


def test_what_cannot_be_joined():
  fast = vectors("lbf-8x8-2p-2f-coop", 25)
  assert joinable(fast)
  assert not joinable(fast + vectors("lbf-8x8-2p-2f-2s-coop", 25))  # another task
  assert not joinable([fast[0], FastVectorEnvironment("lbf-8x8-2p-2f-coop", 3, 0, 10, "v2")])  # cut-off
  assert not joinable([VectorEnvironment(resolve_task("lbf-8x8-2p-2f-coop"), 2, 0, 25)])  # the reference steps alone
  with pytest.raises(ValueError, match="JointStep needs fast vectors"):
    JointStep([])
  joint = JointStep(fast)
  with pytest.raises(ValueError, match="2 action arrays"):
    joint.step([np.zeros((3, 2), np.int64)] * 2)
  with pytest.raises(ValueError, match=r"actions must have shape \(3, 2\)"):
    joint.step([np.zeros((2, 2), np.int64)] * 3)
