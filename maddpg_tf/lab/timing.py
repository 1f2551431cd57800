"""Times the discrete gradient estimators: the paper's Table 2 protocol and a training-like workload, the
library behind `maddpg-bench-estimators` (`maddpg_tf.cli.bench_estimators`). One run measures (Markdown
tables):

1. The paper's protocol (maddpg_tf/FIDELITY.md: Timing; Table 2): batch-1 standard-normal logits of dimension 3, 5, 10,
   50, 100 and 1000; STGS, GRMC with K = 1, 10, 50 and 100, GST (gap 1), all at temperature 1; the FORWARD
   pass only (the sample), one `tf.function` call per relaxation, `repeats` x `number` calls (5 x 10,000,
   as the paper's timeit). Microseconds per call, mean and 95% Student-t half-width over the repeats, ratio
   to STGS, beside the paper's figures. The paper's column "GRMC-50" ran K = 100 in the authors' script, so
   our K = 100 row is the like-for-like one. At batch 1 this measures call overhead more than estimator
   cost (a `tf.function` call costs about 0.2 ms here whatever it computes).
2. The training workload: 512 logit rows of dimension 6 and 50, forward AND backward (the gradient, with
   respect to the logits, of a fixed random linear function of the sample), compiled with XLA. Many
   relaxations run inside ONE compiled call (a `tf.while_loop`, a fresh seed per iteration, every sample and
   gradient accumulated), so the figure is the estimator's own cost per 512-row batch, not call overhead.
   Every registered estimator; GRMCK at K = 1, 10, 50; TAGS with its schedule evaluated at the loop step.
   Also "per 1024 rows" beside the authors' PyTorch code measured on this kind of machine
   (`PAPER_CODE_TRAIN_US` below).
3. The issue's targets, each with PASS/FAIL and the measured figure; not judged where the compiled calls are
   too short to time the estimators (the tiny mode: a call of 2 relaxations is mostly its call overhead).

`run_benchmark(quick=...)` returns the same results as a dict (for `maddpg-reproduce --what=table2` and
tests); `format_report(results)` renders them; `headline(results)` is the flat dict `--json` prints as the
last line of stdout.
"""

import contextlib
import dataclasses
import logging
import math
import os
import platform
import sys
import time

import numpy as np

from maddpg_tf.analysis import paper_data
from maddpg_tf.run import process, workdir

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ----------------------------------------------------------------------------------------------------------
# What is timed.

PAPER_DIMS = (3, 5, 10, 50, 100, 1000)
TRAIN_DIMS = (6, 50)
TRAIN_ROWS = 512
PAPER_CODE_ROWS = 1024  # the authors' code was timed on 1024-row batches (`PAPER_CODE_TRAIN_US` below)


@dataclasses.dataclass(frozen=True)
class Config:
  key: str       # our identifier, e.g. "grmck10"
  label: str     # for tables
  name: str      # estimators registry name
  params: tuple  # ((keyword, value), ...) for estimators.make
  paper_family: str | None = None  # Table 2 family this row compares with ("STGS", "GRMC", "GST")
  paper_k: int | None = None       # K the paper's script actually ran for that column
  step_param: bool = False         # pass the loop step as `step` (temperature schedules)

  @property
  def kwargs(self):
    return dict(self.params)


T1 = (("temperature", 1.0),)

# Section 1: the paper's estimators. The paper's "GRMC-50" column is our K=100 row (label/argument mismatch
# in the authors' script); K=50 is timed too but has no paper figure.
PAPER_CONFIGS = (
    Config("stgs", "STGS", "stgs", T1, "STGS"),
    Config("grmck1", "GRMC K=1", "grmck", T1 + (("num_samples", 1),), "GRMC", 1),
    Config("grmck10", "GRMC K=10", "grmck", T1 + (("num_samples", 10),), "GRMC", 10),
    Config("grmck50", "GRMC K=50", "grmck", T1 + (("num_samples", 50),)),
    Config("grmck100", "GRMC K=100 (paper's \"GRMC-50\")", "grmck", T1 + (("num_samples", 100),),
           "GRMC", 100),
    Config("gst", "GST (gap 1)", "gst", T1 + (("gap", 1.0),), "GST"),
)

