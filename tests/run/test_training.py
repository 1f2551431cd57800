"""`maddpg_tf.run.training.TrainingLoop` over fake parts: when it evaluates and checkpoints, what a stop
request leaves, and that a run resumed from any of its checkpoints ends as the run without a stop."""

import os
import signal

import numpy as np
import pytest

from maddpg_tf.run import checkpointing, counting, errors, loggers, training

NUM_ENVS = 3  # env steps per vector step


class FakeReplay:
  def __init__(self):
    self.flushes = 0

  def flush(self):
    self.flushes += 1


class FakeLoop:
  """Each vector step adds NUM_ENVS env steps and ends one episode every other step; warm-up counts its
  episodes and draws once from the generator it is given."""

  def __init__(self, counter):
    self.counter, self.replay, self.warm_ups = counter, FakeReplay(), []

  def warm_up(self, episodes, rng):
    self.warm_ups.append((episodes, int(rng.integers(1000))))
    self.counter.increment(warmup_episodes=episodes)

  def step(self):
    self.counter.increment(env_steps=NUM_ENVS)
    return int(self.counter.env_steps % (2 * NUM_ENVS) == 0)


class FakeUpdates:
  def __init__(self):
    self.ended, self.drains = [], []

  def episodes_ended(self, count):
    self.ended.append(count)

  def drain(self, refresh=True):
    self.drains.append(refresh)


class Result:
  def __init__(self, returns):
    self.returns = returns


class FakeEvaluator:
  """The k-th evaluation (from 1) returns [k - 1, k]."""

  def __init__(self, first=0):
    self.count = first

  def run(self):
    self.count += 1
    return Result([float(self.count - 1), float(self.count)])


class FakeEpisodeReturns:
  def metrics(self):
    return {"train/episode_return": 2.5}


class FakeLogger:
  def __init__(self):
    self.records, self.flushes = [], 0

  def write(self, values, step):
    self.records.append((dict(values), step))

  def flush(self):
    self.flushes += 1


class FakeStop:
  """SIGINT once the run has stepped `at` env steps."""

  name = "SIGINT"

  def __init__(self, counter, at=None):
    self.counter, self.at = counter, at

  @property
  def signum(self):
    return signal.SIGINT if self.at is not None and self.counter.env_steps >= self.at else None


class RecordingCheckpointer(checkpointing.Checkpointer):
  """A real checkpointer that also records the steps it writes (the same step twice is one directory)."""

  def __init__(self, directory):
    super().__init__(directory, {"task": "fake"}, keep=10)
    self.steps = []

  def save(self, step, parts):
    self.steps.append(step)
    return super().save(step, parts)


def make(tmp_path, total_steps=12, stop_at=None, checkpointer=None):
  tmp_path.mkdir(parents=True, exist_ok=True)
  counter = counting.Counter()
  schedule = training.Schedule(total_steps=total_steps, warmup_episodes=2, eval_every_steps=4,
                               checkpoint_every_steps=5)
  return training.TrainingLoop(
      schedule=schedule, counter=counter, loop=FakeLoop(counter), updates=FakeUpdates(),
      evaluator=FakeEvaluator(), checkpointer=checkpointer or RecordingCheckpointer(str(tmp_path / "ckpt")),
      parts={"counters": counter}, logger=FakeLogger(), stop=FakeStop(counter, stop_at),
      episode_returns=FakeEpisodeReturns(), evaluations_csv=str(tmp_path / "evaluations.csv"),
      warmup_rng=np.random.default_rng(4))


def evaluation_steps(run):
  return [e["step"] for e in run.evaluations]


def checkpoint_state(run, step):
  _, state, _ = checkpointing.load(os.path.join(run.checkpointer.directory, f"ckpt-{step}"),
                                   run.checkpointer.metadata)
  return state


def test_evaluations_at_0_when_the_steps_reach_each_multiple_and_at_the_end(tmp_path):
  run = make(tmp_path, total_steps=12)
  run.run()
  # Vector steps start at env steps 0, 3, 6, 9: evaluations when the steps before one reach 0, 4 and 8
  # (recorded at 0, 6 and 9), and once more on the final policy at 12.
  assert evaluation_steps(run) == [0, 6, 9, 12]
  assert [e["returns"] for e in run.evaluations] == [[0., 1.], [1., 2.], [2., 3.], [3., 4.]]
  assert [step for _, step in run.logger.records] == [0, 6, 9, 12] and run.logger.flushes == 4
  assert [values["eval/mean_return"] for values, _ in run.logger.records] == [0.5, 1.5, 2.5, 3.5]
  # The final evaluation reports no training episodes of its own.
  assert [sorted(values) for values, _ in run.logger.records] == (
      3 * [["eval/mean_return", "perf/env_steps_per_s", "perf/updates", "train/episode_return"]]
      + [["eval/mean_return", "perf/env_steps_per_s", "perf/updates"]])
  assert loggers.read_evaluations_csv(str(tmp_path / "evaluations.csv")) == [(0, 0.5), (6, 1.5), (9, 2.5), (12, 3.5)]
  assert run.loop.warm_ups == [(2, int(np.random.default_rng(4).integers(1000)))]
  assert run.updates.ended == [1, 1]  # episodes end after the steps to 6 and 12


