"""Bayesian search over estimator settings: a `keras_tuner.Tuner` whose trials are MADDPG training runs.

    tuner = EstimatorSearch(config, spaces.resolve("grmck"), "searches/grmck", max_trials=20)
    tuner.search()                          # trains trial after trial; resumes an interrupted search
    print(format_table(tuner.oracle, "average_return"))

Layout of a search directory (keras-tuner's project directory is the directory itself):

    <dir>/search.json                  what was searched (refused if a restart asks for something else)
    <dir>/oracle.json, tuner0.json     keras-tuner's state (written atomically here)
    <dir>/trial_03/trial.json          keras-tuner's record of trial 03 (values, metrics, status)
    <dir>/trial_03/trial_03_s0/        the training run of seed 0: config.json, evaluations.csv, tb/, ...
    <dir>/trial_03/trial_03_s0.json    its evaluation returns, once finished (a restart reuses them)
    <dir>/tb_search/                   TensorBoard's hparams view: the searched settings and the metrics
    <dir>/trials.csv, best_config.py   written when the search ends

Objective (maddpg_tf/FIDELITY.md: Table 1 aggregation; Table 1's aggregation over a trial's seeds): `average` is the mean of every
evaluation's mean return over all seeds and evaluations; `max` is the highest seed-mean evaluation return.
Both are reported to the oracle (`average_return`, `max_return`, and `final_return`); one is optimised.

Resuming: keras-tuner reloads the oracle (`overwrite=False`); a trial that was running is run again, and its
training runs resume from their last checkpoints. `ResumableBayesianOracle` gives such a trial back to the
tuner id that was running it when that tuner asks again (a restarted worker, or the single process), and to
another tuner only when no new trials are left; a file lock per training run keeps two processes from
training the same run at once, and a run that finished is not trained again.

Lost workers (chief/worker mode with a `trial_timeout`): a worker sends the chief a heartbeat every
`trial_timeout / 10` seconds while it runs a trial. A trial not heard of for `trial_timeout` seconds was
lost with its worker: the chief puts it back on the queue and the next worker that asks resumes it (its
training runs resume from their checkpoints, their locks died with the lost process); a trial lost
`MAX_LOSSES_PER_TRIAL` times is ended as FAILED, naming the timeout. Workers with nothing left to start
wait (IDLE) while other workers' trials run, so that a lost trial always finds a worker, and leave when
every trial has ended. A restarted chief takes a running trial back into its books at that trial's first
heartbeat.
"""

import contextlib
import copy
import csv
import json
import math
import os
import re
import threading
import time
import warnings

import grpc
import keras_tuner
import numpy as np
from keras_tuner.src import config as keras_tuner_config
from keras_tuner.src import protos
from keras_tuner.src.engine import trial as trial_module

from maddpg_tf import config as config_lib, files
from maddpg_tf.run import locking, loggers

OBJECTIVES = {"average": "average_return", "max": "max_return"}
METRICS = ("average_return", "max_return", "final_return")
FINISHED = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED)
# A trial whose worker is lost this many times is ended as FAILED (it may be what kills its workers).
MAX_LOSSES_PER_TRIAL = 3


class SearchError(Exception):
  """A problem the user must fix; one line naming the value."""


class SearchInterrupted(keras_tuner.errors.FatalError):
  """SIGINT/SIGTERM stopped a trial's training run (after its checkpoint); `signum` says which."""

  def __init__(self, signum, message):
    super().__init__(message)
    self.signum = signum


# ---- small pure helpers --------------------------------------------------------------------------------

def declare_hyperparameters(space):
  """`spaces.resolve(...)`'s space as keras-tuner `HyperParameters` (declared up front)."""
  hp = keras_tuner.HyperParameters()
  for name, spec in space.items():
    if spec["kind"] == "choice":
      hp.Choice(name, list(spec["choices"]), ordered=all(isinstance(v, (int, float)) for v in spec["choices"]))
    elif spec["kind"] == "int":
      hp.Int(name, spec["min"], spec["max"], sampling=spec["sampling"])
    else:
      hp.Float(name, spec["min"], spec["max"], sampling=spec["sampling"])
  return hp


