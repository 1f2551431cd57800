#!/usr/bin/env python
"""Training throughput against the bare environment, at the paper's settings.

    python tools/bench_train.py                 # the three tasks below, ~4 minutes on 2 quiet cores
    python tools/bench_train.py --quick --json  # short windows (~1.5 minutes); JSON on the last line
    python tools/bench_train.py --tasks lbf-8x8-2p-2f-coop --estimator stgs-1
    python tools/bench_train.py --quick --set loop.asynchronous_updates=false   # A/B any config field
    python tools/bench_train.py --quick --backends reference,fast               # and the fast backend
    python tools/bench_train.py --quick --tasks lbf-15x15-4p-5f --compare-sharing  # shared vs per-agent update

For each task (and backend), in one process and side by side (the machine is shared and noisy: compare
ratios, and read the CPU line: training needs both cores, the bare env one):

1. bare: the task's `VectorEnvironment` (or the fast backend's) at the config's `num_envs`, in this
   process, stepped with `random_actions`, half the time before training and half after. Rate b.
2. train: a real `experiment.Experiment` at the config's defaults on that backend (env workers:
   `BACKEND_WORKERS`), its warm-up shrunk to about two batches, evaluations and checkpoints pushed past
   the end. Its `WindowClock` observer records (time, env steps, updates scheduled) at every step; a
   step after which an update block was scheduled ends an update cycle. After `settle_blocks` blocks
   (the first compiles; in the asynchronous loop the second waits for it), `windows` windows of at least
   `window_s` seconds are cut at cycle ends, so each holds whole cycles, and the clock ends the run
   (`WindowsDone`). Rate t = window env steps / seconds; the figure is t / b, against the issue's targets
   (reference backend); with both backends also t(fast) / b(reference).
3. the update: `learner.step_block` at the run's block size on batches from the run's replay buffer,
   timed after the run: u ms per update; its share = window updates x u / window seconds (the learner's
   busy fraction, an estimate: over 1 when the timing after the run met a busier machine than the
   windows). Also `sample` on the replay buffer and the loop's actor on its observations. With
   `--compare-sharing`, two fresh learners of the run's settings, per-agent ("stacked") and shared
   (`learner.share_parameters`), on the same batches, their calls interleaved: ms per update of each.
4. memory of a 2,000,000-transition `ReplayBuffer` for lbf-15x15-4p-5f (`nbytes` at the config's
   observation dtype) against 2 GB, and the paper code's LBF 8x8 figures beside ours.

`run_benchmark(tasks, mode=..., estimator=...)` returns the dict `--json` prints, plus "details".
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_TASKS = ("lbf-8x8-2p-2f-coop", "lbf-15x15-4p-5f", "rware-tiny-4ag", "simple_spread")
# JSON key prefixes of the tasks; any other task gets its name with '-' -> '_'.
KEY_PREFIX = {"lbf-8x8-2p-2f-coop": "lbf_8x8", "lbf-15x15-4p-5f": "lbf_15x15", "rware-tiny-4ag": "rware_tiny_4ag"}
# The targets: training env steps/s over bare env steps/s, both on the reference backend.
TARGETS = {"lbf-8x8-2p-2f-coop": 0.5, "lbf-15x15-4p-5f": 0.35, "rware-tiny-4ag": 0.6}
BACKENDS = ("reference", "fast")
# Env worker processes per backend unless `--set env_workers=N`: the reference envs in one worker, as the
# targets were measured (in the training process the packages' pure-Python envs share the learner's
# interpreter lock); the fast backend at the config's own count (0: a fast step costs less than a message).
BACKEND_WORKERS = {"reference": 1}
FAST_FAMILIES = ("lbf", "rware")  # the families with a fast backend (others are measured on reference only)
BUFFER_TASK, BUFFER_CAPACITY, BUFFER_TARGET_GB = "lbf-15x15-4p-5f", 2_000_000, 2.0
# The authors' PyTorch code measured on this kind of machine (2 cores, 2026-11-25), LBF 8x8-2p-2f-coop; these
# numbers are the record.
PAPER_LBF_8X8 = {"bare_steps_per_s": 13_000,
                 "train_steps_per_s": {"stgs-1": 1010, "stgs-t": 1092, "grmck": 721, "gst": 850},
                 "ms_per_update": {"stgs-1": 8.9, "stgs-t": 8.2, "grmck": 14.1, "gst": 9.9}}
# The per-task figures that become JSON keys `<prefix>_<name>`.
TASK_FIGURES = ("bare_steps_per_s", "train_steps_per_s", "train_over_bare", "update_ms", "update_block_ms",
                "update_share", "sample_ms", "act_us", "env_vector_step_us", "updates_per_env_step",
                "other_processes_cores", "window_steps_per_s")
# With --compare-sharing: ms per update of a per-agent and a shared learner, side by side.
SHARING_FIGURES = ("update_stacked_ms", "update_shared_ms", "shared_over_stacked")


@dataclasses.dataclass(frozen=True)
class Mode:
  bare_s: float       # bare-environment seconds, in two halves (before and after training)
  window_s: float     # minimum length of each training window
  windows: int
  settle_blocks: int  # update blocks scheduled before the first window starts
  update_calls: int   # timed learner.step_block calls
  act_calls: int      # timed acting and sampling calls
  max_wait_s: float   # give up if the first window has not started by then


MODES = {"full": Mode(16.0, 10.0, 3, 3, 30, 1000, 300.0), "quick": Mode(3.0, 3.5, 2, 2, 8, 200, 120.0),
         "tiny": Mode(0.3, 0.2, 2, 2, 2, 5, 120.0)}  # tiny: for tests, seconds, not a measurement


def key_prefix(task):
  return KEY_PREFIX.get(task, task.replace("-", "_").replace(".", "_"))


# ---- the machine ---------------------------------------------------------------------------------------

def environment_info():
  """TF version, git revision, CPU, thread settings and machine load."""
  import tensorflow as tf
  from maddpg_tf.run import workdir
  revision, dirty = workdir.git_revision(REPO)
  try:
    with open("/proc/cpuinfo") as handle:
      cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), None)
  except OSError:
    cpu = None
  return {"tf_version": tf.__version__, "git_revision": revision, "git_dirty": dirty,
          "python": sys.version.split()[0], "cpu_model": cpu, "cpu_count": os.cpu_count(),
          "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
          "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
          "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
          "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


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
  and every other process on the machine (/proc/stat)."""

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
    other = None if None in (machine, self.machine) else max(0.0, machine - self.machine - (own - self.own)) / wall
    return {"own_cores": (own - self.own) / wall, "other_cores": other}


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


