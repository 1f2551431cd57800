#!/usr/bin/env python
"""Training throughput against the bare environment, at the paper's settings.

    python tools/bench_train.py                 # the three tasks below, ~5 minutes on 2 quiet cores
    python tools/bench_train.py --quick --json  # short windows (~1.5 minutes); JSON on the last line
    python tools/bench_train.py --tasks lbf-8x8-2p-2f-coop --estimator stgs-1
    python tools/bench_train.py --quick --set loop.asynchronous_updates=false   # A/B any config field
    python tools/bench_train.py --quick --intra-op-threads 1                    # TF thread pools

For each task, in one process and side by side (the machine is shared and noisy: compare ratios):

1. bare:  `environments.make(task, num_envs)` stepped with `random_actions`, half the window before the
   training measurement and half after (the spread says how steady the machine was);
2. train: a real `experiment.Experiment` at the config's defaults (fidelity "code", batch 512, 64-64
   networks, LBF 1 update per 25-step episode, RWARE 10 per 500-step episode, 16 envs), with the warm-up
   shrunk to about two batches and evaluation/checkpoints pushed out of the window. `Experiment.run()`
   runs its own loop; the window is cut at `env.step_async` calls (instrumented on the instance, nothing
   is edited), starts right after an update burst once the first updates have compiled, and ends right after
   a later burst, so it holds whole update cycles. Env steps and updates come from the experiment's
   counters;
3. the breakdown: in-loop time shares (env, acting, buffer add, updates, the rest), and isolated
   timings on the same objects after the window: ms per update (`learner.step` on a sampled batch,
   compiled), ms per `buffer.sample`, us per acting call, us per env vector step; and a prototype loop
   (act, step, store, the scheduled updates; a what-if, not the project's loop) run serial or pipelined (a
   learner thread updates while acting goes on, at most one update burst behind), with the TF actor or a
   NumPy actor (all four in the full run, the NumPy two with --quick);
   the machine's load: cores used by other processes during each part (from /proc/stat), since a busy
   neighbour skews the ratios (training needs both cores, the bare env one);
4. memory of a 2,000,000-transition `ReplayBuffer` for lbf-15x15-4p-5f at the config's observation dtype,
   from the arrays' nbytes, against 2 GB;
5. the paper code's LBF 8x8 figures (../shared/paper/BASELINES.md) beside ours.

`run_benchmark(tasks, quick=..., estimator=...)` returns the same dict that `--json` prints.
"""

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_TASKS = ("lbf-8x8-2p-2f-coop", "lbf-15x15-4p-5f", "rware-tiny-4ag")
# JSON key prefixes of the tasks; any other task gets its name with '-' -> '_'.
KEY_PREFIX = {"lbf-8x8-2p-2f-coop": "lbf_8x8", "lbf-15x15-4p-5f": "lbf_15x15", "rware-tiny-4ag": "rware_tiny_4ag"}
# The targets: training env steps/s over bare-environment env steps/s.
TARGETS = {"lbf-8x8-2p-2f-coop": 0.5, "lbf-15x15-4p-5f": 0.35, "rware-tiny-4ag": 0.6}
BUFFER_TASK = "lbf-15x15-4p-5f"
BUFFER_CAPACITY = 2_000_000
BUFFER_TARGET_GB = 2.0
# ../shared/paper/BASELINES.md: the authors' PyTorch code on this kind of machine, LBF 8x8-2p-2f-coop.
PAPER_LBF_8X8 = {"bare_steps_per_s": 13_000, "train_steps_per_s": {"stgs-1": 1010, "stgs-t": 1092, "grmck": 721,
                                                                   "gst": 850},
                 "ms_per_update": {"stgs-1": 8.9, "stgs-t": 8.2, "grmck": 14.1, "gst": 9.9},
                 "us_per_agent_action": {"stgs-1": 175, "stgs-t": 163, "grmck": 263, "gst": 249}}


@dataclasses.dataclass(frozen=True)
class Windows:
  bare_s: float          # bare-environment wall time, split in two halves (before and after training)
  train_s: float         # minimum timed training window (it then runs on to the end of an update burst)
  skip_bursts: int       # update bursts to let pass before the window (the first one compiles)
  update_reps: int       # isolated learner.step calls
  act_reps: int          # isolated acting calls
  overlap_s: float       # each prototype-loop variant (at least one update burst)
  max_wait_s: float      # give up if the window has not started by then
  prototypes: tuple = ("serial_tf_actor", "serial_numpy_actor", "pipelined_tf_actor", "pipelined_numpy_actor")


MODES = {
    "full": Windows(bare_s=16.0, train_s=30.0, skip_bursts=2, update_reps=200, act_reps=1000, overlap_s=4.0,
                    max_wait_s=300.0),
    "quick": Windows(bare_s=3.0, train_s=7.0, skip_bursts=1, update_reps=40, act_reps=200, overlap_s=1.5,
                     max_wait_s=120.0, prototypes=("serial_numpy_actor", "pipelined_numpy_actor")),
    # For tests only: seconds, not a measurement.
    "tiny": Windows(bare_s=0.3, train_s=0.3, skip_bursts=1, update_reps=3, act_reps=5, overlap_s=0.2,
                    max_wait_s=120.0, prototypes=("pipelined_numpy_actor",)),
}