def apply_hyperparameters(config, values):
  """A copy of `config` with each searched value set: `config.estimator.<name> = value` for the config's
  estimator fields, and for a user estimator's own parameters an item `name=value` of
  `config.estimator.options` (merged with the items there, the searched value replacing one of its name)."""
  config = copy.deepcopy(config)
  options = config_lib.parse_options(config.estimator.get("options", ""))
  own, shadowed = {}, []
  for name, value in values.items():
    if name in config_lib.ESTIMATOR_FIELDS:
      config.estimator[name] = int(value) if name == "num_samples" else float(value)
      if name in options:  # it would override the field (`config_lib.estimator_params`)
        shadowed.append(name)
    else:
      own[name] = value.item() if isinstance(value, np.generic) else value
  if own or shadowed:
    merged = {key: value for key, value in options.items() if key not in shadowed}
    merged.update(own)
    config.estimator.options = ",".join(f"{key}={value!r}" for key, value in merged.items())
  return config


def objectives(curves):
  """Per-seed lists of evaluation mean returns -> {average_return, max_return, final_return}.

  average: mean of all values of all seeds (Table 1's average return); max: the highest mean over seeds
  at one evaluation (Table 1's maximum return); final: the seed-mean at the last evaluation.
  """
  length = min((len(curve) for curve in curves), default=0)
  if length == 0:
    return {name: math.nan for name in METRICS}
  stacked = np.array([curve[:length] for curve in curves], np.float64)   # [seeds, evaluations]
  seed_mean = stacked.mean(axis=0)
  return {"average_return": float(stacked.mean()), "max_return": float(seed_mean.max()),
          "final_return": float(seed_mean[-1])}


def run_name(trial_id, seed):
  """Unique per trial and seed: it is the TensorBoard hparams session name of the run."""
  return f"trial_{trial_id}_s{seed}"


def check_config(config, space):
  """RunError unless the training `config` works as given and at a corner of `space`, before any trial."""
  from maddpg_tf.run import experiment  # TensorFlow only where training happens
  corner = {name: spec["choices"][0] if spec["kind"] == "choice" else spec["min"] for name, spec in space.items()}
  experiment.resolve_config(config)
  experiment.resolve_config(apply_hyperparameters(config, corner))


def train_and_evaluate(config, workdir, progress=True):
  """The real trial: trains (or resumes) one MADDPG run in `workdir`; returns its evaluation returns."""
  from maddpg_tf.run import experiment  # TensorFlow only where training happens
  try:
    with experiment.Experiment(config, workdir, progress=progress) as run:
      run.run()
  except experiment.Interrupted as interrupt:
    raise SearchInterrupted(interrupt.signum, str(interrupt)) from None
  except experiment.RunError as error:
    raise keras_tuner.errors.FailedTrialError(str(error)) from None
  evaluations = loggers.read_evaluations_csv(os.path.join(workdir, "evaluations.csv"))
  returns = [mean for _, mean in evaluations]
  # The run's own objective values, so that TensorBoard's hparams view can sort runs by them.
  values = objectives([returns])
  board = loggers.TensorBoardLogger(logdir=os.path.join(workdir, "tb"))
  board.write({f"search/{name}": value for name, value in values.items()},
              evaluations[-1][0] if evaluations else 0)
  board.close()
  return returns


def _run_lock(path, log):
  """One worker at a time trains a trial's run (`locking.hold`): another waits for it (a reassigned trial
  whose first worker is still finishing), saying so once."""
  if locking.holder(path) is not None:
    log(f"  waiting: another process is training {os.path.basename(path)[:-len('.lock')]}")
  return locking.hold(path, f"the search run {os.path.basename(path)[:-len('.lock')]}", wait_seconds=math.inf,
                      poll_seconds=1.0)


def format_values(values):
  return ", ".join(f"{name}={_format_number(value)}" for name, value in values.items()) or "(no values)"


def _format_number(value):
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value)


def _duration(seconds):
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


# ---- the oracle ----------------------------------------------------------------------------------------