# ---- configs -------------------------------------------------------------------------------------------

def apply_overrides(config, overrides):
  """Sets dotted config fields, e.g. {"loop.asynchronous_updates": False}; an unknown field raises
  KeyError naming the fields there are."""
  for dotted, value in (overrides or {}).items():
    parts, target = dotted.split("."), config
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
  key, value = key.strip(), value.strip()
  if value.lower() in ("true", "false"):
    return key, value.lower() == "true"
  try:
    return key, json.loads(value)
  except ValueError:
    return key, value


def task_config(task, estimator="gst", overrides=None, seed=0):
  """The task's config at the paper's settings, with `overrides`."""
  from maddpg_tf import config as config_lib
  config = config_lib.get_config(f"task={task},estimator={estimator}")
  config.seed = seed
  return apply_overrides(config, overrides)


# ---- measurements --------------------------------------------------------------------------------------

def bare_rate(task, num_envs, seconds, episode_limit, seed=0, backend="reference"):
  """(env steps, seconds) of `num_envs` envs in this process (`backend`: reference or fast) stepped with
  uniform random actions for about `seconds`."""
  import numpy as np
  from maddpg_tf.envs import builder as environments
  env = environments.make(task, num_envs=num_envs, seed=seed, episode_limit=episode_limit, backend=backend)
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
      if time.perf_counter() - start >= seconds:
        return steps, time.perf_counter() - start
  finally:
    env.close()


