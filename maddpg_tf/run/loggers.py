"""Where metrics go, behind one protocol: `write(values, step)`, `flush()`, `close()`.

* `TensorBoardLogger`: scalars (a per-agent vector [N] becomes `name/agent_i` plus its mean as `name`),
  hparams; its event files rewind with the run's checkpoints.
* `ProgressBar`: the terminal (a tqdm bar of env steps; evaluations on its postfix).
* `Dispatcher`: one write fanned out to several loggers.
* `WandbLogger`, `MlflowLogger` (`config.log.to`): the same scalars as TensorBoard, the run's config and
  provenance, and its evaluations.csv at the end, in one W&B / MLflow run per workdir that a resume
  continues (`<workdir>/wandb_run.json`, `mlflow_run.json`: its id and the last env step logged).
The CSV of evaluations has its own writer (`write_evaluations_csv`): it holds whole evaluations.

TensorFlow is imported only by `TensorBoardLogger`, wandb and mlflow only by their loggers: the CSV and
event-file helpers serve programs that do not otherwise need them (`maddpg-reproduce`'s driver, tables and
plots).
"""

import csv
import glob
import json
import os
import shutil
import threading
import time
import uuid
from typing import Protocol

import numpy as np
from tqdm import tqdm

from maddpg_tf import config as config_lib
from maddpg_tf import extras, files
from maddpg_tf.media import video
from maddpg_tf.run.errors import RunError

# log.to name -> (the module it imports, the extra of `pip install "maddpg-tf[<extra>]"` that installs it).
# The loggers that need an extra (maddpg_tf/extras.py), by their name in `log.to`: the extra's name.
OPTIONAL_LOGGERS = {"wandb": "wandb", "mlflow": "mlflow"}


class Logger(Protocol):
  def write(self, values, step): ...

  def flush(self): ...

  def close(self): ...


class Dispatcher:
  """Writes to every logger of `loggers`, in order."""

  def __init__(self, loggers):
    self.loggers = list(loggers)

  def write(self, values, step):
    for logger in self.loggers:
      logger.write(values, step)

  def flush(self):
    for logger in self.loggers:
      logger.flush()

  def close(self):
    for logger in self.loggers:
      logger.close()


class TensorBoardLogger:
  """Scalars in `logdir`. The event file is opened at the first write, so that a resumed run can first
  rewind `logdir` to its checkpoint (`restore`): what was logged after it is logged again by the resume."""

  def __init__(self, *, logdir, superseded_dir=None):
    self.logdir = logdir
    self.superseded_dir = superseded_dir or logdir + "_superseded"
    self._writer = None

  def _file_writer(self):
    if self._writer is None:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      self._summary = tf.summary
      self._writer = tf.summary.create_file_writer(self.logdir)
    return self._writer

  def write(self, values, step):
    with self._file_writer().as_default(step=int(step)):
      for name, value in scalars(values).items():
        self._summary.scalar(name, value)

  def write_hparams(self, hparams, run_name):
    from tensorboard.plugins.hparams import api as hparams_api  # imported only when used
    with self._file_writer().as_default():
      hparams_api.hparams(hparams, trial_id=run_name)

  def write_frames(self, name, frames, step, max_frames):
    """An episode's frames ([T] uint8 [H, W, 3]) as an animated image at `step` (`maddpg_tf.media.video`)."""
    with self._file_writer().as_default():
      video.tensorboard_video_summary(name, frames, int(step), max_frames=max_frames)

  def flush(self):
    if self._writer is not None:
      self._writer.flush()

  def close(self):
    if self._writer is not None:
      self._writer.close()

  def save(self):
    """What the event files hold now (flushed), for a resume to rewind to."""
    self.flush()
    return {"tensorboard_files": event_file_sizes(self.logdir)}

  def restore(self, state):
    """Rewinds the event files to `save()`'s sizes (originals kept under `superseded_dir`)."""
    if state.get("tensorboard_files") is not None and self._writer is None:
      rewind_event_files(self.logdir, state["tensorboard_files"], self.superseded_dir)


def scalars(values, agent_separator="/"):
  """{name: float} of what every logger shows: a scalar as itself, a per-agent vector [N] as its mean under
  `name` and each agent's value under `name/agent_<i>` (with `agent_separator` instead of the slash)."""
  out = {}
  for name, value in values.items():
    value = np.asarray(value, np.float64)
    if value.ndim == 0:
      out[name] = float(value)
    else:
      out[name] = float(value.mean())
      for agent, agent_value in enumerate(value.reshape(-1)):
        out[f"{name}{agent_separator}agent_{agent}"] = float(agent_value)
  return out


def check_packages(config):
  """RunError (one line naming the extra to install) if a logger of `config.log.to` lacks its package;
  looked up without importing it, so a run can refuse before it writes anything."""
  for name in config_lib.log_targets(config):
    if name in OPTIONAL_LOGGERS:
      try:
        extras.require(OPTIONAL_LOGGERS[name])
      except extras.MissingExtra as missing:
        raise RunError(f"log.to names {name}, but {missing}") from None