class ResumableBayesianOracle(keras_tuner.oracles.BayesianOptimizationOracle):
  """keras-tuner's Bayesian oracle with atomic state files and resume that hands a trial that was running
  back to the tuner that ran it (see the module docstring). `log` (a print-like callable or None) announces
  trials; the chief of a distributed search sets it."""

  def __init__(self, *args, log=None, trial_timeout=None, clock=time.monotonic, **kwargs):
    if trial_timeout is not None and not trial_timeout > 0:
      raise SearchError(f"trial_timeout must be a number of seconds > 0 or None, got {trial_timeout!r}")
    super().__init__(*args, **kwargs)
    self.log = log
    self.trial_timeout = trial_timeout
    self._clock = clock
    self._orphan_owners = {}  # trial id -> tuner id that was running it when the oracle was saved
    self._heard = {}   # trial id -> clock reading of the last sign of life from its worker
    self._losses = {}  # trial id -> how many times its worker was lost

  # Atomic writes: a kill during a save leaves the previous file, never half of one.
  def save(self):
    files.write_json(self._get_oracle_fname(), self.get_state())

  def _save_trial(self, trial):
    files.write_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state())

  def get_state(self):
    state = super().get_state()
    state["orphan_owners"] = dict(self._orphan_owners)
    state["losses"] = dict(self._losses)
    return state

  def set_state(self, state):
    # Called when a restarted search reloads: the trials that were running are orphans now (keras-tuner's
    # `reload` puts them on the retry queue); remember which tuner ran each.
    super().set_state(state)
    self._losses = dict(state.get("losses", {}))
    self._orphan_owners = dict(state.get("orphan_owners", {}))
    self._orphan_owners.update({trial_id: tuner_id for tuner_id, trial_id in state["ongoing_trials"].items()})

  def _vectorize_trials(self):
    # keras-tuner's version gives a running trial that is not in `ongoing_trials` (one a restarted chief
    # keeps on the retry queue while a worker may still be finishing it) the previous trial's score, or
    # fails on the first; leave such trials out of the Gaussian process's data until they end.
    every = self.trials
    ongoing = set(self.ongoing_trials.values())
    self.trials = {trial_id: trial for trial_id, trial in every.items()
                   if trial in ongoing or trial.status != trial_module.TrialStatus.RUNNING}
    try:
      return super()._vectorize_trials()
    finally:
      self.trials = every

  # ---- lost workers -------------------------------------------------------------------------------

  @keras_tuner.synchronized
  def update_trial(self, trial_id, metrics, step=0):
    if metrics:
      self._heard[trial_id] = self._clock()
      return super().update_trial(trial_id, metrics, step=step)
    # No metrics: a worker's heartbeat. (keras-tuner's own version would refuse it: no objective value.)
    trial = self.trials.get(trial_id)
    if trial is None:
      return trial_module.Trial(self.hyperparameters.copy(), trial_id=trial_id,
                                status=trial_module.TrialStatus.STOPPED)
    self._heard[trial_id] = self._clock()
    owner = self._orphan_owners.get(trial_id)
    if (trial.status == trial_module.TrialStatus.RUNNING and trial_id in self._retry_queue
        and owner is not None and owner not in self.ongoing_trials):
      # A restarted chief hears from the tuner that still runs this trial: its trial again, not a new one's.
      self._retry_queue.remove(trial_id)
      self._orphan_owners.pop(trial_id)
      self.ongoing_trials[owner] = trial
      self.tuner_ids.add(owner)
      self.save()
      if self.log:
        self.log(f"trial {trial_id}: {owner} is still running it")
    return trial

  @keras_tuner.synchronized
  def reap_lost_trials(self):
    """Trials whose worker has not been heard of for `trial_timeout` seconds go back on the queue (or end
    as FAILED after MAX_LOSSES_PER_TRIAL losses); their tuners are forgotten. Returns their ids."""
    if self.trial_timeout is None:
      return []
    now, lost = self._clock(), []
    for tuner_id, trial in list(self.ongoing_trials.items()):
      silent = now - self._heard.setdefault(trial.trial_id, now)
      if silent < self.trial_timeout:
        continue
      lost.append(trial.trial_id)
      self.ongoing_trials.pop(tuner_id)
      self.tuner_ids.discard(tuner_id)
      self._heard.pop(trial.trial_id, None)
      losses = self._losses[trial.trial_id] = self._losses.get(trial.trial_id, 0) + 1
      why = f"{tuner_id} lost: no heartbeat for {silent:.0f} s (trial_timeout {self.trial_timeout:g} s)"
      if losses >= MAX_LOSSES_PER_TRIAL:
        trial.status = trial_module.TrialStatus.FAILED
        trial.message = f"{why}; its worker was lost {losses} times, so it is ended as failed"
        self.end_order.append(trial.trial_id)
        self._save_trial(trial)
      else:
        self._retry_queue.append(trial.trial_id)  # status stays RUNNING: resumed, not restarted
      if self.log:
        self.log(f"trial {trial.trial_id}: {why}; "
                 + ("ended as FAILED" if losses >= MAX_LOSSES_PER_TRIAL else "another worker resumes it"))
    if lost:
      self.save()
    return lost

  @keras_tuner.synchronized
  def create_trial(self, tuner_id):
    trial = self._create_trial(tuner_id)
    if trial.status == trial_module.TrialStatus.RUNNING:
      self._heard[trial.trial_id] = self._clock()
    elif (trial.status == trial_module.TrialStatus.STOPPED and self.trial_timeout is not None
          and any(other != tuner_id for other in self.ongoing_trials)):
      # Nothing new to start, but another worker's trial may yet be lost: wait to take it over.
      trial.status = trial_module.TrialStatus.IDLE
      self.tuner_ids.add(tuner_id)
    return trial

  def _create_trial(self, tuner_id):
    self.reap_lost_trials()
    if tuner_id in self.ongoing_trials:
      return super().create_trial(tuner_id)
    # Trials finished by a tuner that outlived a chief restart need no second run.
    self._retry_queue = [t for t in self._retry_queue if self.trials[t].status not in FINISHED]
    mine = [t for t in self._retry_queue if self._orphan_owners.get(t) == tuner_id]
    others = [t for t in self._retry_queue if t in self._orphan_owners and t not in mine]
    plain = [t for t in self._retry_queue if t not in self._orphan_owners]
    new_left = self.max_trials is None or len(self.trials) < self.max_trials
    if mine:  # keras-tuner pops the queue's last entry
      self._retry_queue = others + plain + mine
      trial = super().create_trial(tuner_id)
    elif plain or not others or not new_left:
      self._retry_queue = others + plain
      trial = super().create_trial(tuner_id)
    else:  # only other tuners' interrupted trials: start a new trial first, they may still come back
      self._retry_queue = []
      trial = super().create_trial(tuner_id)
      self._retry_queue = others + self._retry_queue
      if trial.status == trial_module.TrialStatus.STOPPED:
        trial = super().create_trial(tuner_id)
    if trial.status == trial_module.TrialStatus.RUNNING:
      self._orphan_owners.pop(trial.trial_id, None)
      self.save()
      if self.log:
        self.log(f"trial {trial.trial_id} -> {tuner_id}: {format_values(trial.hyperparameters.values)}")
    return trial

  @keras_tuner.synchronized
  def end_trial(self, trial):
    known = self.trials.get(trial.trial_id)
    if known is not None and known.status in FINISHED and trial.trial_id in self.end_order:
      # A second report of a finished trial (its first tuner outlived a chief restart): keep the first.
      for tuner_id, ongoing in list(self.ongoing_trials.items()):
        if ongoing.trial_id == trial.trial_id:
          self.ongoing_trials.pop(tuner_id)
      self.save()
      return
    super().end_trial(trial)
    self._orphan_owners.pop(trial.trial_id, None)
    self._heard.pop(trial.trial_id, None)
    if self.log:
      ended = self.trials[trial.trial_id]
      score = "" if ended.score is None else f": {self.objective.name} {ended.score:.4g}"
      self.log(f"trial {trial.trial_id} {ended.status}{score}")


