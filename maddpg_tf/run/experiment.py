"""One training run, wired from its parts; `Experiment(config, workdir).run()` trains (resuming if the
workdir holds this run). Every part has one role and is injected here (see each module):

  workdir.Workdir            identity, config.json, provenance.json
  devices                    GPU memory settings (applied before TensorFlow's first op), devices seen
  environments.make          the training and evaluation envs (or `make_env`, e.g. a fake)
  learner.MADDPGLearner      the update; updates.UpdateScheduler when and on which thread
  environment_loop           act, step, store; observers; evaluation.Evaluator the evaluations
  loggers                    TensorBoard, the progress bar, a Dispatcher
  checkpointing.Checkpointer checkpoints of the parts; training.TrainingLoop the timeline
"""

import contextlib
import math

import numpy as np

import estimators

from maddpg_tf import config as config_lib
from maddpg_tf.agent import actor as actor_lib, diagnostics, learner as learner_lib, replay as replay_buffer
from maddpg_tf.envs import builder as environments
from maddpg_tf.envs import pettingzoo as pettingzoo_envs
from maddpg_tf.run import (checkpointing, counting, devices, environment_loop, evaluation, evaluation_video,
                           interrupts, loggers, training, updates, workdir as workdir_lib)
from maddpg_tf.run.errors import Interrupted, NonFiniteLoss, RunError
from maddpg_tf.run.evaluation import EVAL_SEED_OFFSET
from maddpg_tf.run.validation import resolve_config  # noqa: F401  (re-exported for callers)

estimator_params = config_lib.estimator_params


def _default_make_env(config):
  def make_env(num_envs, seed, workers):
    return environments.make(config.task, num_envs=num_envs, seed=seed, workers=workers,
                             **config_lib.env_settings(config))
  return make_env


@contextlib.contextmanager
def finishing(finish):
  """Calls `finish(outcome)` once the block ends: FINISHED, KILLED (`Interrupted`) or FAILED."""
  outcome = "FAILED"
  try:
    yield
    outcome = "FINISHED"
  except Interrupted:
    outcome = "KILLED"
    raise
  finally:
    finish(outcome)


def _default_learner(spec, config):
  return learner_lib.MADDPGLearner(
      spec.num_agents, spec.observation_size, spec.num_actions, config_lib.learner_config(config),
      estimator=config.estimator.name, estimator_params=estimator_params(config), seed=config.seed,
      jit_compile=config.jit_compile)