# Section 2: every registered estimator (any registered later gets a default-parameter row at run time).
TRAIN_CONFIGS = (
    Config("stgs", "STGS", "stgs", T1),
    Config("tags", "TAGS (1 -> 0.1 over 1000 steps)", "tags",
           (("start_temperature", 1.0), ("end_temperature", 0.1), ("period", 1000)), step_param=True),
    Config("grmck1", "GRMCK K=1", "grmck", T1 + (("num_samples", 1),)),
    Config("grmck10", "GRMCK K=10", "grmck", T1 + (("num_samples", 10),)),
    Config("grmck50", "GRMCK K=50", "grmck", T1 + (("num_samples", 50),)),
    Config("gst", "GST (gap 1)", "gst", T1 + (("gap", 1.0),)),
    Config("st", "ST", "st", T1),
    Config("gumbel_softmax", "Gumbel-Softmax (soft)", "gumbel_softmax", T1),
    Config("reinmax", "ReinMax", "reinmax", T1),
    Config("reinmax-rao", "ReinMax-Rao K=100", "reinmax-rao", T1 + (("num_samples", 100),)),
    Config("reinmax-cv", "ReinMax-CV K=100 (eta 0.7)", "reinmax-cv", T1 + (("num_samples", 100),)),
    Config("zgr", "ZGR (no temperature)", "zgr", ()),
)

# The authors' PyTorch code measured on this kind of machine (2 CPU cores, 2026-11-25; these constants are
# the record): forward AND backward, one 1024-row batch per call, microseconds.
PAPER_CODE_TRAIN_US = {
    5: {"stgs": 353., "grmck1": 1031., "grmck10": 3640., "grmck50": 16585., "gst": 811.},
    50: {"stgs": 689., "grmck1": 3874., "grmck10": 20039., "grmck50": 106141., "gst": 3045.},
}
# Same source, the paper's protocol (forward only, batch 1): {dim: {our key: us}}. Its "GRMC K=50" column is
# the authors' script, i.e. K=100.
PAPER_CODE_BATCH1_US = {
    5: {"stgs": 70., "grmck1": 251., "grmck10": 245., "grmck100": 259., "gst": 226.},
    1000: {"stgs": 59., "grmck1": 282., "grmck10": 494., "grmck100": 1532., "gst": 219.},
}
# Our training dimension 6 (LBF's action count) is compared with the paper code's dimension 5.
PAPER_CODE_DIM_FOR = {6: 5, 50: 50}

# Targets from the issue, on the training workload at dimension 6.
TARGET_DIM = 6
GST_MAX_RATIO = 1.3
GRMCK10_MAX_RATIO = 5.0
STGS_MIN_SPEEDUP = 3.0
# The targets are judged only where each compiled call was filled with at least this much work: the ~0.2 ms
# call overhead is then at most a few percent of a call. Shorter calls (the tiny mode's 2 relaxations) time
# the overhead more than the estimators, and their ratios say nothing either way.
MIN_JUDGED_CALL_SECONDS = 0.01

# Run sizes. Paper protocol: `number` calls per repeat, `repeats` repeats (the paper: 10,000 x 5). Training
# workload: each compiled call runs as many relaxations as fill about `call_seconds` (at least
# `min_iterations`), `calls` calls per repeat, `train_repeats` repeats.
FULL = dict(number=10_000, repeats=5, call_seconds=0.1, min_iterations=20, calls=4, train_repeats=5,
            paper_dims=PAPER_DIMS, train_dims=TRAIN_DIMS)
QUICK = dict(number=30, repeats=5, call_seconds=0.02, min_iterations=10, calls=1, train_repeats=5,
             paper_dims=PAPER_DIMS, train_dims=(TARGET_DIM,))
TINY = dict(number=3, repeats=3, call_seconds=0.0, min_iterations=2, calls=1, train_repeats=3,
            paper_dims=(5,), train_dims=(TARGET_DIM,), train_keys=("stgs", "gst", "grmck10"))


# ----------------------------------------------------------------------------------------------------------
# Statistics and environment.

def t_interval(values, confidence=0.95):
  """(mean, Student-t half-width) of `values`: df = n - 1, scale = standard error (the paper's +-)."""
  from maddpg_tf.analysis import statistics  # pylint: disable=g-import-not-at-top  (scipy.stats)
  interval = statistics.t_interval(values, confidence)
  return interval.mean, interval.half_width


