"""The grid's runs on Ray, the library behind `maddpg-reproduce` (`maddpg_tf.cli.reproduce`): each run of
tasks x estimators x seeds as a `RunSpec` with its config (`plan`), its state on disk (`run_state`), its
lock, and `run_grid`, which trains the unfinished ones as Ray tasks with retries.

The grid is tasks x estimators x seeds (`--tasks`, `--estimators`, `--seeds`; the budget gives the
defaults). `--estimators` also takes your own estimator by import path, `module.path:ClassName`: checked in
a child process before anything is written, trained at its own defaults (or `--estimator_options`), its runs
in `<results>/<task>/module.path.ClassName/seed<k>`; tables and figures name it by its path. Each run is one
Ray task (one CPU by default, `--cpus_per_run`) that trains in its own workdir
`<results>/<task>/<estimator>/seed<k>` (the files `maddpg-train` writes, plus `summary.json` when done).
A finished run (its `summary.json`) is skipped; an interrupted one resumes from its last complete checkpoint
(one stopped after its last checkpoint but before its summary only finishes: the final evaluation where it is
missing, the absolute metric, the summary); after training each run evaluates its absolute metric
(`absolute.json`: the learner of its best evaluation, kept in `best/`, over 10x its evaluation episodes;
Gorsane et al. 2022), and a finished run without one is only evaluated (`--noabsolute`: neither); a failed run is reported by name and the others go on.
A run whose process or node was lost (killed, out of memory, a node gone) is submitted again, up to
`--retries` times (default 3), and resumes from its last complete checkpoint on whichever node takes it;
the summary names each retried run and why. A run that fails for its own reasons (bad config, NaN) is not
retried. Ctrl-C asks the local runs to checkpoint (SIGTERM) before stopping; run the same command to
continue.

Network: a local Ray (no `--ray_address`) listens on 127.0.0.1 only, without its dashboard. On a cluster
Ray's token authentication stays on (every node and the driver need the cluster's token: RAY_AUTH_TOKEN or
RAY_AUTH_TOKEN_PATH). One grid at a time per `--results` (a lock, `<results>/grid.lock`; a second grid is
refused with one line naming the first), and one process per run (its workdir's `run.lock`, as maddpg-train takes).
Each attempt of a run records its node (`attempts` in its provenance.json, summary.json and grid.json).

GPUs: with `--gpus_per_run=f` (a share 1/k of one GPU, e.g. 0.25) each run's Ray task asks for f of a GPU,
Ray gives it one (CUDA_VISIBLE_DEVICES), and the run takes at most f of that GPU's memory
(`device.memory_fraction`, maddpg_tf/run/devices.py), so k runs share it; a cluster with no GPUs is refused
before any run starts. The default, 0, asks for none.

Packed seeds: with `--seeds_per_process=k` up to k seeds of one (task, estimator) cell train in one Ray task,
one process with one packed learner (`maddpg_tf.run.packing`); each seed's run directory, summary, absolute
metric and attempts are the ones it gets alone; the process's output is in the first seed's log.
"""

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import traceback

import ml_collections
from tqdm import tqdm

from maddpg_tf import config as common
from maddpg_tf import files
from maddpg_tf.envs import tasks
from maddpg_tf.grid.budgets import (BEYOND_STEPS, ESTIMATORS, ESTIMATOR_PATH, ESTIMATOR_PATH_FORM,
                                    FIGURE4_ESTIMATORS, MEDIUM_CHECKPOINTS, SMALL_FIGURE4_STEPS,
                                    SMALL_TOTAL_STEPS)
from maddpg_tf.run import checkpointing, errors, locking, process, saved_policies
from maddpg_tf.run import workdir as workdir_lib
from maddpg_tf.run.process import one_line

PROG = "maddpg-reproduce"  # the program whose messages the grid prints
# A week-long grid loses nodes: a run whose process or node is lost is submitted again this many times.
DEFAULT_RETRIES = 3
# How long a retried run waits for the lock of a previous attempt whose node may still be going down (a dead
# NFS client's lock is released when its lease ends, about 90 s).
RUN_LOCK_WAIT_SECONDS = 300.0
# Ray decides at import whether 127.0.0.1 means "this machine's network address" (its cluster mode, on by
# default on Linux); 0 keeps a local Ray on the loopback interface.
RAY_CLUSTER_MODE_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = "127.0.0.1"
# `--authors_loop`: the authors' loop exactly, one environment and each episode's updates before the next
# episode (maddpg_tf/FIDELITY.md).
AUTHORS_LOOP = {"num_envs": 1, "loop.asynchronous_updates": False}
# An estimator of the grid written with this suffix (`gst+shared`; `--share_parameters` suffixes them all) trains
# with learner.share_parameters=True, in <task>/<estimator>+shared/seed<k>: beside its unshared runs, not on them.
SHARED_SUFFIX = "+shared"


class UsageError(Exception):
  """Bad input: printed as one line, exit status 2."""


# ---- the grid ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RunSpec:
  """One run of the grid: its config (a plain dict) and its workdir."""
  task: str
  estimator: str
  seed: int
  workdir: str
  config: dict

  @property
  def name(self):
    return f"{self.task}/{self.estimator}/seed{self.seed}"

  @property
  def total_steps(self):
    return int(self.config["total_steps"])


def family(task):
  """The task's environment family (its `TaskSpec.family`), which decides the paper's settings."""
  return tasks.resolve_task(task).family


def split_shared(estimator):
  """(label or import path, whether its runs share parameters) of a grid's estimator (`SHARED_SUFFIX`)."""
  if estimator.endswith(SHARED_SUFFIX):
    return estimator[:-len(SHARED_SUFFIX)], True
  return estimator, False


