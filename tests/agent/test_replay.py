"""`maddpg_tf.agent.replay`: the circular buffer's order, wrap-around, sampling, dtype checks and checkpoints,
and the staged buffer's promise that readers see every step stored at once."""

import numpy as np
import pytest

from maddpg_tf.agent import replay

AGENTS, OBS = 2, 3


def rows(start, count):
  """`count` transitions numbered from `start`: every field encodes the row's number, so a stored row can be
  traced back to the transition it came from."""
  numbers = np.arange(start, start + count)
  observation = np.repeat(numbers[:, None, None], AGENTS, 1).repeat(OBS, 2).astype(np.float32)
  action = np.stack([numbers % 5, (numbers + 1) % 5], 1)
  reward = np.stack([numbers, -numbers], 1).astype(np.float32)
  terminal = (numbers % 2).astype(np.float32)
  return observation, action, reward, terminal, observation + 0.5


def test_adds_in_order_and_wraps_around_overwriting_the_oldest():
  buffer = replay.ReplayBuffer(5, AGENTS, OBS)
  buffer.add(*rows(0, 3))
  assert (len(buffer), buffer.cursor) == (3, 3)
  buffer.add(*rows(3, 4))  # rows 3, 4 fill the end; 5, 6 overwrite rows 0, 1
  assert (len(buffer), buffer.cursor) == (5, 2)
  np.testing.assert_array_equal(buffer.observation[:, 0, 0], [5, 6, 2, 3, 4])
  np.testing.assert_array_equal(buffer.next_observation[:, 1, 2], [5.5, 6.5, 2.5, 3.5, 4.5])
  np.testing.assert_array_equal(buffer.reward[:, 1], [-5, -6, -2, -3, -4])
  np.testing.assert_array_equal(buffer.action[:, 0], [0, 1, 2, 3, 4])
  np.testing.assert_array_equal(buffer.terminal, [1, 0, 0, 1, 0])


def test_a_batch_longer_than_the_capacity_is_refused():
  buffer = replay.ReplayBuffer(4, AGENTS, OBS)
  with pytest.raises(ValueError, match="cannot add 5 transitions to a buffer of capacity 4"):
    buffer.add(*rows(0, 5))
  assert len(buffer) == 0


@pytest.mark.parametrize("capacity", [0, -1, 2.5, True, "10"])
def test_capacity_must_be_a_positive_integer(capacity):
  with pytest.raises(ValueError, match=r"replay capacity must be an integer >= 1, got "):
    replay.ReplayBuffer(capacity, AGENTS, OBS)


def test_values_float16_cannot_hold_are_refused_not_rounded():
  buffer = replay.ReplayBuffer(4, AGENTS, OBS)
  observation, action, reward, terminal, next_observation = rows(0, 2)
  observation[1, 0, 0] = 2049.0  # float16 holds integers exactly only up to 2048
  with pytest.raises(ValueError, match=r"observation values are not exact in float16 \(e.g. 2049.0\)"):
    buffer.add(observation, action, reward, terminal, next_observation)
  exact = replay.ReplayBuffer(4, AGENTS, OBS, observation_dtype="float32")
  exact.add(observation, action, reward, terminal, next_observation)
  assert exact.observation[1, 0, 0] == 2049.0


def test_sample_draws_distinct_rows_of_the_filled_part_only():
  buffer = replay.ReplayBuffer(100, AGENTS, OBS)
  buffer.add(*rows(0, 10))
  rng = np.random.default_rng(0)
  for _ in range(50):
    batch = buffer.sample(10, rng)
    numbers = batch.observation[:, 0, 0]
    assert sorted(numbers) == list(range(10))  # all ten, none twice, none of the empty rows
    np.testing.assert_array_equal(batch.next_observation[:, 1, 2], numbers + 0.5)  # fields stay together
    np.testing.assert_array_equal(batch.reward[:, 1], -numbers)
    assert batch.observation.dtype == np.float32 and batch.action.dtype == np.int32
  with pytest.raises(ValueError, match="cannot sample 11 transitions from a buffer holding 10"):
    buffer.sample(11, rng)


