"""When the learner updates, on which batches, and on which thread; and the snapshot of the actors that
the environments act with.

Schedule (the authors' code, maddpg_tf/FIDELITY.md: Settings): every finished training episode earns
`updates_per_episode` updates, each on a fresh batch. With `asynchronous=True` an update block runs on a
learner thread while the envs keep stepping with the NumPy snapshot of the actors taken before it; the
snapshot is refreshed when the block is collected (before the next block is submitted and before every
evaluation and checkpoint). Blocks wait until `min_block` updates are owed: while the envs end their
episodes together (every run starts so) that is every episode end; once early ends have spread them
out, it keeps blocks full instead of calling the learner one update at a time. The ratio of updates to
env steps is unchanged, and owed updates are part of a checkpoint. Everything random (batches, seeds) is
drawn on the calling thread in a fixed order, so runs are deterministic and resumable either way.
"""

import concurrent.futures
from typing import Any, NamedTuple

import numpy as np

from maddpg_tf.agent import gradient_variance
from maddpg_tf.agent import learner as learner_lib
from maddpg_tf.envs import snapshots
from maddpg_tf.run import counting, errors, faults


class UpdateJob(NamedTuple):
  """One update: its index (0-based), batch, stateless seed [2], schedule position, and whether it logs
  Figure 4's per-sample variance or runs the exact-gradient diagnostics (each runs alone)."""
  index: int
  batch: Any
  seed: np.ndarray
  estimator_step: float
  log_variance: bool
  diagnose: bool


class UpdateSettings(NamedTuple):
  batch_size: int
  updates_per_episode: int
  block_size: int             # updates per compiled call (one XLA program)
  asynchronous: bool
  seed: int
  schedule_unit: str          # "updates" or "env_steps": the estimator schedule's clock
  variance_every_steps: int   # Figure 4's logging window, in env steps
  log_every_updates: int
  diagnose_every: int         # exact-gradient diagnostics every N updates (0: never)


