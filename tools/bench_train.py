#!/usr/bin/env python
"""Training throughput against the bare environment, at the paper's settings.

    python tools/bench_train.py                 # the three tasks below, ~4 minutes on 2 quiet cores
    python tools/bench_train.py --quick --json  # short windows (~1.5 minutes); JSON on the last line
    python tools/bench_train.py --tasks lbf-8x8-2p-2f-coop --estimator stgs-1
    python tools/bench_train.py --quick --set loop.asynchronous_updates=false   # A/B any config field
    python tools/bench_train.py --quick --backends reference,fast               # once configs have env_backend

For each task (and backend), in one process and side by side (the machine is shared and noisy: compare
ratios):

1. bare: the task's `VectorEnvironment` (or the fast backend's) at the config's `num_envs`, in this
   process, stepped with `random_actions`; half the time before the training measurement and half after
   (their spread says how steady the machine was). Rate b = env steps / s.
2. train: a real `experiment.Experiment` at the config's defaults, with the warm-up shrunk to about two
   batches and evaluations and checkpoints pushed past the end. A `WindowClock` observer records
   (time, env steps, updates scheduled) at every step. An update cycle starts at the first step after
   an update block was scheduled; once `settle_blocks` blocks have been scheduled (the first compiles,
   and in the asynchronous loop the second waits for it), `windows` consecutive windows of at least
   `window_s` seconds each are cut at cycle starts, so each holds whole cycles, and the clock then ends the
   run by raising `WindowsDone`. Rate t = window env steps / window seconds; the figure is t / b.
3. the update: `learner.step_block` on real batches from the run's replay buffer, at the run's block
   size, timed after the run in the same process: ms per update u. Its share of the windows is
   (updates in the windows) x u / (window seconds): how busy the learner was. Also timed: `sample` on the
   replay buffer (ms) and the loop's actor on its current observations (us per call).
4. memory of a 2,000,000-transition `ReplayBuffer` for lbf-15x15-4p-5f at the config's observation dtype
   (`nbytes`: what a full buffer holds), against 2 GB; the paper code's LBF 8x8 figures beside ours.
CPU: cores used by this process (its env workers included) and by other processes during each part.

`run_benchmark(tasks, mode=..., estimator=...)` returns the dict that `--json` prints (plus "details").
"""

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_TASKS = ("lbf-8x8-2p-2f-coop", "lbf-15x15-4p-5f", "rware-tiny-4ag")
# JSON key prefixes of the tasks; any other task gets its name with '-' -> '_'.
KEY_PREFIX = {"lbf-8x8-2p-2f-coop": "lbf_8x8", "lbf-15x15-4p-5f": "lbf_15x15", "rware-tiny-4ag": "rware_tiny_4ag"}
# The targets: training env steps/s over bare-environment env steps/s (reference backend).
TARGETS = {"lbf-8x8-2p-2f-coop": 0.5, "lbf-15x15-4p-5f": 0.35, "rware-tiny-4ag": 0.6}
BACKENDS = ("reference", "fast")
BUFFER_TASK = "lbf-15x15-4p-5f"
BUFFER_CAPACITY = 2_000_000
BUFFER_TARGET_GB = 2.0
# ../shared/paper/BASELINES.md: the authors' PyTorch code on this kind of machine, LBF 8x8-2p-2f-coop.
PAPER_LBF_8X8 = {"bare_steps_per_s": 13_000,
                 "train_steps_per_s": {"stgs-1": 1010, "stgs-t": 1092, "grmck": 721, "gst": 850},
                 "ms_per_update": {"stgs-1": 8.9, "stgs-t": 8.2, "grmck": 14.1, "gst": 9.9}}


@dataclasses.dataclass(frozen=True)
class Mode:
  bare_s: float         # bare-environment seconds, in two halves (before and after training)
  window_s: float       # minimum length of each timed training window
  windows: int          # consecutive training windows
  settle_blocks: int    # update blocks scheduled before the first window starts
  update_calls: int     # timed learner.step_block calls
  act_calls: int        # timed acting / sampling calls
  max_wait_s: float     # give up if the windows have not started by then


