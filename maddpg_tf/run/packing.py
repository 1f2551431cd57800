"""Several seeds of one run in one process: one packed learner (`agent.learner`, its seed axis) runs every
seed's updates in one compiled call, and each seed keeps everything else a run of that seed alone has.

    run = PackedRun(config, "runs/gst", seeds=(0, 1, 2))   # writes runs/gst/seed0, seed1, seed2
    summaries = run.run()

Each `W/seed<k>` is an ordinary run directory (`Experiment` of the config with `seed=k`): its own envs,
replay buffer, generators, evaluations, checkpoints, TensorBoard and provenance (which names the packing).
Its checkpoints hold seed k's arrays exactly as a run alone would, so `maddpg-evaluate` reads it and
`maddpg-train` resumes it alone or packed again.

The seeds step in lockstep: every seed's vector step (acting, env step, storing, scheduling its updates),
the actors acting through one stacked call (`agent.actor.JointActing`) and, with the fast backends in this
process, every seed's envs stepping in one kernel call (`envs.joint.JointStep`), each bit for bit as alone;
then one packed call with every seed's scheduled updates (`PackedUpdates`: seed k's in its order, a seed
with none left exactly as it was), then each seed's evaluations and checkpoints. So each seed meets the
same updates on the same batches at the same points of its timeline as its run alone; the numbers agree to
the packed update's arithmetic (bit for bit with shared parameters or eagerly, otherwise to float32
rounding: `tests/agent/test_seed_axis.py`, `tests/run/test_packing.py`).

Not packed here (one line at start): the exact-gradient diagnostics (they read one learner's critics).
"""

import concurrent.futures
import copy
import os

import numpy as np

from maddpg_tf import config as config_lib
from maddpg_tf.agent import actor as actor_lib, learner as learner_lib
from maddpg_tf.envs import joint as joint_lib
from maddpg_tf.run import devices, experiment as experiment_lib, interrupts, workdir as workdir_lib
from maddpg_tf.run.errors import Interrupted, RunError


def seed_directory(workdir, seed):
  """Seed `seed`'s run directory in a packed run's `workdir`."""
  return os.path.join(workdir, f"seed{seed}")


class SeedLearner:
  """Seed k's view of a packed learner, for the parts of a run that hold a learner: its arrays (`save`,
  `restore`: a learner of that seed's), its actors' weights, where the update runs. `settle()` is called
  before the learner is read or written (it waits for a packed call running on the learner thread)."""

  def __init__(self, learner, k, settle=lambda: None):
    self.learner, self.k, self.settle = learner, k, settle

  @property
  def device(self):
    return self.learner.device

  def save(self):
    self.settle()
    return self.learner.save(seed=self.k)

  def restore(self, arrays):
    self.settle()
    self.learner.restore(arrays, seed=self.k)

  def actor_weights(self):
    self.settle()
    return self.learner.actor_weights(seed=self.k)


class _SeedExecutor:
  """Seed k's `UpdateScheduler` executor: a submitted block waits for `PackedUpdates.flush()`."""

  def __init__(self, packed, k):
    self.packed, self.k = packed, k

  def submit(self, fn, jobs):
    del fn  # the scheduler's own runner: the packed call replaces it
    return self.packed.submit(self.k, jobs)

  def shutdown(self, wait=True):
    del wait  # nothing runs between flushes