class Experiment:
  """Builds every part of a run in `workdir` from `config`. Injectable: `make_env(num_envs, seed, workers)`
  (default: the config's task), `observers` (see `environment_loop.Observer`), extra `loggers`;
  `provenance_extra`: more of what produced the run (e.g. the grid's node), added to provenance.json;
  `make_learner(spec, config)` (default: a `MADDPGLearner` of the config) and `update_executor` (where the
  update blocks run, `updates.UpdateScheduler`): `packing.PackedRun` gives each seed its view of one packed
  learner this way.

  `run()` trains; `start()`, the training loop's pieces and `finish(outcome)` are the same in steps, for a
  driver of several runs (`packing.PackedRun`)."""

  def __init__(self, config, workdir, progress=True, make_env=None, observers=(), extra_loggers=(),
               provenance_extra=None, make_learner=None, update_executor=None):
    c = self.config = resolve_config(config)
    loggers.check_packages(c)  # a logger's missing package: before anything is written
    self.workdir = workdir_lib.Workdir(workdir)
    self.workdir.check(c)  # before the lock: a directory of something else gets no lock file
    self._lock = contextlib.ExitStack()
    self._lock.enter_context(self.workdir.hold())
    try:
      self.workdir.check(c)  # again: a process that held it may have written its run meanwhile
      self._build(c, progress, make_env, observers, extra_loggers, provenance_extra, make_learner,
                  update_executor)
    except BaseException as error:
      self.close()
      if devices.out_of_memory(error):
        raise RunError(devices.no_room(error, getattr(self, "device_record", None), "while building the run")) from None
      raise

  def _build(self, c, progress, make_env, observers, extra_loggers, provenance_extra, make_learner,
             update_executor):
    self.task = environments.resolve_task(c.task)
    self.device_record = devices.configure(c.device)  # applied by resolve_config; here, what is in force
    self.provenance_extra = dict(provenance_extra or {})
    make_env = make_env or _default_make_env(c)
    self.env = make_env(c.num_envs, c.seed, c.env_workers)
    self.eval_env = make_env(c.loop.eval_num_envs, c.seed + EVAL_SEED_OFFSET, min(c.env_workers,
                                                                                  c.loop.eval_num_envs))
    spec = self.env.spec
    self.learner = (make_learner or _default_learner)(spec, c)
    self.replay = replay_buffer.StagedReplay(replay_buffer.ReplayBuffer(
        c.replay.capacity, spec.num_agents, spec.observation_size, c.replay.observation_dtype))
    self.counters = counting.Counter()
    self.tensorboard = loggers.TensorBoardLogger(logdir=self.workdir.tensorboard,
                                                 superseded_dir=self.workdir.superseded)
    self.progress_bar = (loggers.ProgressBar(total=c.total_steps,
                                             description=f"{self.task.name} {c.estimator.label}")
                         if progress else None)
    self.logger = loggers.Dispatcher([self.tensorboard, *extra_loggers,
                                      *([self.progress_bar] if self.progress_bar else [])])
    actor, eval_actor = actor_lib.NumpyActor(c.seed, stream=0), actor_lib.NumpyActor(c.seed, stream=1)
    self.episode_returns = environment_loop.EpisodeReturns()
    self.loop = environment_loop.EnvironmentLoop(
        env=self.env, actor=actor, replay=self.replay, counter=self.counters,
        truncation_is_terminal=c.loop.truncation_is_terminal, observers=[self.episode_returns, *observers])
    self.updates = updates.UpdateScheduler(
        learner=self.learner, replay=self.replay, replay_rng=np.random.default_rng([c.seed, 2]),
        counter=self.counters, settings=updates.UpdateSettings(
            c.replay.batch_size, c.loop.updates_per_episode, min(16, c.num_envs * c.loop.updates_per_episode),
            c.loop.asynchronous_updates, c.seed, c.estimator.schedule_unit, c.log.grad_variance_every_steps,
            c.log.every_updates, c.diagnostics.exact_gradient_every),
        actors=[actor, eval_actor], logger=self.logger, executor=update_executor,
        diagnostics=diagnostics.ExactGradientDiagnostics(self.learner, c.diagnostics.num_repeats)
        if c.diagnostics.exact_gradient_every else None)
    self.evaluator = evaluation.Evaluator(env=self.eval_env, actor=eval_actor, episodes=c.loop.eval_episodes,
                                          truncation_is_terminal=c.loop.truncation_is_terminal,
                                          store=self.replay.add if c.loop.eval_into_replay else None)
    self.checkpointer = checkpointing.Checkpointer(
        self.workdir.checkpoints, config_lib.checkpoint_metadata(c), keep=c.checkpoint.keep)
    self.stop = interrupts.StopRequest()
    video = (evaluation_video.EvaluationVideo(config=c, every=c.log.video_every_evals,
                                              max_frames=c.log.video_max_frames, tensorboard=self.tensorboard,
                                              weights=lambda: eval_actor.weights)
             if c.log.video_every_evals else None)
    best = (checkpointing.BestPolicy(self.workdir.best, config_lib.checkpoint_metadata(c), self.learner)
            if c.checkpoint.keep_best else None)
    self.training = training.TrainingLoop(
        schedule=training.Schedule(c.total_steps, c.loop.warmup_episodes, c.loop.eval_every_steps,
                                   c.checkpoint.every_steps),
        counter=self.counters, loop=self.loop, updates=self.updates, evaluator=self.evaluator,
        checkpointer=self.checkpointer,
        # Restored in this order, after the loop's own state: the learner before the scheduler reads its
        # weights; TensorBoard after every number.
        parts={"learner": self.learner, "replay": self.replay, "counters": self.counters, "loop": self.loop,
               "evaluator": self.evaluator, "updates": self.updates, "episode_returns": self.episode_returns,
               "tensorboard": self.tensorboard},
        logger=self.logger, stop=self.stop, episode_returns=self.episode_returns,
        evaluations_csv=self.workdir.evaluations, warmup_rng=np.random.default_rng([c.seed, 1]),
        progress=self.progress_bar, video=video, best=best)

  def close(self):
    """Stops the environments' worker processes and lets go of the workdir (a closed Experiment cannot run
    again)."""
    try:
      for env in (getattr(self, "env", None), getattr(self, "eval_env", None)):
        if env is not None:
          env.close()
    finally:
      self._lock.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def restore_latest(self):
    """Restores the newest complete checkpoint; returns its path or None."""
    return self.checkpointer.restore_latest(self.training.parts)

  def start(self):
    """Restores the newest checkpoint, writes config.json and provenance.json, starts the external loggers.
    Returns the restored checkpoint's path or None. RunError for unusable checkpoints."""
    c = self.config
    try:
      restored = self.restore_latest()
    except checkpointing.CheckpointError as error:
      raise RunError(str(error)) from None
    sources = [estimators.source_of(c.estimator.name), pettingzoo_envs.source_of(self.task)]
    provenance = workdir_lib.provenance(c, self.task, [s for s in sources if s])
    note = pettingzoo_envs.adapter_note(self.task)
    if note:  # what the adapter changed about a user's env: said once at start, kept with the run
      provenance["note"] = f"env {self.task.name}: {note}"
      print(provenance["note"], flush=True)
    provenance["devices"] = devices.describe(self.device_record, self.learner.device)
    if self.device_record["gpus_found"]:  # where a GPU exists, say where the update runs (also with --quiet)
      print(f"devices: the update runs on {devices.short_device(self.learner.device)}; "
            f"{self.device_record['note']}", flush=True)
    provenance = {**provenance, **self.provenance_extra}
    self.workdir.write_run_files(c, provenance)
    if restored is None:
      self.tensorboard.write_hparams({**config_lib.hparams(c), "update_device": devices.short_device(
          self.learner.device)}, self.workdir.name)
      self.loop.reset()
    self.finished_before = bool(restored) and self.counters.env_steps >= c.total_steps
    if restored and not self.finished_before:  # also with --quiet: which run continues is what happened
      print(f"resuming from {restored} (env step {self.counters.env_steps:,})", flush=True)  # the path names the run
    try:
      self._external = loggers.external_loggers(c, self.workdir, provenance)  # W&B, MLflow (log.to)
    except RunError:
      self.updates.close()
      self.logger.close()
      raise
    self.logger.loggers.extend(self._external)
    return restored

  @contextlib.contextmanager
  def translated_errors(self, prefix=""):
    """What stops training mid-run, as one RunError line (with `prefix`) naming the step and the last
    checkpoint: a NaN loss, an env the start-up probe did not catch, a GPU allocation that found no room."""
    try:
      yield
    except pettingzoo_envs.UnsupportedEnv as error:
      raise RunError(f"{prefix}{error}; stopped at env step {self.counters.env_steps:,}, last checkpoint: "
                     f"{self.checkpointer.latest() or 'none'}") from None
    except NonFiniteLoss as error:
      raise RunError(f"{prefix}training stopped in updates {error.first_update:,}-{error.last_update:,} (env "
                     f"step {self.counters.env_steps:,}): the {error.loss} is NaN or infinite; last good "
                     f"checkpoint: {self.checkpointer.latest() or 'none'}") from None
    except (Interrupted, RunError):
      raise
    except Exception as error:  # pylint: disable=broad-except  (only an allocation that found no room)
      if not devices.out_of_memory(error):
        raise
      raise RunError(prefix + devices.no_room(error, self.device_record, f"at env step "
                                              f"{self.counters.env_steps:,} (last checkpoint: "
                                              f"{self.checkpointer.latest() or 'none'})",
                                              self.learner.device)) from None

  def finish(self, outcome):
    """Ends the external loggers' runs with `outcome` (FINISHED, KILLED, FAILED), stops the learner thread
    and closes the loggers."""
    try:
      for logger in getattr(self, "_external", ()):
        logger.end(outcome)
    finally:
      self.updates.close()
      self.logger.close()

  def run(self):
    """Trains to `total_steps`; returns `summary()`. RunError for NaN losses or unusable checkpoints."""
    self.start()
    with finishing(self.finish), self.stop, self.translated_errors():
      self.training.run()
    return self.summary()

  def summary(self):
    means = [float(np.mean(e["returns"])) for e in self.training.evaluations]
    return {"task": self.task.name, "estimator": self.config.estimator.label, "seed": self.config.seed,
            "fidelity": self.config.fidelity, "env_steps": self.counters.env_steps,
            "updates": self.counters.updates, "evaluations": len(means),
            "final_return": means[-1] if means else math.nan, "max_return": max(means) if means else math.nan,
            "steps_per_second": self.training.steps_per_second, "workdir": self.workdir.path,
            "already_finished": getattr(self, "finished_before", False),
            "tensorboard": self.workdir.tensorboard}