def git_revision():
  """The checkout's short revision, with "+local changes" when tracked files differ (Table 2's footnote)."""
  revision, dirty = workdir.git_revision(REPO_ROOT)
  return "unknown" if revision == "unknown" else revision[:7] + ("+local changes" if dirty else "")


def _cpu_model():
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.lower().startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or "unknown CPU"


def device_description(tf):
  """Where the timed ops run: the first GPU if TensorFlow sees one (its default placement), else the CPU."""
  gpus = tf.config.list_physical_devices("GPU")
  if gpus:
    try:
      name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    except (ValueError, RuntimeError):
      name = gpus[0].name
    return f"GPU: {name} ({len(gpus)} visible)"
  return f"CPU: {_cpu_model()} ({os.cpu_count()} logical cores)"


def configure_threads(tf, threads):
  """Sets TF's intra- and inter-op thread pools to `threads` (must happen before TF runs anything)."""
  if threads is None:
    return
  try:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  except RuntimeError as error:  # TF already initialised in this process (e.g. called from a test)
    print(f"warning: could not set threads to {threads}: {error}", file=sys.stderr)


def environment(tf):
  return {
      "tf_version": tf.__version__,
      "device": device_description(tf),
      "git_revision": git_revision(),
      "python": platform.python_version(),
      "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),  # 0: TF's default
      "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
  }


# ----------------------------------------------------------------------------------------------------------
# Section 1: the paper's protocol.

def _paper_sampler(tf, estimators, config):
  kwargs = config.kwargs

  @tf.function(autograph=False)
  def sample(logits, seed):
    return estimators.make(config.name, logits=logits, **kwargs).sample(seed=seed)

  return sample


def _time_round_robin(functions, args, number, repeats, chunk=1000):
  """Microseconds per call: `repeats` repeats of `number` back-to-back calls of every function (timeit).

  Within a repeat the functions take turns every `chunk` calls, so load from other processes on a shared
  machine falls on all of them alike (ratios stay fair). Returns one list of per-repeat figures per
  function.
  """
  for function in functions:
    function(*args)  # trace and warm up
  per_call = [[] for _ in functions]
  for _ in range(repeats):
    seconds = [0.0] * len(functions)
    done = 0
    while done < number:
      calls = min(chunk, number - done)
      for index, function in enumerate(functions):
        start = time.perf_counter()
        for _ in range(calls):
          function(*args)
        seconds[index] += time.perf_counter() - start
      done += calls
    for index in range(len(functions)):
      per_call[index].append(seconds[index] / number * 1e6)
  return per_call


def time_paper_protocol(dims=PAPER_DIMS, number=10_000, repeats=5, configs=PAPER_CONFIGS, seed=0):
  """The paper's Table 2 protocol. Returns one dict per (dimension, estimator config).

  Keys: dim, key, label, us (mean per call), ci95, ratio (to STGS at that dim), samples (per-repeat us),
  paper_label / paper_us / paper_ci95 / paper_ratio (None where the paper has no such column),
  paper_code_us (the authors' code on this kind of machine, `PAPER_CODE_*_US`; None where not measured).
  """
  tf = process.import_tensorflow()  # without its import-time log lines
  import estimators  # pylint: disable=g-import-not-at-top

  paper = paper_data.table2_by_config()
  seed_tensor = tf.constant([seed, 1], tf.int32)  # the work does not depend on the seed's value
  rows = []
  for dim in dims:
    _progress(f"paper protocol, dim {dim}: {len(configs)} estimators x {repeats} x {number:,} calls")
    logits = tf.constant(np.random.default_rng(seed + dim).standard_normal((1, dim)), tf.float32)
    samplers = [_paper_sampler(tf, estimators, config) for config in configs]
    timings = _time_round_robin(samplers, (logits, seed_tensor), number, repeats)
    for config, samples in zip(configs, timings):
      mean, ci95 = t_interval(samples)
      reference = paper.get((dim, config.paper_family, config.paper_k)) if config.paper_family else None
      rows.append(dict(dim=dim, key=config.key, label=config.label, us=mean, ci95=ci95, samples=samples,
                       paper_label=reference.estimator if reference else None,
                       paper_us=reference.microseconds if reference else None,
                       paper_ci95=reference.ci95 if reference else None,
                       paper_ratio=reference.ratio_to_stgs if reference else None,
                       paper_code_us=PAPER_CODE_BATCH1_US.get(dim, {}).get(config.key)))
  _add_ratios(rows)
  return rows