MODES = {
    "full": Mode(bare_s=16.0, window_s=10.0, windows=3, settle_blocks=3, update_calls=30, act_calls=1000,
                 max_wait_s=300.0),
    "quick": Mode(bare_s=3.0, window_s=3.5, windows=2, settle_blocks=2, update_calls=8, act_calls=200,
                  max_wait_s=120.0),
    # For tests only: seconds, not a measurement.
    "tiny": Mode(bare_s=0.3, window_s=0.2, windows=2, settle_blocks=1, update_calls=2, act_calls=5,
                 max_wait_s=120.0),
}


def key_prefix(task):
  return KEY_PREFIX.get(task, task.replace("-", "_").replace(".", "_"))


# ---- machine ---------------------------------------------------------------------------------------------

def _git_revision():
  try:
    revision = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    dirty = bool(subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout.strip())
  except (OSError, subprocess.SubprocessError):
    return "unknown", None
  return revision, dirty


def _cpu_model():
  try:
    with open("/proc/cpuinfo") as handle:
      for line in handle:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return None


def environment_info():
  """TF version, git revision, CPU, thread settings and machine load."""
  import tensorflow as tf
  revision, dirty = _git_revision()
  return {
      "tf_version": tf.__version__, "git_revision": revision, "git_dirty": dirty,
      "python": sys.version.split()[0], "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
      "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
      "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
      "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
      "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
  }


def _children_cpu_s():
  """CPU seconds so far of this process's live child processes (Linux /proc; 0 elsewhere)."""
  total = 0.0
  try:
    pids = set()
    for task in os.listdir("/proc/self/task"):
      with open(f"/proc/self/task/{task}/children") as handle:
        pids.update(handle.read().split())
    for pid in pids:
      with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
      total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
  except (OSError, ValueError, IndexError):
    pass
  return total


class CpuMeter:
  """Average cores busy between `start()` and `stop()`: this process with its children (the env workers),
  and every other process on the machine (from /proc/stat: how much of the cores neighbours took)."""

  def __init__(self):
    self.start()

  @staticmethod
  def _machine_busy_s():
    try:
      with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
      return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

  @staticmethod
  def _own_s():
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system + _children_cpu_s()

  def start(self):
    self.wall, self.machine, self.own = time.perf_counter(), self._machine_busy_s(), self._own_s()

  def stop(self):
    """{"own_cores": ..., "other_cores": ... (None without /proc/stat)}."""
    wall = max(time.perf_counter() - self.wall, 1e-9)
    machine, own = self._machine_busy_s(), self._own_s()
    result = {"own_cores": (own - self.own) / wall, "other_cores": None}
    if machine is not None and self.machine is not None:
      result["other_cores"] = max(0.0, (machine - self.machine) - (own - self.own)) / wall
    return result


# ---- configs -------------------------------------------------------------------------------------------

def apply_overrides(config, overrides):
  """Sets dotted config fields, e.g. {"loop.asynchronous_updates": False}; an unknown field raises
  KeyError naming the fields there are."""
  for dotted, value in (overrides or {}).items():
    parts = dotted.split(".")
    target = config
    for depth, part in enumerate(parts):
      keys = sorted(target.keys()) if hasattr(target, "keys") else []
      if part not in keys:
        where = ".".join(parts[:depth]) or "the top level"
        raise KeyError(f"unknown config field {dotted!r}; fields at {where}: {', '.join(keys) or 'none'}")
      if depth < len(parts) - 1:
        target = target[part]
    target[parts[-1]] = value
  return config