def external_loggers(config, workdir, provenance_record):
  """The W&B / MLflow loggers `config.log.to` names, each with its run started (or resumed) and the run's
  config and provenance recorded. RunError (one line) if one cannot start, e.g. W&B online without a login."""
  check_packages(config)
  started = []
  try:
    for name in config_lib.log_targets(config):
      if name == "wandb":
        started.append(WandbLogger(workdir.path, config.to_dict(), provenance_record, config.log.wandb,
                                   workdir.name))
      elif name == "mlflow":
        started.append(MlflowLogger(workdir.path, config.to_dict(), provenance_record, config.log.mlflow,
                                    workdir.name))
  except Exception as error:  # the libraries' own errors (auth, network, store): one line for the user
    for logger in started:
      logger.close()
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise RunError(f"log.to {name}: could not start its run: {message}") from None
  return started


class _ExternalRun:
  """What the W&B and MLflow loggers share: the record in the workdir of which run they log to and the
  last env step logged. A resumed run repeats the steps after its checkpoint; what was logged at those
  steps before is not logged again (neither service can take points back, as TensorBoard's files can)."""

  RECORD = None

  def __init__(self, workdir):
    self.workdir = workdir
    self.record_path = os.path.join(workdir, self.RECORD)
    self.record = {}
    if os.path.isfile(self.record_path):
      with open(self.record_path) as handle:
        self.record = json.load(handle)
    self.logged_through = self.record.get("last_step", -1)  # a resume skips steps up to here
    self.outcome = "FINISHED"
    self._lock = threading.Lock()  # the learner thread writes too (maddpg_tf/run/updates.py)

  def _new_step(self, step):
    """Whether to log at `step`, and the record advanced past it (the learner thread logs too)."""
    step = int(step)
    if step <= self.logged_through:
      return False
    with self._lock:
      if step > self.record.get("last_step", -1):
        self.record["last_step"] = step
        files.write_json(self.record_path, self.record)
    return True

  def _save_record(self):
    files.write_json(self.record_path, self.record)

  def end(self, outcome):
    """How the run ended, for `close`: FINISHED, KILLED (a signal) or FAILED."""
    self.outcome = outcome


class WandbLogger(_ExternalRun):
  """A Weights & Biases run (`config.log.wandb`: project, entity, mode). Its files go to `<workdir>/wandb/`
  (offline runs are uploaded later with `wandb sync <workdir>/wandb/offline-run-*`). Every scalar is logged
  against `env_step`, W&B's x-axis for them (define_metric), so the points of two threads need no order."""

  RECORD = "wandb_run.json"

  def __init__(self, workdir, config_dict, provenance_record, settings, run_name):
    super().__init__(workdir)
    import wandb  # optional: only with log.to=wandb
    self.record.setdefault("id", uuid.uuid4().hex[:12])  # W&B's run ids: lower-case letters and digits
    self._run = wandb.init(
        project=settings.project, entity=settings.entity, mode=settings.mode, dir=workdir, name=run_name,
        id=self.record["id"], resume="allow", config={**config_dict, "provenance": provenance_record},
        # console="off": the terminal stays ours (the progress bar is not copied into the run); quiet: no
        # table of every metric at the end.
        settings=wandb.Settings(console="off", quiet=True))
    self._run.define_metric("env_step")
    self._run.define_metric("*", step_metric="env_step")
    self._save_record()
    self._save(os.path.join(workdir, "provenance*.json"))

  def _save(self, pattern):
    if glob.glob(pattern):
      self._run.save(pattern, base_path=self.workdir, policy="now")

  def write(self, values, step):
    if self._new_step(step):
      self._run.log({"env_step": int(step), **scalars(values)})

  def flush(self):
    pass

  def close(self):
    if self._run is not None:
      self._save(os.path.join(self.workdir, "evaluations.csv"))
      self._run.finish(exit_code=0 if self.outcome == "FINISHED" else 1)
      self._run = None