def make_config(task, estimator, seed, budget, fidelity="code", total_steps=None, figure4=False, overrides=None,
                tuned=None, estimator_options="", lbf_food_rule=None):
  """The ConfigDict of one run under `budget` (the paper's settings for the task's environment).

  `estimator`: a label (`ESTIMATORS`) or a user's estimator by import path (its own defaults, plus
  `estimator_options`, "name=value,...", which only such an estimator takes); with `SHARED_SUFFIX`, shared.
  `tuned`: {(family, estimator label): {dotted config key: value}} from `load_tuned` (searched settings that
  replace the paper's); `lbf_food_rule`: the LBF tasks' food rule (None: each task's default); `overrides`: {dotted config key: value}, applied last (tests use it to shrink runs).
  """
  estimator, shared = split_shared(estimator)
  arg = f"task={task},estimator={estimator}"
  if budget in ("smoke", "small"):
    arg += ",smoke" if budget == "smoke" else ",short"
  config = common.get_config(arg)
  if budget == "small":
    config.total_steps = SMALL_FIGURE4_STEPS if figure4 else SMALL_TOTAL_STEPS
  if budget == "smoke":
    config.jit_compile = False  # XLA compilation would take longer than these 2,000 steps
  if budget in ("medium", "beyond"):
    for key, value in MEDIUM_CHECKPOINTS.items():
      common.set_value(config, key, value)
  if budget == "beyond":
    config.total_steps = BEYOND_STEPS[family(task)]
  config.seed = int(seed)
  config.fidelity = fidelity
  config.learner.share_parameters = shared
  if estimator_options and common.is_estimator_path(estimator):
    config.estimator.options = estimator_options
  if total_steps is not None:
    config.total_steps = int(total_steps)
  if lbf_food_rule is not None and family(task) == "lbf":
    config.lbf_food_rule = lbf_food_rule
  for key, value in {**(tuned or {}).get((family(task), estimator), {}), **(overrides or {})}.items():
    common.set_value(config, key, value)
  return config


def load_tuned(paths):
  """{(family, estimator label): settings} from best_config.py files of `maddpg-search`. Raises UsageError."""
  tuned = {}
  for path in paths or ():
    if not os.path.isfile(path):
      raise UsageError(f"--tuned {path} does not exist; give best_config.py files written by maddpg-search")
    try:
      module = process.load_module(path, f"maddpg_tuned_{len(tuned)}")
      settings, base = dict(module.BEST), module.get_config()
    except Exception as error:  # pylint: disable=broad-except  (any error in a user's file)
      raise UsageError(f"--tuned {path} is not a maddpg-search best_config.py ({type(error).__name__}: "
                       f"{one_line(error)})") from None
    key = (family(base.task), base.estimator.label)
    if key in tuned:
      raise UsageError(f"--tuned gives settings for estimator {key[1]!r} on {key[0]} twice ({path})")
    tuned[key] = settings
  return tuned


def estimator_directory(estimator):
  """The directory of an estimator's runs: its label, an import path with '.' for ':' (my_lab.est:MyEst ->
  my_lab.est.MyEst), a name no shell or file system treats specially."""
  return estimator.replace(":", ".")


def workdir_of(results, task, estimator, seed):
  return os.path.join(results, task, estimator_directory(estimator), f"seed{seed}")


def plan(results, tasks, estimators, seeds, budget, fidelity="code", total_steps=None, figure4=False,
         overrides=None, tuned=None, estimator_options="", lbf_food_rule=None):
  """[RunSpec] for tasks x estimators x seeds (in that nesting order)."""
  specs = []
  for task in tasks:
    for estimator in estimators:
      for seed in seeds:
        config = make_config(task, estimator, seed, budget, fidelity, total_steps, figure4, overrides, tuned,
                             estimator_options, lbf_food_rule)
        specs.append(RunSpec(task, estimator, int(seed), workdir_of(results, task, estimator, seed),
                             config.to_dict()))
  return specs


def plan_outputs(what, results, tasks, estimators, seeds, figure4_task, figure4_seeds, budget, fidelity="code",
                 total_steps=None, tuned=None, estimator_options="", lbf_food_rule=None, overrides=None,
                 figure4_estimators=FIGURE4_ESTIMATORS):
  """[RunSpec] of the runs `--what` needs: the grid's (table1, figures, beyond, all) and Figure 4's (figure4, all;
  its runs that the grid has already are not planned twice). `overrides`: config keys set on every run
  (e.g. `AUTHORS_LOOP`)."""
  specs = []
  if what in ("table1", "figures", "beyond", "all"):
    specs += plan(results, tasks, estimators, seeds, budget, fidelity, total_steps, tuned=tuned,
                  estimator_options=estimator_options, lbf_food_rule=lbf_food_rule, overrides=overrides)
  if what in ("figure4", "all"):
    names = {spec.name for spec in specs}
    specs += [spec for spec in plan(results, (figure4_task,), figure4_estimators, figure4_seeds, budget,
                                    fidelity, total_steps, figure4=True, tuned=tuned,
                                    lbf_food_rule=lbf_food_rule, overrides=overrides)
              if spec.name not in names]
  return specs


def _read_json(path):
  try:
    with open(path) as handle:
      return json.load(handle)
  except (OSError, ValueError):
    return None


def checkpoint_step(workdir):
  """Env step of the newest complete checkpoint in `workdir`, or None."""
  found = checkpointing.complete_checkpoints(os.path.join(workdir, "checkpoints"))
  return found[-1][0] if found else None


def last_evaluation_step(workdir):
  """Env step of the last evaluation in `workdir`/evaluations.csv (0 when there is none)."""
  try:
    with open(os.path.join(workdir, "evaluations.csv")) as handle:
      lines = [line for line in handle.read().splitlines() if line.strip()]
    return int(lines[-1].split(",", 1)[0]) if len(lines) > 1 else 0
  except (OSError, ValueError):
    return 0


def run_state(spec):
  """('finished' | 'partial' | 'new', env steps done) of a planned run, from its workdir."""
  summary = _read_json(os.path.join(spec.workdir, "summary.json"))
  if summary and int(summary.get("env_steps", -1)) >= spec.total_steps:
    return "finished", int(summary["env_steps"])
  step = checkpoint_step(spec.workdir)
  if step is not None and step >= spec.total_steps:
    return "finished", step
  if step is not None or os.path.isfile(os.path.join(spec.workdir, "config.json")):
    return "partial", step or 0
  return "new", 0


def summarised(spec):
  """Whether a run is finished and has its summary.json: the grid skips it (or only evaluates its absolute
  metric). A run trained to its end without one (stopped while it evaluated its absolute metric, say) is
  resumed instead, which restores it at its last step and only finishes it."""
  return run_state(spec)[0] == "finished" and os.path.isfile(os.path.join(spec.workdir, "summary.json"))