class _PatientStub:
  """A worker's gRPC stub to the chief that retries calls the chief could not answer (UNAVAILABLE: it was
  killed, or is starting again) for up to `patience` seconds, as keras-tuner waits for a chief at start.
  A repeated call is harmless: the restarted chief hands a trial it had already given to this tuner back
  to it, and ignores a second report of a finished trial."""

  def __init__(self, stub, log, patience=3600.0, reconnect=None):
    self._stub, self._log, self._patience, self._reconnect = stub, log, patience, reconnect

  def __getattr__(self, name):

    def call(*args, **kwargs):
      deadline, warned = time.time() + self._patience, False
      while True:
        try:
          return getattr(self._stub, name)(*args, **kwargs)
        except grpc.RpcError as error:
          if error.code() != grpc.StatusCode.UNAVAILABLE or time.time() > deadline:
            raise
          if not warned:
            self._log(f"lost the chief ({error.details()}); retrying {name} until it is back")
            warned = True
          time.sleep(1.0)
          if self._reconnect is not None:
            # A fresh channel: a broken one reconnects only after gRPC's backoff (up to two minutes), by
            # which time a restarted chief may have finished the search without this worker.
            self._stub = self._reconnect()
    return call


def _oracle_stub():
  """A stub to the chief at KERASTUNER_ORACLE_IP:PORT on a new channel that retries connecting every second."""
  address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
  channel = grpc.insecure_channel(address, options=[("grpc.initial_reconnect_backoff_ms", 500),
                                                    ("grpc.max_reconnect_backoff_ms", 1000)])
  return protos.get_service_grpc().OracleStub(channel)


# ---- the tuner -----------------------------------------------------------------------------------------