def parse_override(text):
  """'loop.asynchronous_updates=false' -> ('loop.asynchronous_updates', False) (JSON values, else strings)."""
  key, sep, value = text.partition("=")
  if not sep or not key.strip():
    raise ValueError(f"--set wants key=value, got {text!r}")
  value = value.strip()
  if value.lower() in ("true", "false"):
    return key.strip(), value.lower() == "true"
  try:
    return key.strip(), json.loads(value)
  except ValueError:
    return key.strip(), value


def task_config(task, estimator="gst", overrides=None, seed=0):
  """The task's config at the paper's settings, with `overrides`."""
  from maddpg_tf import config as config_lib
  config = config_lib.get_config(f"task={task},estimator={estimator}")
  config.seed = seed
  return apply_overrides(config, overrides)


# ---- 1. the bare environment ---------------------------------------------------------------------------

def make_bare_env(task, num_envs, seed, episode_limit, backend="reference"):
  """The task's envs in this process: the reference `VectorEnvironment` or the fast backend's."""
  import inspect
  from maddpg_tf import environments
  if backend == "reference":
    return environments.make(task, num_envs=num_envs, seed=seed, episode_limit=episode_limit)
  if "backend" in inspect.signature(environments.make).parameters:
    return environments.make(task, num_envs=num_envs, seed=seed, episode_limit=episode_limit, backend=backend)
  from maddpg_tf.envs import fast_common
  return fast_common.FastVectorEnvironment(task, num_envs, seed, episode_limit)


def bare_rate(task, num_envs, seconds, episode_limit, seed=0, backend="reference"):
  """(env steps, seconds) of `num_envs` envs stepped with uniform random actions for about `seconds`."""
  import numpy as np
  env = make_bare_env(task, num_envs, seed, episode_limit, backend)
  rng = np.random.default_rng(seed)
  try:
    env.reset()
    for _ in range(10):  # first calls: imports, caches, compiled kernels
      env.step(env.random_actions(rng))
    steps, start = 0, time.perf_counter()
    while True:
      for _ in range(20):
        env.step(env.random_actions(rng))
      steps += 20 * num_envs
      now = time.perf_counter()
      if now - start >= seconds:
        return steps, now - start
  finally:
    env.close()


# ---- 2. the training loop ------------------------------------------------------------------------------

class WindowsDone(Exception):
  """Raised by `WindowClock` from inside `Experiment.run()` once its last window has ended."""


class WindowClock:
  """An `environment_loop.Observer` that cuts timed windows out of the real training loop (module doc).

  `bind(counters)` gives it the run's `types.Counters` before `run()`. After the run: `times`,
  `env_steps`, `updates` (one entry per step) and `cuts` (indices of the window boundaries, windows + 1).
  """

  def __init__(self, window_s, windows, settle_blocks, max_wait_s, clock=time.perf_counter):
    if windows < 1 or settle_blocks < 1:
      raise ValueError(f"WindowClock needs windows >= 1 and settle_blocks >= 1, got {windows}, {settle_blocks}")
    self.window_s, self.windows, self.settle_blocks, self.max_wait_s = window_s, windows, settle_blocks, max_wait_s
    self.clock = clock
    self.counters = None
    self.times, self.env_steps, self.updates, self.cuts = [], [], [], []
    self.blocks = 0

  def bind(self, counters):
    self.counters = counters

  def observe(self, step, actions):
    del step, actions
    now, c = self.clock(), self.counters
    new_cycle = bool(self.updates) and c.updates != self.updates[-1]
    self.times.append(now)
    self.env_steps.append(c.env_steps)
    self.updates.append(c.updates)
    if not new_cycle:
      if not self.cuts and now - self.times[0] > self.max_wait_s:
        raise RuntimeError(f"bench_train: {self.blocks} update block(s) in {self.max_wait_s:.0f} s of training, "
                           f"{self.settle_blocks} needed before the first window")
      return
    self.blocks += 1
    if self.blocks >= self.settle_blocks and (not self.cuts or now - self.times[self.cuts[-1]] >= self.window_s):
      self.cuts.append(len(self.times) - 1)
      if len(self.cuts) == self.windows + 1:
        raise WindowsDone()

  def metrics(self):
    """Per window: (seconds, env steps, updates scheduled); plus the totals over all windows."""
    if len(self.cuts) < 2:
      return {}
    spans = [(self.times[b] - self.times[a], self.env_steps[b] - self.env_steps[a], self.updates[b] - self.updates[a])
             for a, b in zip(self.cuts, self.cuts[1:])]
    seconds, steps, updates = (sum(x) for x in zip(*spans))
    return {"window_s": seconds, "window_env_steps": steps, "window_updates": updates,
            "train_steps_per_s": steps / seconds, "window_steps_per_s": [s / t for t, s, _ in spans],
            "settle_s": self.times[self.cuts[0]] - self.times[0]}