def _cpu_seconds(resource):
  """CPU seconds of this process and of its finished children (the env workers)."""
  return sum(usage.ru_utime + usage.ru_stime
             for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def needs_absolute(spec):
  """Whether a finished run still lacks its absolute metric: no `absolute.json`, or one of a shorter run
  that was extended since (runs that keep their best learner, `checkpoint.keep_best`)."""
  if not spec.config.get("checkpoint", {}).get("keep_best", False):
    return False
  written = _read_json(os.path.join(spec.workdir, files.ABSOLUTE_FILE))
  return not written or written.get("total_steps") != spec.total_steps


def _set_threads(threads):
  tf = process.import_tensorflow()  # quietly (no CUDA probe noise in the grid's logs)
  if threads:
    try:
      tf.config.threading.set_intra_op_parallelism_threads(int(threads))
      tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    except RuntimeError:  # TensorFlow already initialised in this process
      pass


def _with_env_workers(config_dict, threads):
  # The reference (pure-Python) envs: with one CPU per run they step in this process (a worker process
  # would take a CPU the grid did not give the run); with two or more (or the whole machine), in a worker
  # process beside the learner (maddpg_tf/envs/workers.py). The fast backends always step in this process.
  # No number depends on it.
  if config_dict.get("env_backend", "reference") == "reference":
    return dict(config_dict, env_workers=0 if threads and int(threads) < 2 else 1)
  return config_dict


def _finished(config_dict, workdir, summary, absolute, attempts, started, usage, train):
  """A trained (or, `train=False`, already finished) run's result: its absolute metric where it is missing,
  its summary.json with this call's time and attempts."""
  spec = RunSpec("", "", 0, workdir, config_dict)
  absolute = saved_policies.absolute_metric(workdir) if absolute and needs_absolute(spec) else None
  if train:
    # This call's time (including TensorFlow's start in a fresh worker): CPU seconds measure the work even
    # on a busy machine, wall seconds what it took here (for packed seeds: the whole group's).
    summary["wall_seconds"] = time.time() - started
    summary["cpu_seconds"] = _cpu_seconds(resource) - usage
    if attempts is not None:
      summary["attempts"] = list(attempts)
    files.write_json(os.path.join(workdir, "summary.json"), summary)
  with open(os.path.join(workdir, "evaluations.csv")) as handle:
    evaluations = handle.read()
  return {"status": "finished", "summary": summary, "evaluations_csv": evaluations, "absolute": absolute}


def train_one(config_dict, workdir, threads=None, attempts=None, absolute=True, train=True):
  """Trains (or resumes) one run, then (`absolute`) evaluates its absolute metric into absolute.json where
  it is missing; never raises for a run's own failure. `threads`: TensorFlow's intra- and inter-op threads
  (None: TensorFlow's default); `attempts`: where each attempt ran (a list of dicts, kept in summary.json);
  `train=False`: a finished run, only its absolute metric. Returns a result dict:

  {"status": "finished", "summary": {...}, "evaluations_csv": text, "absolute": {...} or None}
  | {"status": "failed", "error": line} | {"status": "interrupted", "error": line}.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  started, usage = time.time(), _cpu_seconds(resource)
  config_dict = _with_env_workers(config_dict, threads)
  try:
    _set_threads(threads)
    from maddpg_tf.run import experiment  # pylint: disable=g-import-not-at-top  (after the quiet TensorFlow)
    try:
      if train:
        extra = {"attempts": list(attempts)} if attempts else None  # where it ran (node, host, pid)
        with experiment.Experiment(ml_collections.ConfigDict(config_dict), workdir, progress=False,
                                   provenance_extra=extra) as run:
          summary = run.run()
      else:
        summary = _read_json(os.path.join(workdir, "summary.json")) or {}
      return _finished(config_dict, workdir, summary, absolute, attempts, started, usage, train)
    except (experiment.RunError, checkpointing.CheckpointError, errors.RunError) as error:
      return {"status": "failed", "error": one_line(error)}
    except experiment.Interrupted as interrupt:
      return {"status": "interrupted", "error": one_line(interrupt)}
  except Exception as error:  # pylint: disable=broad-except  (reported by name, the grid goes on)
    traceback.print_exc()
    return {"status": "failed", "error": one_line(f"{type(error).__name__}: {error}")}


def train_packed(config_dicts, workdirs, threads=None, attempts=None, absolute=True):
  """Trains (or resumes) one grid cell's seeds in one process (`maddpg_tf.run.packing.PackedRun`: one
  packed learner, each seed's run in its own `workdir`, the one `train_one` would write), then each seed's
  absolute metric. `config_dicts` differ only in their seed; the workdirs are `<cell>/seed<k>`. Returns a
  result dict per seed as `train_one` does; a failure of the packed run is every seed's."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  started, usage = time.time(), _cpu_seconds(resource)
  config_dicts = [_with_env_workers(c, threads) for c in config_dicts]
  try:
    _set_threads(threads)
    from maddpg_tf.run import experiment, packing  # pylint: disable=g-import-not-at-top  (after TensorFlow)
    seeds = [int(c["seed"]) for c in config_dicts]
    cell = os.path.dirname(workdirs[0])
    if ([packing.seed_directory(cell, seed) for seed in seeds] != list(workdirs)
        or len({cell_key(c, w) for c, w in zip(config_dicts, workdirs)}) != 1):
      raise ValueError(f"packed runs must be one cell's seeds: {list(workdirs)}")
    try:
      extra = {"attempts": list(attempts)} if attempts else None
      with packing.PackedRun(ml_collections.ConfigDict(config_dicts[0]), cell, seeds, progress=False,
                             provenance_extra=extra) as run:
        summaries = run.run()
      return [_finished(c, w, summary, absolute, attempts, started, usage, True)
              for c, w, summary in zip(config_dicts, workdirs, summaries)]
    except (experiment.RunError, checkpointing.CheckpointError, errors.RunError) as error:
      return [{"status": "failed", "error": one_line(error)}] * len(workdirs)
    except experiment.Interrupted as interrupt:
      return [{"status": "interrupted", "error": one_line(interrupt)}] * len(workdirs)
  except Exception as error:  # pylint: disable=broad-except  (reported by name, the grid goes on)
    traceback.print_exc()
    return [{"status": "failed", "error": one_line(f"{type(error).__name__}: {error}")}] * len(workdirs)


def _log_stem(results, spec):
  return os.path.join(results, "logs", spec.task, estimator_directory(spec.estimator), f"seed{spec.seed}")


def _pid_file(results, spec):
  return _log_stem(results, spec) + ".pid"


def _attempts_file(results, spec):
  return _log_stem(results, spec) + ".attempts.jsonl"


def read_attempts(path):
  """The attempts recorded in a run's `.attempts.jsonl` (one JSON object a line; a torn last line is left
  out), oldest first."""
  found = []
  try:
    with open(path) as handle:
      for line in handle:
        try:
          found.append(json.loads(line))
        except ValueError:
          pass
  except OSError:
    pass
  return found


def _this_node():
  """Where this process runs: Ray's node id and address, the host name, the pid."""
  place = {"host": socket.gethostname(), "pid": os.getpid(),
           "started": datetime.datetime.now().isoformat(timespec="seconds")}
  try:
    import ray  # pylint: disable=g-import-not-at-top
    place["node_id"] = ray.get_runtime_context().get_node_id()
    place["node_ip"] = ray.util.get_node_ip_address()
    if ray.get_gpu_ids():  # a run that asked for a GPU share: which GPU Ray gave it
      place["gpu_ids"] = [str(gpu) for gpu in ray.get_gpu_ids()]
  except Exception:  # pylint: disable=broad-except  (outside Ray: host and pid say enough)
    pass
  return place


RunBusy = locking.Busy  # another process trains a run


def run_lock(workdir, wait_seconds=RUN_LOCK_WAIT_SECONDS):
  """The run's workdir lock (`maddpg_tf.run.locking`, the one maddpg-train takes), held by the grid's task for
  as long as it trains the run; waits up to `wait_seconds` for a previous holder (a lost node's process that
  is still going down), then raises RunBusy naming the holder."""
  os.makedirs(workdir, exist_ok=True)
  return locking.hold(os.path.join(workdir, "run.lock"), f"run {workdir}", "wait for it to end",
                      wait_seconds=wait_seconds, poll_seconds=1.0, reentrant=True)


def _train_in_worker(config_dict, workdir, threads, log_path, pid_path, attempts_path, absolute=True, train=True):
  """The Ray task: logs to `log_path`, records where it runs, announces its pid (for Ctrl-C on a local
  cluster), takes the run's lock, trains."""
  return _in_worker([workdir], [log_path], [pid_path], [attempts_path], lambda attempts: [train_one(
      config_dict, workdir, threads, attempts=attempts, absolute=absolute, train=train)])[0]


def _train_group_in_worker(config_dicts, workdirs, threads, log_paths, pid_paths, attempts_paths, absolute=True):
  """The Ray task of one cell's seeds packed in one process (`train_packed`): as `_train_in_worker`, its
  output in the first seed's log (each other seed's log says where), every seed's lock held."""
  return _in_worker(workdirs, log_paths, pid_paths, attempts_paths, lambda attempts: train_packed(
      config_dicts, workdirs, threads, attempts=attempts, absolute=absolute))


def _in_worker(workdirs, log_paths, pid_paths, attempts_paths, train):
  """Logs to `log_paths[0]`, records the attempt in each `attempts_paths` and the pid in each `pid_paths`,
  holds each workdir's lock, and returns `train(attempts)` (a result per workdir)."""
  for path in log_paths:
    os.makedirs(os.path.dirname(path), exist_ok=True)
  log = os.open(log_paths[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
  os.dup2(log, 1)
  os.dup2(log, 2)
  place = _this_node()
  header = f"--- {place['started']} pid {os.getpid()} on {place['host']} (Ray node {place.get('node_id')})"
  print(f"{header} {' '.join(workdirs)}", flush=True)
  for workdir, path in zip(workdirs[1:], log_paths[1:]):
    with open(path, "a") as handle:
      handle.write(f"{header} {workdir}: packed with {workdirs[0]}, output in {log_paths[0]}\n")
  for path in attempts_paths:
    with open(path, "a") as handle:  # one short line per attempt: appends do not interleave
      handle.write(json.dumps(place, sort_keys=True) + "\n")
  for path in pid_paths:
    with open(path, "w") as handle:
      handle.write(str(os.getpid()))
  try:
    with contextlib.ExitStack() as locks:
      for workdir in workdirs:
        locks.enter_context(run_lock(workdir))
      results = train(read_attempts(attempts_paths[0]))
  except RunBusy as busy:
    results = [{"status": "failed", "error": one_line(busy)}] * len(workdirs)
  finally:
    for path in pid_paths:
      try:
        os.remove(path)
      except OSError:
        pass
  results = [dict(result, node=place) for result in results]
  for workdir, result in zip(workdirs, results):
    print(f"--- {workdir}: {result['status']}: {result.get('error', '')}", flush=True)
  return results


@dataclasses.dataclass
class GridReport:
  finished: list = dataclasses.field(default_factory=list)      # names trained to the end now
  skipped: list = dataclasses.field(default_factory=list)       # names already finished before
  evaluated: list = dataclasses.field(default_factory=list)     # finished before, absolute metric added now
  failed: dict = dataclasses.field(default_factory=dict)        # name -> one-line reason
  interrupted: list = dataclasses.field(default_factory=list)
  retried: dict = dataclasses.field(default_factory=dict)       # name -> [why each earlier attempt was lost]
  seconds: float = 0.0

  @property
  def ok(self):
    return not self.failed and not self.interrupted


GridBusy = locking.Busy  # another grid holds a results directory


def grid_lock(results):
  """One grid at a time on `results` (any node of a shared filesystem): `<results>/grid.lock`, re-entrant in
  this process. Raises GridBusy (one line naming the other grid)."""
  os.makedirs(results, exist_ok=True)
  return locking.hold(os.path.join(results, "grid.lock"), f"--results {results}",
                      "wait for it to end or use another --results", reentrant=True)


def record_grid(results, budget, fidelity):
  """Notes the grid's budget and fidelity in `<results>/grid.json` (hold `grid_lock` first)."""
  manifest_path = os.path.join(results, "grid.json")
  manifest = _read_json(manifest_path) or {}
  manifest.update(budget=budget, fidelity=fidelity)
  files.write_json(manifest_path, manifest)


def check_writable(results):
  """Raises UsageError (one line) unless this process can create and remove a file in `results`."""
  probe = os.path.join(results, f".write-check-{socket.gethostname()}-{os.getpid()}")
  try:
    with open(probe, "w") as handle:
      handle.write("ok")
    os.remove(probe)
  except OSError as error:
    raise UsageError(f"--results {results} is not writable from this machine ({error.strerror or error}); "
                     f"on a cluster give a path on storage every node mounts") from None


def loopback_only():
  """Makes a Ray that this process starts (and its children) listen and advertise on 127.0.0.1 only.

  Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported: with 0 it stops turning 127.0.0.1 into
  the machine's network address. Set for the children (gcs, raylet, workers, agents) and, when Ray is
  already imported here, for this process too."""
  os.environ[RAY_CLUSTER_MODE_VARIABLE] = "0"
  os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
  constants = sys.modules.get("ray._private.ray_constants")
  if constants is not None:
    constants.ENABLE_RAY_CLUSTER = False


def _refresh_ray_config():
  """Makes this process's Ray read RAY_AUTH_MODE again.

  Ray reads its settings from the environment once, when it is first imported: a Ray imported earlier in this
  process (a notebook's, or another library's) keeps the mode it read then, while the GCS this grid starts
  reads the mode set now. A driver that thinks authentication is off sends no token, and the GCS refuses it
  (or, with no token on disk, never starts). Ray refreshes the same way when it turns authentication on."""
  try:
    from ray._raylet import Config  # pylint: disable=g-import-not-at-top
  except ImportError:  # a Ray without it reads the environment at each start
    return
  Config.initialize("")


def _init_ray(ray_address, num_cpus, quiet):
  """ray.init for the grid: a cluster's driver at `ray_address` (its token authentication as configured
  there), or a local Ray on 127.0.0.1 only with no dashboard. Returns (ray, {address, session_dir})."""
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env_vars = {"TF_CPP_MIN_LOG_LEVEL": "2"}
  kwargs = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                logging_level=logging.WARNING if quiet else logging.INFO)
  if ray_address:
    import ray
    ray.init(address=ray_address, runtime_env={"env_vars": env_vars}, **kwargs)
  else:
    loopback_only()
    # Token authentication on, as Ray's default for a local cluster, but chosen rather than defaulted: Ray
    # then starts without its warning that the default is in force (a user's own RAY_AUTH_MODE wins).
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray
    _refresh_ray_config()
    paths = [repo] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env_vars["PYTHONPATH"] = os.pathsep.join(paths)
    # address="local": a Ray of this grid's own, even where `ray start` left a cluster on this machine (a bare
    # ray.init() would join that one, and refuse num_cpus).
    ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), runtime_env={"env_vars": env_vars},
             _node_ip_address=LOOPBACK, **kwargs)
  where = {"address": ray_address or "local"}
  try:  # private, so only informative: where this grid's Ray keeps its logs
    node = ray._private.worker._global_node  # pylint: disable=protected-access
    where.update(address=node.address, session_dir=node.get_session_dir_path())
  except Exception:  # pylint: disable=broad-except
    pass
  return ray, where


