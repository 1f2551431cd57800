"""Where metrics go, behind one protocol: `write(values, step)`, `flush()`, `close()`.

* `TensorBoardLogger`: scalars (a per-agent vector [N] becomes `name/agent_i` plus its mean as `name`),
  hparams; its event files rewind with the run's checkpoints.
* `ProgressBar`: the terminal (a tqdm bar of env steps; evaluations on its postfix).
* `Dispatcher`: one write fanned out to several loggers.
The CSV of evaluations has its own writer (`write_evaluations_csv`): it holds whole evaluations.

TensorFlow is imported only by `TensorBoardLogger`: the CSV and event-file helpers serve programs that do
not otherwise need it (`maddpg-reproduce`'s driver, tables and plots).
"""

import csv
import os
import shutil
import time
from typing import Protocol

import numpy as np
from tqdm import tqdm

from maddpg_tf.media import video


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

  def __init__(self, logdir, superseded_dir=None):
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
      for name, value in values.items():
        value = np.asarray(value, np.float64)
        if value.ndim == 0:
          self._summary.scalar(name, value)
        else:
          self._summary.scalar(name, value.mean())
          for agent, agent_value in enumerate(value.reshape(-1)):
            self._summary.scalar(f"{name}/agent_{agent}", agent_value)

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


class ProgressBar:
  """A terminal progress bar of env steps (tqdm); `write` shows an evaluation's return on it."""

  def __init__(self, total, initial, description):
    self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, desc=description,
                     mininterval=1.0)

  def update(self, env_steps, note=None):
    if note is not None:
      self._bar.set_postfix_str(note)
    self._bar.update(env_steps - self._bar.n)

  def write(self, values, step):
    del step
    if "eval/mean_return" in values:
      self._bar.set_postfix_str(f"eval return {float(values['eval/mean_return']):.3f}")

  def flush(self):
    pass

  def close(self):
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
