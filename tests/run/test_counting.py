"""`maddpg_tf.run.counting`: counts only grow, through `increment`; they checkpoint as plain numbers; and
a checkpoint written when the counters also held the owed updates, Figure 4's window and the last
checkpoint step still restores, each number to its owner."""

import pickle

import numpy as np
import pytest

from maddpg_tf.run import counting, training, updates

# The counters of a checkpoint written before their owners kept owed_updates, variance_window and
# last_checkpoint (the format of state.pkl until then).
OLD_STATE = {"counters": {"env_steps": 1260, "warmup_episodes": 400, "episodes": 57, "updates": 55,
                          "owed_updates": 2, "variance_window": 1, "last_checkpoint": 1200},
             "evaluations": [{"step": 0, "returns": [0.5]}], "warmup_rng": None, "replay_rng": None}


def test_increment_adds_and_returns_the_counts():
  counter = counting.Counter()
  assert counter.get_counts() == {"env_steps": 0, "warmup_episodes": 0, "episodes": 0, "updates": 0}
  assert counter.increment(env_steps=16, episodes=np.int64(2)) == {"env_steps": 16, "warmup_episodes": 0,
                                                                   "episodes": 2, "updates": 0}
  counter.increment(env_steps=16)
  counter.increment(updates=1)
  assert (counter.env_steps, counter.episodes, counter.updates, counter.warmup_episodes) == (32, 2, 1, 0)
  assert type(counter.episodes) is int  # pylint: disable=unidiomatic-typecheck  # a plain number, not NumPy's


def test_counts_change_only_through_increment():
  counter = counting.Counter()
  counter.get_counts()["env_steps"] = 99  # a copy
  assert counter.env_steps == 0
  with pytest.raises(AttributeError):
    counter.env_steps = 5
  with pytest.raises(ValueError, match=r"^unknown count 'env_step'; allowed: env_steps, warmup_episodes, "
                                       r"episodes, updates$"):
    counter.increment(env_step=1)
  for bad in (-1, 1.5, True):
    with pytest.raises(ValueError, match=rf"^count updates must grow by a non-negative integer, got {bad!r}$"):
      counter.increment(env_steps=4, updates=bad)
  assert counter.get_counts() == dict.fromkeys(counting.NAMES, 0)  # a refused call adds nothing


def test_save_restore_round_trip_as_plain_numbers():
  counter = counting.Counter()
  counter.increment(env_steps=48, warmup_episodes=3, episodes=5, updates=4)
  state = pickle.loads(pickle.dumps(counter.save()))
  assert state == {"counters": {"env_steps": 48, "warmup_episodes": 3, "episodes": 5, "updates": 4}}
  assert all(type(v) is int for v in state["counters"].values())  # pylint: disable=unidiomatic-typecheck
  restored = counting.Counter()
  restored.restore(state)
  assert restored.get_counts() == counter.get_counts()
  with pytest.raises(ValueError, match=r"unknown counters \['steps'\]: not this version's checkpoint"):
    restored.restore({"counters": {**state["counters"], "steps": 1}})
  with pytest.raises(ValueError, match=r"the checkpoint's counters lack \['updates'\]"):
    restored.restore({"counters": {"env_steps": 1, "warmup_episodes": 0, "episodes": 0}})


class _Learner:
  def actor_weights(self):
    return []


class _Actor:
  weights = None

  def set_weights(self, weights):
    self.weights = weights


def _scheduler(counter):
  settings = updates.UpdateSettings(batch_size=4, updates_per_episode=1, block_size=4, asynchronous=False, seed=0,
                                    schedule_unit="updates", variance_every_steps=100, log_every_updates=1,
                                    diagnose_every=0)
  return updates.UpdateScheduler(learner=_Learner(), replay=None, replay_rng=None, counter=counter,
                                 settings=settings, actors=[_Actor()], logger=None)


def _training_loop(counter):
  return training.TrainingLoop(schedule=None, counter=counter, loop=None, updates=None, evaluator=None,
                               checkpointer=None, parts={"counters": counter}, logger=None, stop=None,
                               episode_returns=None, evaluations_csv=None, warmup_rng=None)


def test_an_old_checkpoints_counters_restore_to_their_owners():
  counter = counting.Counter()
  scheduler, loop = _scheduler(counter), _training_loop(counter)
  for part in loop.parts.values():
    part.restore(OLD_STATE)
  scheduler.restore(OLD_STATE)
  assert counter.get_counts() == {"env_steps": 1260, "warmup_episodes": 400, "episodes": 57, "updates": 55}
  assert (scheduler.owed_updates, scheduler.variance_window, loop.last_checkpoint) == (2, 1, 1200)
  # Saved again, each number is its owner's, and restores from there.
  new_state = {**counter.save(), **scheduler.save(), **loop.save()}
  assert new_state["counters"] == counter.get_counts()
  assert (new_state["owed_updates"], new_state["variance_window"], new_state["last_checkpoint"]) == (2, 1, 1200)
  fresh = counting.Counter()
  fresh_scheduler, fresh_loop = _scheduler(fresh), _training_loop(fresh)
  for part in (fresh, fresh_scheduler, fresh_loop):
    part.restore(new_state)
  assert fresh.get_counts() == counter.get_counts()
  assert (fresh_scheduler.owed_updates, fresh_scheduler.variance_window, fresh_loop.last_checkpoint) == (2, 1, 1200)


class _Replay:
  def __len__(self):
    return 10

  def sample(self, size, rng):
    del rng
    return f"batch of {size}"


def test_the_scheduler_counts_the_updates_it_schedules():
  """Update indices and seeds follow the counter; the first update of each Figure 4 window logs variance."""
  counter = counting.Counter()
  scheduler = _scheduler(counter)
  scheduler.replay = _Replay()
  counter.increment(env_steps=150, updates=7)
  jobs = scheduler._jobs(3)  # pylint: disable=protected-access
  assert [(j.index, j.seed.tolist(), j.estimator_step, j.log_variance) for j in jobs] == [
      (7, [0, 7], 7, True), (8, [0, 8], 8, False), (9, [0, 9], 9, False)]
  assert counter.updates == 10 and scheduler.variance_window == 1


def test_the_scheduler_keeps_owed_updates_below_a_block():
  """Asynchronous blocks of 4: 3 finished episodes owe 3 updates (kept), the 4th schedules the block."""
  counter = counting.Counter()
  scheduler = _scheduler(counter)
  scheduler.min_block = 4
  scheduled = []
  scheduler.schedule = scheduled.append
  scheduler.episodes_ended(3)
  assert (scheduler.owed_updates, scheduled) == (3, [])
  scheduler.episodes_ended(1)
  assert (scheduler.owed_updates, scheduled) == (0, [4])


def test_the_training_loop_checkpoints_itself_first():
  counter = counting.Counter()
  loop = _training_loop(counter)
  assert list(loop.parts) == ["training", "counters"] and loop.parts["training"] is loop