class WindowsDone(Exception):
  """Raised by `WindowClock` from inside `Experiment.run()` once its last window has ended."""


class WindowClock:
  """An `environment_loop.Observer` that cuts timed windows out of the training loop (see the module).

  `bind(counters)` gives it the run's `counting.Counter` before the run. Afterwards `times`, `env_steps`,
  `updates` hold one entry per step and `cuts` the indices of the windows' ends (windows + 1 of them).
  """

  def __init__(self, window_s, windows, settle_blocks, max_wait_s, clock=time.perf_counter):
    if windows < 1 or settle_blocks < 1:
      raise ValueError(f"WindowClock needs windows >= 1 and settle_blocks >= 1, got {windows}, {settle_blocks}")
    self.window_s, self.windows, self.settle_blocks, self.max_wait_s = window_s, windows, settle_blocks, max_wait_s
    self.clock, self.counters = clock, None
    self.times, self.env_steps, self.updates, self.cuts = [], [], [], []
    self.blocks = 0

  def bind(self, counters):
    self.counters = counters

  def observe(self, step, actions):
    del step, actions
    now, c = self.clock(), self.counters
    block = bool(self.updates) and c.updates != self.updates[-1]  # scheduled after the previous step
    self.times.append(now)
    self.env_steps.append(c.env_steps)
    self.updates.append(c.updates)
    if not block:
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
    """Totals over the windows (seconds, env steps, updates scheduled), the rate of each, and the seconds
    from the first training step to the first window; {} before the windows are done."""
    if len(self.cuts) < 2:
      return {}
    spans = [(self.times[b] - self.times[a], self.env_steps[b] - self.env_steps[a], self.updates[b] - self.updates[a])
             for a, b in zip(self.cuts, self.cuts[1:])]
    seconds, steps, updates = (sum(x) for x in zip(*spans))
    return {"window_s": seconds, "window_env_steps": steps, "window_updates": updates,
            "train_steps_per_s": steps / seconds, "window_steps_per_s": [s / t for t, s, _ in spans],
            "settle_s": self.times[self.cuts[0]] - self.times[0]}


def _mean_seconds(function, calls):
  function()  # not timed: first-call costs
  started = time.perf_counter()
  for _ in range(calls):
    function()
  return (time.perf_counter() - started) / calls


def _interleaved_seconds(functions, calls):
  """Mean seconds per call of each function, timed in turns (one call of each per round), so that both
  meet the same machine load."""
  for function in functions:
    function()  # not timed: first-call costs (compilation)
  totals = [0.0] * len(functions)
  for _ in range(calls):
    for index, function in enumerate(functions):
      started = time.perf_counter()
      function()
      totals[index] += time.perf_counter() - started
  return [total / calls for total in totals]


def _update_block(learner, batches, block, seed):
  """A function running one `step_block` of `block` updates on `batches` (fresh seeds each call)."""
  import numpy as np
  calls = [0]

  def update_block():
    first = 10_000_000 + block * calls[0]
    calls[0] += 1
    # step_block reads each call's finiteness record back, so it returns once the compiled call is done.
    learner.step_block(batches, [np.array([seed, first + j], np.int64) for j in range(block)],
                       [float(first + j) for j in range(block)], block_size=block)
  return update_block


