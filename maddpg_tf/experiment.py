"""Wires environments, learner, replay and logging into one resumable training run.

Schedule (the authors' code, NOTES section 1): `warmup_episodes` episodes of uniform random actions fill
the buffer first and do not count as training steps; then after every finished training episode,
`updates_per_episode` updates, each on a fresh batch. With `num_envs` environments stepped together every
finished episode still triggers its updates, so the ratio of updates to env steps is the paper's.
An evaluation (`eval_episodes` episodes of the stochastic policy) runs when the steps before a vector step
reach the next multiple of `eval_every_steps`, starting at step 0.
"""

import dataclasses
import concurrent.futures
import importlib.metadata
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time

import ml_collections
import numpy as np
import tensorflow as tf

from configs import common
from maddpg_tf import checkpointing, environments, learner as learner_lib, loggers, replay_buffer
from maddpg_tf.actor import NumpyActor


class RunError(Exception):
  """A problem the user must fix; its message is one line naming the value and what is allowed."""


class Interrupted(Exception):
  """SIGINT or SIGTERM arrived; a checkpoint was written. `signum` says which."""

  def __init__(self, signum, message):
    super().__init__(message)
    self.signum = signum


FIDELITY_DEFAULTS = {
    # setting: (value under "code", value under "text")
    "learner.use_target_networks": (False, True),
    "loop.truncation_is_terminal": (True, False),
    "loop.eval_into_replay": (True, False),
    "estimator.schedule_unit": ("updates", "env_steps"),
}
PACKAGES = ("tensorflow", "tensorflow-probability", "keras", "tf-keras", "gymnasium", "lbforaging",
            "rware", "numpy", "ml-collections", "keras-tuner")


def _require(condition, message):
  if not condition:
    raise RunError(message)


def resolve_config(config):
  """A concrete, validated copy of `config`: `None` fields filled from `fidelity`. Raises RunError."""
  config = ml_collections.ConfigDict(config.to_dict())
  _require(config.fidelity in ("code", "text"),
           f"fidelity must be 'code' or 'text', got {config.fidelity!r}")
  try:
    task = environments.resolve_task(config.task)
  except ValueError as error:
    raise RunError(str(error)) from None
  column = 0 if config.fidelity == "code" else 1
  for key, values in FIDELITY_DEFAULTS.items():
    if common.get_value(config, key) is None:
      common.set_value(config, key, values[column])
  if config.loop.episode_limit is None:
    config.loop.episode_limit = task.code_cutoff if config.fidelity == "code" else task.env_episode_limit
  _require(config.estimator.schedule_unit in ("updates", "env_steps"),
           f"estimator.schedule_unit must be 'updates' or 'env_steps', got {config.estimator.schedule_unit!r}")

  for key in ("total_steps", "loop.warmup_episodes"):
    value = common.get_value(config, key)
    _require(isinstance(value, int) and value >= 0, f"{key} must be an integer >= 0, got {value!r}")
  for key in ("num_envs", "replay.batch_size", "replay.capacity", "loop.updates_per_episode",
              "loop.eval_every_steps", "loop.eval_episodes", "loop.eval_num_envs", "checkpoint.every_steps",
              "checkpoint.keep", "log.every_updates", "log.grad_variance_every_steps"):
    value = common.get_value(config, key)
    _require(isinstance(value, int) and value >= 1, f"{key} must be an integer >= 1, got {value!r}")
  if "env_workers" not in config:  # configs written before env workers existed
    config.env_workers = 0
  _require(isinstance(config.env_workers, int) and 0 <= config.env_workers <= config.num_envs,
           f"env_workers must be an integer in 0..num_envs ({config.num_envs}), got {config.env_workers!r}")
  if "diagnostics" not in config:  # runs written before diagnostics existed
    config.diagnostics = common.diagnostics_config()
  for key, minimum in (("diagnostics.exact_gradient_every", 0), ("diagnostics.num_repeats", 2)):
    value = common.get_value(config, key)
    _require(isinstance(value, int) and value >= minimum,
             f"{key} must be an integer >= {minimum}, got {value!r}")
  _require(config.replay.capacity >= config.replay.batch_size,
           f"replay.capacity ({config.replay.capacity}) must be >= replay.batch_size "
           f"({config.replay.batch_size})")
  try:
    learner_config(config)
    learner_lib.check_estimator(config.estimator.name, estimator_params(config))
    environments.make(task, num_envs=1, seed=0, episode_limit=config.loop.episode_limit).close()
  except ValueError as error:
    raise RunError(f"{error}") from None
  return config