def _mean_seconds(function, calls):
  """Mean seconds per call of `function()` over `calls` calls, after one unmeasured call."""
  function()
  started = time.perf_counter()
  for _ in range(calls):
    function()
  return (time.perf_counter() - started) / calls


def time_parts(exp, mode, seed):
  """ms per update (`learner.step_block` at the run's block size, on batches from its replay buffer), ms
  per replay `sample`, us per acting call of the loop's actor on its current observations."""
  import numpy as np
  rng = np.random.default_rng([seed, 99])
  batch_size, block = exp.config.replay.batch_size, exp.updates.settings.block_size
  batches = [exp.replay.sample(batch_size, rng) for _ in range(block)]
  calls = [0]

  def update_block():
    k = calls[0]
    calls[0] += 1
    seeds = [np.array([seed, 10_000_000 + k * block + j], np.int64) for j in range(block)]
    # step_block reads each call's finiteness record back, so it returns once the compiled call is done.
    exp.learner.step_block(batches, seeds, [float(k * block + j) for j in range(block)], block_size=block)

  block_s = _mean_seconds(update_block, mode.update_calls)
  sample_s = _mean_seconds(lambda: exp.replay.sample(batch_size, rng), mode.act_calls)
  observations = exp.loop.observations
  act_s = _mean_seconds(lambda: exp.loop.actor.select_actions(observations), mode.act_calls)
  return {"block_size": block, "update_block_ms": 1e3 * block_s, "update_ms": 1e3 * block_s / block,
          "sample_ms": 1e3 * sample_s, "act_us": 1e6 * act_s}


def measure_training(config, mode, backend=None, seed=0):
  """Runs an Experiment of `config` until the `WindowClock`'s windows are done; returns a dict (module
  doc). `backend`: sets `config.env_backend` (None: the config's own)."""
  from maddpg_tf import experiment
  config = config.copy_and_resolve_references()
  if backend is not None and "env_backend" in config:
    config.env_backend = backend
  limit = experiment.resolve_config(config).loop.episode_limit
  # About two batches of random transitions: the paper's 400 warm-up episodes only fill the buffer.
  config.loop.warmup_episodes = max(config.num_envs, math.ceil(2 * config.replay.batch_size / limit))
  config.loop.eval_every_steps = 10 ** 15   # only the step-0 evaluation, before the windows
  config.loop.eval_episodes = config.loop.eval_num_envs = 1
  config.checkpoint.every_steps = 10 ** 15
  config.total_steps = 10 ** 15             # the clock ends the run
  clock = WindowClock(mode.window_s, mode.windows, mode.settle_blocks, mode.max_wait_s)
  with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
    with experiment.Experiment(config, os.path.join(tmp, "run"), progress=False, observers=[clock]) as exp:
      clock.bind(exp.counters)
      try:
        exp.run()
      except WindowsDone:
        pass
      else:
        raise RuntimeError("bench_train: Experiment.run() returned before the timed windows ended")
      result = clock.metrics()
      result.update(time_parts(exp, mode, seed))
      c = exp.config
      result.update(
          task=exp.task.name, estimator=c.estimator.label, backend=c.get("env_backend", "reference"),
          num_envs=c.num_envs, episode_limit=limit, batch_size=c.replay.batch_size,
          updates_per_episode=c.loop.updates_per_episode, hidden_sizes=list(c.learner.hidden_sizes),
          fidelity=c.fidelity, asynchronous_updates=bool(c.loop.asynchronous_updates), env_workers=c.env_workers,
          num_agents=exp.env.spec.num_agents, observation_size=exp.env.spec.observation_size)
  result["updates_per_env_step"] = result["window_updates"] / max(result["window_env_steps"], 1)
  result["update_share"] = result["window_updates"] * result["update_ms"] / 1e3 / result["window_s"]
  return result