def sharing_update_ms(exp, batches, block, mode, seed):
  """ms per update of a per-agent ("stacked") and a shared learner of the run's settings (fresh weights),
  on the same batches at the run's block size, calls interleaved."""
  from maddpg_tf import config as config_lib
  from maddpg_tf.agent import learner as learner_lib
  c, spec = exp.config, exp.env.spec
  functions = []
  for shared in (False, True):
    settings = dataclasses.replace(config_lib.learner_config(c), share_parameters=shared)
    learner = learner_lib.MADDPGLearner(spec.num_agents, spec.observation_size, spec.num_actions, settings,
                                        estimator=c.estimator.name, estimator_params=config_lib.estimator_params(c),
                                        seed=c.seed, jit_compile=c.jit_compile)
    functions.append(_update_block(learner, batches, block, seed))
  stacked_s, shared_s = _interleaved_seconds(functions, mode.update_calls)
  return {"update_stacked_ms": 1e3 * stacked_s / block, "update_shared_ms": 1e3 * shared_s / block,
          "shared_over_stacked": shared_s / stacked_s}


def time_parts(exp, mode, seed, compare_sharing=False):
  """ms per update (`learner.step_block` at the run's block size, on batches from its replay buffer), ms
  per replay `sample`, us per acting call of the loop's actor on its current observations; with
  `compare_sharing`, `sharing_update_ms`."""
  import numpy as np
  rng = np.random.default_rng([seed, 99])
  batch_size, block = exp.config.replay.batch_size, exp.updates.settings.block_size
  batches = [exp.replay.sample(batch_size, rng) for _ in range(block)]
  block_s = _mean_seconds(_update_block(exp.learner, batches, block, seed), mode.update_calls)
  sample_s = _mean_seconds(lambda: exp.replay.sample(batch_size, rng), mode.act_calls)
  act_s = _mean_seconds(lambda: exp.loop.actor.select_actions(exp.loop.observations), mode.act_calls)
  parts = {"block_size": block, "update_block_ms": 1e3 * block_s, "update_ms": 1e3 * block_s / block,
           "sample_ms": 1e3 * sample_s, "act_us": 1e6 * act_s}
  if compare_sharing:
    parts.update(sharing_update_ms(exp, batches, block, mode, seed))
  return parts


def measure_training(config, mode, backend=None, seed=0, workers=None, compare_sharing=False):
  """Trains `config` on `backend` with `workers` env workers (None: the config's own) until the clock's
  windows are done; returns the clock's metrics, `time_parts` and the run's settings."""
  from maddpg_tf.run import experiment
  config = config.copy_and_resolve_references()
  if backend is not None:
    config.env_backend = backend
  if workers is not None:
    config.env_workers = workers
  limit = experiment.resolve_config(config).loop.episode_limit
  # About two batches of random transitions: the paper's 400 warm-up episodes only fill the buffer.
  config.loop.warmup_episodes = max(config.num_envs, math.ceil(2 * config.replay.batch_size / limit))
  config.loop.eval_every_steps = config.checkpoint.every_steps = config.total_steps = 10 ** 15
  config.loop.eval_episodes = config.loop.eval_num_envs = 1  # the step-0 evaluation, before the windows
  clock = WindowClock(mode.window_s, mode.windows, mode.settle_blocks, mode.max_wait_s)
  with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
    with experiment.Experiment(config, os.path.join(tmp, "run"), progress=False, observers=[clock]) as exp:
      clock.bind(exp.counters)
      try:
        exp.run()
        raise RuntimeError("bench_train: Experiment.run() returned before the timed windows ended")
      except WindowsDone:
        pass
      result = {**clock.metrics(), **time_parts(exp, mode, seed, compare_sharing)}
      c, spec = exp.config, exp.env.spec
      result.update(task=exp.task.name, estimator=c.estimator.label, backend=c.get("env_backend", "reference"),
                    num_envs=c.num_envs, episode_limit=limit, batch_size=c.replay.batch_size,
                    updates_per_episode=c.loop.updates_per_episode, hidden_sizes=list(c.learner.hidden_sizes),
                    fidelity=c.fidelity, asynchronous_updates=bool(c.loop.asynchronous_updates),
                    env_workers=c.env_workers, num_agents=spec.num_agents, observation_size=spec.observation_size)
  result["updates_per_env_step"] = result["window_updates"] / max(result["window_env_steps"], 1)
  result["update_share"] = result["window_updates"] * result["update_ms"] / 1e3 / result["window_s"]
  return result