def _is_ray_worker(pid):
  """Whether `pid` is a Ray worker process (so that a stale pid file never signals anything else)."""
  try:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
      command = handle.read()
  except OSError:
    return False
  return b"ray::" in command or b"default_worker.py" in command


def _interrupt_local_runs(results, specs):
  """SIGTERM to the local runs' processes: each writes a checkpoint and returns 'interrupted'."""
  signalled = 0
  for spec in specs:
    try:
      with open(_pid_file(results, spec)) as handle:
        pid = int(handle.read().strip())
      if _is_ray_worker(pid):
        os.kill(pid, signal.SIGTERM)
        signalled += 1
    except (OSError, ValueError):
      pass
  return signalled


def lost_not_failed(error):
  """Whether a Ray error means the run's process or node was lost (worker crashed, node died, out of
  memory, object lost), as opposed to the task raising (RayTaskError: the run's own code)."""
  import ray.exceptions
  return isinstance(error, ray.exceptions.RayError) and not isinstance(
      error, (ray.exceptions.RayTaskError, ray.exceptions.TaskCancelledError))


def run_grid(specs, results, ray_address=None, num_cpus=None, cpus_per_run=1, retries=DEFAULT_RETRIES,
             progress=True, quiet=False, absolute=True, gpus_per_run=0, seeds_per_process=1):
  """Runs every unfinished spec as a Ray task; returns a GridReport. Never raises for one run's failure.
  `absolute`: each run's absolute metric too (absolute.json; a finished run without it is evaluated).
  `gpus_per_run`: the share of a GPU each run's task asks for (`check_gpus_per_run`; 0: none).
  `seeds_per_process`: up to that many seeds of one (task, estimator) cell train in one Ray task, packed in
  one process (`group_specs`, `train_packed`); `cpus_per_run` and `gpus_per_run` are then per task.

  A run whose process or node is lost is submitted again (it resumes from its last complete checkpoint) up
  to `retries` times; raises GridBusy if another grid holds `results`, UsageError if runs ask for GPUs that
  the cluster does not have (before any run starts)."""
  with grid_lock(results):
    return _GridRun(specs, results, ray_address, cpus_per_run, retries, absolute, gpus_per_run,
                    seeds_per_process).run(num_cpus, progress, quiet)