class EstimatorSearch(keras_tuner.Tuner):
  """Searches `space` (from `spaces.resolve`) around the training `config`; results in `directory`.

  Each trial trains `seeds_per_trial` runs (seeds config.seed, config.seed + 1, ...) with `trial_fn(config,
  workdir) -> [evaluation mean returns]` (default: `train_and_evaluate`, real MADDPG training) and reports
  `objectives(...)`; `objective` ("average" or "max") picks the one the oracle maximises.
  `trial_timeout` (seconds, chief/worker mode): a worker's trial not heard of for that long goes to another
  worker (see the module docstring); None: a chief waits for a lost worker forever.
  """

  def __init__(self, config, space, directory, *, objective="average", seeds_per_trial=1, max_trials=20,
               num_initial_points=None, search_seed=1, trial_fn=None, progress=True, log=print,
               announce_trials=False, trial_timeout=None):
    if objective not in OBJECTIVES:
      raise SearchError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    directory = os.path.abspath(directory)
    self.base_config = config
    self.space = space
    self.seeds_per_trial = int(seeds_per_trial)
    self.objective_name = OBJECTIVES[objective]
    self.trial_fn = trial_fn or (lambda c, workdir: train_and_evaluate(c, workdir, progress=progress))
    self.log = log or (lambda text: None)
    self._started, self._metrics = {}, {}
    oracle = ResumableBayesianOracle(
        objective=keras_tuner.Objective(self.objective_name, "max"), max_trials=max_trials,
        num_initial_points=num_initial_points, seed=search_seed,
        hyperparameters=declare_hyperparameters(space), tune_new_entries=False, allow_new_entries=False,
        log=self.log if announce_trials else None, trial_timeout=trial_timeout)
    self.trial_timeout = trial_timeout
    # Ten heartbeats per timeout: a busy machine may delay a few without its trial being taken away.
    self.heartbeat_seconds = None if trial_timeout is None else trial_timeout / 10
    super().__init__(oracle=oracle, directory=os.path.dirname(directory),
                     project_name=os.path.basename(directory), overwrite=False)
    if self._is_worker():  # keras-tuner's OracleClient: ride out a chief that is restarting
      # Our own channel from the start: keras-tuner's waits up to gRPC's default two-minute backoff
      # before it tries a restarted chief again.
      self.oracle.stub = _PatientStub(_oracle_stub(), self.log, reconnect=_oracle_stub)
      if trial_timeout is not None:
        self.oracle.create_trial = self._patient_create_trial(self.oracle.create_trial)

  def _patient_create_trial(self, create_trial):
    # keras-tuner asks again at once after IDLE; a worker waiting for other workers' trials asks every
    # heartbeat (at most every 2 s).
    def create(tuner_id):
      trial = create_trial(tuner_id)
      if trial.status == trial_module.TrialStatus.IDLE:
        time.sleep(min(2.0, self.heartbeat_seconds))
      return trial
    return create

  @contextlib.contextmanager
  def _heartbeat(self, trial_id):
    """While a worker runs trial `trial_id`: a thread telling the chief every `heartbeat_seconds`."""
    if not (self._is_worker() and self.trial_timeout is not None):
      yield
      return
    stop = threading.Event()

    def beat():
      warned = False
      while not stop.wait(self.heartbeat_seconds):
        try:
          self.oracle.update_trial(trial_id, {}, step=0)
        except Exception as error:  # pylint: disable=broad-except  (the trial goes on; the chief may be back)
          if not warned:
            self.log(f"heartbeat of trial {trial_id} failed ({type(error).__name__}); still trying")
            warned = True

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
      yield
    finally:
      stop.set()
      thread.join(timeout=5.0)

  def _reaper(self):
    """The chief's thread that ends lost workers' hold on their trials between requests."""
    stop = threading.Event()

    def reap():
      while not stop.wait(self.heartbeat_seconds):
        self.oracle.reap_lost_trials()

    thread = threading.Thread(target=reap, name="reap-lost-trials", daemon=True)
    thread.start()
    return stop

  def save(self):
    if not self._is_worker():
      self.oracle.save()
    files.write_json(self._get_tuner_fname(), self.get_state())

  def write_tensorboard_experiment(self):
    """TensorBoard's hparams view: the searched settings (as each run's hparams name them) and the metrics
    to show, written once to the search directory (`tensorboard --logdir <dir>`)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api
    hparams = []
    for name, spec in self.space.items():
      domain = (hparams_api.Discrete([float(v) for v in spec["choices"]]) if spec["kind"] == "choice"
                else hparams_api.RealInterval(float(spec["min"]), float(spec["max"])))
      hparams.append(hparams_api.HParam(f"estimator.{name}", domain))
    hparams.append(hparams_api.HParam("seed"))
    metrics = [hparams_api.Metric(f"search/{name}", display_name=name) for name in METRICS]
    metrics.append(hparams_api.Metric("eval/mean_return", display_name="last evaluation return"))
    writer = tf.summary.create_file_writer(os.path.join(self.project_dir, "tb_search"))
    with writer.as_default():
      hparams_api.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()

  def search(self):
    if not self._is_worker() and not os.path.isdir(os.path.join(self.project_dir, "tb_search")):
      self.write_tensorboard_experiment()
    debug, keras_tuner_config.DEBUG = keras_tuner_config.DEBUG, False  # on_trial_end reports failures
    chief = not self._is_worker() and "KERASTUNER_ORACLE_IP" in os.environ
    reaper = self._reaper() if chief and self.trial_timeout is not None else None
    try:
      with warnings.catch_warnings():
        # The Gaussian process's fit warns when a length scale reaches its bound (e.g. flat objectives).
        warnings.filterwarnings("ignore", module="sklearn.gaussian_process")
        super().search(verbose=0)  # our own lines replace keras-tuner's display
    finally:
      keras_tuner_config.DEBUG = debug
      if reaper is not None:
        reaper.set()

  def run_trial(self, trial, *args, **kwargs):
    with self._heartbeat(trial.trial_id):
      return self._run_trial(trial)

  def _run_trial(self, trial):
    values = trial.hyperparameters.values
    config = apply_hyperparameters(self.base_config, values)
    trial_dir = self.get_trial_dir(trial.trial_id)
    curves = []
    for offset in range(self.seeds_per_trial):
      seeded = copy.deepcopy(config)
      seeded.seed = int(config.seed) + offset
      name = run_name(trial.trial_id, seeded.seed)
      result_path = os.path.join(trial_dir, f"{name}.json")
      with _run_lock(os.path.join(trial_dir, f"{name}.lock"), self.log):
        if os.path.isfile(result_path):
          with open(result_path) as handle:
            returns = json.load(handle)["returns"]
        else:
          returns = [float(r) for r in self.trial_fn(seeded, os.path.join(trial_dir, name))]
          files.write_json(result_path, {"seed": seeded.seed, "values": values, "returns": returns})
      curves.append(returns)
    metrics = objectives(curves)
    if not math.isfinite(metrics[self.objective_name]):
      raise keras_tuner.errors.FailedTrialError(f"trial {trial.trial_id}: no evaluations to score")
    self._metrics[trial.trial_id] = metrics  # a worker's trial object does not see the oracle's copy
    return metrics

  def on_trial_begin(self, trial):
    self._started[trial.trial_id] = time.time()
    seeds = self.base_config.seed + np.arange(self.seeds_per_trial)
    self.log(f"trial {trial.trial_id}: {format_values(trial.hyperparameters.values)} "
             f"(seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})")

  def on_trial_end(self, trial):
    super().on_trial_end(trial)
    elapsed = _duration(time.time() - self._started.pop(trial.trial_id, time.time()))
    metrics = self._metrics.pop(trial.trial_id, None)
    if trial.status == trial_module.TrialStatus.COMPLETED and metrics:
      self.log(f"trial {trial.trial_id}: {self.objective_name} {metrics[self.objective_name]:.4g} "
               f"({', '.join(f'{k} {v:.4g}' for k, v in metrics.items() if k != self.objective_name)}) "
               f"in {elapsed}")
    elif "FailedTrialError" in (trial.message or ""):  # a training run that stopped (NaN, bad checkpoint)
      self.log(f"trial {trial.trial_id}: {trial.status}: {last_line(trial.message)}")
    else:  # anything else is unexpected: show where it came from
      self.log(f"trial {trial.trial_id}: {trial.status}:\n{(trial.message or '').rstrip()}")


def last_line(message):
  """The last line of an error message or traceback, without its exception class."""
  lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
  line = lines[-1] if lines else ""
  return re.sub(r"^[\w.]+(Error|Exception|Interrupt): ", "", line)


# ---- results -------------------------------------------------------------------------------------------

def trial_rows(oracle):
  """One dict per trial, in id order: trial, status, the metrics, then the hyperparameter values."""
  rows = []
  names = [hp.name for hp in oracle.hyperparameters.space]
  for trial_id in sorted(oracle.trials, key=lambda t: (len(t), t)):  # "2" before "10"
    trial = oracle.trials[trial_id]
    row = {"trial": trial_id, "status": trial.status}
    for metric in METRICS:
      row[metric] = trial.metrics.get_last_value(metric) if trial.metrics.exists(metric) else None
    for name in names:
      row[name] = trial.hyperparameters.values.get(name)
    if trial.status not in (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.RUNNING):
      row["note"] = last_line(trial.message)
    rows.append(row)
  return rows


def best_trial(oracle):
  """The completed trial with the highest objective, or None."""
  completed = [t for t in oracle.trials.values()
               if t.status == trial_module.TrialStatus.COMPLETED and t.score is not None
               and math.isfinite(t.score)]
  return max(completed, key=lambda t: (t.score, -int(t.trial_id))) if completed else None


def format_table(oracle, objective_name):
  """The trial table as text: trial id, status, objective (and the other metrics), hyperparameters."""
  rows = trial_rows(oracle)
  names = [hp.name for hp in oracle.hyperparameters.space]
  header = ["trial", "status", objective_name] + [m for m in METRICS if m != objective_name] + names
  cells = [["-" if row[column] is None else _format_number(row[column]) for column in header] for row in rows]
  widths = [max([len(name)] + [len(line[i]) for line in cells]) for i, name in enumerate(header)]
  text = ["  ".join(name.ljust(width) for name, width in zip(header, widths)).rstrip()]
  for row, line in zip(rows, cells):
    text.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                + (f"  ({row['note']})" if row.get("note") else ""))
  return "\n".join(text)


def write_trials_csv(path, oracle):
  rows = trial_rows(oracle)
  columns = ["trial", "status", *METRICS, *[hp.name for hp in oracle.hyperparameters.space], "note"]
  with files.replacing(path) as temporary, open(temporary, "w", newline="") as handle:
    writer = csv.DictWriter(handle, columns)
    writer.writeheader()
    for row in rows:
      writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})


_BEST_CONFIG = '''"""The best estimator settings found by maddpg-search in {directory}.