def test_sampling_is_uniform_over_the_stored_rows():
  """Each of 20 rows in 4,000 batches of 5: counts within 5 standard deviations of 1,000 (binomial)."""
  buffer = replay.ReplayBuffer(20, AGENTS, OBS)
  buffer.add(*rows(0, 20))
  rng = np.random.default_rng(1)
  counts = np.bincount(np.concatenate([buffer.sample(5, rng).observation[:, 0, 0].astype(int)
                                       for _ in range(4000)]), minlength=20)
  expected, sd = 4000 * 5 / 20, np.sqrt(4000 * 0.25 * 0.75)
  assert np.all(np.abs(counts - expected) < 5 * sd), counts


def test_same_generator_state_same_batch():
  buffer = replay.ReplayBuffer(50, AGENTS, OBS)
  buffer.add(*rows(0, 30))
  a = buffer.sample(8, np.random.default_rng(7)).observation
  b = buffer.sample(8, np.random.default_rng(7)).observation
  np.testing.assert_array_equal(a, b)


def test_checkpoint_round_trip_after_wrap_around_continues_identically():
  original = replay.ReplayBuffer(6, AGENTS, OBS)
  original.add(*rows(0, 4))
  original.add(*rows(4, 5))  # wrapped: cursor 3
  restored = replay.ReplayBuffer(6, AGENTS, OBS)
  restored.restore({k: v.copy() for k, v in original.state().items()})
  assert (restored.size, restored.cursor) == (original.size, original.cursor) == (6, 3)
  for buffer in (original, restored):
    buffer.add(*rows(9, 2))
  for name in ("observation", "next_observation", "action", "reward", "terminal"):
    np.testing.assert_array_equal(getattr(restored, name), getattr(original, name))
  np.testing.assert_array_equal(restored.sample(4, np.random.default_rng(3)).observation,
                                original.sample(4, np.random.default_rng(3)).observation)


def test_a_checkpoint_of_a_partly_filled_buffer_holds_only_the_filled_rows():
  buffer = replay.ReplayBuffer(1000, AGENTS, OBS)
  buffer.add(*rows(0, 3))
  state = buffer.state()
  assert state["replay/observation"].shape == (3, AGENTS, OBS)
  assert int(state["replay/size"]) == 3 and int(state["replay/cursor"]) == 3


def test_restore_refuses_a_checkpoint_of_another_shape_or_a_larger_buffer():
  buffer = replay.ReplayBuffer(4, AGENTS, OBS)
  buffer.add(*rows(0, 4))
  other = replay.ReplayBuffer(4, AGENTS, OBS + 1)
  with pytest.raises(ValueError, match=r"checkpoint replay/observation has shape \(4, 2, 3\), expected "
                                       r"\(4,\) \+ \(2, 4\): a checkpoint of another task\?"):
    other.restore(buffer.state())
  smaller = replay.ReplayBuffer(3, AGENTS, OBS)
  with pytest.raises(ValueError, match="checkpoint holds 4 transitions, more than the capacity 3"):
    smaller.restore(buffer.state())


def test_staged_transitions_are_stored_before_any_read():
  staged = replay.StagedReplay(replay.ReplayBuffer(10, AGENTS, OBS))
  staged.stage(*rows(0, 2))
  assert len(staged.buffer) == 0  # held back while the envs step
  staged.stage(*rows(2, 2))  # the next step stores the previous one
  assert len(staged.buffer) == 2
  assert len(staged) == 4  # reading the length stores the held step
  staged.stage(*rows(4, 1))
  batch = staged.sample(5, np.random.default_rng(0))
  assert sorted(batch.observation[:, 0, 0]) == [0, 1, 2, 3, 4]
  staged.stage(*rows(5, 1))
  assert int(staged.save()["replay/size"]) == 6  # a checkpoint holds the held step too
  staged.stage(*rows(6, 1))
  staged.add(*rows(7, 1))  # a direct add keeps the order: held row 6 first
  np.testing.assert_array_equal(staged.buffer.observation[:8, 0, 0], np.arange(8))


def test_restoring_a_staged_buffer_drops_what_was_held():
  staged = replay.StagedReplay(replay.ReplayBuffer(10, AGENTS, OBS))
  staged.add(*rows(0, 3))
  saved = staged.save()
  staged.stage(*rows(3, 2))
  staged.restore(saved)
  assert len(staged) == 3