def key_prefix(task):
  return KEY_PREFIX.get(task, task.replace("-", "_").replace(".", "_"))


# ---- small helpers -------------------------------------------------------------------------------------

def _finite(value):
  """`value` for JSON: NaN and infinities become None."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _git_revision():
  try:
    revision = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    dirty = bool(subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout.strip())
  except (OSError, subprocess.SubprocessError):
    return "unknown", None
  return revision, dirty


def environment_info():
  """TF version, git revision, thread settings and machine load."""
  import tensorflow as tf
  revision, dirty = _git_revision()
  try:
    affinity = len(os.sched_getaffinity(0))
  except AttributeError:
    affinity = None
  return {
      "tf_version": tf.__version__,
      "git_revision": revision,
      "git_dirty": dirty,
      "python": sys.version.split()[0],
      "cpu_count": os.cpu_count(),
      "cpu_affinity": affinity,
      "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
      "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
      "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                                    "TF_NUM_INTEROP_THREADS", "TF_XLA_FLAGS")
                     if os.environ.get(k) is not None},
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
  """CPU use by this process and by everything else on the machine between `start()` and `stop()`
  (Linux /proc/stat; on a shared machine the second number says how much of the cores others took)."""

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
    busy = sum(fields[:8]) - idle                               # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")

  @staticmethod
  def _own_s():
    """CPU seconds of this process and its children (the env worker processes), live or finished."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system + _children_cpu_s()

  def start(self):
    self.wall, self.machine, self.own = time.perf_counter(), self._machine_busy_s(), self._own_s()

  def stop(self):
    """{"own_cores": ..., "other_cores": ...}: average cores busy over the interval."""
    wall = max(time.perf_counter() - self.wall, 1e-9)
    machine, own = self._machine_busy_s(), self._own_s()
    result = {"own_cores": (own - self.own) / wall, "other_cores": None}
    if machine is not None and self.machine is not None:
      result["other_cores"] = max(0.0, (machine - self.machine) - (own - self.own)) / wall
    return result


def load_config(task, estimator="gst"):
  """The task's config at the paper's defaults (configs/lbf.py or configs/rware.py)."""
  from configs import lbf, rware
  from maddpg_tf import environments
  family = environments.resolve_task(task).family
  module = lbf if family == "lbf" else rware
  return module.get_config(f"task={task},estimator={estimator}")


# ---- 1. the bare environment ---------------------------------------------------------------------------

def bare_rate(task, num_envs, seconds, episode_limit=None, seed=0):
  """(env steps, seconds) of `num_envs` envs stepped with uniform random actions for about `seconds`."""
  import numpy as np
  from maddpg_tf import environments
  env = environments.make(task, num_envs=num_envs, seed=seed, episode_limit=episode_limit)
  rng = np.random.default_rng(seed)
  try:
    env.reset()
    for _ in range(10):  # first calls: imports, caches
      env.step(env.random_actions(rng))
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
      for _ in range(20):
        env.step(env.random_actions(rng))
      steps += 20 * num_envs
      now = time.perf_counter()
      if now >= deadline:
        return steps, now - start
  finally:
    env.close()


# ---- 2. the training loop ------------------------------------------------------------------------------

class _WindowDone(BaseException):
  """Raised from inside `Experiment.run()` to end the timed window (BaseException: nothing swallows it)."""