Trial {trial_id} of {trials}: {objective} {score:.6g} ({seeds}); {values}.
Train with them (other --config.* overrides still apply, e.g. a longer --config.total_steps):

    maddpg-train --config={path} --workdir=runs/{label}-best
"""

import importlib
import importlib.util

BASE = {base!r}  # the search's --config file ("module:" for one of our config modules)
BASE_ARG = {base_arg!r}
OVERRIDES = {overrides}  # the search's --config.* overrides
BEST = {best}


def _base_module():
  if BASE.startswith("module:"):
    return importlib.import_module(BASE[len("module:"):])
  spec = importlib.util.spec_from_file_location("maddpg_search_base_config", BASE)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg=None):
  config = _base_module().get_config(BASE_ARG or None)
  for key, value in {{**OVERRIDES, **BEST}}.items():
    *parents, leaf = key.split(".")
    target = config
    for parent in parents:
      target = target[parent]
    target[leaf] = value
  return config
'''


def config_source(config_file, overrides=None):
  """How best_config.py finds the base config: a module of this package (its own config file), else the
  file's absolute path."""
  path, _, arg = config_file.partition(":")
  path = os.path.abspath(path)
  library = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # maddpg_tf/, whose config.py
  if os.path.dirname(path) == library and path.endswith(".py"):
    base = "module:maddpg_tf." + os.path.basename(path)[:-3]
  else:
    base = path
  return {"base": base, "base_arg": arg, "overrides": dict(overrides or {})}