class PackedUpdates:
  """Every seed's update jobs (`updates.UpdateJob`) run on one packed `learner` (set before the first
  flush). `executor(k)` is seed k's executor for its `UpdateScheduler`; `flush()` runs what the seeds
  submitted since the last flush in one packed call and resolves each seed's block with (its results, its
  actors' weights), as the scheduler's own runner would. `asynchronous`: the call runs on a learner thread
  (the seeds' envs keep stepping, as a run alone's do with asynchronous updates); `wait()` waits for it."""

  def __init__(self, block_size, asynchronous=False, learner=None):
    self.block_size, self.learner = block_size, learner
    self._queued = {}
    self._thread = (concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="packed-learner")
                    if asynchronous else None)
    self._running = None

  def executor(self, k):
    return _SeedExecutor(self, k)

  def submit(self, k, jobs):
    if k in self._queued:  # a scheduler submits after collecting its previous block: once per flush
      raise RuntimeError(f"seed index {k} submitted two blocks before a flush")
    future = concurrent.futures.Future()
    self._queued[k] = (jobs, future)
    return future

  def flush(self):
    if not self._queued:
      return
    queued, self._queued = self._queued, {}
    if self._thread is None:
      self._resolve(queued)
    else:  # one thread: calls run in submission order
      self._running = self._thread.submit(self._resolve, queued, True)

  def _resolve(self, queued, quietly=False):
    try:
      results = self.run([queued[k][0] if k in queued else [] for k in range(self.learner.num_seeds)])
      for k, (_, future) in queued.items():
        future.set_result((results[k], self.learner.actor_weights(seed=k)))
    except BaseException as error:  # each seed's block fails with it (its scheduler raises it when collecting)
      for _, future in queued.values():
        if not future.done():
          future.set_exception(error)
      if not quietly:
        raise

  def wait(self):
    """Waits until no packed call runs (the learner may then be read or written)."""
    if self._running is not None:
      concurrent.futures.wait([self._running])

  def close(self):
    self.wait()
    if self._thread is not None:
      self._thread.shutdown(wait=True)

  def run(self, jobs):
    """`jobs`: K lists, seed k's in order. Returns K lists [(jobs of a call, seed k's metrics)], as
    `UpdateScheduler.run` returns for one seed: an update that logs Figure 4's variance runs alone (one
    packed `step` with the seeds whose next update it is), runs of ordinary updates as packed blocks."""
    learner, num_seeds = self.learner, len(jobs)
    if any(job.diagnose for seed_jobs in jobs for job in seed_jobs):
      raise RuntimeError("the exact-gradient diagnostics do not run on packed seeds")
    results = [[] for _ in range(num_seeds)]
    at = [0] * num_seeds
    while any(at[k] < len(jobs[k]) for k in range(num_seeds)):
      heads = [jobs[k][at[k]] if at[k] < len(jobs[k]) else None for k in range(num_seeds)]
      variance = [head is not None and head.log_variance for head in heads]
      if any(variance):
        filler = next(head for head, v in zip(heads, variance) if v)  # shapes for the seeds that wait
        chosen = [head if v else filler for head, v in zip(heads, variance)]
        batch = type(filler.batch)(*(np.stack(parts) for parts in zip(*(job.batch for job in chosen))))
        metrics = learner.step(batch, np.stack([job.seed for job in chosen]),
                               np.array([job.estimator_step for job in chosen], np.float32),
                               per_sample_variance=True, active=np.array(variance))
        for k in np.flatnonzero(variance):
          results[k].append(([heads[k]], _seed_metrics(metrics, k)))
          at[k] += 1
        continue
      runs = []
      for k in range(num_seeds):
        end = at[k]
        while end < len(jobs[k]) and not jobs[k][end].log_variance:
          end += 1
        runs.append(jobs[k][at[k]:end])
      metrics = learner.step_block([[j.batch for j in run] for run in runs], [[j.seed for j in run] for run in runs],
                                   [[j.estimator_step for j in run] for run in runs], block_size=self.block_size)
      for k, run in enumerate(runs):
        if run:
          results[k].append((run, _seed_metrics(metrics, k)))
          at[k] += len(run)
    return results


def _seed_metrics(metrics, k):
  return {name: value[k] for name, value in metrics.items()}