def estimator_params(config):
  """The estimator's keyword arguments: the config fields that are set."""
  params = {k: config.estimator[k] for k in common.ESTIMATOR_FIELDS if config.estimator[k] is not None}
  if "period" in params:
    params["schedule"] = config.estimator.schedule
  if params.get("num_samples") is not None:
    params["num_samples"] = int(params["num_samples"])
  return params


def learner_config(config):
  fields = {f.name for f in dataclasses.fields(learner_lib.LearnerConfig)}
  values = {k: v for k, v in config.learner.items() if k in fields}
  values["hidden_sizes"] = tuple(values["hidden_sizes"])
  return learner_lib.LearnerConfig(**values)


def provenance(config):
  """What produced a result: versions, git revision, command line, fidelity, seed."""
  versions = {}
  for package in PACKAGES:
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    revision = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    dirty = bool(subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout.strip())
  except (OSError, subprocess.SubprocessError):
    revision, dirty = "unknown", None
  task = environments.resolve_task(config.task)
  return {"git_revision": revision, "git_dirty": dirty, "packages": versions,
          "python": platform.python_version(), "command": sys.argv, "seed": config.seed,
          "fidelity": config.fidelity, "task": task.name, "gym_id": task.gym_id,
          "note": "lbforaging 2.0.0 / rware 2.0.0 ids (-v3 / -v2) differ from the paper's (-v2 / -v1); "
                  "see NOTES section 5"}


def _comparable(config_dict):
  """A run's identity: everything but the budget, which a resumed run may extend, the diagnostics, which
  only log, and the env worker count, which changes no number."""
  return {k: v for k, v in config_dict.items() if k not in ("total_steps", "diagnostics", "env_workers")}


def _differences(old, new, prefix=""):
  keys = sorted(set(old) | set(new))
  found = []
  for key in keys:
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      found += _differences(a, b, f"{prefix}{key}.")
    elif a != b and not (isinstance(a, list) and isinstance(b, (list, tuple)) and list(a) == list(b)):
      found.append(f"{prefix}{key}: {a!r} there, {b!r} here")
  return found