def _literal_dict(values):
  if not values:
    return "{}"
  return "{\n" + "".join(f"    {key!r}: {value!r},\n" for key, value in sorted(values.items())) + "}"


def write_best_config(path, tuner, source):
  """Writes `best_config.py` (see `_BEST_CONFIG`) for the best completed trial; returns it or None."""
  oracle = tuner.oracle
  best = best_trial(oracle)
  if best is None:
    return None
  # The best trial's config as the trial ran it: the fields searched, and the options with its own parameters.
  trial_config = apply_hyperparameters(tuner.base_config, best.hyperparameters.values)
  values = {f"estimator.{name}": trial_config.estimator[name] for name in best.hyperparameters.values
            if name in config_lib.ESTIMATOR_FIELDS}
  if trial_config.estimator.get("options", "") != tuner.base_config.estimator.get("options", ""):
    values["estimator.options"] = trial_config.estimator.options
  seeds = tuner.base_config.seed + np.arange(tuner.seeds_per_trial)
  text = _BEST_CONFIG.format(
      directory=os.path.dirname(os.path.abspath(path)), trial_id=best.trial_id, trials=len(oracle.trials),
      objective=tuner.objective_name, score=best.score,
      seeds=f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}",
      values=format_values(best.hyperparameters.values), path=path, label=tuner.base_config.estimator.label,
      base=source["base"], base_arg=source["base_arg"], overrides=_literal_dict(source["overrides"]),
      best=_literal_dict(values))
  files.write_text(path, text)
  return best


