"""`maddpg_tf.run.updates.UpdateScheduler` on a fake learner and replay: which updates each finished episode
owes and when they run, in which calls, with which batches and seeds, what is logged, and what a checkpoint
keeps. (The counters' part and the owed updates below a block: tests/run/test_counting.py.)"""

import json

import numpy as np
import pytest
import tensorflow as tf

from maddpg_tf.agent import learner as learner_lib
from maddpg_tf.run import checkpointing, counting, errors, updates

VARIANCE = "per_sample_grad_variance/dense_0"


class FakeLearner:
  """Records its calls. Its version is the number of updates it has run: the actors' weights and the critic
  loss it reports are that number, so a test sees which updates an acting snapshot or a metric follows.
  `bad_update`: (index in a call, loss index) it reports non-finite in its next call."""

  def __init__(self):
    self.calls, self.version, self.bad_update = [], 0, None

  def _metrics(self, per_sample_variance):
    bad = self.bad_update or (-1, -1)
    self.bad_update = None
    metrics = {"critic_loss": tf.constant(float(self.version)), learner_lib.NON_FINITE_UPDATE: tf.constant(bad[0]),
               learner_lib.NON_FINITE_LOSS: tf.constant(bad[1])}
    if per_sample_variance:
      metrics[VARIANCE] = tf.constant([0.5])
    return metrics

  def step(self, batch, seed=None, estimator_step=None, per_sample_variance=False):
    self.calls.append(("step", [batch], [seed.tolist()], [estimator_step], per_sample_variance))
    self.version += 1
    return self._metrics(per_sample_variance)

  def step_block(self, batches, seeds, estimator_steps, block_size=8):
    self.calls.append(("block", list(batches), [s.tolist() for s in seeds], list(estimator_steps), block_size))
    self.version += len(batches)
    return self._metrics(False)

  def actor_weights(self):
    return [(np.array([float(self.version)]), np.array([0.]))]


class FakeActor:
  weights = None

  def set_weights(self, weights):
    self.weights = weights


class FakeReplay:
  """`size` transitions; a batch is the `size` numbers its generator draws, so a batch names its draw."""

  def __init__(self, size=100):
    self.size = size

  def __len__(self):
    return self.size

  def sample(self, batch_size, rng):
    return tuple(rng.integers(0, 1000, batch_size).tolist())


class FakeLogger:
  def __init__(self):
    self.records = []

  def write(self, values, step):
    self.records.append(({k: np.asarray(v).tolist() for k, v in values.items()}, step))


def make(counter=None, diagnostics=None, replay_size=100, **overrides):
  settings = dict(batch_size=2, updates_per_episode=2, block_size=4, asynchronous=False, seed=9,
                  schedule_unit="updates", variance_every_steps=1000, log_every_updates=3, diagnose_every=0)
  settings.update(overrides)
  return updates.UpdateScheduler(learner=FakeLearner(), replay=FakeReplay(replay_size),
                                 replay_rng=np.random.default_rng(5), counter=counter or counting.Counter(),
                                 settings=updates.UpdateSettings(**settings), actors=[FakeActor(), FakeActor()],
                                 logger=FakeLogger(), diagnostics=diagnostics)


def batches(count, seed=5, batch_size=2):
  rng = np.random.default_rng(seed)
  return [tuple(rng.integers(0, 1000, batch_size).tolist()) for _ in range(count)]


def acting_version(scheduler):
  return [float(actor.weights[0][0][0]) for actor in scheduler.actors]


def test_synchronous_updates_run_when_episodes_end_the_first_of_a_window_alone():
  scheduler = make()
  scheduler.counter.increment(env_steps=40)
  scheduler.episodes_ended(3)  # 3 episodes x 2 updates
  expected = batches(6)
  # The first update of Figure 4's window 0 logs the per-sample variance on its own; the rest form one block.
  assert scheduler.learner.calls == [
      ("step", expected[:1], [[9, 0]], [0], True),
      ("block", expected[1:], [[9, 1], [9, 2], [9, 3], [9, 4], [9, 5]], [1, 2, 3, 4, 5], 4)]
  assert (scheduler.counter.updates, scheduler.owed_updates, scheduler.variance_window) == (6, 0, 0)
  assert acting_version(scheduler) == [6., 6.] and not scheduler.stale
  # Update 1 logs the variance; the block (updates 2-6) crosses log_every_updates = 3, so it logs its last metrics.
  assert scheduler.logger.records == [({VARIANCE: [0.5]}, 40), ({"train/critic_loss": 6.0}, 40)]


def test_the_schedule_position_is_the_env_step_on_that_clock():
  scheduler = make(schedule_unit="env_steps", updates_per_episode=1)
  scheduler.counter.increment(env_steps=70, updates=4)
  scheduler.episodes_ended(2)
  assert [call[3] for call in scheduler.learner.calls] == [[70], [70]]
  assert [call[2] for call in scheduler.learner.calls] == [[[9, 4]], [[9, 5]]]