def cell_key(config_dict, workdir):
  """What the runs of one grid cell share: the directory above their seed's and the config but the seed (its
  task and estimator with it)."""
  return os.path.dirname(workdir), json.dumps(dict(config_dict, seed=0), sort_keys=True, default=str)


def group_specs(specs, seeds_per_process):
  """Units of Ray tasks: runs of one cell (task, estimator, directory and config but the seed) in groups of
  up to `seeds_per_process`, seeds in plan order; other runs alone. Keeps the order of each group's first
  run."""
  if seeds_per_process < 1:
    raise UsageError(f"--seeds_per_process must be >= 1, got {seeds_per_process}")
  cells = {}
  for spec in specs:
    groups = cells.setdefault(cell_key(spec.config, spec.workdir), [[]])
    if len(groups[-1]) == seeds_per_process:
      groups.append([])
    groups[-1].append(spec)
  return [tuple(group) for groups in cells.values() for group in groups]


# ---- GPU shares ------------------------------------------------------------------------------------------

# The most of a GPU a share may leave unused (1 - k x share for the k runs that fit on one GPU).
GPU_SHARE_WASTE = 0.02


def check_gpus_per_run(value):
  """--gpus_per_run as a float: 0 (no GPU) or a share 1/k of one GPU (0.5, 0.25, 0.2, 0.333, ...); UsageError
  (one line) for a value outside [0, 1] or one that leaves more than GPU_SHARE_WASTE of each GPU unused."""
  value = float(value)
  if not 0 <= value <= 1:
    raise UsageError(f"--gpus_per_run must be 0 (no GPU) or a share of one GPU in (0, 1], e.g. 0.25 for four "
                     f"runs per GPU, got {value:g}")
  if value > 0:
    runs_per_gpu = int(1 / value + 1e-9)
    if 1 - runs_per_gpu * value > GPU_SHARE_WASTE:
      raise UsageError(f"--gpus_per_run {value:g} does not divide a GPU into whole runs ({runs_per_gpu} fit, "
                       f"leaving {1 - runs_per_gpu * value:.2f} of each GPU unused); give 1/k, e.g. 1, 0.5, "
                       f"0.25, 0.2")
  return value