# ---- the search directory ------------------------------------------------------------------------------

def identity(config, space, objective, seeds_per_trial, num_initial_points, search_seed):
  """What makes a search the same search (max_trials may grow on a restart)."""
  content = {"config": config.to_dict(), "space": space, "objective": objective,
             "seeds_per_trial": int(seeds_per_trial), "num_initial_points": num_initial_points,
             "search_seed": search_seed}
  return json.loads(json.dumps(content, sort_keys=True, default=str))


def check_directory(directory, content):
  """Refuses (SearchError) a --dir that is a file, holds something else, or holds a different search;
  reads only."""
  record = _check_place(directory)
  if os.path.isfile(record):
    _compare_record(directory, record, content)


def _check_place(directory):
  """The path of `directory`'s search.json; SearchError if `directory` is a file or holds something else."""
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise SearchError(f"--dir {directory} is a file, not a directory")
  record = os.path.join(directory, "search.json")
  if os.path.isdir(directory) and set(os.listdir(directory)) - {"search.lock"} and not os.path.isfile(record):
    raise SearchError(f"--dir {directory} exists and holds no maddpg-search search (no search.json); "
                      f"choose a new or empty directory")
  return record


def _compare_record(directory, record, content):
  try:
    with open(record) as handle:
      existing = json.load(handle)
  except (OSError, ValueError) as error:
    raise SearchError(f"--dir {directory}: search.json is unreadable ({error})") from None
  differences = config_lib.differences(existing, content)
  if differences:
    raise SearchError(f"--dir {directory} holds a different search ({'; '.join(differences[:3])}); "
                      f"use a new --dir, or the same command to continue it")


def prepare_directory(directory, content):
  """Refuses a --dir that is a file, holds something else, or holds a different search; records `content`
  in <dir>/search.json (the first process of a search writes it, every later one compares)."""
  record = _check_place(directory)
  try:
    os.makedirs(directory, exist_ok=True)
  except OSError as error:
    raise SearchError(f"--dir {directory}: cannot create it ({error.strerror})") from None
  temporary = f"{record}.tmp{os.getpid()}"
  with open(temporary, "w") as handle:
    json.dump(content, handle, indent=1, sort_keys=True)
  try:
    os.link(temporary, record)  # atomic, and fails if another process wrote it first
    return
  except FileExistsError:
    pass
  finally:
    os.remove(temporary)
  _compare_record(directory, record, content)


# ---- what a process says -------------------------------------------------------------------------------

def announce(tuner, mode, tuner_id, directory, max_trials, trial_timeout, log):
  """What this process is about to do: serve the oracle, work for a chief, or continue a search."""
  if mode == "chief":
    log(f"chief: serving the oracle at {os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
        f" for up to {max_trials} trials; workers run the same command with KERASTUNER_TUNER_ID=tuner0, "
        f"tuner1, ...; a trial silent for {trial_timeout:g} s goes to another worker")
  elif mode == "worker":
    log(f"{tuner_id}: asking the chief at {os.environ['KERASTUNER_ORACLE_IP']}:"
        f"{os.environ['KERASTUNER_ORACLE_PORT']} for trials")
  elif tuner.oracle.trials:
    done = sum(t.status in FINISHED for t in tuner.oracle.trials.values())
    log(f"continuing the search in {directory}: {done} of {max_trials} trials finished")


def report(tuner, directory, source, log):
  """The ended search's trial table, `trials.csv` and `best_config.py` (for `config_source`'s `source`)."""
  log(format_table(tuner.oracle, tuner.objective_name))
  write_trials_csv(os.path.join(directory, "trials.csv"), tuner.oracle)
  path = os.path.join(directory, "best_config.py")
  best = write_best_config(path, tuner, source)
  if best is None:
    log(f"no trial completed; nothing written to {path}")
    return
  log(f"best: trial {best.trial_id}, {tuner.objective_name} {best.score:.4g}: "
      f"{format_values(best.hyperparameters.values)}")
  log(f"written: {path} (maddpg-train --config={path}), {os.path.join(directory, 'trials.csv')}; "
      f"TensorBoard: tensorboard --logdir {directory}")