def measure_task(config, mode, backend, seed=0):
  """Bare (half before, half after) and training of one config on one backend, with CPU use."""
  from maddpg_tf import experiment
  limit = experiment.resolve_config(config).loop.episode_limit
  meter = CpuMeter()
  steps_a, seconds_a = bare_rate(config.task, config.num_envs, mode.bare_s / 2, limit, seed, backend)
  bare_cpu_a = meter.stop()
  meter.start()
  result = measure_training(config, mode, backend, seed)
  result["cpu"] = meter.stop()
  meter.start()
  steps_b, seconds_b = bare_rate(config.task, config.num_envs, mode.bare_s / 2, limit, seed + 1, backend)
  result["bare_cpu"] = [bare_cpu_a, meter.stop()]
  others = [x["other_cores"] for x in (*result["bare_cpu"], result["cpu"]) if x["other_cores"] is not None]
  result["other_processes_cores"] = max(others) if others else None
  result["bare_steps_per_s"] = (steps_a + steps_b) / (seconds_a + seconds_b)
  result["bare_halves_steps_per_s"] = [steps_a / seconds_a, steps_b / seconds_b]
  result["env_vector_step_us"] = 1e6 * config.num_envs / result["bare_steps_per_s"]
  result["train_over_bare"] = result["train_steps_per_s"] / result["bare_steps_per_s"]
  return result


# ---- 4. memory -----------------------------------------------------------------------------------------

def buffer_memory(task=BUFFER_TASK, capacity=BUFFER_CAPACITY):
  """Bytes of a `capacity`-transition ReplayBuffer for `task` at the config's observation dtype and at
  float32 (`nbytes`; np.zeros is lazy, so this is what a full buffer holds, not the current RSS)."""
  from maddpg_tf import environments, replay_buffer
  env = environments.make(task, num_envs=1)
  spec = env.spec
  env.close()
  dtype = task_config(task).replay.observation_dtype
  result = {"task": task, "capacity": capacity, "num_agents": spec.num_agents,
            "observation_size": spec.observation_size, "observation_dtype": str(dtype)}
  for name, kind in (("default", dtype), ("float32", "float32")):
    result[f"{name}_bytes"] = int(replay_buffer.ReplayBuffer(capacity, spec.num_agents, spec.observation_size,
                                                             kind).nbytes)
  return result


# ---- the whole benchmark -------------------------------------------------------------------------------

def set_threads(intra_op=None, inter_op=None):
  """TF's thread pools; only possible before TF runs its first op (returns False if too late)."""
  import tensorflow as tf
  try:
    if intra_op is not None:
      tf.config.threading.set_intra_op_parallelism_threads(int(intra_op))
    if inter_op is not None:
      tf.config.threading.set_inter_op_parallelism_threads(int(inter_op))
  except RuntimeError:
    return False
  return True