def ray_options(name, cpus_per_run, gpus_per_run=0):
  """The options of one run's Ray task: its CPUs, its share of a GPU (only when asked: Ray then sets the
  task's CUDA_VISIBLE_DEVICES), no retries of Ray's own (the driver resubmits, knowing why), its name."""
  options = dict(num_cpus=cpus_per_run, max_retries=0, name=name)
  if gpus_per_run:
    options["num_gpus"] = round(float(gpus_per_run), 4)  # Ray keeps four decimal places of a resource
  return options


def with_gpu_share(config_dict, gpus_per_run):
  """A run's config dict whose process takes at most `gpus_per_run` of its GPU's memory
  (`device.memory_fraction`), where the share is below one GPU and the config bounds the memory no other way."""
  device = dict(config_dict.get("device") or common.device_config().to_dict())
  if not 0 < gpus_per_run < 1 or device.get("memory_limit_mb") is not None:
    return config_dict
  return {**config_dict, "device": {**device, "memory_fraction": float(gpus_per_run)}}


def check_cluster_gpus(resources, gpus_per_run, where):
  """UsageError unless a cluster whose `ray.cluster_resources()` are `resources` has the GPUs that runs asking
  for `gpus_per_run` of one need (`where`: the cluster's address, for the message)."""
  if gpus_per_run > 0 and not resources.get("GPU", 0) > 0:
    raise UsageError(f"--gpus_per_run {gpus_per_run:g} asks each run for a share of a GPU, but the Ray cluster "
                     f"({where}) has no GPUs; give --gpus_per_run=0 to train on CPUs, or a cluster with GPUs")