def measure_task(config, mode, backend, seed=0, workers=None, compare_sharing=False):
  """Bare (half before training, half after) and training of one config on one backend, with CPU use."""
  from maddpg_tf.run import experiment
  limit = experiment.resolve_config(config).loop.episode_limit
  meter, cpu = CpuMeter(), []

  def bare(seed):
    meter.start()
    steps, seconds = bare_rate(config.task, config.num_envs, mode.bare_s / 2, limit, seed, backend)
    cpu.append(meter.stop())
    return steps, seconds

  steps_a, seconds_a = bare(seed)
  meter.start()
  result = measure_training(config, mode, backend, seed, workers, compare_sharing)
  result["cpu"] = meter.stop()
  steps_b, seconds_b = bare(seed + 1)
  others = [x["other_cores"] for x in (*cpu, result["cpu"]) if x["other_cores"] is not None]
  result.update(bare_cpu=cpu, other_processes_cores=max(others) if others else None,
                bare_steps_per_s=(steps_a + steps_b) / (seconds_a + seconds_b),
                bare_halves_steps_per_s=[steps_a / seconds_a, steps_b / seconds_b])
  result["env_vector_step_us"] = 1e6 * config.num_envs / result["bare_steps_per_s"]
  result["train_over_bare"] = result["train_steps_per_s"] / result["bare_steps_per_s"]
  return result


def buffer_memory(task=BUFFER_TASK, capacity=BUFFER_CAPACITY):
  """Bytes of a `capacity`-transition ReplayBuffer for `task` at the config's observation dtype and at
  float32 (`nbytes`; np.zeros is lazy, so this is what a full buffer holds, not the current RSS)."""
  from maddpg_tf.agent import replay as replay_buffer
  from maddpg_tf.envs import builder as environments
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

def task_keys(prefix, runs, task):
  """The flat JSON keys of one task; `runs`: {backend: measure_task's dict}. The plain keys describe the
  reference backend (the targets' baseline) when it ran, else the one backend that did."""
  main = runs.get("reference") or next(iter(runs.values()))
  target = TARGETS.get(task)
  out = {f"{prefix}_{k}": main[k] for k in TASK_FIGURES}
  out.update({f"{prefix}_{k}": main[k] for k in SHARING_FIGURES if k in main})
  out.update({f"{prefix}_target": target,
              f"{prefix}_pass": None if target is None else bool(main["train_over_bare"] >= target)})
  if "fast" in runs:
    out.update({f"{prefix}_fast_{k}": runs["fast"][k] for k in ("bare_steps_per_s", "train_steps_per_s",
                                                               "train_over_bare")})
    if "reference" in runs:
      out[f"{prefix}_train_over_reference_bare"] = runs["fast"]["train_steps_per_s"] / main["bare_steps_per_s"]
  return out