class _LoopProbe:
  """Instruments one Experiment on the instance (nothing is edited) and cuts the timed window.

  Window boundaries are `env.step_async` entries: everything between two entries is one loop iteration
  (env step, store, any updates, logging, the next acting call). Update bursts are seen as increments of
  `counters["updates"]`. Timed, where the loop has them: `env.step_async` + `env.step_wait`,
  `actor.select_actions`, `buffer.add`, `buffer.sample`, and the update path: `_update` (one update, in the
  loop), `_schedule_updates` (the loop's share: sampling, and running the block or waiting for the
  previous one), `_drain` (waiting for the learner thread), `_run_updates` (a block of `learner.step`
  calls, possibly on a learner thread).
  """

  KEYS = ("env", "act", "add", "sample", "update", "schedule", "drain", "learner")

  def __init__(self, exp, windows):
    self.exp = exp
    self.windows = windows
    self.created = time.perf_counter()
    self.timing = False
    self.time = dict.fromkeys(self.KEYS, 0.0)
    self.calls = dict.fromkeys(self.KEYS, 0)
    self.last_updates = 0
    self.bursts = 0
    self.start = self.end = None
    self.start_counters = self.end_counters = None
    self.first_update_s = None
    self.hooked = []
    self._wrap_env()
    self._wrap(exp.actor, "select_actions", "act")
    self._wrap(exp.buffer, "add", "add")
    self._wrap(exp.buffer, "sample", "sample")
    self._wrap(exp, "_schedule_updates", "schedule")
    self._wrap(exp, "_drain", "drain")
    # The learner's work, and when it first finished (compiled): `_run_updates` (block) or `_update` (one).
    if self._wrap(exp, "_run_updates", "learner", first=True):
      self._wrap(exp, "_update", "update")
    else:
      self._wrap(exp, "_update", "update", first=True)
    if not any(k in self.hooked for k in ("learner", "update")):
      raise RuntimeError("bench_train: the Experiment has neither _run_updates nor _update to time; "
                         "update tools/bench_train.py's _LoopProbe")

  def _wrap(self, owner, name, key, first=False):
    original = getattr(owner, name, None)
    if original is None or not callable(original):
      return False
    probe = self

    def wrapper(*args, **kwargs):
      if not (first and probe.first_update_s is None):
        return probe._timed(key, original, *args, **kwargs)
      started = time.perf_counter()
      try:
        return probe._timed(key, original, *args, **kwargs)
      finally:
        probe.first_update_s = time.perf_counter() - started
    setattr(owner, name, wrapper)
    self.hooked.append(key)
    return True

  def _counters(self):
    return dict(env_steps=self.exp.counters["env_steps"], updates=self.exp.counters["updates"],
                episodes=self.exp.counters["episodes"])

  def _wrap_env(self):
    """The loop starts each env step with `env.step_async` (the iteration boundary) and collects it with
    `env.step_wait`; the env's time is the two calls' (what the loop does in between, storing the previous
    transition, is timed as buffer add)."""
    env = self.exp.env
    original_async, original_wait = env.step_async, env.step_wait
    probe = self

    def step_async(actions):
      now = time.perf_counter()
      updates = probe.exp.counters["updates"]
      burst = updates > probe.last_updates  # updates were scheduled in the iteration that just ended
      probe.last_updates = updates
      if probe.start is None:
        if burst and probe.first_update_s is not None:
          probe.bursts += 1
          if probe.bursts >= probe.windows.skip_bursts:
            probe.start, probe.start_counters, probe.timing = now, probe._counters(), True
        elif now - probe.created > probe.windows.max_wait_s:
          raise RuntimeError(f"no compiled update burst within {probe.windows.max_wait_s:.0f} s: "
                             f"{probe._counters()}")
      elif now - probe.start >= probe.windows.train_s and burst:
        probe.end, probe.end_counters, probe.timing = now, probe._counters(), False
        raise _WindowDone()
      elif now - probe.start > probe.windows.max_wait_s:
        raise RuntimeError(f"no update burst within {probe.windows.max_wait_s:.0f} s of the window's start")
      return probe._timed("env", original_async, actions)

    def step_wait():
      return probe._timed("env", original_wait, count_call=False)

    env.step_async, env.step_wait = step_async, step_wait
    self.hooked.append("env")

  def _timed(self, key, function, *args, count_call=True, **kwargs):
    """`function(*args, **kwargs)`; while timing, its time (and with `count_call` one call) go under `key`."""
    if not self.timing:
      return function(*args, **kwargs)
    started = time.perf_counter()
    try:
      return function(*args, **kwargs)
    finally:
      self.time[key] += time.perf_counter() - started
      self.calls[key] += int(count_call)


def _time_calls(function, reps):
  """Mean seconds per call of `function()` over `reps` calls (after 2 unmeasured calls)."""
  for _ in range(2):
    function()
  started = time.perf_counter()
  for _ in range(reps):
    function()
  return (time.perf_counter() - started) / reps