class UpdateScheduler:
  """Owed updates, their jobs, the learner thread and the acting snapshot. Counts the updates it schedules
  in `counter` (a `counting.Counter`, whose env steps it reads). `logger.write(values, step)` receives each
  call's metrics; `diagnostics(batch, seed, step)` (or None) the exact-gradient check. `executor` (a
  `concurrent.futures`-like `submit(fn, jobs)` / `shutdown(wait)`): where blocks run, by default here
  (synchronous) or on a learner thread (asynchronous).

  owed_updates: updates earned by finished episodes but not yet scheduled (asynchronous updates wait for a
  full block); variance_window: the last Figure 4 logging window (`env_steps // variance_every_steps`)
  that logged. Both are checkpointed.
  """

  def __init__(self, *, learner, replay, replay_rng, counter, settings, actors, logger, diagnostics=None,
               executor=None):
    self.learner, self.replay, self.replay_rng = learner, replay, replay_rng
    self.counter, self.settings, self.actors = counter, settings, actors
    self.logger, self.diagnostics = logger, diagnostics
    self.owed_updates = 0
    self.variance_window = -1
    self.min_block = settings.block_size if settings.asynchronous else 1
    # `executor`: where submitted blocks run instead of here (e.g. `packing.PackedUpdates`' seed handle,
    # which runs every seed's blocks in one call); when they are collected stays as `asynchronous` says.
    if executor is None and settings.asynchronous:
      executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="learner")
    self._executor = executor
    self._pending = None       # (jobs, future) of the block on the learner thread
    self._next_weights = None  # the actors a collected block left (read on the learner thread)
    self.stale = False         # the acting snapshot predates collected updates
    self.refresh()

  # ---- scheduling ------------------------------------------------------------------------------------

  def episodes_ended(self, count):
    """`count` training episodes finished: their updates are owed, and scheduled once a block is full."""
    owed = self.owed_updates + count * self.settings.updates_per_episode
    self.owed_updates = 0 if owed >= self.min_block else owed
    if owed >= self.min_block:
      self.schedule(owed)

  def _jobs(self, count):
    s, c = self.settings, self.counter
    jobs = []
    for _ in range(count):
      if len(self.replay) < s.batch_size:
        break
      batch = self.replay.sample(s.batch_size, self.replay_rng)
      seed = np.array([s.seed, c.updates], np.int64)
      window = c.env_steps // s.variance_every_steps  # Figure 4: the first update of each window
      log_variance = window > self.variance_window
      if log_variance:
        self.variance_window = window
      step = c.updates if s.schedule_unit == "updates" else c.env_steps
      diagnose = s.diagnose_every > 0 and c.updates % s.diagnose_every == 0
      jobs.append(UpdateJob(c.updates, batch, seed, step, log_variance, diagnose))
      c.increment(updates=1)
    return jobs

  def schedule(self, count):
    """Runs `count` updates on batches sampled now, or submits them to the learner thread."""
    jobs = self._jobs(count)
    if not jobs:
      return
    if self._executor is None:
      self._collect(jobs, self.run(jobs))
      self.refresh()
    else:
      self.drain()
      self._pending = (jobs, self._executor.submit(self._run_block, jobs))
      faults.point("updates-submitted", self.counter.env_steps)

  def _run_block(self, jobs):
    """On the learner thread: the updates, then the NumPy copy of the actors they leave."""
    return self.run(jobs), self.learner.actor_weights()

  def run(self, jobs):
    """Runs the jobs in order: runs of ordinary updates as compiled blocks; an update that logs variance
    or is diagnosed alone. Returns [(jobs of a call, metrics of its last update)]."""
    results, start = [], 0
    while start < len(jobs):
      job = jobs[start]
      # Diagnostics see the networks as this update finds them.
      extra = dict(self.diagnostics(job.batch, job.seed, job.estimator_step)) if job.diagnose else {}
      if job.log_variance:
        metrics = self.learner.step(job.batch, seed=job.seed, estimator_step=job.estimator_step,
                                    per_sample_variance=True)
        results.append((jobs[start:start + 1], {**metrics, **extra}))
        start += 1
        continue
      end = start + 1
      while end < len(jobs) and not jobs[end].log_variance and not jobs[end].diagnose:
        end += 1
      run = jobs[start:end]
      metrics = self.learner.step_block([j.batch for j in run], [j.seed for j in run],
                                        [j.estimator_step for j in run], block_size=self.settings.block_size)
      results.append((run, {**metrics, **extra}))
      start = end
    return results

  # ---- collecting --------------------------------------------------------------------------------------

  def drain(self, refresh=True):
    """Waits for the submitted block and logs it; `refresh`: then refreshes the acting snapshot."""
    if self._pending is not None:
      jobs, future = self._pending
      self._pending = None
      results, self._next_weights = future.result()
      self.stale = True
      self._collect(jobs, results)
    if refresh and self.stale:
      self.refresh()

  def refresh(self):
    """Copies the actors' weights to the acting snapshot (only while no block runs)."""
    weights = self._next_weights if self._next_weights is not None else self.learner.actor_weights()
    self._next_weights = None
    for actor in self.actors:
      actor.set_weights(weights)
    self.stale = False

  def _collect(self, jobs, results):
    """Checks each call's losses (NonFiniteLoss names the call's updates) and logs its metrics."""
    every = self.settings.log_every_updates
    step = self.counter.env_steps
    for call_jobs, values in results:
      bad = int(values[learner_lib.NON_FINITE_UPDATE])
      if bad >= 0:
        raise errors.NonFiniteLoss(call_jobs[0].index + 1, call_jobs[-1].index + 1,
                                   learner_lib.LOSS_NAMES[int(values[learner_lib.NON_FINITE_LOSS])])
      # Only what is written is copied off the device (most calls log nothing).
      diagnostics = {k: v.numpy() for k, v in values.items() if k.startswith("exact_gradient/")}
      if diagnostics:
        self.logger.write(diagnostics, step)
      first, last = call_jobs[0].index, call_jobs[-1].index
      if (last + 1) // every > first // every:
        self.logger.write({f"train/{k}": v.numpy() for k, v in values.items()
                           if not k.startswith(gradient_variance.PREFIXES + ("exact_gradient/", "non_finite/"))},
                          step)
      if call_jobs[0].log_variance:
        self.logger.write({k: v.numpy() for k, v in values.items() if k.startswith(gradient_variance.PREFIXES)},
                          step)

  # ---- checkpoints and shutdown ----------------------------------------------------------------------------

  def save(self):
    """The replay generator, the owed updates and Figure 4's window, and the acting snapshot when it is
    stale (a signal's checkpoint acts as before it until the uninterrupted run would refresh)."""
    return {"replay_rng": snapshots.generator_state(self.replay_rng),
            "stale_acting_weights": [list(layer) for layer in self.actors[0].weights] if self.stale else None,
            "owed_updates": int(self.owed_updates), "variance_window": int(self.variance_window)}

  def restore(self, state):
    self.replay_rng = snapshots.generator(state["replay_rng"])
    self.owed_updates = counting.saved_elsewhere(state, "owed_updates")
    self.variance_window = counting.saved_elsewhere(state, "variance_window")
    self.refresh()
    if state.get("stale_acting_weights") is not None:
      for actor in self.actors:
        actor.set_weights(state["stale_acting_weights"])
      self.stale = True

  def close(self):
    """Lets a running block finish (quietly: an exception already ends the run) and stops the thread."""
    if self._pending is not None:
      concurrent.futures.wait([self._pending[1]])
      self._pending = None
    if self._executor is not None:
      self._executor.shutdown(wait=True)