def run_benchmark(tasks=DEFAULT_TASKS, mode="quick", estimator="gst", seed=0, log=print, overrides=None,
                  backends=("reference",), compare_sharing=False):
  """Measures every task on every backend; returns a flat JSON-able dict (keys: see `--json`) with the
  per-task dicts under "details". `overrides`: {dotted config field: value} for every task's config;
  `compare_sharing`: also a shared against a per-agent update (`sharing_update_ms`)."""
  import tensorflow as tf  # noqa: F401  (imported before anything is timed)
  info = environment_info()
  log(f"bench_train: mode {mode}, estimator {estimator}, backends {','.join(backends)}, TF {info['tf_version']}, "
      f"git {info['git_revision'][:12]}{' (dirty)' if info['git_dirty'] else ''}, python {info['python']}")
  log(f"  machine: {info['cpu_model']}, cpu_count {info['cpu_count']}, affinity {info['cpu_affinity']}; TF "
      f"intra-op {info['tf_intra_op_threads']} inter-op {info['tf_inter_op_threads']} (0 = TF default); load "
      f"average {info['load_average']}{f'; config overrides {overrides}' if overrides else ''}")
  out = {"mode": mode, "estimator": estimator, "overrides": dict(overrides or {}), "backends": list(backends),
         **info}
  details = {}
  for task in tasks:
    config = task_config(task, estimator, overrides, seed)
    from maddpg_tf.envs import builder as environments  # pylint: disable=g-import-not-at-top
    fast_exists = environments.resolve_task(task).family in FAST_FAMILIES
    runs = {b: measure_task(config, MODES[mode], b, seed, None if "env_workers" in (overrides or {})
                            else BACKEND_WORKERS.get(b), compare_sharing)
            for b in backends if b == "reference" or fast_exists}
    name = next(iter(runs.values()))["task"]
    details[name] = runs
    out.update(task_keys(key_prefix(name), runs, name))
    for run in runs.values():
      _log_task(log, run, TARGETS.get(name) if run["backend"] == "reference" else None)
    if f"{key_prefix(name)}_train_over_reference_bare" in out:
      log(f"  fast-backend training over reference bare: {out[key_prefix(name) + '_train_over_reference_bare']:.3f}")
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
  ratio, workers = r["train_over_bare"], r["env_workers"]
  log(f"\n{r['task']} [{r['backend']}] ({r['num_agents']} agents, obs {r['observation_size']}, {r['num_envs']} envs, "
      f"cut-off {r['episode_limit']}, {r['updates_per_episode']} update(s)/episode, batch {r['batch_size']}, "
      f"{'x'.join(map(str, r['hidden_sizes']))}, fidelity {r['fidelity']}, {r['estimator']}, "
      f"{'asynchronous' if r['asynchronous_updates'] else 'sequential'} updates, envs stepped "
      f"{f'by {workers} worker process(es)' if workers else 'in the training process'})")
  a, b = r["bare_halves_steps_per_s"]
  log(f"  bare  {r['bare_steps_per_s']:9,.0f} env steps/s   (before {a:,.0f}, after {b:,.0f})")
  log(f"  train {r['train_steps_per_s']:9,.0f} env steps/s   ({r['window_env_steps']:,} steps, {r['window_updates']:,} "
      f"updates in {r['window_s']:.1f} s; windows {', '.join(f'{x:,.0f}' for x in r['window_steps_per_s'])}; "
      f"first window {r['settle_s']:.1f} s after the first training step)")
  log(f"  train/bare {ratio:.3f}" + ("" if target is None else
                                     f"  target >= {target:.2f}: {'PASS' if ratio >= target else 'FAIL'}"))
  (bare_a, bare_b), cpu = r["bare_cpu"], r["cpu"]
  if cpu["other_cores"] is not None:
    log(f"  machine: other processes used {bare_a['other_cores']:.2f} / {cpu['other_cores']:.2f} / "
        f"{bare_b['other_cores']:.2f} cores during bare / training part / bare (of {os.cpu_count()}); this process "
        f"{cpu['own_cores']:.2f} cores while training"
        f"{'  <- NOISY: another process was busy' if r['other_processes_cores'] > 0.3 else ''}")
  log(f"  update {r['update_ms']:.2f} ms ({r['update_block_ms']:.1f} ms per step_block of {r['block_size']}), "
      f"learner busy {100 * r['update_share']:.0f}% of the windows; sample {r['sample_ms']:.2f} ms, acting "
      f"{r['act_us']:.0f} us per call for {r['num_envs']} envs, env vector step {r['env_vector_step_us']:.0f} us "
      f"bare; updates per env step {r['updates_per_env_step']:.4f}")
  if "update_shared_ms" in r:
    log(f"  update per-agent (stacked) {r['update_stacked_ms']:.2f} ms, shared {r['update_shared_ms']:.2f} ms "
        f"({r['shared_over_stacked']:.2f}x; fresh learners on the run's batches, interleaved)")