class _GridRun:
  """One `run_grid` call: submits the unfinished runs, collects them, resubmits lost ones, keeps grid.json."""

  def __init__(self, specs, results, ray_address, cpus_per_run, retries, absolute=True, gpus_per_run=0,
               seeds_per_process=1):
    self.specs, self.results, self.ray_address = specs, results, ray_address
    self.cpus_per_run, self.retries, self.absolute = cpus_per_run, retries, absolute
    self.gpus_per_run = check_gpus_per_run(gpus_per_run)
    self.report, self.started = GridReport(), time.time()
    self.states = {spec.name: run_state(spec) for spec in specs}
    for spec in specs:  # trained to the end but no summary.json: resumed, it only finishes (`summarised`)
      if self.states[spec.name][0] == "finished" and not os.path.isfile(os.path.join(spec.workdir, "summary.json")):
        self.states[spec.name] = ("partial", self.states[spec.name][1])
    # Finished runs without their absolute metric get a task that only evaluates it.
    self.evaluate_only = {spec.name for spec in specs if self.states[spec.name][0] == "finished"
                          and absolute and needs_absolute(spec)}
    self.todo = [spec for spec in specs if self.states[spec.name][0] != "finished"
                 or spec.name in self.evaluate_only]
    self.report.skipped = [spec.name for spec in specs if self.states[spec.name][0] == "finished"
                           and spec.name not in self.evaluate_only]
    # The unit of a Ray task: one run, or one cell's seeds packed in one process (runs only evaluated stay
    # alone).
    self.units = (group_specs([spec for spec in self.todo if spec.name not in self.evaluate_only],
                              seeds_per_process)
                  + [(spec,) for spec in self.todo if spec.name in self.evaluate_only])
    self.manifest_path = os.path.join(results, "grid.json")
    self.manifest = _read_json(self.manifest_path) or {}
    self.runs = self.manifest.setdefault("runs", {})
    for name in self.report.skipped:
      self.runs.setdefault(name, {})["status"] = "finished"
    self.total_steps = sum(spec.total_steps for spec in specs)
    self.done_steps = {spec.name: (spec.total_steps if self.states[spec.name][0] == "finished"
                                   else self.states[spec.name][1]) for spec in specs}
    self.pending, self.bar, self.interrupting, self.ray, self.remote = {}, None, False, None, None

  def run(self, num_cpus, progress, quiet):
    if not self.todo:
      self.write_manifest()
      self.report.seconds = time.time() - self.started
      return self.report
    self.ray, where = _init_ray(self.ray_address, num_cpus, quiet)
    try:
      check_cluster_gpus(self.ray.cluster_resources(), self.gpus_per_run, self.ray_address or "local")
    except UsageError:
      self.ray.shutdown()
      raise
    self.manifest["ray"] = where
    # A fresh process per run (thread settings, memory).
    self.remote = self.ray.remote(max_calls=1)(_train_in_worker)
    self.remote_group = self.ray.remote(max_calls=1)(_train_group_in_worker)
    for unit in self.units:
      for spec in unit:
        os.makedirs(os.path.dirname(_log_stem(self.results, spec)), exist_ok=True)
        if os.path.exists(_pid_file(self.results, spec)):  # left by a worker that was killed: not this run's
          os.remove(_pid_file(self.results, spec))
      self.submit(unit)
      for spec in unit:
        self.runs[spec.name] = {"status": "running", "workdir": spec.workdir,
                                "log": _log_stem(self.results, unit[0]) + ".log"}
    self.write_manifest()
    if progress:
      self.bar = tqdm(total=len(self.specs), initial=len(self.report.skipped), unit="run", dynamic_ncols=True,
                      desc=f"grid ({len(self.todo)} to run)")
    try:
      self.collect()
    finally:
      if self.bar is not None:
        self.bar.close()
      for unit in self.pending.values():
        for spec in unit:
          self.runs[spec.name] = {"status": "interrupted", "workdir": spec.workdir}
      self.write_manifest()
      self.ray.shutdown()
    self.report.seconds = time.time() - self.started
    if self.interrupting:
      raise KeyboardInterrupt
    return self.report

  def write_manifest(self):
    files.write_json(self.manifest_path, self.manifest)

  def submit(self, unit):
    # Ray's own task retries would hide why a run was lost: the driver resubmits instead (max_retries=0).
    results, spec = self.results, unit[0]
    paths = [[os.path.abspath(path(results, s)) for s in unit]
             for path in (lambda r, s: _log_stem(r, s) + ".log", _pid_file, _attempts_file)]
    if len(unit) == 1:
      ref = self.remote.options(**ray_options(spec.name, self.cpus_per_run, self.gpus_per_run)).remote(
          with_gpu_share(spec.config, self.gpus_per_run), os.path.abspath(spec.workdir), self.cpus_per_run,
          *(p[0] for p in paths), self.absolute, spec.name not in self.evaluate_only)
    else:
      name = f"{spec.task}/{spec.estimator}/seeds{'-'.join(str(s.seed) for s in unit)}"
      ref = self.remote_group.options(**ray_options(name, self.cpus_per_run, self.gpus_per_run)).remote(
          [with_gpu_share(s.config, self.gpus_per_run) for s in unit], [os.path.abspath(s.workdir) for s in unit],
          self.cpus_per_run, *paths, self.absolute)
    self.pending[ref] = unit

  def say(self, message):
    (self.bar.write if self.bar is not None else lambda m: print(m, file=sys.stderr, flush=True))(message)

  def show(self):
    if self.bar is not None:
      report = self.report
      failed = f", {len(report.failed)} failed" if report.failed else ""
      retried = f", {len(report.retried)} retried" if report.retried else ""
      self.bar.set_postfix_str(f"env steps {sum(self.done_steps.values()):,}/{self.total_steps:,}{failed}{retried}")

  def record(self, spec, result):
    status, report = result["status"], self.report
    self.runs[spec.name] = {"status": status, "workdir": spec.workdir, "error": result.get("error"),
                            "attempts": read_attempts(_attempts_file(self.results, spec))}
    if spec.name in report.retried:
      self.runs[spec.name]["lost"] = report.retried[spec.name]
    if status == "finished":
      (report.evaluated if spec.name in self.evaluate_only else report.finished).append(spec.name)
      self.done_steps[spec.name] = spec.total_steps
      # Without a shared filesystem the workdir is on the worker's node: keep the driver's copy too.
      os.makedirs(spec.workdir, exist_ok=True)
      if result.get("evaluations_csv") and not os.path.isfile(os.path.join(spec.workdir, "evaluations.csv")):
        with open(os.path.join(spec.workdir, "evaluations.csv"), "w") as handle:
          handle.write(result["evaluations_csv"])
      if result.get("summary") and not os.path.isfile(os.path.join(spec.workdir, "summary.json")):
        files.write_json(os.path.join(spec.workdir, "summary.json"), result["summary"])
      if result.get("absolute") and needs_absolute(spec):
        files.write_json(os.path.join(spec.workdir, files.ABSOLUTE_FILE), result["absolute"])
    elif status == "interrupted":
      report.interrupted.append(spec.name)
    else:
      report.failed[spec.name] = result.get("error") or "unknown error"
      self.say(f"{PROG}: run failed: {spec.name}: {report.failed[spec.name]}")
    if self.bar is not None:
      self.bar.update(1)
    self.show()
    self.write_manifest()

  def result_of(self, ref, unit):
    """The unit's results (one per run), or None when it was lost and has been submitted again."""
    try:
      found = self.ray.get(ref)
      return [found] if len(unit) == 1 else found
    except Exception as error:  # pylint: disable=broad-except  (worker died, task error, ...)
      reason = one_line(f"{type(error).__name__}: {error}")[:500]
      if all(summarised(spec) for spec in unit):  # it died after finishing (e.g. exiting)
        return [{"status": "finished", "summary": _read_json(os.path.join(spec.workdir, "summary.json")),
                 "evaluations_csv": ""} for spec in unit]
      lost = self.report.retried.get(unit[0].name, [])
      if self.interrupting or not lost_not_failed(error) or len(lost) >= self.retries:
        return [{"status": "failed", "error": reason}] * len(unit)
      for spec in unit:
        self.report.retried.setdefault(spec.name, []).append(reason)
        self.runs[spec.name].update(status="retrying", lost=list(self.report.retried[spec.name]))
      count = len(self.report.retried[unit[0].name])
      names = ", ".join(spec.name for spec in unit)
      one = len(unit) == 1
      self.say(f"{PROG}: lost {names} (attempt {count}): {reason[:200]}; submitting {'it' if one else 'them'} "
               f"again ({count} of {self.retries} retries), {'it resumes' if one else 'each resumes'} "
               f"from its last complete checkpoint")
      self.write_manifest()
      self.submit(unit)
      return None

  def collect(self):
    """Waits for every pending run; Ctrl-C asks the local runs to checkpoint (a second one stops now)."""
    self.show()
    last_poll = 0.0
    while self.pending:
      try:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=2.0)
        for ref in ready:
          unit = self.pending.pop(ref)
          found = self.result_of(ref, unit)
          for spec, result in zip(unit, found or ()):
            if self.interrupting and result["status"] != "finished":
              result = {"status": "interrupted", "error": result.get("error")}
            self.record(spec, result)
        if time.time() - last_poll > 5.0:
          last_poll = time.time()
          for unit in self.pending.values():
            for spec in unit:
              self.done_steps[spec.name] = max(self.done_steps[spec.name], last_evaluation_step(spec.workdir))
          self.show()
      except KeyboardInterrupt:
        if self.interrupting or self.ray_address:
          raise
        self.interrupting = True  # a second Ctrl-C stops without waiting for the checkpoints
        running = {ref for ref, unit in self.pending.items() if os.path.isfile(_pid_file(self.results, unit[0]))}
        for ref in set(self.pending) - running:
          self.ray.cancel(ref)  # queued runs do not start
        count = _interrupt_local_runs(self.results, [self.pending[ref][0] for ref in running])
        self.say(f"{PROG}: interrupted: asked {count} running run(s) to checkpoint; waiting for them "
                 f"(Ctrl-C again to stop now)")


# ---- checking a grid before it runs ---------------------------------------------------------------------

def choose(values, allowed, what, default, form=None):
  """The values of list flag `--<what>` (default: `default`), each in `allowed` or, with `form` (a regular
  expression and its description), matching it; UsageError naming the first that is neither."""
  if values is None:
    return tuple(default)
  values = tuple(v.strip() for v in values if v.strip())
  listed = ", ".join(allowed) + (f", or {form[1]}" if form else "")
  if not values:
    raise UsageError(f"--{what} is empty; allowed: {listed}")
  for value in values:
    if value not in allowed and not (form and form[0].fullmatch(value)):
      raise UsageError(f"unknown {what[:-1]} {value!r} in --{what}; allowed: {listed}")
  return tuple(dict.fromkeys(values))


def choose_estimators(values, default):
  """--estimators: labels and import paths, each maybe with `SHARED_SUFFIX`; two paths whose runs would share
  a directory are refused."""
  if values is not None:  # the label or path before the suffix is checked
    choose([split_shared(v.strip())[0] for v in values], ESTIMATORS, "estimators", default,
           (ESTIMATOR_PATH, ESTIMATOR_PATH_FORM + f", each maybe with {SHARED_SUFFIX}"))
  chosen = tuple(default) if values is None else tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
  seen = {}
  for estimator in chosen:
    other = seen.setdefault(estimator_directory(estimator), estimator)
    if other != estimator:
      raise UsageError(f"--estimators {other!r} and {estimator!r} would share the run directory "
                       f"{estimator_directory(estimator)!r}; give one of them per grid")
  return chosen


