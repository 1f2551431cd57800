"""A run's directory: whose it is (its config), what produced it (provenance), and where its files go.

    <workdir>/config.json        the resolved config: the run's identity
    <workdir>/provenance.json    package versions, git revision, command line, seed, fidelity, user code,
                                 devices seen and where the update ran (maddpg_tf/run/devices.py)
    <workdir>/evaluations.csv    step, mean team return, each episode's return
    <workdir>/checkpoints/       ckpt-<env step>/ (complete only with their COMPLETE marker)
    <workdir>/best/              ckpt-<env step>/: the learner at the best evaluation so far (checkpoint.keep_best)
    <workdir>/absolute.json      the absolute metric of the finished run (maddpg_tf.run.saved_policies.absolute_metric)
    <workdir>/tb/                TensorBoard event files (tb_superseded/: what a resume rewound)
    <workdir>/run.lock           held by the process training the run (who it is, while it does; empty after)
"""

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time

from maddpg_tf import config as config_lib
from maddpg_tf import files
from maddpg_tf.run import errors, locking

PACKAGES = ("tensorflow", "tensorflow-probability", "keras", "tf-keras", "gymnasium", "lbforaging",
            "rware", "numpy", "ml-collections", "keras-tuner", "numba", "pettingzoo", "mpe2")
# Keys (dotted for nested ones) that do not make a run another run: the budget (a resumed run may extend
# it), what only logs (diagnostics, videos, the loggers), the env worker count, the env backend and the
# device settings (no number changes; a run may resume on another machine).
NOT_IDENTITY = ("total_steps", "diagnostics", "env_workers", "env_backend", "log.video_every_evals",
                "log.video_max_frames", "log.to", "log.wandb", "log.mlflow", "device")


# The differences a person needs first when a workdir holds another run (then the rest, alphabetically).
FIRST_NAMED = ("task", "estimator.name", "seed", "fidelity", "lbf_food_rule", "learner.share_parameters")


def file_sha256(path):
  with open(path, "rb") as handle:
    return hashlib.sha256(handle.read()).hexdigest()


def git_revision(directory):
  """(revision, dirty) of the git checkout holding `directory`, ("unknown", None) outside one."""
  try:
    revision = subprocess.run(["git", "-C", directory, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    dirty = bool(subprocess.run(["git", "-C", directory, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout.strip())
  except (OSError, subprocess.SubprocessError):
    return "unknown", None
  return revision, dirty


def package_versions(packages=PACKAGES):
  versions = {}
  for package in packages:
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  return versions


def provenance(config, task, user_code=()):
  """What produced a result: versions, git revision, command line, fidelity, seed, and `user_code`:
  [{"path": import path, "module_file": ..., "sha256": ...}] for every user module the run imported."""
  revision, dirty = git_revision(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  return {"git_revision": revision, "git_dirty": dirty, "packages": package_versions(),
          "python": platform.python_version(), "command": sys.argv, "seed": config.seed,
          "fidelity": config.fidelity, "share_parameters": bool(config.learner.get("share_parameters")),
          "task": task.name, "gym_id": task.gym_id,
          "user_code": list(user_code), **environment_note(config, task)}


def environment_note(config, task):
  """What a result's environment was, in words: for LBF the food rule it ran by (config.lbf_food_rule)."""
  if task.family == "lbf":
    rule = config.get("lbf_food_rule") or "v3"
    return {"lbf_food_rule": rule,
            "note": f"lbforaging {package_versions(('lbforaging',))['lbforaging']} stepped with food rule "
                    f"{rule}: {config_lib.LBF_FOOD_RULES[rule]} (README: Fidelity)"}
  if task.family == "rware":
    return {"note": f"rware {package_versions(('rware',))['rware']}: the same dynamics as the paper's rware "
                    f"8fb98059 (README: Fidelity)"}
  return {}


def _identity(config_dict, prefix=""):
  return {k: (_identity(v, f"{prefix}{k}.") if isinstance(v, dict) else v) for k, v in config_dict.items()
          if f"{prefix}{k}" not in NOT_IDENTITY}


class Workdir:
  """The run directory `path`; `check(config)` refuses one that holds anything but this run."""

  def __init__(self, path):
    self.path = path
    self.checkpoints = os.path.join(path, "checkpoints")
    self.best = os.path.join(path, "best")
    self.tensorboard = os.path.join(path, "tb")
    self.superseded = os.path.join(path, "tb_superseded")
    self.evaluations = os.path.join(path, "evaluations.csv")
    self.lock = os.path.join(path, "run.lock")
    self.name = os.path.basename(os.path.normpath(path))

  def hold(self, wait_seconds=0.0):
    """The workdir's lock (`locking.hold`, re-entrant in this process); RunError naming the holder if
    another process trains this run. Creates the directory."""
    try:
      os.makedirs(self.path, exist_ok=True)
    except OSError as error:
      raise errors.RunError(f"--workdir {self.path}: {error.strerror or error}") from None
    return _holding(self.lock, f"--workdir {self.path}", wait_seconds)

  def check(self, config):
    """RunError unless `path` is new, empty, or a run of `config` (up to `NOT_IDENTITY`)."""
    path, config_path = self.path, os.path.join(self.path, "config.json")
    if os.path.exists(path) and not os.path.isdir(path):
      raise errors.RunError(f"--workdir {path} is a file, not a directory")
    if os.path.isdir(path) and set(os.listdir(path)) - {"run.lock"} and not os.path.isfile(config_path):
      raise errors.RunError(f"--workdir {path} exists and holds no maddpg-tf run (no config.json); "
                            f"choose a new or empty directory")
    if os.path.isfile(config_path):
      try:
        with open(config_path) as handle:
          existing = json.load(handle)
      except (OSError, ValueError) as error:
        raise errors.RunError(f"--workdir {path}: config.json is unreadable ({error}); restore it, or use a "
                              f"new --workdir") from None
      found = config_lib.differences(_identity(config_lib.upgrade(existing)), _identity(config.to_dict()))
      found.sort(key=lambda line: next((i for i, key in enumerate(FIRST_NAMED) if line.startswith(f"{key}:")),
                                       len(FIRST_NAMED)))
      if found:
        raise errors.RunError(f"--workdir {path} holds a different run ({'; '.join(found[:3])}); use a new "
                              f"--workdir, or the same config to resume")

  def write_run_files(self, config, provenance_record):
    """config.json (rewritten: a resume may extend the budget) and provenance.json (a resume's goes
    beside the first one's), each written atomically."""
    os.makedirs(self.path, exist_ok=True)
    for name, content in (("config.json", config.to_dict()), ("provenance.json", provenance_record)):
      target = os.path.join(self.path, name)
      if name == "provenance.json" and os.path.exists(target):
        target = os.path.join(self.path, f"provenance-resume-{int(time.time())}.json")
      files.write_json(target, content)


@contextlib.contextmanager
def _holding(path, what, wait_seconds):
  try:
    with locking.hold(path, what, "wait for it to end, or give another --workdir", wait_seconds=wait_seconds,
                      reentrant=True):
      yield
  except locking.Busy as busy:
    raise errors.RunError(str(busy)) from None

