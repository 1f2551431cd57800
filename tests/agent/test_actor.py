"""`maddpg_tf.agent.actor.JointActing`: several NumpyActors acting through one stacked matmul choose, bit
for bit, the actions each chooses alone, from the same generators, also after their weights change."""

import numpy as np
import pytest

from maddpg_tf.agent import actor as actor_lib


def layers(rng, sizes=(11, 16, 16, 5), agents=3):
  return [(rng.standard_normal((agents, a, b)).astype(np.float32),
           rng.standard_normal((agents, 1, b)).astype(np.float32)) for a, b in zip(sizes[:-1], sizes[1:])]


def test_joint_acting_chooses_what_each_actor_chooses_alone():
  rng = np.random.default_rng(0)
  seeds = (0, 4, 9)
  joint_actors = [actor_lib.NumpyActor(seed) for seed in seeds]
  alone = [actor_lib.NumpyActor(seed) for seed in seeds]
  joint = actor_lib.JointActing(joint_actors)
  differ = 0
  for t in range(30):
    if t % 10 == 0:  # new weights, as after an update block
      for a, b in zip(joint_actors, alone):
        weights = layers(rng)
        a.set_weights(weights)
        b.set_weights(weights)
    observations = [rng.standard_normal((6, 3, 11)).astype(np.float32) for _ in seeds]
    chosen = joint.select_actions(observations)
    expected = [actor.select_actions(obs) for actor, obs in zip(alone, observations)]
    for c, e in zip(chosen, expected):
      np.testing.assert_array_equal(c, e)
    differ += int(not np.array_equal(chosen[0], chosen[1]))
  for a, b in zip(joint_actors, alone):  # the generators moved alike
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
  assert differ > 20  # the seeds' actions are their own


def test_joint_acting_takes_sampling_numpy_actors_only():
  with pytest.raises(ValueError, match="NumpyActors"):
    actor_lib.JointActing([actor_lib.GreedyNumpyActor(0)])
  with pytest.raises(ValueError, match="NumpyActors"):
    actor_lib.JointActing([])