class PackedRun:
  """`seeds` of `config` trained in one process under `workdir` (`seed_directory`). `run()` returns each
  seed's `Experiment.summary()`; `provenance_extra` goes into each seed's provenance.json. Raises RunError
  (one line) before anything is written for what cannot be packed, and as `Experiment` does for what stops
  a run."""

  def __init__(self, config, workdir, seeds, progress=True, make_env=None, provenance_extra=None):
    self.seeds = config_lib.check_seeds(seeds)
    self.joint_envs = self._acting = None
    c = experiment_lib.resolve_config(config)
    if c.diagnostics.exact_gradient_every:
      raise RunError(f"diagnostics.exact_gradient_every={c.diagnostics.exact_gradient_every}: the exact-gradient "
                     f"diagnostics read one learner's critics and do not run on packed seeds; train the seed alone")
    self.config, self.workdir = c, workdir
    self.learner = None
    self.updates = PackedUpdates(block_size=min(16, c.num_envs * c.loop.updates_per_episode),
                                 asynchronous=c.loop.asynchronous_updates)
    self.stop = interrupts.StopRequest()
    # Every seed's directory checked before any is written (a run of something else, a file).
    if os.path.exists(workdir) and not os.path.isdir(workdir):
      raise RunError(f"--workdir {workdir} is a file, not a directory")
    if os.path.isfile(os.path.join(workdir, "config.json")):
      raise RunError(f"--workdir {workdir} holds a run of one seed; packed seeds need a directory of their own "
                     f"(each seed's run goes in {seed_directory(workdir, '<k>')})")
    configs = []
    for seed in self.seeds:
      seed_config = copy.deepcopy(c)
      config_lib.set_value(seed_config, "seed", seed)
      workdir_lib.Workdir(seed_directory(workdir, seed)).check(seed_config)
      configs.append(seed_config)
    self.experiments = []
    try:
      for k, seed_config in enumerate(configs):
        seed = seed_config.seed
        self.experiments.append(experiment_lib.Experiment(
            seed_config, seed_directory(workdir, seed), progress=progress and k == 0, make_env=make_env,
            provenance_extra={**(provenance_extra or {}),
                              "packed": {"seeds": list(self.seeds), "directory": workdir}},
            make_learner=self._learner_for(k), update_executor=self.updates.executor(k)))
    except BaseException:
      self.close()
      raise
    bar = self.experiments[0].progress_bar  # seed 0's bar stands for all: it says so
    if bar is not None:
      bar.description += f" seeds {','.join(map(str, self.seeds))}"

  def _learner_for(self, k):
    def make(spec, config):
      if self.learner is None:
        self.learner = learner_lib.MADDPGLearner(
            spec.num_agents, spec.observation_size, spec.num_actions, config_lib.learner_config(config),
            estimator=config.estimator.name, estimator_params=config_lib.estimator_params(config),
            jit_compile=config.jit_compile, seeds=self.seeds)
        self.updates.learner = self.learner
      return SeedLearner(self.learner, k, settle=self.updates.wait)
    return make

  def close(self):
    try:
      self.updates.close()
    finally:
      for run in self.experiments:
        run.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def run(self):
    """Trains every seed to `total_steps`; returns their summaries (seed order)."""
    self.start()
    with experiment_lib.finishing(self.finish), self.stop:
      self.begin()
      while self.step():
        pass
      self.end()
    return [run.summary() for run in self.experiments]

  # `run()` in its pieces (a benchmark times `step`): start; begin; step until it returns False; end; finish.

  def start(self):
    """Each seed's `Experiment.start()`: restores, writes its run files, starts its loggers."""
    for run in self.experiments:
      run.start()

  def finish(self, outcome):
    self.updates.wait()  # a block still running finishes before the seeds' schedulers stop
    for run in self.experiments:
      run.finish(outcome)

  def _in_seed(self, run, part, *args):
    with run.translated_errors(f"seed {run.config.seed}: "):
      return part(*args)

  def begin(self):
    for run in self.experiments:
      self._in_seed(run, run.training.begin)
    # After the warm-ups and restores: each seed's actor and envs as its run alone has them.
    self._acting = actor_lib.JointActing([run.loop.actor for run in self.experiments])
    envs = [run.loop.env for run in self.experiments]
    self.joint_envs = joint_lib.JointStep(envs) if joint_lib.joinable(envs) else None

  def step(self):
    """One vector step of every seed that has steps to go, one packed update call, then each seed's
    evaluations and checkpoints. Returns False (doing nothing) once every seed is done."""
    going = [run for run in self.experiments if not run.training.done]  # resumed seeds may differ in steps
    if not going:
      return False
    if self.stop.signum is not None:
      for run in going:
        run.training.save_checkpoint(scheduled=False)
      raise Interrupted(self.stop.signum, f"{self.stop.name}: every seed's checkpoint written under "
                                          f"{self.workdir}; run the same command to resume")
    before = self._advance(going)
    try:
      self.updates.flush()
    except Exception as error:  # pylint: disable=broad-except  (only an allocation that found no room)
      if not devices.out_of_memory(error):
        raise
      raise RunError(devices.no_room(error, going[0].device_record, "in a packed update",
                                     self.learner.device)) from None
    for run, steps_before in zip(going, before):
      if not self.config.loop.asynchronous_updates:  # as a run alone collects its updates before its next step
        self._in_seed(run, run.updates.drain)
      self._in_seed(run, run.training.after_step, steps_before)
    return True

  def _advance(self, going):
    """Every going seed's vector step; returns each one's env steps before it. With every seed going, the
    actors act through one stacked call and (fast backends in this process) the envs step in one call."""
    if len(going) < len(self.experiments):  # seeds resumed at different steps: each steps on its own
      return [self._in_seed(run, run.training.advance) for run in going]
    loops = [run.loop for run in going]
    actions = self._acting.select_actions([loop.observations for loop in loops])
    for loop in loops:
      loop.replay.flush()  # as each loop flushes while its envs step
    if self.joint_envs is not None:
      steps = self.joint_envs.step(actions)
    else:
      for loop, seed_actions in zip(loops, actions):
        loop.env.step_async(seed_actions)
      steps = [loop.env.step_wait() for loop in loops]
    return [self._in_seed(run, run.training.advance, (seed_actions, step))
            for run, seed_actions, step in zip(going, actions, steps)]

  def end(self):
    for run in self.experiments:
      self._in_seed(run, run.training.end)
