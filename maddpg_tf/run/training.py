"""The training run's timeline: warm-up, then vector steps with updates, evaluations and checkpoints on
their schedules, to `total_steps`; a stop request (SIGINT/SIGTERM) checkpoints and ends it.

Schedule (the authors' code, maddpg_tf/FIDELITY.md: Settings): `warmup_episodes` episodes of uniform random actions fill
the buffer first and do not count as training steps; then every finished training episode earns its
updates (`UpdateScheduler`). An evaluation runs when the steps before a vector step reach the next
multiple of `eval_every_steps`, starting at step 0, and once more at the end on the final policy (after
the final checkpoint, so a run extended later is the run it would have been). A checkpoint is written
every `checkpoint_every` steps and at the end.
"""

import time
from typing import NamedTuple

import numpy as np

from maddpg_tf.envs import snapshots
from maddpg_tf.run import checkpointing, counting, errors, faults, loggers


class Schedule(NamedTuple):
  total_steps: int
  warmup_episodes: int
  eval_every_steps: int
  checkpoint_every_steps: int


class TrainingLoop:
  """Runs the timeline over injected parts: `counter` (counting.Counter, read here), `loop`
  (EnvironmentLoop), `updates` (UpdateScheduler), `evaluator` (Evaluator), `checkpointer` (Checkpointer) and
  the `parts` it checkpoints besides itself (restored after it, in their order), `logger`,
  `stop` (StopRequest), `episode_returns` (its metrics join each evaluation's), `evaluations_csv` (a path),
  `warmup_rng`, `progress` (ProgressBar or None), `video` (an `EvaluationVideo`, called after each
  evaluation, or None) and `best` (a `checkpointing.BestPolicy` offered each evaluation, or None).

  It checkpoints its evaluations, the warm-up generator and `last_checkpoint` (the env step of the last
  scheduled checkpoint)."""

  def __init__(self, *, schedule, counter, loop, updates, evaluator, checkpointer, parts, logger, stop,
               episode_returns, evaluations_csv, warmup_rng, progress=None, video=None, best=None):
    self.schedule, self.counter, self.loop, self.updates = schedule, counter, loop, updates
    self.evaluator, self.checkpointer, self.logger = evaluator, checkpointer, logger
    self.parts = {"training": self, **parts}
    self.stop, self.episode_returns, self.evaluations_csv = stop, episode_returns, evaluations_csv
    self.warmup_rng, self.progress, self.video, self.best = warmup_rng, progress, video, best
    self.evaluations = []
    self.last_checkpoint = 0
    self.steps_per_second = float("nan")
    self._compiling = False
    self._rate = self._started = (time.time(), 0)

  # ---- what the loop itself checkpoints ----------------------------------------------------------------

  def save(self):
    return {"evaluations": [{"step": int(e["step"]), "returns": [float(r) for r in e["returns"]]}
                            for e in self.evaluations],
            "warmup_rng": snapshots.generator_state(self.warmup_rng),
            "last_checkpoint": int(self.last_checkpoint)}

  def restore(self, state):
    self.evaluations = [dict(e) for e in state["evaluations"]]
    self.warmup_rng = snapshots.generator(state["warmup_rng"])
    self.last_checkpoint = counting.saved_elsewhere(state, "last_checkpoint")

  # ---- the timeline -----------------------------------------------------------------------------------

  def save_checkpoint(self, scheduled=True):
    """Writes a checkpoint of the run as it stands; returns its path. `scheduled=False` (a signal's
    checkpoint, off the schedule) changes nothing the run would do next: the acting snapshot is not
    refreshed early (it is saved as it is) and the schedule keeps its place, so the resumed run equals
    the uninterrupted one."""
    self.loop.replay.flush()
    self.updates.drain(refresh=scheduled)
    previous = self.last_checkpoint
    if scheduled:
      self.last_checkpoint = self.counter.env_steps  # the restored run must see it too
    try:
      return self.checkpointer.save(self.counter.env_steps, self.parts)
    except checkpointing.CheckpointError:
      self.last_checkpoint = previous
      raise

  def evaluate(self, step, final=False):
    """An evaluation of the current policy, recorded at env step `step` (CSV, loggers)."""
    faults.point("evaluation")
    self.updates.drain()
    self.loop.replay.flush()  # training transitions before any evaluation episode's
    result = self.evaluator.run()
    earlier = [float(np.mean(e["returns"])) for e in self.evaluations]
    self.evaluations.append({"step": step, "returns": result.returns})
    loggers.write_evaluations_csv(self.evaluations_csv, self.evaluations)
    if self.best is not None:
      try:
        self.best.offer(step, float(np.mean(result.returns)), earlier)
      except checkpointing.CheckpointError as error:
        raise errors.RunError(str(error)) from None
    now, steps = time.time(), self.counter.env_steps
    values = {"eval/mean_return": np.mean(result.returns),
              "perf/env_steps_per_s": (steps - self._rate[1]) / max(now - self._rate[0], 1e-9),
              "perf/updates": self.counter.updates}
    if not final:
      self._rate = (now, steps)
      values.update(self.episode_returns.metrics())
    self.logger.write(values, step)
    if self.video is not None:  # an episode for TensorBoard, on envs of its own (no number changes)
      self.video(len(self.evaluations) - 1, step)
    self.logger.flush()

  def run(self):
    """Warms up if needed, trains to `total_steps`, checkpoints and evaluates the final policy."""
    self.begin()
    while not self.done:
      self.check_stop()
      self.after_step(self.advance())
    self.end()

  @property
  def done(self):
    return self.counter.env_steps >= self.schedule.total_steps

  # The timeline in its pieces, for a driver that runs several seeds' loops in lockstep
  # (`packing.PackedRun`): begin; per vector step check_stop, advance, (the updates), after_step; end.

  def begin(self):
    """Warms up if needed and starts the clock and the progress bar."""
    s, c = self.schedule, self.counter
    warm_up = c.warmup_episodes < s.warmup_episodes
    if self.progress is not None:  # opens the bar at the step the run starts from
      self.progress.update(c.env_steps, f"warm-up: {s.warmup_episodes} random episodes" if warm_up else None)
    if warm_up:
      self.loop.warm_up(s.warmup_episodes, self.warmup_rng)
    self._started = (time.time(), c.env_steps)
    self._rate = self._started
    # The first update compiles the learner (XLA: tens of seconds on 2 cores) while the steps stall: say so on
    # the bar instead of a silent stall under a rate-based estimate of hours.
    self._compiling = c.updates == 0 and c.env_steps < s.total_steps
    if self.progress is not None and self._compiling:
      self.progress.update(c.env_steps, "compiling the update (once per run)")

  def check_stop(self):
    """A stop request: writes a checkpoint off the schedule and raises `Interrupted`."""
    if self.stop.signum is not None:
      path = self.save_checkpoint(scheduled=False)
      raise errors.Interrupted(self.stop.signum, f"{self.stop.name} at env step {self.counter.env_steps:,}: "
                                                 f"checkpoint {path} written; run the same command to resume")

  def advance(self, taken=None):
    """One vector step; its finished episodes' updates are scheduled. Returns the env steps before it.
    `taken`: (actions, Step) of a step a driver already took for this loop (`EnvironmentLoop.record`)."""
    c = self.counter
    steps_before = c.env_steps
    ended = self.loop.step() if taken is None else self.loop.record(*taken)
    faults.point("env-step", c.env_steps)
    if ended:
      self.updates.episodes_ended(ended)
    return steps_before

  def after_step(self, steps_before):
    """What follows a vector step of `steps_before` earlier steps: evaluation, progress, checkpoint."""
    s, c = self.schedule, self.counter
    if steps_before >= len(self.evaluations) * s.eval_every_steps:
      self.evaluate(steps_before)
    if self.progress is not None:
      done_compiling = self._compiling and c.updates > 0
      self._compiling = self._compiling and not done_compiling
      self.progress.update(c.env_steps, "" if done_compiling else None)
    if c.env_steps - self.last_checkpoint >= s.checkpoint_every_steps:
      self._scheduled_checkpoint()

  def end(self):
    """The last updates, the final checkpoint and the final policy's evaluation."""
    c = self.counter
    self.loop.replay.flush()
    self.updates.drain()
    if self.last_checkpoint != c.env_steps or self.checkpointer.latest() is None:
      self._scheduled_checkpoint()
    started, steps_at_start = self._started
    self.steps_per_second = (c.env_steps - steps_at_start) / max(time.time() - started, 1e-9)
    if not self.evaluations or self.evaluations[-1]["step"] < c.env_steps:
      self.evaluate(c.env_steps, final=True)

  def _scheduled_checkpoint(self):
    try:
      self.save_checkpoint()
    except checkpointing.CheckpointError as error:
      raise errors.RunError(str(error)) from None