def test_with_fewer_transitions_than_a_batch_no_update_runs_and_none_stays_owed():
  scheduler = make(replay_size=1)
  scheduler.episodes_ended(2)
  assert (scheduler.learner.calls, scheduler.counter.updates, scheduler.owed_updates) == ([], 0, 0)


def test_asynchronous_updates_wait_for_a_block_and_act_with_the_old_snapshot_until_collected():
  scheduler = make(asynchronous=True, updates_per_episode=1)
  try:
    assert scheduler.min_block == 4
    scheduler.episodes_ended(3)
    assert (scheduler.owed_updates, scheduler.counter.updates) == (3, 0)
    scheduler.episodes_ended(2)  # 5 owed >= 4: all 5 go to the learner thread, counted and drawn now
    assert (scheduler.owed_updates, scheduler.counter.updates) == (0, 5)
    assert acting_version(scheduler) == [0., 0.]  # the envs keep acting with the snapshot taken before
    scheduler.drain(refresh=False)  # collected, but a signal's checkpoint keeps the old snapshot
    assert scheduler.stale and acting_version(scheduler) == [0., 0.]
    assert [call[0] for call in scheduler.learner.calls] == ["step", "block"]
    assert scheduler.logger.records[-1] == ({"train/critic_loss": 5.0}, 0)
    scheduler.drain()
    assert not scheduler.stale and acting_version(scheduler) == [5., 5.]
  finally:
    scheduler.close()


def test_figure4_logs_the_first_update_of_each_window_of_env_steps():
  scheduler = make(variance_every_steps=100, updates_per_episode=2, log_every_updates=1000)
  for env_steps, expected_window in ((150, 1), (40, 1), (10, 2), (300, 5)):
    scheduler.counter.increment(env_steps=env_steps)
    scheduler.episodes_ended(1)
    assert scheduler.variance_window == expected_window
  assert [call[0] for call in scheduler.learner.calls] == ["step", "block", "block", "step", "block", "step", "block"]
  assert [step for _, step in scheduler.logger.records] == [150, 200, 500]  # env steps 150, 200 and 500


def test_a_diagnosed_update_starts_a_call_and_sees_the_networks_it_finds():
  seen = []

  def diagnostics(batch, seed, step):
    seen.append((batch, seed.tolist(), step))
    return {"exact_gradient/cosine": tf.constant(float(scheduler.learner.version))}

  scheduler = make(diagnostics=diagnostics, diagnose_every=2, log_every_updates=1000)
  scheduler.variance_window = 0  # window 0 already logged
  scheduler.episodes_ended(2)
  expected = batches(4)
  assert [call[1] for call in scheduler.learner.calls] == [expected[:2], expected[2:]]
  assert seen == [(expected[0], [9, 0], 0), (expected[2], [9, 2], 2)]
  assert scheduler.logger.records == [({"exact_gradient/cosine": 0.0}, 0), ({"exact_gradient/cosine": 2.0}, 0)]


def test_a_non_finite_loss_names_the_updates_of_its_call():
  scheduler = make()
  scheduler.variance_window = 0
  scheduler.counter.increment(updates=1)
  scheduler.learner.bad_update = (3, 1)
  with pytest.raises(errors.NonFiniteLoss, match=r"^the actor loss is NaN or infinite in updates 2-5$"):
    scheduler.episodes_ended(2)


def test_a_checkpoint_keeps_the_owed_updates_the_window_and_the_batches_to_come():
  scheduler = make(asynchronous=True, updates_per_episode=1, variance_every_steps=100)
  try:
    scheduler.counter.increment(env_steps=250)
    scheduler.episodes_ended(4)
    scheduler.drain(refresh=False)
    scheduler.episodes_ended(3)
    state = scheduler.save()
  finally:
    scheduler.close()
  assert (state["owed_updates"], state["variance_window"]) == (3, 2)
  assert state["stale_acting_weights"] == [[np.array([0.]), np.array([0.])]]  # the snapshot the envs act with
  arrays = {}
  state = checkpointing.decode(json.loads(json.dumps(checkpointing.encode(state, "updates", arrays))), arrays)

  restored = make(asynchronous=True, updates_per_episode=1, variance_every_steps=100)
  try:
    restored.restore(state)
    assert (restored.owed_updates, restored.variance_window, restored.stale) == (3, 2, True)
    assert acting_version(restored) == [0., 0.]
    restored.episodes_ended(1)  # 4 owed: a block, on the batches the first scheduler would have drawn next
    restored.drain()
    assert restored.learner.calls[0][1] == batches(8)[4:]
    assert acting_version(restored) == [4., 4.]
  finally:
    restored.close()


def test_an_owners_entry_wins_over_an_old_checkpoints_counters():
  state = {"replay_rng": None, "stale_acting_weights": None, "owed_updates": 1, "variance_window": 7,
           "counters": {"owed_updates": 2, "variance_window": 1}}
  scheduler = make()
  scheduler.restore(state)
  assert (scheduler.owed_updates, scheduler.variance_window) == (1, 7)
  del state["owed_updates"], state["variance_window"]
  scheduler.restore(state)
  assert (scheduler.owed_updates, scheduler.variance_window) == (2, 1)