def test_a_checkpoint_every_checkpoint_every_steps_and_at_the_end_never_twice(tmp_path):
  on_schedule = make(tmp_path / "12", total_steps=12)
  on_schedule.run()
  assert on_schedule.checkpointer.steps == [6, 12]  # 12 is on the schedule: the end writes no second one
  assert on_schedule.last_checkpoint == 12
  # The final checkpoint is written before the final evaluation (a run extended later evaluates 12 itself).
  assert [e["step"] for e in checkpoint_state(on_schedule, 12)["evaluations"]] == [0, 6, 9]

  off_schedule = make(tmp_path / "15", total_steps=15)
  off_schedule.run()
  assert off_schedule.checkpointer.steps == [6, 12, 15]
  assert evaluation_steps(off_schedule) == [0, 6, 9, 12, 15]


def test_a_stop_request_checkpoints_off_the_schedule_and_raises_interrupted(tmp_path):
  run = make(tmp_path, total_steps=30, stop_at=8)
  with pytest.raises(errors.Interrupted) as stopped:
    run.run()
  path = os.path.join(run.checkpointer.directory, "ckpt-9")
  assert stopped.value.signum == signal.SIGINT
  assert str(stopped.value) == f"SIGINT at env step 9: checkpoint {path} written; run the same command to resume"
  assert run.checkpointer.steps == [6, 9] and run.checkpointer.latest() == path
  # Off the schedule: the acting snapshot is not refreshed and the next scheduled checkpoint stays at 6 + 5.
  assert run.updates.drains[-1] is False and run.last_checkpoint == 6
  assert checkpoint_state(run, 9)["last_checkpoint"] == 6


@pytest.mark.parametrize("stop_at", [1, 8, 12])
def test_a_run_resumed_after_a_stop_ends_as_the_run_without_one(tmp_path, stop_at):
  uninterrupted = make(tmp_path / "whole", total_steps=15)
  uninterrupted.run()

  stopped = make(tmp_path / "stopped", total_steps=15, stop_at=stop_at)
  with pytest.raises(errors.Interrupted):
    stopped.run()
  resumed = make(tmp_path / "stopped", total_steps=15,
                 checkpointer=RecordingCheckpointer(stopped.checkpointer.directory))
  resumed.warmup_rng = None  # the checkpoint's, or saving it at the end differs
  assert resumed.checkpointer.restore_latest(resumed.parts) == stopped.checkpointer.latest()
  resumed.evaluator.count = len(resumed.evaluations)
  resumed.run()
  assert resumed.loop.warm_ups == []  # the warm-up is done once
  assert resumed.evaluations == uninterrupted.evaluations
  assert resumed.counter.get_counts() == uninterrupted.counter.get_counts()
  assert stopped.checkpointer.steps[:-1] + resumed.checkpointer.steps == uninterrupted.checkpointer.steps
  assert resumed.save() == uninterrupted.save()


def test_save_is_plain_data_and_restores_the_evaluations_generator_and_last_checkpoint(tmp_path):
  run = make(tmp_path)
  run.evaluations = [{"step": np.int64(3), "returns": [np.float32(0.5), 1.5]}]
  run.last_checkpoint = 9
  state = run.save()
  assert state["evaluations"] == [{"step": 3, "returns": [0.5, 1.5]}]
  assert type(state["evaluations"][0]["step"]) is int  # pylint: disable=unidiomatic-typecheck  # JSON, not NumPy
  assert state["last_checkpoint"] == 9 and state["warmup_rng"]["bit_generator"] == "PCG64"
  restored = make(tmp_path)
  restored.restore(state)
  assert restored.evaluations == state["evaluations"] and restored.last_checkpoint == 9
  assert restored.warmup_rng.integers(1 << 30) == np.random.default_rng(4).integers(1 << 30)


def test_a_checkpoint_that_cannot_be_written_ends_the_run_keeping_the_schedule(tmp_path):
  class Full(RecordingCheckpointer):
    def save(self, step, parts):
      raise checkpointing.CheckpointError(f"could not write checkpoint ckpt-{step}: No space left on device")

  run = make(tmp_path, checkpointer=Full(str(tmp_path / "ckpt")))
  with pytest.raises(errors.RunError, match=r"^could not write checkpoint ckpt-6: No space left on device$"):
    run.run()
  assert run.last_checkpoint == 0 and run.counter.env_steps == 6