def _progress(message):
  print(f"[bench_estimators {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _add_ratios(rows):
  stgs = {row["dim"]: row for row in rows if row["key"] == "stgs"}
  for row in rows:
    reference = stgs.get(row["dim"])
    row["ratio"] = row["us"] / reference["us"] if reference else None
    if "best_us" in row:
      row["best_ratio"] = row["best_us"] / reference["best_us"] if reference else None


# ----------------------------------------------------------------------------------------------------------
# Section 2: the training workload.

def make_training_loop(config, dim, weights_seed=1):
  """An XLA-compiled `loop(logits, base_seed, iterations) -> scalar` of relaxations of `config`.

  Each iteration draws a fresh seed (base_seed, i), samples, takes the gradient of sum(sample * w) with
  respect to the logits (w: fixed random weights of size `dim`) and adds gradient + sample to an
  accumulator, so XLA can drop none of the work. The logits are shifted by 1e-3 * i per iteration: softmax
  is shift-invariant, so the distribution is unchanged, but nothing can be hoisted out of the loop as
  loop-invariant (plain ST's backward pass would otherwise be computed once). `iterations` is a tensor:
  changing it does not recompile.
  """
  tf = process.import_tensorflow()  # without its import-time log lines
  import estimators  # pylint: disable=g-import-not-at-top

  weights = tf.constant(np.random.default_rng(weights_seed).standard_normal(dim), tf.float32)
  kwargs = config.kwargs

  @tf.function(jit_compile=True, autograph=False)
  def loop(logits, base_seed, iterations):
    def body(i, accumulator):
      seed = tf.stack([base_seed, i])
      shifted = logits + 1e-3 * tf.cast(i, logits.dtype)
      step = {"step": i} if config.step_param else {}
      with tf.GradientTape() as tape:
        tape.watch(shifted)
        sample = estimators.make(config.name, logits=shifted, **kwargs, **step).sample(seed=seed)
        objective = tf.reduce_sum(sample * weights)
      gradient = tape.gradient(objective, shifted)
      return i + 1, accumulator + gradient + sample

    _, accumulator = tf.while_loop(lambda i, _: i < iterations, body,
                                   (tf.constant(0, tf.int32), tf.zeros_like(logits)),
                                   parallel_iterations=1)
    return tf.reduce_sum(accumulator)

  return loop


def time_training_workload(dims=TRAIN_DIMS, rows=TRAIN_ROWS, call_seconds=0.1, min_iterations=20, calls=4,
                           repeats=5, configs=TRAIN_CONFIGS, seed=0):
  """Forward + backward under XLA, many relaxations per compiled call. One dict per (dim, config).

  The number of relaxations per call is chosen once per config (from a probe call) so that a call lasts
  about `call_seconds`, and at least `min_iterations`: the ~0.2 ms call overhead then stays a few percent
  or less of the figure.

  Keys: dim, key, label, rows, us (microseconds per relaxation of a `rows`-row batch, mean over repeats),
  ci95, samples (per-repeat us), iterations (relaxations per call), ratio (to STGS at that dim), compile_s
  (first call, incl. compilation), us_per_1024 (us x 1024 / rows: the per-row cost at the paper code's batch),
  paper_code_dim, paper_code_us / paper_code_ratio (the authors' code here, `PAPER_CODE_*_US`; None where not
  measured), speedup_vs_paper_code (paper code us / our us_per_1024).
  """
  tf = process.import_tensorflow()  # without its import-time log lines

  results = []
  for dim in dims:
    _progress(f"training workload, dim {dim}: compiling {len(configs)} estimators")
    logits = tf.constant(np.random.default_rng(seed + dim).standard_normal((rows, dim)), tf.float32)
    loops, iteration_counts, compile_times = [], [], []
    for config in configs:
      loop = make_training_loop(config, dim)
      probe = max(2, min_iterations // 2)
      start = time.perf_counter()
      loop(logits, tf.constant(-1, tf.int32), tf.constant(probe, tf.int32)).numpy()
      compile_times.append(time.perf_counter() - start)
      probe_seconds = []
      for base_seed in (-2, -3):
        start = time.perf_counter()
        loop(logits, tf.constant(base_seed, tf.int32), tf.constant(probe, tf.int32)).numpy()
        probe_seconds.append((time.perf_counter() - start) / probe)
      loops.append(loop)
      per_iteration = max(min(probe_seconds), 1e-9)
      iteration_counts.append(max(min_iterations, int(math.ceil(call_seconds / per_iteration))))
    # Round robin at the level of single calls: the configs take turns call by call, so load from other
    # processes on a shared machine falls on all of them alike. A repeat's figure is the mean of its calls.
    samples = [[] for _ in configs]
    iteration_tensors = [tf.constant(iterations, tf.int32) for iterations in iteration_counts]
    for repeat in range(repeats):
      seconds = [0.0] * len(configs)
      for call in range(calls):
        base_seed = tf.constant(repeat * calls + call, tf.int32)
        for index, loop in enumerate(loops):
          start = time.perf_counter()
          loop(logits, base_seed, iteration_tensors[index]).numpy()
          seconds[index] += time.perf_counter() - start
      for index, iterations in enumerate(iteration_counts):
        samples[index].append(seconds[index] / (calls * iterations) * 1e6)
    for config, config_samples, iterations, compile_s in zip(configs, samples, iteration_counts,
                                                             compile_times):
      mean, ci95 = t_interval(config_samples)
      paper_dim = PAPER_CODE_DIM_FOR.get(dim, dim)
      paper_us = PAPER_CODE_TRAIN_US.get(paper_dim, {}).get(config.key)
      paper_stgs = PAPER_CODE_TRAIN_US.get(paper_dim, {}).get("stgs")
      per_1024 = mean * PAPER_CODE_ROWS / rows
      results.append(dict(dim=dim, key=config.key, label=config.label, rows=rows, us=mean, ci95=ci95,
                          best_us=min(config_samples), samples=config_samples, iterations=iterations,
                          compile_s=compile_s,
                          us_per_1024=per_1024, paper_code_dim=paper_dim if paper_us else None,
                          paper_code_us=paper_us,
                          paper_code_ratio=paper_us / paper_stgs if paper_us and paper_stgs else None,
                          speedup_vs_paper_code=paper_us / per_1024 if paper_us else None))
  _add_ratios(results)
  return results


# ----------------------------------------------------------------------------------------------------------
# Targets, headline, whole run.

def _find(rows, dim, key):
  for row in rows:
    if row["dim"] == dim and row["key"] == key:
      return row
  return None


def evaluate_targets(training, call_seconds=None):
  """The issue's three targets on the dimension-6 training workload: list of dicts, `passed` True or False,
  or None (not judged, `note` says why) where `call_seconds`, the work each compiled call was filled with,
  is below MIN_JUDGED_CALL_SECONDS (None: judged)."""
  stgs, gst, grmck10 = (_find(training, TARGET_DIM, key) for key in ("stgs", "gst", "grmck10"))
  targets = []
  if stgs and gst:
    targets.append(dict(name=f"GST within {GST_MAX_RATIO}x of STGS (dim {TARGET_DIM}, training workload)",
                        value=gst["us"] / stgs["us"], threshold=GST_MAX_RATIO, unit="x STGS",
                        detail=f"best repeats: {gst['best_us'] / stgs['best_us']:.2f}x",
                        passed=gst["us"] / stgs["us"] <= GST_MAX_RATIO))
  if stgs and grmck10:
    targets.append(dict(name=f"GRMCK K=10 within {GRMCK10_MAX_RATIO:g}x of STGS (dim {TARGET_DIM}, training "
                             "workload)",
                        value=grmck10["us"] / stgs["us"], threshold=GRMCK10_MAX_RATIO, unit="x STGS",
                        detail=f"best repeats: {grmck10['best_us'] / stgs['best_us']:.2f}x",
                        passed=grmck10["us"] / stgs["us"] <= GRMCK10_MAX_RATIO))
  if stgs:
    paper = PAPER_CODE_TRAIN_US[PAPER_CODE_DIM_FOR[TARGET_DIM]]["stgs"]
    speedup = paper / stgs["us_per_1024"]
    best = stgs["best_us"] * PAPER_CODE_ROWS / stgs["rows"]
    targets.append(dict(name=f"STGS at least {STGS_MIN_SPEEDUP:g}x faster per row than the paper code "
                             f"({paper:g} us per {PAPER_CODE_ROWS}-row call)",
                        value=speedup, threshold=STGS_MIN_SPEEDUP, unit="x faster",
                        detail=f"ours {stgs['us_per_1024']:.1f} us per {PAPER_CODE_ROWS} rows; best repeat "
                               f"{best:.1f} us, {paper / best:.1f}x",
                        passed=speedup >= STGS_MIN_SPEEDUP))
  if call_seconds is not None and call_seconds < MIN_JUDGED_CALL_SECONDS:
    note = (f"not judged: calls of {call_seconds * 1e3:g} ms of work time the ~0.2 ms call overhead more than "
            f"the estimators (judged from {MIN_JUDGED_CALL_SECONDS * 1e3:g} ms per call: the small budget, "
            f"maddpg-bench-estimators --quick)")
    targets = [dict(target, passed=None, note=note) for target in targets]
  return targets


@contextlib.contextmanager
def _intended_traces(tf):
  """TensorFlow's "N out of the last N calls to <function> triggered tf.function retracing" warning held
  back: the benchmark builds one `tf.function` per (estimator, dimension) from the same Python code and
  traces each exactly once, as it must (every estimator and shape is its own graph); TensorFlow counts the
  traces per code object, so it takes them for retracing. Other warnings and errors still show."""
  logger = tf.get_logger()
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def run_benchmark(quick=False, *, tiny=False, number=None, repeats=None, call_seconds=None,
                  min_iterations=None, calls=None, train_repeats=None, paper_dims=None, train_dims=None,
                  train_keys=None, sections=("paper", "training")):
  """Runs the benchmark and returns structured results (a dict; see module docstring).

  `quick` shortens every loop and times the training workload at dimension 6 only (well under a minute
  on an idle machine; XLA compilation is most of it); `tiny` is for tests (a few calls; dims 5 and 6 only;
  in the training workload only STGS, GST and GRMCK K=10). Explicit keyword arguments override the preset.
  """
  tf = process.import_tensorflow()  # without its import-time log lines
  import estimators  # pylint: disable=g-import-not-at-top

  train_configs = TRAIN_CONFIGS + tuple(  # estimators registered after this file was written: defaults
      Config(name, f"{name} (default parameters)", name, ())
      for name in estimators.names() if name not in {config.name for config in TRAIN_CONFIGS})
  preset = dict(TINY if tiny else QUICK if quick else FULL)
  overrides = dict(number=number, repeats=repeats, call_seconds=call_seconds, min_iterations=min_iterations,
                   calls=calls, train_repeats=train_repeats, paper_dims=paper_dims, train_dims=train_dims,
                   train_keys=train_keys)
  preset.update({k: v for k, v in overrides.items() if v is not None})

  results = dict(environment=environment(tf), mode="tiny" if tiny else "quick" if quick else "full",
                 settings=dict(preset, train_rows=TRAIN_ROWS), paper=[], training=[], targets=[])
  start = time.perf_counter()
  with _intended_traces(tf):
    if "paper" in sections:
      results["paper"] = time_paper_protocol(preset["paper_dims"], preset["number"], preset["repeats"])
    if "training" in sections:
      keys = preset.get("train_keys")
      configs = tuple(config for config in train_configs if keys is None or config.key in keys)
      results["training"] = time_training_workload(preset["train_dims"], TRAIN_ROWS, preset["call_seconds"],
                                                    preset["min_iterations"], preset["calls"],
                                                    preset["train_repeats"], configs)
      results["targets"] = evaluate_targets(results["training"], preset["call_seconds"])
  results["elapsed_s"] = time.perf_counter() - start
  return results


def headline(results):
  """The flat summary printed by --json (one JSON object)."""
  out = {}
  stgs5 = _find(results["paper"], 5, "stgs")
  if stgs5:
    out["stgs_batch1_us_dim5"] = stgs5["us"]
  stgs = _find(results["training"], TARGET_DIM, "stgs")
  if stgs:
    out["stgs_train_us"] = stgs["us"]
    out["stgs_train_us_per_1024_rows"] = stgs["us_per_1024"]
    out["stgs_speedup_vs_paper_code"] = stgs["speedup_vs_paper_code"]
    for key, name in (("gst", "gst_over_stgs_train"), ("grmck10", "grmck10_over_stgs_train")):
      row = _find(results["training"], TARGET_DIM, key)
      if row:
        out[name] = row["us"] / stgs["us"]
  out["train_dim"] = TARGET_DIM
  out["train_rows"] = TRAIN_ROWS
  out["train_us"] = {str(dim): {row["key"]: row["us"] for row in results["training"] if row["dim"] == dim}
                     for dim in sorted({row["dim"] for row in results["training"]})}
  out["train_best_us"] = {str(dim): {row["key"]: row["best_us"] for row in results["training"]
                                     if row["dim"] == dim}
                          for dim in sorted({row["dim"] for row in results["training"]})}
  out["batch1_us"] = {str(dim): {row["key"]: row["us"] for row in results["paper"] if row["dim"] == dim}
                      for dim in sorted({row["dim"] for row in results["paper"]})}
  out["targets"] = {target["name"]: dict(value=target["value"], threshold=target["threshold"],
                                         passed=target["passed"]) for target in results["targets"]}
  judged = [target["passed"] for target in results["targets"]]
  # None where there is nothing to judge (no training section, or calls too short to judge on).
  out["all_targets_passed"] = all(judged) if judged and None not in judged else None
  out.update({k: results["environment"][k] for k in ("device", "tf_version", "git_revision",
                                                      "intra_op_threads", "inter_op_threads")})
  out["mode"] = results["mode"]
  return out


# ----------------------------------------------------------------------------------------------------------
# Report.

def _us(mean, ci95=None):
  if mean is None:
    return "-"
  text = f"{mean:,.1f}" if mean < 1000 else f"{mean:,.0f}"
  if ci95 is not None and not math.isnan(ci95):
    text += f" ± {ci95:,.1f}" if ci95 < 1000 else f" ± {ci95:,.0f}"
  return text


def _x(ratio, digits=2):
  return "-" if ratio is None else f"{ratio:.{digits}f}x"


def format_report(results):
  """The human-readable report (Markdown tables)."""
  env, settings = results["environment"], results["settings"]
  threads = (f"intra-op {env['intra_op_threads'] or 'default'}, "
             f"inter-op {env['inter_op_threads'] or 'default'}")
  lines = [
      "# Estimator timing (maddpg-tf)",
      "",
      f"- TensorFlow {env['tf_version']}, Python {env['python']}; device {env['device']}; threads: {threads}",
      f"- git revision {env['git_revision']}; mode {results['mode']}; total {results['elapsed_s']:.0f} s",
  ]
  if results["paper"]:
    lines += _paper_section(results["paper"], settings)
  if results["training"]:
    lines += _training_section(results["training"], settings)
  if results["targets"]:
    lines += _targets_section(results["targets"])
  return "\n".join(lines)


def _paper_section(rows, settings):
  lines = []
  lines += [
      "",
      "## 1. The paper's protocol (Table 2): batch-1 logits, forward only",
      "",
      f"One `tf.function` call (graph mode, no XLA) per relaxation: the sample only, no backward pass; "
      f"temperature 1, GST gap 1; {settings['repeats']} repeats x {settings['number']:,} calls, the "
      f"estimators taking turns every 1,000 calls; microseconds per call, mean ± 95% Student-t half-width "
      f"(df={settings['repeats'] - 1}). At batch 1 this measures per-call overhead "
      "(about 0.2 ms per `tf.function` call here) more than the estimators. The paper's column labelled "
      "\"GRMC-50\" ran K = 100 in the authors' script: compare it with our K = 100 row (our K = 50 has no "
      "paper figure). \"Paper code here\" is the authors' PyTorch code on this kind of machine "
      "(measured 2026-11-25; `PAPER_CODE_BATCH1_US` in maddpg_tf/lab/timing.py).",
      "",
      "| dim | estimator | ours (us) | ours / STGS | paper (us) | paper / STGS | paper code here (us) |",
      "|---:|---|---:|---:|---:|---:|---:|",
  ]
  for row in rows:
    paper = _us(row["paper_us"], row["paper_ci95"]) if row["paper_us"] is not None else "-"
    lines.append(f"| {row['dim']} | {row['label']} | {_us(row['us'], row['ci95'])} | {_x(row['ratio'])} | "
                 f"{paper} | {_x(row['paper_ratio'])} | {_us(row['paper_code_us'])} |")
  return lines


def _training_section(training, settings):
  lines = []
  dims = sorted({row["dim"] for row in training})
  lines += [
      "",
      f"## 2. Training workload: {TRAIN_ROWS} rows, forward + backward, XLA",
      "",
      f"Many relaxations per compiled call (a `tf.while_loop`, a fresh seed each, every sample and gradient "
      f"accumulated; as many as fill about {settings['call_seconds'] * 1e3:g} ms, at least "
      f"{settings['min_iterations']}: column \"n\"), {settings['calls']} call(s) per repeat, "
      f"{settings['train_repeats']} repeats, the estimators taking turns call by call; microseconds per "
      f"relaxation of a {TRAIN_ROWS}-row batch, mean ± 95% t half-width, and the best repeat (least "
      "disturbed by other processes on a shared machine). The ~0.2 ms call overhead is spread over the n "
      "relaxations of a call.",
      "",
      "| estimator | " + " | ".join(f"dim {d} (us) | dim {d} / STGS | best of {settings['train_repeats']} "
                                     f"(us, / STGS) | n" for d in dims) + " |",
      "|---|" + "---:|---:|---:|---:|" * len(dims),
  ]
  for key in dict.fromkeys(row["key"] for row in training):
    cells = []
    for dim in dims:
      row = _find(training, dim, key)
      cells += ([_us(row["us"], row["ci95"]), _x(row["ratio"]),
                 f"{_us(row['best_us'])} ({_x(row['best_ratio'])})", str(row["iterations"])]
                if row else ["-"] * 4)
    label = next(row["label"] for row in training if row["key"] == key)
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  lines += [
      "",
      f"### Per {PAPER_CODE_ROWS} rows, beside the authors' code on this machine (`PAPER_CODE_TRAIN_US` in "
      f"maddpg_tf/lab/timing.py)",
      "",
      f"Ours: {PAPER_CODE_ROWS // TRAIN_ROWS} x the {TRAIN_ROWS}-row figure. The authors' code: one "
      f"{PAPER_CODE_ROWS}-row forward + backward call, PyTorch on CPU, one thread; their dimension 5 is "
      "compared with our dimension 6 (LBF's action count).",
      "",
      f"| estimator | dim (ours / theirs) | ours per {PAPER_CODE_ROWS} rows (us) | ours / STGS | "
      f"paper code (us) | paper code / STGS | paper code time / ours |",
      "|---|---|---:|---:|---:|---:|---:|",
  ]
  for row in training:
    if row["paper_code_us"] is None:
      continue
    lines.append(f"| {row['label']} | {row['dim']} / {row['paper_code_dim']} | {_us(row['us_per_1024'])} | "
                 f"{_x(row['ratio'])} | {_us(row['paper_code_us'])} | {_x(row['paper_code_ratio'], 1)} | "
                 f"{_x(row['speedup_vs_paper_code'], 1)} |")
  lines += ["", "compile time (first call, s): " + ", ".join(
      f"{row['key']}@{row['dim']} {row['compile_s']:.1f}" for row in training)]
  return lines


def _targets_section(targets):
  lines = []
  lines += ["", "## 3. Targets", "",
            "PASS/FAIL is judged on the means; the best repeats are shown for a machine shared with other "
            "work.", "", "| target | measured | threshold | result |", "|---|---:|---:|---|"]
  for target in targets:
    bound = "<=" if "within" in target["name"] else ">="
    detail = f" ({target['detail']})" if target.get("detail") else ""
    result = target["note"] if target["passed"] is None else "PASS" if target["passed"] else "FAIL"
    lines.append(f"| {target['name']} | {target['value']:.2f} {target['unit']}{detail} | "
                 f"{bound} {target['threshold']:g} | {result} |")
  return lines