class MlflowLogger(_ExternalRun):
  """An MLflow run (`config.log.mlflow`: tracking_uri, experiment) through `MlflowClient` (no global active
  run): the config's leaves as params (`learner.gamma`, ...), config.json and provenance as artifacts,
  scalars as metrics at their env step. A per-agent value is `<name>_agent_<i>`, not `<name>/agent_<i>`:
  MLflow's file store keeps a metric in a file of its name, which cannot also be the directory of another."""

  RECORD = "mlflow_run.json"

  def __init__(self, workdir, config_dict, provenance_record, settings, run_name):
    super().__init__(workdir)
    from mlflow import entities  # optional: only with log.to=mlflow
    from mlflow.tracking import MlflowClient
    self._entities = entities
    self._client = client = MlflowClient(tracking_uri=settings.tracking_uri)
    if "run_id" in self.record:
      client.update_run(self.record["run_id"], status="RUNNING")
    else:
      experiment = client.get_experiment_by_name(settings.experiment)
      experiment_id = experiment.experiment_id if experiment else client.create_experiment(settings.experiment)
      self.record["run_id"] = client.create_run(experiment_id, run_name=run_name).info.run_id
      # Params cannot change in MLflow; set once (a resume may only extend total_steps: config.json has it).
      params = [entities.Param(key, json.dumps(value) if isinstance(value, (list, tuple)) else str(value))
                for key, value in config_lib.leaves(config_dict)]
      for first in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(self.record["run_id"], params=params[first:first + 100])
      self._save_record()
    self.run_id = self.record["run_id"]
    client.log_dict(self.run_id, config_dict, "config.json")  # a resume's (it may extend total_steps)
    starts = self.record.get("starts", 0)
    client.log_dict(self.run_id, provenance_record,
                    f"provenance-resume-{starts}.json" if starts else "provenance.json")
    self.record["starts"] = starts + 1
    self._save_record()

  def write(self, values, step):
    if self._new_step(step):
      now = int(time.time() * 1000)
      metrics = [self._entities.Metric(name, value, now, int(step))
                 for name, value in scalars(values, agent_separator="_").items()]
      for first in range(0, len(metrics), 1000):  # MLflow takes at most 1,000 metrics per batch
        self._client.log_batch(self.run_id, metrics=metrics[first:first + 1000])

  def flush(self):
    pass

  def close(self):
    if self._client is not None:
      evaluations = os.path.join(self.workdir, "evaluations.csv")
      if os.path.isfile(evaluations):
        self._client.log_artifact(self.run_id, evaluations)
      self._client.set_terminated(self.run_id, self.outcome)
      self._client = None


class ProgressBar:
  """A terminal progress bar of env steps (tqdm), shown from its first `update` (the step a run starts
  from, a resumed run's too); `write` shows an evaluation's return on it."""

  def __init__(self, *, total, description):
    self.total, self.description = total, description
    self._bar = None

  def update(self, env_steps, note=None):
    if self._bar is None:
      self._bar = tqdm(total=self.total, initial=env_steps, unit="step", dynamic_ncols=True,
                       desc=self.description, mininterval=1.0)
    if note is not None:
      self._bar.set_postfix_str(note)
    self._bar.update(env_steps - self._bar.n)

  def write(self, values, step):
    del step
    if self._bar is not None and "eval/mean_return" in values:
      self._bar.set_postfix_str(f"eval return {float(values['eval/mean_return']):.3f}")

  def flush(self):
    pass

  def close(self):
    if self._bar is not None:
      self._bar.close()


def event_file_sizes(logdir):
  """{file name: size in bytes} of the TensorBoard event files in `logdir` (flush the writer first)."""
  if not os.path.isdir(logdir):
    return {}
  return {name: os.path.getsize(os.path.join(logdir, name)) for name in sorted(os.listdir(logdir))
          if name.startswith("events.out.tfevents.")}


def rewind_event_files(logdir, sizes, archive_root):
  """Brings `logdir` back to the event files it held when `sizes` (`event_file_sizes`) was taken.

  A resumed run repeats what it logged after its checkpoint; without this TensorBoard would show those
  points twice. Files that grew are cut back to their recorded size (their records were complete: the
  writer was flushed), files created since are moved out; the originals are kept, whole, under
  `archive_root/<time>/`. Returns the archive directory, or None when nothing had to change.
  """
  changed = [name for name, size in event_file_sizes(logdir).items() if sizes.get(name) != size]
  if not changed:
    return None
  archive = os.path.join(archive_root, time.strftime("%Y%m%d-%H%M%S"))
  os.makedirs(archive, exist_ok=True)
  for name in changed:
    path = os.path.join(logdir, name)
    shutil.move(path, os.path.join(archive, name))
    if name in sizes:
      with open(os.path.join(archive, name), "rb") as source, open(path + ".tmp", "wb") as target:
        target.write(source.read(sizes[name]))
      os.replace(path + ".tmp", path)
  return archive


def write_evaluations_csv(path, evaluations):
  """Rewrites the CSV atomically: step, mean team return, episodes, then each episode's return."""
  temporary = path + ".tmp"
  most = max((len(e["returns"]) for e in evaluations), default=0)
  with open(temporary, "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["step", "mean_return", "episodes"] + [f"return_{k}" for k in range(most)])
    for evaluation in evaluations:
      returns = evaluation["returns"]
      writer.writerow([evaluation["step"], f"{np.mean(returns):.6f}", len(returns)]
                      + [f"{r:.6f}" for r in returns])
  os.replace(temporary, path)


def read_evaluations_csv(path):
  """[(step, mean_return)] from an evaluations CSV (for tables and plots; no TensorFlow needed)."""
  with open(path, newline="") as handle:
    return [(int(row["step"]), float(row["mean_return"])) for row in csv.DictReader(handle)]