def _paper_comparison(log, r, estimator):
  """The paper code's LBF 8x8 figures beside ours (absolute steps/s only compare on a quiet machine)."""
  paper, out = PAPER_LBF_8X8, {}
  log(f"\nLBF 8x8-2p-2f-coop against the paper's code (measured 2026-11-25, PAPER_LBF_8X8 in tools/bench_train.py: bare {paper['bare_steps_per_s']:,} steps/s):")
  for label in ("stgs-1", "gst"):
    theirs, key = paper["train_steps_per_s"][label], label.replace("-", "")
    out[f"lbf_8x8_speedup_vs_paper_{key}"] = r["train_steps_per_s"] / theirs
    out[f"lbf_8x8_ratio_speedup_vs_paper_{key}"] = r["train_over_bare"] / (theirs / paper["bare_steps_per_s"])
    log(f"  {label.upper()} {theirs:,} steps/s, {paper['ms_per_update'][label]} ms per update; ours ({estimator}) "
        f"{out[f'lbf_8x8_speedup_vs_paper_{key}']:.1f}x in steps/s, "
        f"{out[f'lbf_8x8_ratio_speedup_vs_paper_{key}']:.1f}x in train/bare")
  if estimator in paper["ms_per_update"]:
    out["lbf_8x8_update_speedup_vs_paper"] = paper["ms_per_update"][estimator] / r["update_ms"]
  return out


def main(argv=None):
  from maddpg_tf.cli import common
  from maddpg_tf.run import process
  parser = common.ArgumentParser(prog="bench_train", description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="short windows (about 1.5 minutes on 2 quiet cores)")
  parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests: seconds, not a measurement
  parser.add_argument("--json", action="store_true", help="print one JSON object on the last stdout line")
  parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                      help=f"comma-separated task names (default: {','.join(DEFAULT_TASKS)})")
  parser.add_argument("--estimator", default="gst", help="estimator label from the configs (default gst)")
  parser.add_argument("--backends", default="reference",
                      help="comma-separated env backends to measure: reference, fast (default reference)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--compare-sharing", action="store_true",
                      help="also time a shared update (learner.share_parameters) against the per-agent one, "
                           "side by side on the same batches")
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
  if not backends or not set(backends) <= set(BACKENDS) or len(set(backends)) < len(backends):
    parser.error(f"--backends must be distinct names from {', '.join(BACKENDS)}, got {args.backends!r}")
  for flag, value, low in (("--intra-op-threads", args.intra_op_threads, 1),
                           ("--inter-op-threads", args.inter_op_threads, 1), ("--seed", args.seed, 0)):
    if value is not None and value < low:
      parser.error(f"{flag} must be an integer >= {low}, got {value}")
  try:
    overrides = dict(parse_override(item) for item in args.set)
    configs = [task_config(task, args.estimator, overrides, args.seed) for task in tasks]
  except (ValueError, TypeError) as error:  # unknown task or estimator, a value of the wrong type
    parser.error(str(error))
  except KeyError as error:
    parser.error(error.args[0])
  if "fast" in backends and "env_backend" not in configs[0]:
    parser.error("--backends with fast needs the config key env_backend, which this version's config lacks")
  process.import_tensorflow()  # without its import-time log lines
  if not set_threads(args.intra_op_threads, args.inter_op_threads):
    print("bench_train: warning: TF already initialised in this process; thread settings unchanged", flush=True)
  from maddpg_tf.run import experiment
  for config in configs:  # every value checked before anything is timed
    try:
      experiment.resolve_config(config)
    except experiment.RunError as error:
      parser.error(f"{config.task}: {error}")
  mode = "tiny" if args.tiny else "quick" if args.quick else "full"
  result = run_benchmark(tasks, mode=mode, estimator=args.estimator, seed=args.seed, overrides=overrides,
                         backends=tuple(backends), log=lambda *a: print(*a, flush=True),
                         compare_sharing=args.compare_sharing)
  if args.json:
    print(json.dumps({k: v for k, v in result.items() if k != "details"}, sort_keys=True, allow_nan=False),
          flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