def check_estimator_options(text, estimators):
  """--estimator_options, checked for form here (the estimators check the names, `check_estimator_paths`)."""
  if not text:
    return ""
  if not any(common.is_estimator_path(estimator) for estimator in estimators):
    raise UsageError(f"--estimator_options is for estimators given by import path, module.path:ClassName; "
                     f"--estimators has none ({', '.join(estimators)})")
  try:
    common.parse_options(text)
  except common.ConfigError as error:
    raise UsageError(f"--estimator_options: {error}") from None
  return text


def modules_reach_local_runs():
  """A user's module found in the working directory (where the check's `python -c` looks) is found by the local
  Ray's workers too, which start elsewhere: the directory joins the PYTHONPATH they are given."""
  paths = [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]
  if os.getcwd() not in paths:
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + [os.getcwd()])


def choose_seeds(values, default):
  if values is None:
    return tuple(default)
  seeds = []
  for value in values:
    try:
      seed = int(value)
    except ValueError:
      raise UsageError(f"--seeds must be integers >= 0 separated by commas, got {value!r}") from None
    if seed < 0:
      raise UsageError(f"--seeds must be integers >= 0, got {seed}")
    seeds.append(seed)
  if not seeds:
    raise UsageError("--seeds is empty; give integers >= 0 separated by commas, e.g. 0,1,2")
  return tuple(dict.fromkeys(seeds))


# Run by `check_estimator_paths` in a child process (the driver does not load TensorFlow): argv[1] is the
# paths as JSON, argv[2] the options. A failure is one JSON line after the marker, status 2.
_CHECK_PATHS = """
import json, sys
from maddpg_tf.run import process
process.import_tensorflow()
import estimators
from maddpg_tf import config
options = config.parse_options(sys.argv[2])
for path in json.loads(sys.argv[1]):
  try:
    estimators.check(path, options)
  except ValueError as error:
    message = process.one_line(error)
    print("%s" + json.dumps(message if path in message else f"estimator {path!r}: {message}"), flush=True)
    sys.exit(2)
"""
_CHECK_MARKER = "maddpg-reproduce-check: "


def check_estimator_paths(estimators, options="", timeout=600):
  """Raises UsageError (one line) unless every estimator of `estimators` given by import path imports, is an
  estimator and accepts `options` ("name=value,...") at those values, built once as a run builds it."""
  paths = list(dict.fromkeys(split_shared(e)[0] for e in estimators if common.is_estimator_path(e)))
  if not paths:
    return
  environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  try:
    done = subprocess.run([sys.executable, "-c", _CHECK_PATHS % _CHECK_MARKER, json.dumps(paths), options or ""],
                          capture_output=True, text=True, env=environment, timeout=timeout)
  except subprocess.TimeoutExpired:
    raise UsageError(f"checking --estimators {','.join(paths)} took over {timeout} s (importing their "
                     f"modules); nothing was run") from None
  found = [line[len(_CHECK_MARKER):] for line in done.stdout.splitlines() if line.startswith(_CHECK_MARKER)]
  given = f"--estimators with --estimator_options={options}" if options else "--estimators"
  if found:
    raise UsageError(f"{given}: {json.loads(found[-1])}")
  if done.returncode != 0:
    last = [line for line in done.stderr.splitlines() if line.strip()][-1:] or ["no message"]
    raise UsageError(f"{given}: checking {','.join(paths)} failed (exit status {done.returncode}: "
                     f"{last[0].strip()})")


def check_existing_runs(specs):
  """UsageError naming the first run directory of the grid that holds another run (another food rule, a
  changed setting), before anything is written; the grid would otherwise fail it after starting Ray."""
  for spec in specs:
    # A user's estimator's config is completed by the estimator itself (TensorFlow): its run checks it.
    if common.is_estimator_path(spec.estimator) or not os.path.isfile(os.path.join(spec.workdir, "config.json")):
      continue
    try:
      workdir_lib.Workdir(spec.workdir).check(common.resolve(ml_collections.ConfigDict(spec.config)))
    except (errors.RunError, common.ConfigError) as error:
      raise UsageError(f"{spec.name}: {error}") from None


def check_results(results, budget, fidelity, run=True):
  """UsageError unless `results` can take this grid's runs and outputs (with `run`: writable from here)."""
  if os.path.exists(results) and not os.path.isdir(results):
    raise UsageError(f"--results {results} is a file, not a directory")
  if not run and not os.path.isdir(results):
    raise UsageError(f"--results {results} does not exist; --norun builds outputs from the runs in an existing "
                     f"--results directory")
  manifest = _read_json(os.path.join(results, "grid.json"))
  if manifest and "budget" in manifest and (manifest.get("budget"), manifest.get("fidelity")) != (budget, fidelity):
    raise UsageError(f"--results {results} holds runs of budget {manifest.get('budget')!r}, fidelity "
                     f"{manifest.get('fidelity')!r}; use another --results for budget {budget!r}, fidelity "
                     f"{fidelity!r}")
  try:
    os.makedirs(results, exist_ok=True)
  except OSError as error:
    raise UsageError(f"--results {results}: {error.strerror or error}") from None
  if not os.access(results, os.W_OK):
    raise UsageError(f"--results {results} is not writable")
  if run:
    check_writable(results)


def print_report(report):
  """The grid's counts on stdout; each retried, failed and interrupted run by name on stderr."""
  evaluated = f" ({len(report.evaluated)} given their absolute metric)" if report.evaluated else ""
  print(f"{PROG}: {len(report.finished)} trained, {len(report.skipped) + len(report.evaluated)} already "
        f"finished{evaluated}, "
        f"{len(report.failed)} failed, {len(report.interrupted)} interrupted, {len(report.retried)} retried "
        f"({report.seconds:.0f} s)", flush=True)
  for name, lost in report.retried.items():
    print(f"{PROG}: retried: {name} ({len(lost)}x): {' | '.join(reason[:200] for reason in lost)}",
          file=sys.stderr)
  for name, reason in report.failed.items():
    print(f"{PROG}: failed: {name}: {reason}", file=sys.stderr)
  if report.interrupted:
    print(f"{PROG}: interrupted: {', '.join(report.interrupted)}; run the same command to resume",
          file=sys.stderr)