def task_keys(prefix, runs, task):
  """The flat JSON keys of one task; `runs`: {backend: measure_task's dict}. The plain keys describe the
  reference backend (the targets' baseline) when it ran, else the only backend that did."""
  main = runs.get("reference") or next(iter(runs.values()))
  target = TARGETS.get(task)
  ratio = main["train_over_bare"]
  out = {f"{prefix}_{k}": main[k] for k in ("bare_steps_per_s", "train_steps_per_s", "train_over_bare",
                                            "update_ms", "update_block_ms", "update_share", "sample_ms",
                                            "act_us", "env_vector_step_us", "updates_per_env_step",
                                            "other_processes_cores", "window_steps_per_s")}
  out.update({f"{prefix}_target": target, f"{prefix}_pass": None if target is None else bool(ratio >= target)})
  if "fast" in runs:
    fast = runs["fast"]
    out.update({f"{prefix}_fast_bare_steps_per_s": fast["bare_steps_per_s"],
                f"{prefix}_fast_train_steps_per_s": fast["train_steps_per_s"],
                f"{prefix}_fast_train_over_bare": fast["train_over_bare"]})
    if "reference" in runs:
      out[f"{prefix}_train_over_reference_bare"] = fast["train_steps_per_s"] / runs["reference"]["bare_steps_per_s"]
  return out