class Experiment:
  """One training run in `workdir`; `run()` trains (resuming if the workdir holds this run)."""

  def __init__(self, config, workdir, progress=True):
    self.config = resolve_config(config)
    self.workdir = workdir
    self.progress = progress
    self._check_workdir()
    c = self.config
    self.task = environments.resolve_task(c.task)
    self.env = environments.make(self.task, num_envs=c.num_envs, seed=c.seed,
                                 episode_limit=c.loop.episode_limit, workers=c.env_workers)
    self.eval_env = environments.make(self.task, num_envs=c.loop.eval_num_envs, seed=c.seed + 1_000_003,
                                      episode_limit=c.loop.episode_limit,
                                      workers=min(c.env_workers, c.loop.eval_num_envs))
    spec = self.env.spec
    self.learner = learner_lib.MADDPGLearner(
        spec.num_agents, spec.observation_size, spec.num_actions, learner_config(c),
        estimator=c.estimator.name, estimator_params=estimator_params(c), seed=c.seed,
        jit_compile=c.jit_compile)
    self.buffer = replay_buffer.ReplayBuffer(c.replay.capacity, spec.num_agents, spec.observation_size,
                                             c.replay.observation_dtype)
    self.actor = NumpyActor(c.seed, stream=0)
    self.eval_actor = NumpyActor(c.seed, stream=1)
    self._next_weights = None  # the actors a collected block left, read on the learner thread
    self._refresh_policy()
    self._executor = (concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="learner")
                      if c.loop.asynchronous_updates else None)
    self._pending = None
    self._unstored = None  # the last env step's transition, until `_store_transition`
    # One compiled block shape: the updates of one vector step whose envs all end an episode together.
    self._block_size = min(16, c.num_envs * c.loop.updates_per_episode)
    # Asynchronous updates wait until a block's worth is owed. While the envs end their episodes together
    # (every run starts so; LBF cut-offs and RWARE keep them so) that is every episode end, as before; once
    # early episode ends have spread them out, it keeps blocks full instead of sending the learner one
    # update at a time (per-call costs then took a third of LBF 8x8's throughput). The ratio of updates to
    # env steps is unchanged; owed updates are part of a checkpoint.
    self._min_block = self._block_size if c.loop.asynchronous_updates else 1
    self._tensorboard = None
    self.counters = dict(env_steps=0, warmup_episodes=0, episodes=0, updates=0, last_checkpoint=0)
    self.evaluations = []
    self.recent_returns = []  # returns of recent training episodes, for train/episode_return
    self._event_file_sizes = None  # TensorBoard's event files at the restored checkpoint, if any
    self.warmup_rng = np.random.default_rng([c.seed, 1])
    self.replay_rng = np.random.default_rng([c.seed, 2])
    self.observations = None
    self._stop_signal = None
    self.checkpoint_dir = os.path.join(workdir, "checkpoints")

  def close(self):
    """Stops the environments' worker processes (a closed Experiment cannot run again)."""
    for env in (getattr(self, "env", None), getattr(self, "eval_env", None)):
      if env is not None:
        env.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # ---- workdir ---------------------------------------------------------------------------------------

  def _check_workdir(self):
    workdir = self.workdir
    if os.path.exists(workdir) and not os.path.isdir(workdir):
      raise RunError(f"--workdir {workdir} is a file, not a directory")
    config_path = os.path.join(workdir, "config.json")
    if os.path.isdir(workdir) and os.listdir(workdir) and not os.path.isfile(config_path):
      raise RunError(f"--workdir {workdir} exists and holds no maddpg-tf run (no config.json); "
                     f"choose a new or empty directory")
    if os.path.isfile(config_path):
      try:
        with open(config_path) as handle:
          existing = json.load(handle)
      except (OSError, ValueError) as error:
        raise RunError(f"--workdir {workdir}: config.json is unreadable ({error}); restore it, or use a new "
                       f"--workdir") from None
      differences = _differences(_comparable(existing), _comparable(self.config.to_dict()))
      if differences:
        raise RunError(f"--workdir {workdir} holds a different run ({'; '.join(differences[:3])}); "
                       f"use a new --workdir, or the same config to resume")

  def _write_run_files(self):
    os.makedirs(self.workdir, exist_ok=True)
    for name, content in (("config.json", self.config.to_dict()), ("provenance.json", provenance(self.config))):
      path = os.path.join(self.workdir, name)
      if name == "provenance.json" and os.path.exists(path):
        name = f"provenance-resume-{int(time.time())}.json"
        path = os.path.join(self.workdir, name)
      temporary = path + ".tmp"
      with open(temporary, "w") as handle:
        json.dump(content, handle, indent=2, sort_keys=True, default=str)
      os.replace(temporary, path)

  # ---- checkpoints -------------------------------------------------------------------------------------

  def _metadata(self):
    return {"task": self.task.name, "estimator": self.config.estimator.name, "seed": self.config.seed,
            "fidelity": self.config.fidelity}

  def save_checkpoint(self, scheduled=True):
    """Writes a checkpoint of the run as it stands; returns its path. `scheduled=False` (a signal's
    checkpoint, off the `checkpoint.every_steps` schedule) changes nothing the run would do next: the acting
    snapshot is not refreshed early (it is saved as it is, to be refreshed where the uninterrupted run
    refreshes it) and the schedule keeps its place, so the resumed run equals the uninterrupted one."""
    self._store_transition()
    self._drain(refresh=scheduled)
    previous = self.counters["last_checkpoint"]
    if scheduled:
      self.counters["last_checkpoint"] = self.counters["env_steps"]  # the restored run must see it too
    arrays = {name: variable.numpy() for name, variable in self.learner.state_variables().items()}
    arrays.update(self.buffer.state())
    state = {"counters": dict(self.counters), "evaluations": self.evaluations,
             "recent_returns": list(self.recent_returns),
             "env": self.env.get_state(), "eval_env": self.eval_env.get_state(),
             "observations": self.observations,
             "warmup_rng": self.warmup_rng, "replay_rng": self.replay_rng,
             "actor_rng": self.actor.rng, "eval_actor_rng": self.eval_actor.rng,
             "stale_acting_weights": self.actor.weights if self._stale_policy else None}
    if self._tensorboard is not None:  # what TensorBoard holds now, so that a resume can rewind to it
      self._tensorboard.flush()
      state["tensorboard_files"] = loggers.event_file_sizes(self._tensorboard.logdir)
    try:
      return checkpointing.save(self.checkpoint_dir, self.counters["env_steps"], arrays, state,
                                self._metadata(), keep=self.config.checkpoint.keep)
    except checkpointing.CheckpointError:
      self.counters["last_checkpoint"] = previous
      raise

  def restore_latest(self):
    """Restores the newest complete checkpoint; returns its path or None."""
    path = checkpointing.latest(self.checkpoint_dir)
    if path is None:
      return None
    arrays, state, _ = checkpointing.load(path, self._metadata())
    variables = self.learner.state_variables()
    missing = sorted(set(variables) - set(arrays))
    if missing:
      raise checkpointing.CheckpointError(f"checkpoint {path} lacks {missing[0]}: not this run's")
    for name, variable in variables.items():
      if tuple(arrays[name].shape) != tuple(variable.shape):
        raise checkpointing.CheckpointError(
            f"checkpoint {path}: {name} has shape {arrays[name].shape}, this run needs {tuple(variable.shape)}")
      variable.assign(arrays[name])
    try:
      self.buffer.restore(arrays)
    except ValueError as error:
      raise checkpointing.CheckpointError(str(error)) from None
    self.counters = state["counters"]
    self.evaluations = state["evaluations"]
    try:
      self.env.set_state(state["env"])
      self.eval_env.set_state(state["eval_env"])
    except ValueError as error:
      raise checkpointing.CheckpointError(f"checkpoint {path}: {error}") from None
    self.observations = state["observations"]
    self.warmup_rng, self.replay_rng = state["warmup_rng"], state["replay_rng"]
    self.actor.rng, self.eval_actor.rng = state["actor_rng"], state["eval_actor_rng"]
    self._event_file_sizes = state.get("tensorboard_files")
    self.recent_returns = state.get("recent_returns", [])
    self._refresh_policy()
    if state.get("stale_acting_weights") is not None:  # a signal's checkpoint: act as before it, for now
      self.actor.set_weights(state["stale_acting_weights"])
      self.eval_actor.set_weights(state["stale_acting_weights"])
      self._stale_policy = True
    return path

  # ---- the loop ----------------------------------------------------------------------------------------

  def _store_transition(self):
    """Adds the last env step's transition to the buffer if the loop has not yet. The loop stores it while
    the envs take the next step, so every reader of the buffer (update sampling, evaluation episodes
    stored in it, checkpoints) calls this first: the buffer's contents and order are those of storing at
    once."""
    if self._unstored is not None:
      transition, self._unstored = self._unstored, None
      self.buffer.add(*transition)

  def _terminal(self, step):
    if self.config.loop.truncation_is_terminal:
      return (step.terminated | step.truncated).astype(np.float32)
    return step.terminated.astype(np.float32)

  def _estimator_step(self):
    unit = self.config.estimator.schedule_unit
    return self.counters["updates"] if unit == "updates" else self.counters["env_steps"]

  def _schedule_updates(self, count):
    """Runs `count` updates on batches sampled now, or submits them to the learner thread.

    With `loop.asynchronous_updates`, the block runs while the envs keep stepping with the NumPy snapshot
    of the actors, refreshed when the block is collected (before the next block is submitted and
    before every evaluation and checkpoint). Everything random is drawn here, in a fixed order, so runs
    are deterministic and resumable either way.
    """
    c = self.config
    self._store_transition()
    jobs = []
    for _ in range(count):
      if len(self.buffer) < c.replay.batch_size:
        break
      batch = self.buffer.sample(c.replay.batch_size, self.replay_rng)
      seed = np.array([c.seed, self.counters["updates"]], np.int64)
      # Figure 4: both variance definitions, on the first update of each logging window.
      window = self.counters["env_steps"] // c.log.grad_variance_every_steps
      log_variance = window > self.counters.get("variance_window", -1)
      if log_variance:
        self.counters["variance_window"] = window
      jobs.append((self.counters["updates"], batch, seed, self._estimator_step(), log_variance))
      self.counters["updates"] += 1
    if not jobs:
      return
    if self._executor is None:
      self._collect(jobs, self._run_updates(jobs))
      self._refresh_policy()
    else:
      self._drain()
      self._pending = (jobs, self._executor.submit(self._run_block, jobs))

  def _run_block(self, jobs):
    """On the learner thread: the updates, then the NumPy copy of the actors they leave (read there, off
    the env loop's path)."""
    return self._run_updates(jobs), self.learner.actor_weights()

  def _run_updates(self, jobs):
    """Runs the jobs in order: runs of ordinary updates as compiled blocks, a Figure 4 update alone.
    Returns [(jobs of a call, metrics of its last update)]."""
    results, start = [], 0
    every = self.config.diagnostics.exact_gradient_every
    diagnose = lambda job: every > 0 and job[0] % every == 0
    while start < len(jobs):
      update, batch, seed, step, log_variance = jobs[start]
      # Exact-gradient diagnostics on this update's batch, with the networks as this update finds them.
      diagnostics = (self.learner.exact_gradient_diagnostics(batch, seed, step,
                                                             self.config.diagnostics.num_repeats)
                     if diagnose(jobs[start]) else {})
      if log_variance:
        metrics = self.learner.step(batch, seed=seed, estimator_step=step, per_sample_variance=True)
        results.append((jobs[start:start + 1], {**metrics, **diagnostics}))
        start += 1
        continue
      end = start + 1
      while end < len(jobs) and not jobs[end][4] and not diagnose(jobs[end]):
        end += 1
      run = jobs[start:end]
      metrics = self.learner.step_block([j[1] for j in run], [j[2] for j in run], [j[3] for j in run],
                                        block_size=self._block_size)
      results.append((run, {**metrics, **diagnostics}))
      start = end
    return results

  def _drain(self, refresh=True):
    """Waits for the submitted update block, logs it, and (`refresh`) refreshes the acting snapshot."""
    if self._pending is not None:
      jobs, future = self._pending
      self._pending = None
      self._next_weights = self._collect(jobs, future)
      self._stale_policy = True
    if refresh and self._stale_policy:
      self._refresh_policy()

  def _refresh_policy(self):
    """Copies the actors' weights to the NumPy actors (only while no update block runs)."""
    weights = self._next_weights if self._next_weights is not None else self.learner.actor_weights()
    self._next_weights = None
    self.actor.set_weights(weights)
    self.eval_actor.set_weights(weights)
    self._stale_policy = False

  def _collect(self, jobs, results):
    """Logs a finished block (`results`: `_run_updates`' list, or a future of `_run_block`'s pair); returns
    the actor weights the block left, if it read them."""
    c = self.config
    try:
      metrics, weights = (results.result() if isinstance(results, concurrent.futures.Future)
                          else (results, None))
    except tf.errors.InvalidArgumentError as error:
      message = str(error)
      losses = [name for name in ("critic loss", "actor loss") if name in message]
      if not losses or "Tensor had" not in message:
        raise
      last = checkpointing.latest(self.checkpoint_dir)
      raise RunError(f"training stopped in updates {jobs[0][0] + 1:,}-{jobs[-1][0] + 1:,} (env step "
                     f"{self.counters['env_steps']:,}): the {losses[0]} is NaN or infinite; last "
                     f"good checkpoint: {last or 'none'}") from None
    if self._tensorboard is None:
      return weights
    variance_prefixes = ("policy_grad_variance", "per_sample_grad_variance")
    for call_jobs, values in metrics:
      first, last = call_jobs[0][0], call_jobs[-1][0]
      diagnostics = {k: v.numpy() for k, v in values.items() if k.startswith("exact_gradient/")}
      if diagnostics:
        self._tensorboard.write(diagnostics, self.counters["env_steps"])
      if (last + 1) // c.log.every_updates > first // c.log.every_updates:
        self._tensorboard.write({f"train/{k}": v.numpy() for k, v in values.items()
                                 if not k.startswith(variance_prefixes + ("exact_gradient/",))},
                                self.counters["env_steps"])
      if call_jobs[0][4]:
        self._tensorboard.write({k: v.numpy() for k, v in values.items() if k.startswith(variance_prefixes)},
                                self.counters["env_steps"])
    return weights

  def warm_up(self):
    c = self.config
    while self.counters["warmup_episodes"] < c.loop.warmup_episodes:
      actions = self.env.random_actions(self.warmup_rng)
      step = self.env.step(actions)
      self.buffer.add(self.observations, actions, step.reward, self._terminal(step), step.observation)
      self.observations = step.next_observation
      self.counters["warmup_episodes"] += int(np.sum(~np.isnan(step.episode_return)))

  def evaluate(self):
    """`eval_episodes` episodes of the stochastic policy; returns their team returns."""
    c = self.config
    self._store_transition()  # training transitions before any evaluation episode's (eval_into_replay)
    env = self.eval_env
    quota = np.full(env.num_envs, c.loop.eval_episodes // env.num_envs)
    quota[:c.loop.eval_episodes % env.num_envs] += 1
    finished = np.zeros(env.num_envs, int)
    returns = []
    observations = env.reset()
    while np.any(finished < quota):
      actions = self.eval_actor.select_actions(observations)
      step = env.step(actions)
      active = finished < quota
      if c.loop.eval_into_replay:
        self.buffer.add(observations[active], actions[active], step.reward[active],
                        self._terminal(step)[active], step.observation[active])
      ended = active & ~np.isnan(step.episode_return)
      returns.extend(float(r) for r in step.episode_return[ended])
      finished += ended
      observations = step.next_observation
    return returns

  def _install_signal_handlers(self):
    def handler(signum, frame):
      self._stop_signal = signum
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    return previous

  def run(self):
    """Trains to `total_steps`; returns a summary dict. Raises RunError on NaN losses or bad checkpoints."""
    c = self.config
    try:
      restored = self.restore_latest()
    except checkpointing.CheckpointError as error:
      raise RunError(str(error)) from None
    self._write_run_files()
    if restored is not None and self._event_file_sizes is not None:
      # What was logged after the checkpoint is logged again by the resumed run: drop it (kept aside).
      loggers.rewind_event_files(os.path.join(self.workdir, "tb"), self._event_file_sizes,
                                 os.path.join(self.workdir, "tb_superseded"))
    tensorboard = loggers.TensorBoardLogger(os.path.join(self.workdir, "tb"))
    self._tensorboard = tensorboard
    run_name = os.path.basename(os.path.normpath(self.workdir))
    if restored is None:
      tensorboard.write_hparams(self._hparams(), run_name)
      self.observations = self.env.reset()
    previous_handlers = self._install_signal_handlers()
    bar = None
    try:
      if self.progress:
        from tqdm import tqdm
        if restored:
          print(f"resuming from {restored} (env step {self.counters['env_steps']:,})", flush=True)
        bar = tqdm(total=c.total_steps, initial=self.counters["env_steps"], unit="step", dynamic_ncols=True,
                   desc=f"{self.task.name} {c.estimator.label}", mininterval=1.0)
      if self.counters["warmup_episodes"] < c.loop.warmup_episodes:
        if bar is not None:
          bar.set_postfix_str(f"warm-up: {c.loop.warmup_episodes} random episodes")
        self.warm_up()
      self._train(tensorboard, bar)
    finally:
      for signum, handler in previous_handlers.items():
        signal.signal(signum, handler)
      if self._pending is not None:  # an exception left a block running: let it finish quietly
        concurrent.futures.wait([self._pending[1]])
        self._pending = None
      if self._executor is not None:
        self._executor.shutdown(wait=True)
      if bar is not None:
        bar.close()
      tensorboard.close()
    return self.summary()

  def _train(self, tensorboard, bar):
    c = self.config
    started, steps_at_start = time.time(), self.counters["env_steps"]
    rate_clock, rate_steps = time.time(), self.counters["env_steps"]
    while self.counters["env_steps"] < c.total_steps:
      if self._stop_signal is not None:
        path = self.save_checkpoint(scheduled=False)
        name = signal.Signals(self._stop_signal).name
        raise Interrupted(self._stop_signal, f"{name} at env step {self.counters['env_steps']:,}: "
                                             f"checkpoint {path} written; run the same command to resume")
      actions = self.actor.select_actions(self.observations)
      self.env.step_async(actions)
      self._store_transition()  # the previous step's, while the envs step (in a worker process)
      step = self.env.step_wait()
      self._unstored = (self.observations, actions, step.reward, self._terminal(step), step.observation)
      self.observations = step.next_observation
      steps_before = self.counters["env_steps"]
      self.counters["env_steps"] += self.env.num_envs
      ended = ~np.isnan(step.episode_return)
      if np.any(ended):
        self.recent_returns.extend(step.episode_return[ended].tolist())
        self.counters["episodes"] += int(ended.sum())
        owed = self.counters.get("owed_updates", 0) + int(ended.sum()) * c.loop.updates_per_episode
        self.counters["owed_updates"] = 0 if owed >= self._min_block else owed
        if owed >= self._min_block:
          self._schedule_updates(owed)
      if steps_before >= len(self.evaluations) * c.loop.eval_every_steps:
        self._drain()
        returns = self.evaluate()
        self.evaluations.append({"step": steps_before, "returns": returns})
        loggers.write_evaluations_csv(os.path.join(self.workdir, "evaluations.csv"), self.evaluations)
        now = time.time()
        rate = (self.counters["env_steps"] - rate_steps) / max(now - rate_clock, 1e-9)
        rate_clock, rate_steps = now, self.counters["env_steps"]
        values = {"eval/mean_return": np.mean(returns), "perf/env_steps_per_s": rate,
                  "perf/updates": self.counters["updates"]}
        if self.recent_returns:
          values["train/episode_return"] = np.mean(self.recent_returns)
        tensorboard.write(values, steps_before)
        tensorboard.flush()
        self.recent_returns = self.recent_returns[-100:]
        if bar is not None:
          bar.set_postfix_str(f"eval return {np.mean(returns):.3f}")
      if bar is not None:
        bar.update(self.counters["env_steps"] - bar.n)
      if self.counters["env_steps"] - self.counters["last_checkpoint"] >= c.checkpoint.every_steps:
        try:
          self.save_checkpoint()
        except checkpointing.CheckpointError as error:
          raise RunError(str(error)) from None
    self._store_transition()
    self._drain()
    if self.counters["last_checkpoint"] != self.counters["env_steps"] or not checkpointing.latest(
        self.checkpoint_dir):
      try:
        self.save_checkpoint()
      except checkpointing.CheckpointError as error:
        raise RunError(str(error)) from None
    elapsed = time.time() - started
    self._steps_per_second = (self.counters["env_steps"] - steps_at_start) / max(elapsed, 1e-9)

  def _hparams(self):
    c = self.config
    values = {"task": c.task, "estimator": c.estimator.name, "estimator_label": c.estimator.label,
              "fidelity": c.fidelity, "seed": c.seed}
    values.update({f"estimator.{k}": float(v) for k, v in estimator_params(c).items()
                   if isinstance(v, (int, float))})
    return values

  def summary(self):
    means = [float(np.mean(e["returns"])) for e in self.evaluations]
    return {"task": self.task.name, "estimator": self.config.estimator.label, "seed": self.config.seed,
            "fidelity": self.config.fidelity, "env_steps": self.counters["env_steps"],
            "updates": self.counters["updates"], "evaluations": len(means),
            "final_return": means[-1] if means else math.nan, "max_return": max(means) if means else math.nan,
            "steps_per_second": getattr(self, "_steps_per_second", math.nan),
            "workdir": self.workdir, "tensorboard": os.path.join(self.workdir, "tb")}