def _isolated(exp, windows, seed):
  """ms per update / sample, us per acting call, on the experiment's own objects (already compiled)."""
  import numpy as np
  import tensorflow as tf
  c = exp.config
  rng = np.random.default_rng([seed, 99])
  batches = [exp.buffer.sample(c.replay.batch_size, rng) for _ in range(4)]
  counter = [0]

  def update():
    k = counter[0]
    counter[0] += 1
    return exp.learner.step(batches[k % 4], seed=np.array([seed, 10_000_000 + k], np.int64), estimator_step=k)

  def update_synced():
    metrics = update()
    tf.nest.map_structure(lambda t: t.numpy(), metrics)

  # learner.step returns when the step has run (eager is synchronous on CPU); check that against a
  # version that reads every metric back.
  update_s = _time_calls(update, windows.update_reps)
  update_synced_s = _time_calls(update_synced, max(2, windows.update_reps // 4))
  sample_s = _time_calls(lambda: exp.buffer.sample(c.replay.batch_size, rng), windows.update_reps)
  observations = np.asarray(exp.observations, np.float32)
  act_s = _time_calls(lambda: exp.actor.select_actions(observations), windows.act_reps)
  return {"update_ms": 1e3 * update_s, "update_synced_ms": 1e3 * update_synced_s, "sample_ms": 1e3 * sample_s,
          "act_us": 1e6 * act_s}


class _NumpyActor:
  """What-if: the behaviour policy evaluated in NumPy from a snapshot of the actor weights (refreshed after
  each update burst), Gumbel-max sampling from a NumPy Generator. Not bit-identical to `Actor`."""

  def __init__(self, learner, seed):
    self.learner = learner
    self.rng = __import__("numpy").random.default_rng([seed, 97])
    self.refresh()

  def refresh(self):
    self.layers = [(layer.kernel.numpy(), layer.bias.numpy(), layer.activation)
                   for layer in self.learner.actors.dense_layers]

  def select_actions(self, observations):
    import numpy as np
    x = np.transpose(observations, (1, 0, 2))            # [N, E, O]
    for k, (kernel, bias, _) in enumerate(self.layers):
      x = np.matmul(x, kernel) + bias
      if k + 1 < len(self.layers):
        np.maximum(x, 0.0, out=x)                       # the hidden layers are ReLU
    logits = np.transpose(x, (1, 0, 2))
    return np.argmax(logits + self.rng.gumbel(size=logits.shape), axis=-1)


def _prototype_loop(exp, seconds, pipelined, numpy_actor, seed):
  """A stripped copy of the training loop (act, step, store, the scheduled updates), run for about
  `seconds` and at least one update burst; returns env steps/s.

  pipelined=False: updates run in the loop, as `Experiment._train` does. pipelined=True: a learner thread
  runs the updates while the loop keeps acting; the loop waits when more than one burst of updates
  (num_envs x updates_per_episode) is pending, so the policy lags by at most one burst. The window starts
  and ends on burst boundaries with nothing pending.
  """
  import numpy as np
  from maddpg_tf import environments
  c = exp.config
  env = environments.make(exp.task, num_envs=c.num_envs, seed=seed + 7, episode_limit=c.loop.episode_limit)
  rng = np.random.default_rng([seed, 98])
  buffer, learner, n = exp.buffer, exp.learner, c.num_envs
  per_episode, batch_size = c.loop.updates_per_episode, c.replay.batch_size
  max_lag = n * per_episode
  actor = _NumpyActor(learner, seed) if numpy_actor else exp.actor
  state = {"pending": 0, "updates": 0, "stop": False, "error": None, "fresh": False}
  condition = threading.Condition()

  def update():
    batch = buffer.sample(batch_size, rng)
    learner.step(batch, seed=np.array([seed, 30_000_000 + state["updates"]], np.int64),
                 estimator_step=state["updates"])
    state["updates"] += 1

  def learner_thread():
    try:
      while True:
        with condition:
          while state["pending"] == 0 and not state["stop"]:
            condition.wait()
          if state["stop"]:
            return
        update()
        with condition:
          state["pending"] -= 1
          if state["pending"] == 0:
            state["fresh"] = True
          condition.notify_all()
    except BaseException as error:  # noqa: BLE001  (reported by the loop)
      with condition:
        state["error"], state["stop"] = error, True
        condition.notify_all()

  def drain():
    with condition:
      while state["pending"] > 0 and state["error"] is None:
        condition.wait()

  thread = threading.Thread(target=learner_thread, daemon=True) if pipelined else None
  if thread is not None:
    thread.start()
  observations = env.reset()
  steps, started, deadline = 0, None, None
  try:
    while True:
      if numpy_actor and state["fresh"]:
        state["fresh"] = False
        actor.refresh()
      actions = actor.select_actions(observations)
      step = env.step(actions)
      buffer.add(observations, actions, step.reward, (step.terminated | step.truncated).astype(np.float32),
                 step.observation)
      observations = step.next_observation
      if started is not None:
        steps += n
      due = int(np.sum(~np.isnan(step.episode_return))) * per_episode
      if not due:
        continue
      if pipelined:
        with condition:
          state["pending"] += due
          condition.notify_all()
          while state["pending"] > max_lag and state["error"] is None:
            condition.wait()
        if state["error"] is not None:
          raise state["error"]
      else:
        for _ in range(due):
          update()
        state["fresh"] = True
      now = time.perf_counter()
      if started is None:
        if pipelined:
          drain()
        started = time.perf_counter()
        deadline = started + seconds
      elif now >= deadline:
        if pipelined:
          drain()
        return steps / (time.perf_counter() - started)
  finally:
    with condition:
      state["stop"] = True
      condition.notify_all()
    if thread is not None:
      thread.join()
    env.close()


def _prototypes(exp, windows, seed):
  """Env steps/s of the prototype loop: serial/pipelined x TF actor/NumPy actor."""
  results = {}
  for name in windows.prototypes:
    pipelined, numpy_actor = name.startswith("pipelined"), name.endswith("numpy_actor")
    try:
      results[name] = _prototype_loop(exp, windows.overlap_s, pipelined, numpy_actor, seed)
    except (AttributeError, TypeError) as error:  # e.g. the networks' API changed: skip this what-if
      results[name] = None
      results[name + "_error"] = f"{type(error).__name__}: {error}"
  return results


def _config_get(config, dotted, default=None):
  value = config
  for part in dotted.split("."):
    if part not in value:
      return default
    value = value[part]
  return value


def apply_overrides(config, overrides):
  """Sets dotted config fields, e.g. {"loop.asynchronous_updates": False}; unknown fields raise KeyError
  naming the fields there are."""
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
  lowered = value.lower()
  if lowered in ("true", "false"):
    return key.strip(), lowered == "true"
  try:
    return key.strip(), json.loads(value)
  except ValueError:
    return key.strip(), value


def measure_training(task, estimator="gst", windows=MODES["quick"], seed=0, num_envs=None, overrides=None):
  """Builds an Experiment at the paper's settings and measures its loop; returns a dict (see the module)."""
  from maddpg_tf import experiment
  config = load_config(task, estimator)
  config.seed = seed
  apply_overrides(config, overrides)
  if num_envs is not None:
    config.num_envs = int(num_envs)
  resolved = experiment.resolve_config(config)
  limit = resolved.loop.episode_limit
  # Warm-up: about two batches of random transitions (the paper's 400 episodes only fill the buffer).
  config.loop.warmup_episodes = max(config.num_envs, math.ceil(2 * config.replay.batch_size / limit))
  config.loop.eval_every_steps = 10 ** 15   # only the step-0 evaluation, before the window
  config.loop.eval_episodes = 1
  config.loop.eval_num_envs = 1
  config.checkpoint.every_steps = 10 ** 15
  config.total_steps = 10 ** 15             # the probe ends the run
  with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
    built = time.perf_counter()
    exp = experiment.Experiment(config, os.path.join(tmp, "run"), progress=False)
    build_s = time.perf_counter() - built
    probe = _LoopProbe(exp, windows)
    started = time.perf_counter()
    try:
      exp.run()
    except _WindowDone:
      pass
    else:
      raise RuntimeError("Experiment.run() returned before the timed window ended")
    run_s = time.perf_counter() - started
    if probe.end is None:
      raise RuntimeError("the timed window never ended")
    elapsed = probe.end - probe.start
    env_steps = probe.end_counters["env_steps"] - probe.start_counters["env_steps"]
    updates = probe.end_counters["updates"] - probe.start_counters["updates"]
    episodes = probe.end_counters["episodes"] - probe.start_counters["episodes"]
    t, calls = probe.time, probe.calls
    # The loop thread's time in the update path: `_schedule_updates` where the loop has it (it contains
    # the sampling, and the updates or the wait for the learner thread), else `_update` (one update).
    loop_update = t["schedule"] if "schedule" in probe.hooked else t["update"]
    learner_busy = t["learner"] if "learner" in probe.hooked else max(0.0, t["update"] - t["sample"])
    shares = {"env": t["env"] / elapsed, "act": t["act"] / elapsed, "add": t["add"] / elapsed,
              "update": loop_update / elapsed}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    shares["sample"] = t["sample"] / elapsed
    shares["wait"] = t["drain"] / elapsed
    shares["learner_busy"] = learner_busy / elapsed
    asynchronous = bool(_config_get(config, "loop.asynchronous_updates", False))
    result = {
        "task": task, "estimator": estimator, "num_envs": config.num_envs, "episode_limit": limit,
        "batch_size": config.replay.batch_size, "updates_per_episode": config.loop.updates_per_episode,
        "hidden_sizes": list(config.learner.hidden_sizes), "fidelity": config.fidelity,
        "asynchronous_updates": asynchronous, "overrides": dict(overrides or {}),
        "env_workers": int(_config_get(config, "env_workers", 0)),
        "num_agents": exp.env.spec.num_agents, "observation_size": exp.env.spec.observation_size,
        "train_steps_per_s": env_steps / elapsed, "window_s": elapsed, "window_env_steps": env_steps,
        "window_updates": updates, "window_episodes": episodes,
        "updates_per_env_step": updates / max(env_steps, 1),
        "scheduled_updates_per_env_step": config.loop.updates_per_episode / limit,
        "first_update_ms": 1e3 * (probe.first_update_s or float("nan")),
        "build_s": build_s, "run_s": run_s, "hooked": list(probe.hooked),
        "share": shares,
        "in_loop": {
            "env_vector_step_us": 1e6 * t["env"] / max(calls["env"], 1),
            "act_us": 1e6 * t["act"] / max(calls["act"], 1),
            "add_us": 1e6 * t["add"] / max(calls["add"], 1),
            "update_ms": 1e3 * learner_busy / max(updates, 1),
            "sample_ms": 1e3 * t["sample"] / max(calls["sample"], 1),
            "other_us_per_vector_step": 1e6 * shares["other"] * elapsed / max(calls["env"], 1),
        },
    }
    result.update(_isolated(exp, windows, seed))
    result["prototype"] = _prototypes(exp, windows, seed)
    for env in (exp.env, exp.eval_env):
      try:
        env.close()
      except Exception:  # noqa: BLE001  (best effort)
        pass
  return result


# ---- 4. memory -----------------------------------------------------------------------------------------

def buffer_memory(task=BUFFER_TASK, capacity=BUFFER_CAPACITY):
  """Bytes of a `capacity`-transition ReplayBuffer for `task` at the config's observation dtype (nbytes;
  np.zeros is lazy, so this is what a full buffer holds, not the current RSS), and at float32."""
  import numpy as np
  from maddpg_tf import environments, replay_buffer
  env = environments.make(task, num_envs=1)
  spec = env.spec
  env.close()
  dtype = load_config(task).replay.observation_dtype
  result = {"task": task, "capacity": capacity, "num_agents": spec.num_agents,
            "observation_size": spec.observation_size, "observation_dtype": str(dtype)}
  for name, kind in (("default", dtype), ("float32", "float32")):
    buffer = replay_buffer.ReplayBuffer(capacity, spec.num_agents, spec.observation_size, kind)
    arrays = {k: v for k, v in vars(buffer).items() if isinstance(v, np.ndarray)}
    result[f"{name}_bytes"] = int(sum(a.nbytes for a in arrays.values()))
    if name == "default":
      result["arrays"] = {k: [list(a.shape), str(a.dtype), int(a.nbytes)] for k, a in arrays.items()}
    del buffer, arrays
  return result


# ---- the whole benchmark -------------------------------------------------------------------------------

def _predictions(bare, train):
  """Env steps/s of the loop as the sum of its isolated parts, and of two what-ifs."""
  n = train["num_envs"]
  env_us = 1e6 / bare                                  # per env step, bare
  act_us = train["act_us"] / n
  add_us = train["in_loop"]["add_us"] / n
  other_us = train["in_loop"]["other_us_per_vector_step"] / n
  u = train["updates_per_env_step"]
  update_us = 1e3 * (train["update_ms"] + train["sample_ms"]) * u
  serial = env_us + act_us + add_us + other_us + update_us
  return {"per_env_step_us": {"env": env_us, "act": act_us, "add": add_us, "other": other_us,
                              "update": update_us},
          "serial_steps_per_s": 1e6 / serial,
          "no_update_cost_steps_per_s": 1e6 / (env_us + act_us + add_us + other_us)}


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


def run_benchmark(tasks=DEFAULT_TASKS, quick=False, estimator="gst", mode=None, seed=0, log=print,
                  intra_op_threads=None, inter_op_threads=None, overrides=None):
  """Measures every task; returns a flat JSON-able dict (keys: see `--json`). `mode`: full|quick|tiny.

  `intra_op_threads` / `inter_op_threads`: TF thread pools for this process (None: TF's default); they only
  take effect if TF has not run an op yet in this process. `overrides`: {dotted config field: value} applied
  to every task's config (e.g. {"loop.asynchronous_updates": False}), for A/B runs.
  """
  mode = mode or ("quick" if quick else "full")
  windows = MODES[mode]
  import tensorflow as tf  # noqa: F401  (imported before timing anything)
  if (intra_op_threads, inter_op_threads) != (None, None) and not set_threads(intra_op_threads, inter_op_threads):
    log("bench_train: warning: TF already initialised in this process; thread settings unchanged")
  from maddpg_tf import environments
  info = environment_info()
  log(f"bench_train: mode {mode}, estimator {estimator}, TF {info['tf_version']}, git {info['git_revision'][:12]}"
      f"{' (dirty)' if info['git_dirty'] else ''}, python {info['python']}")
  log(f"  threads: cpu_count {info['cpu_count']}, affinity {info['cpu_affinity']}, TF intra-op "
      f"{info['tf_intra_op_threads']} inter-op {info['tf_inter_op_threads']} (0 = TF default: all cores)"
      f"{', env ' + str(info['thread_env']) if info['thread_env'] else ''}; load average {info['load_average']}")
  out = {"mode": mode, "estimator": estimator, "overrides": dict(overrides or {}),
         **{k: v for k, v in info.items() if k != "thread_env"}}
  if overrides:
    log(f"  config overrides: {overrides}")
  details = {}
  for task in tasks:
    task = environments.resolve_task(task).name
    config = apply_overrides(load_config(task, estimator), overrides)
    from maddpg_tf import experiment
    limit = experiment.resolve_config(config).loop.episode_limit
    num_envs = config.num_envs
    half = windows.bare_s / 2
    meter = CpuMeter()
    steps_a, seconds_a = bare_rate(task, num_envs, half, episode_limit=limit, seed=seed)
    bare_cpu_a = meter.stop()
    meter.start()
    train = measure_training(task, estimator, windows, seed=seed, overrides=overrides)
    train["cpu"] = meter.stop()
    meter.start()
    steps_b, seconds_b = bare_rate(task, num_envs, half, episode_limit=limit, seed=seed + 1)
    bare_cpu_b = meter.stop()
    others = [x["other_cores"] for x in (bare_cpu_a, train["cpu"], bare_cpu_b) if x["other_cores"] is not None]
    train["other_processes_cores"] = max(others) if others else None
    train["bare_cpu"] = [bare_cpu_a, bare_cpu_b]
    bare = (steps_a + steps_b) / (seconds_a + seconds_b)
    train["bare_steps_per_s"] = bare
    train["bare_halves_steps_per_s"] = [steps_a / seconds_a, steps_b / seconds_b]
    train["env_vector_step_us"] = 1e6 * num_envs / bare
    train["predicted"] = _predictions(bare, train)
    ratio = train["train_steps_per_s"] / bare
    train["train_over_bare"] = ratio
    details[task] = train
    p = key_prefix(task)
    target = TARGETS.get(task)
    out.update({f"{p}_bare_steps_per_s": bare, f"{p}_train_steps_per_s": train["train_steps_per_s"],
                f"{p}_train_over_bare": ratio, f"{p}_target": target,
                f"{p}_pass": None if target is None else bool(ratio >= target),
                f"{p}_update_ms": train["update_ms"], f"{p}_sample_ms": train["sample_ms"],
                f"{p}_act_us": train["act_us"], f"{p}_env_vector_step_us": train["env_vector_step_us"],
                f"{p}_updates_per_env_step": train["updates_per_env_step"],
                f"{p}_other_processes_cores": train["other_processes_cores"],
                **{f"{p}_prototype_{k}_over_bare": v / bare for k, v in train["prototype"].items()
                   if isinstance(v, float)}})
    _log_task(log, train, target)

  memory = buffer_memory()
  gb = memory["default_bytes"] / 1e9
  out["buffer_2m_lbf_15x15_4p_5f_gb"] = gb
  out["buffer_2m_lbf_15x15_4p_5f_float32_gb"] = memory["float32_bytes"] / 1e9
  out["buffer_2m_target_gb"] = BUFFER_TARGET_GB
  out["buffer_2m_pass"] = bool(gb <= BUFFER_TARGET_GB)
  log(f"\nreplay buffer, {memory['capacity']:,} transitions of {memory['task']} ({memory['num_agents']} agents, "
      f"obs {memory['observation_size']}), observation dtype {memory['observation_dtype']} (config default): "
      f"{gb:.3f} GB ({memory['default_bytes'] / 2**30:.3f} GiB) from nbytes; target <= {BUFFER_TARGET_GB} GB: "
      f"{'PASS' if out['buffer_2m_pass'] else 'FAIL'}  (float32 observations: "
      f"{memory['float32_bytes'] / 1e9:.3f} GB)")
  log("  arrays: " + ", ".join(f"{k} {tuple(s)} {d} {b / 1e6:.0f} MB" for k, (s, d, b) in memory["arrays"].items()))

  if "lbf-8x8-2p-2f-coop" in details:
    _log_paper(log, details["lbf-8x8-2p-2f-coop"], estimator, out)
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
  return _finite(value)


def _where_envs_step(workers):
  return "in the training process" if not workers else f"by {workers} worker process{'es' * (workers > 1)}"


def _log_task(log, r, target):
  ratio = r["train_over_bare"]
  verdict = "" if target is None else f"  target >= {target:.2f}: {'PASS' if ratio >= target else 'FAIL'}"
  log(f"\n{r['task']} ({r['num_agents']} agents, obs {r['observation_size']}, {r['num_envs']} envs, cut-off "
      f"{r['episode_limit']}, {r['updates_per_episode']} update(s)/episode, batch {r['batch_size']}, "
      f"{'x'.join(map(str, r['hidden_sizes']))}, fidelity {r['fidelity']}, {r['estimator']}, "
      f"{'asynchronous' if r['asynchronous_updates'] else 'sequential'} updates, "
      f"envs stepped {_where_envs_step(r.get('env_workers', 0))})")
  a, b = r["bare_halves_steps_per_s"]
  log(f"  bare  {r['bare_steps_per_s']:9,.0f} env steps/s   (before {a:,.0f}, after {b:,.0f})")
  log(f"  train {r['train_steps_per_s']:9,.0f} env steps/s   ({r['window_env_steps']:,} steps, "
      f"{r['window_updates']:,} updates in {r['window_s']:.1f} s; first update incl. compile "
      f"{r['first_update_ms']:.0f} ms)")
  log(f"  train/bare {ratio:.3f}{verdict}")
  cpu, (bare_a, bare_b) = r["cpu"], r["bare_cpu"]
  if cpu["other_cores"] is not None:
    log(f"  machine: other processes used {bare_a['other_cores']:.2f} / {cpu['other_cores']:.2f} / "
        f"{bare_b['other_cores']:.2f} cores during bare / training part / bare (of {os.cpu_count()}); this process "
        f"{cpu['own_cores']:.2f} cores while training{'  <- NOISY: another process was busy' if r['other_processes_cores'] > 0.3 else ''}")
  s, i = r["share"], r["in_loop"]
  log(f"  the loop thread's time: env {100 * s['env']:.0f}%, acting {100 * s['act']:.0f}%, buffer add "
      f"{100 * s['add']:.0f}%, update path {100 * s['update']:.0f}% (replay sampling {100 * s['sample']:.0f}%, "
      f"waiting for the learner thread {100 * s['wait']:.0f}%), other {100 * s['other']:.0f}%; learner busy "
      f"{100 * s['learner_busy']:.0f}% of the window"
      f"{' (on its own thread)' if r['asynchronous_updates'] else ''}")
  log(f"  per call: update {r['update_ms']:.2f} ms isolated (synced {r['update_synced_ms']:.2f}; learner time "
      f"per update in the loop {i['update_ms']:.2f}), sample {r['sample_ms']:.2f} ms, acting {r['act_us']:.0f} us isolated "
      f"({i['act_us']:.0f} in loop) per call for {r['num_envs']} envs, env vector step "
      f"{r['env_vector_step_us']:.0f} us bare ({i['env_vector_step_us']:.0f} in loop), buffer add "
      f"{i['add_us']:.0f} us, other {i['other_us_per_vector_step']:.0f} us per vector step")
  log(f"  updates per env step {r['updates_per_env_step']:.4f} (schedule {r['scheduled_updates_per_env_step']:.4f}"
      f" at full-length episodes)")
  p = r["predicted"]
  e = p["per_env_step_us"]
  log(f"  per env step: env {e['env']:.0f} us + acting {e['act']:.0f} + add {e['add']:.0f} + other {e['other']:.0f}"
      f" + updates {e['update']:.0f} = {sum(e.values()):.0f} us -> {p['serial_steps_per_s']:,.0f} steps/s "
      f"predicted serially; without update cost {p['no_update_cost_steps_per_s']:,.0f} "
      f"({p['no_update_cost_steps_per_s'] / r['bare_steps_per_s']:.2f} of bare)")
  o = r["prototype"]
  cells = []
  for name in ("serial_tf_actor", "serial_numpy_actor", "pipelined_tf_actor", "pipelined_numpy_actor"):
    if name not in o:
      continue
    value = o.get(name)
    cells.append(f"{name.replace('_', ' ')} " + ("n/a" if value is None else
                                                  f"{value:,.0f} ({value / r['bare_steps_per_s']:.2f})"))
  log("  prototype loop, env steps/s (of bare): " + "; ".join(cells))


def _log_paper(log, r, estimator, out):
  paper = PAPER_LBF_8X8
  ours = r["train_steps_per_s"]
  log("\nLBF 8x8-2p-2f-coop against the paper's code (BASELINES.md, same kind of machine, another day):")
  if (r.get("other_processes_cores") or 0) > 0.3:
    log(f"  (other processes used up to {r['other_processes_cores']:.1f} cores during this task: absolute steps/s "
        f"are not comparable with the paper's quiet-machine figures; compare train/bare)")
  log(f"  paper: bare {paper['bare_steps_per_s']:,} steps/s; training STGS-1 {paper['train_steps_per_s']['stgs-1']:,}, "
      f"GST {paper['train_steps_per_s']['gst']:,} steps/s = "
      f"{paper['train_steps_per_s']['stgs-1'] / paper['bare_steps_per_s']:.3f} / "
      f"{paper['train_steps_per_s']['gst'] / paper['bare_steps_per_s']:.3f} of bare; "
      f"{paper['ms_per_update']['stgs-1']} / {paper['ms_per_update']['gst']} ms per update")
  log(f"  ours ({estimator}): bare {r['bare_steps_per_s']:,.0f}, training {ours:,.0f} steps/s = "
      f"{r['train_over_bare']:.3f} of bare; {r['update_ms']:.2f} ms per update")
  for label in ("stgs-1", "gst"):
    speedup = ours / paper["train_steps_per_s"][label]
    ratio_speedup = r["train_over_bare"] / (paper["train_steps_per_s"][label] / paper["bare_steps_per_s"])
    out[f"lbf_8x8_speedup_vs_paper_{label.replace('-', '')}"] = speedup
    out[f"lbf_8x8_ratio_speedup_vs_paper_{label.replace('-', '')}"] = ratio_speedup
    log(f"  speed-up over the paper's {label.upper()}: {speedup:.1f}x in steps/s, {ratio_speedup:.1f}x in "
        f"train/bare")
  same = estimator in paper["ms_per_update"]
  if same:
    out["lbf_8x8_update_speedup_vs_paper"] = paper["ms_per_update"][estimator] / r["update_ms"]
    log(f"  update: {paper['ms_per_update'][estimator]} ms (paper, {estimator}) vs {r['update_ms']:.2f} ms ours: "
        f"{out['lbf_8x8_update_speedup_vs_paper']:.1f}x")


def main(argv=None):
  from maddpg_tf import cli
  parser = cli.ArgumentParser(prog="bench_train", description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="short windows (about 1.5 minutes on 2 quiet cores; longer on a busy machine)")
  parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests: seconds, not a measurement
  parser.add_argument("--json", action="store_true", help="print one JSON object on the last stdout line")
  parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                      help=f"comma-separated task names (default: {','.join(DEFAULT_TASKS)})")
  parser.add_argument("--estimator", default="gst", help="estimator label from the configs (default gst)")
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
  for name in ("intra_op_threads", "inter_op_threads"):
    if getattr(args, name) is not None and getattr(args, name) < 1:
      parser.error(f"--{name.replace('_', '-')} must be an integer >= 1, got {getattr(args, name)}")
  if args.seed < 0:
    parser.error(f"--seed must be an integer >= 0, got {args.seed}")
  try:
    overrides = dict(parse_override(item) for item in args.set)
    configs = [apply_overrides(load_config(task, args.estimator), overrides) for task in tasks]
  except (ValueError, TypeError) as error:  # unknown task or estimator, a value of the wrong type
    parser.error(str(error))
  except KeyError as error:
    parser.error(error.args[0])
  cli.import_tensorflow()  # without its import-time log lines
  set_threads(args.intra_op_threads, args.inter_op_threads)  # before the checks below run TF ops
  from maddpg_tf import experiment
  for config in configs:  # every value checked before anything is timed
    try:
      experiment.resolve_config(config)
    except experiment.RunError as error:
      parser.error(f"{config.task}: {error}")
  mode = "tiny" if args.tiny else "quick" if args.quick else "full"
  result = run_benchmark(tasks, estimator=args.estimator, mode=mode, seed=args.seed,
                         log=lambda *a: print(*a, flush=True), intra_op_threads=args.intra_op_threads,
                         inter_op_threads=args.inter_op_threads, overrides=overrides)
  if args.json:
    flat = {k: v for k, v in result.items() if k != "details"}
    print(json.dumps(flat, sort_keys=True, allow_nan=False), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