def run_benchmark(tasks=DEFAULT_TASKS, mode="quick", estimator="gst", seed=0, log=print, overrides=None,
                  backends=("reference",)):
  """Measures every task on every backend; returns a flat JSON-able dict (keys: see `--json`) with the
  per-task dicts under "details". `overrides`: {dotted config field: value} for every task's config."""
  settings = MODES[mode]
  import tensorflow as tf  # noqa: F401  (imported before anything is timed)
  info = environment_info()
  log(f"bench_train: mode {mode}, estimator {estimator}, backends {','.join(backends)}, TF {info['tf_version']}, "
      f"git {info['git_revision'][:12]}{' (dirty)' if info['git_dirty'] else ''}, python {info['python']}")
  log(f"  machine: {info['cpu_model']}, cpu_count {info['cpu_count']}, affinity {info['cpu_affinity']}; TF "
      f"intra-op {info['tf_intra_op_threads']} inter-op {info['tf_inter_op_threads']} (0 = TF default); load "
      f"average {info['load_average']}")
  if overrides:
    log(f"  config overrides: {overrides}")
  out = {"mode": mode, "estimator": estimator, "overrides": dict(overrides or {}), "backends": list(backends),
         **info}
  details = {}
  for task in tasks:
    config = task_config(task, estimator, overrides, seed)
    runs = {backend: measure_task(config, settings, backend, seed) for backend in backends}
    name = next(iter(runs.values()))["task"]
    details[name] = runs
    out.update(task_keys(key_prefix(name), runs, name))
    for run in runs.values():
      _log_task(log, run, TARGETS.get(name) if run["backend"] == "reference" else None)
    if "fast" in runs and "reference" in runs:
      log(f"  fast training over reference bare: {out[key_prefix(name) + '_train_over_reference_bare']:.3f}")

  memory = buffer_memory()
  gb = memory["default_bytes"] / 1e9
  out.update(buffer_2m_lbf_15x15_4p_5f_gb=gb, buffer_2m_lbf_15x15_4p_5f_float32_gb=memory["float32_bytes"] / 1e9,
             buffer_2m_target_gb=BUFFER_TARGET_GB, buffer_2m_pass=bool(gb <= BUFFER_TARGET_GB))
  log(f"\nreplay buffer, {memory['capacity']:,} transitions of {memory['task']} ({memory['num_agents']} agents, "
      f"obs {memory['observation_size']}), observations {memory['observation_dtype']} (config default): "
      f"{gb:.3f} GB from nbytes; target <= {BUFFER_TARGET_GB} GB: {'PASS' if out['buffer_2m_pass'] else 'FAIL'}"
      f"  (float32 observations: {memory['float32_bytes'] / 1e9:.3f} GB)")
  paper_run = details.get("lbf-8x8-2p-2f-coop", {}).get("reference")
  if paper_run is not None:
    out.update(_paper_comparison(log, paper_run, estimator))
  out["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
  out["details"] = details
  return _json_safe(out)


def _json_safe(value):
  if isinstance(value, dict):
    return {k: _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  if hasattr(value, "item") and not isinstance(value, (str, bytes)):
    value = value.item()
  return None if isinstance(value, float) and not math.isfinite(value) else value


def _log_task(log, r, target):
  ratio = r["train_over_bare"]
  verdict = "" if target is None else f"  target >= {target:.2f}: {'PASS' if ratio >= target else 'FAIL'}"
  workers = r["env_workers"]
  log(f"\n{r['task']} [{r['backend']}] ({r['num_agents']} agents, obs {r['observation_size']}, {r['num_envs']} envs, "
      f"cut-off {r['episode_limit']}, {r['updates_per_episode']} update(s)/episode, batch {r['batch_size']}, "
      f"{'x'.join(map(str, r['hidden_sizes']))}, fidelity {r['fidelity']}, {r['estimator']}, "
      f"{'asynchronous' if r['asynchronous_updates'] else 'sequential'} updates, envs stepped "
      f"{'in the training process' if not workers else f'by {workers} worker process(es)'})")
  a, b = r["bare_halves_steps_per_s"]
  log(f"  bare  {r['bare_steps_per_s']:9,.0f} env steps/s   (before {a:,.0f}, after {b:,.0f})")
  log(f"  train {r['train_steps_per_s']:9,.0f} env steps/s   ({r['window_env_steps']:,} steps, "
      f"{r['window_updates']:,} updates in {r['window_s']:.1f} s; windows "
      f"{', '.join(f'{x:,.0f}' for x in r['window_steps_per_s'])}; first window after {r['settle_s']:.1f} s)")
  log(f"  train/bare {ratio:.3f}{verdict}")
  cpu, (bare_a, bare_b) = r["cpu"], r["bare_cpu"]
  if cpu["other_cores"] is not None:
    noisy = "  <- NOISY: another process was busy" if r["other_processes_cores"] > 0.3 else ""
    log(f"  machine: other processes used {bare_a['other_cores']:.2f} / {cpu['other_cores']:.2f} / "
        f"{bare_b['other_cores']:.2f} cores during bare / training part / bare (of {os.cpu_count()}); this process "
        f"{cpu['own_cores']:.2f} cores while training{noisy}")
  log(f"  update {r['update_ms']:.2f} ms ({r['update_block_ms']:.1f} ms per step_block of {r['block_size']}), "
      f"learner busy {100 * r['update_share']:.0f}% of the windows; sample {r['sample_ms']:.2f} ms, acting "
      f"{r['act_us']:.0f} us per call for {r['num_envs']} envs, env vector step {r['env_vector_step_us']:.0f} us "
      f"bare; updates per env step {r['updates_per_env_step']:.4f}")


def _paper_comparison(log, r, estimator):
  paper, out = PAPER_LBF_8X8, {}
  log("\nLBF 8x8-2p-2f-coop against the paper's code (BASELINES.md, same kind of machine, another day):")
  if (r.get("other_processes_cores") or 0) > 0.3:
    log(f"  (other processes used up to {r['other_processes_cores']:.1f} cores: absolute steps/s are not "
        f"comparable with the paper's quiet-machine figures; compare train/bare)")
  log(f"  ours ({estimator}): bare {r['bare_steps_per_s']:,.0f}, training {r['train_steps_per_s']:,.0f} steps/s = "
      f"{r['train_over_bare']:.3f} of bare; {r['update_ms']:.2f} ms per update")
  for label in ("stgs-1", "gst"):
    theirs = paper["train_steps_per_s"][label]
    key = label.replace("-", "")
    out[f"lbf_8x8_speedup_vs_paper_{key}"] = r["train_steps_per_s"] / theirs
    out[f"lbf_8x8_ratio_speedup_vs_paper_{key}"] = r["train_over_bare"] / (theirs / paper["bare_steps_per_s"])
    log(f"  paper {label.upper()}: {theirs:,} steps/s ({theirs / paper['bare_steps_per_s']:.3f} of bare), "
        f"{paper['ms_per_update'][label]} ms per update; speed-up {out[f'lbf_8x8_speedup_vs_paper_{key}']:.1f}x "
        f"in steps/s, {out[f'lbf_8x8_ratio_speedup_vs_paper_{key}']:.1f}x in train/bare")
  if estimator in paper["ms_per_update"]:
    out["lbf_8x8_update_speedup_vs_paper"] = paper["ms_per_update"][estimator] / r["update_ms"]
  return out


def main(argv=None):
  from maddpg_tf import cli
  parser = cli.ArgumentParser(prog="bench_train", description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="short windows (about 1.5 minutes on 2 quiet cores)")
  parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests: seconds, not a measurement
  parser.add_argument("--json", action="store_true", help="print one JSON object on the last stdout line")
  parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                      help=f"comma-separated task names (default: {','.join(DEFAULT_TASKS)})")
  parser.add_argument("--estimator", default="gst", help="estimator label from the configs (default gst)")
  parser.add_argument("--backends", default="reference",
                      help="comma-separated env backends to measure: reference, fast (needs the config key "
                           "env_backend; default reference)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="override a config field for every task, e.g. --set loop.asynchronous_updates=false "
                           "(repeatable; values parsed as JSON)")
  parser.add_argument("--intra-op-threads", type=int, default=None,
                      help="TF intra-op threads for this process (default: TF's, all cores)")
  parser.add_argument("--inter-op-threads", type=int, default=None,
                      help="TF inter-op threads for this process (default: TF's)")
  args = parser.parse_args(argv)
  tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
  if not tasks:
    parser.error(f"--tasks is empty, got {args.tasks!r}; give comma-separated task names, e.g. "
                 f"{','.join(DEFAULT_TASKS)}")
  backends = [b.strip() for b in args.backends.split(",") if b.strip()]
  if not backends or any(b not in BACKENDS for b in backends) or len(set(backends)) < len(backends):
    parser.error(f"--backends must be distinct names from {', '.join(BACKENDS)}, got {args.backends!r}")
  for name in ("intra_op_threads", "inter_op_threads"):
    if getattr(args, name) is not None and getattr(args, name) < 1:
      parser.error(f"--{name.replace('_', '-')} must be an integer >= 1, got {getattr(args, name)}")
  if args.seed < 0:
    parser.error(f"--seed must be an integer >= 0, got {args.seed}")
  try:
    overrides = dict(parse_override(item) for item in args.set)
    configs = [task_config(task, args.estimator, overrides, args.seed) for task in tasks]
  except (ValueError, TypeError) as error:  # unknown task or estimator, a value of the wrong type
    parser.error(str(error))
  except KeyError as error:
    parser.error(error.args[0])
  if "fast" in backends and "env_backend" not in configs[0]:
    parser.error("--backends with fast needs the config key env_backend, which this version's config lacks")
  cli.import_tensorflow()  # without its import-time log lines
  if not set_threads(args.intra_op_threads, args.inter_op_threads):
    print("bench_train: warning: TF already initialised in this process; thread settings unchanged", flush=True)
  from maddpg_tf import experiment
  for config in configs:  # every value checked before anything is timed
    try:
      experiment.resolve_config(config)
    except experiment.RunError as error:
      parser.error(f"{config.task}: {error}")
  mode = "tiny" if args.tiny else "quick" if args.quick else "full"
  result = run_benchmark(tasks, mode=mode, estimator=args.estimator, seed=args.seed, overrides=overrides,
                         backends=tuple(backends), log=lambda *a: print(*a, flush=True))
  if args.json:
    print(json.dumps({k: v for k, v in result.items() if k != "details"}, sort_keys=True, allow_nan=False),
          flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
