"""The field's aggregate statistics for a reproduction grid (Agarwal et al. 2021; Gorsane et al. 2022).

Input: run records, one per (task, estimator, seed), as `maddpg-reproduce` reads them from each run's
evaluations.csv:

  dict(task=str, estimator=str, seed=int, evaluations=[(step: int, returns: list[float]), ...])

(an optional `absolute_returns: list[float]`, the episodes of marl-eval's "absolute metric" from the run's
absolute.json where it has one, is carried into the marl-eval export and into the normalisation bounds, as
marl-eval does).

Normalisation (marl-eval's convention): every return of task m is mapped to
  z = (r - lo_m) / (hi_m - lo_m),
lo_m, hi_m = the minimum and maximum over every episode return of every evaluation of every run of task m
in the grid (`over="episodes"`, marl-eval's; `over="evaluations"` takes them over the evaluations' mean
returns instead). An evaluation's normalised return is the mean of its episodes' z (= z of its mean
return). A task whose returns are all equal (hi_m = lo_m) scores 0 everywhere (as marl-eval's
(r - lo) / (hi - lo + 1e-6) gives) and is named in aggregate.md.

Scores per run, over the evaluations that every run of its task has (the common prefix, so each score of a
task covers the same env steps):
  average = mean_j z_j (Table 1's average, per seed), final = z at the last common evaluation,
  absolute = z of the mean of its absolute-metric episodes (Gorsane et al. 2022's absolute metric: the best
  policy re-evaluated over 10x the episodes), for the (estimator, task) groups whose every run has one.

Aggregates over the run x task scores of one estimator, x_{n,m} (run n of task m, N_m runs of task m,
M tasks, N = sum_m N_m), rliable's definitions (equal N_m gives rliable's exact numbers):
  iqm             = 25% trimmed mean of all N scores (scipy.stats.trim_mean: floor(N / 4) cut each end);
  median          = median over tasks of the task means mean_n x_{n,m};
  mean            = mean over tasks of the task means;
  optimality_gap  = 1 - mean over all N scores of min(x, 1).
Probability of improvement (rliable, ties count one half):
  P(X > Y) = 1/M sum_m 1/(N^X_m N^Y_m) sum_{i,j} [x_{i,m} > y_{j,m}] + 1/2 [x_{i,m} = y_{j,m}],
over the tasks both estimators have.

Intervals: 95% percentile intervals of the stratified bootstrap (rliable's default): each replicate
resamples, with replacement, N_m runs from task m's own runs for every task, recomputes the statistic, and
the interval is the 2.5th and 97.5th percentiles (numpy's linear interpolation) of the replicates. For a
probability of improvement X's and Y's runs are resampled independently. A replicate's draws come from one
NumPy PCG64 stream per task (seeded from `seed` and a label), as floats u in [0, 1) mapped to floor(u N_m),
so the numbers depend on (seed, label, reps, scores) only, not on how the replicates are chunked.

Not copied from marl-eval (its known slips): its per-task interval 1.96 sd / sqrt(10) hard-codes n = 10
and uses the population sd; its min/max search skips the maximum whenever the same step lowered the
minimum; it adds 1e-6 to every range.

Pure NumPy/SciPy: no TensorFlow. Entry point: `write_aggregates`.
"""

import collections
import csv
import numbers
import os
import zlib

import numpy as np

from maddpg_tf.analysis import statistics

SCORES = ("average", "final", "absolute")
METRICS = ("iqm", "median", "mean", "optimality_gap")
METRIC_LABELS = {"iqm": "IQM", "median": "Median", "mean": "Mean", "optimality_gap": "Optimality gap"}
CONFIDENCE = 0.95
NORMALISATIONS = ("episodes", "evaluations")
AGGREGATE_COLUMNS = ("estimator", "score", "metric", "point", "low", "high", "runs", "tasks", "reps")
POI_COLUMNS = ("x", "y", "score", "point", "low", "high")
_CHUNK_ELEMENTS = 1 << 23  # values per bootstrap chunk (64 MiB of float64): bounds memory at any reps


def normalisation_note(over="episodes"):
  """One sentence stating the normalisation, for every output."""
  _check_over(over)
  what = ("every episode return of every evaluation of every run" if over == "episodes"
          else "the mean return of every evaluation of every run")
  return (f"returns normalised per task as (r - min) / (max - min), min and max over {what} of that task "
          f"in the grid (marl-eval's convention)")


def environment_of_task(task):
  """'lbf-8x8-2p-2f-coop' -> 'lbf', 'rware-tiny-2ag' -> 'rware': the task name's prefix before '-'."""
  if not isinstance(task, str) or not task:
    raise ValueError(f"task must be a non-empty string, got {task!r}")
  return task.split("-", 1)[0]


# ---- input ----------------------------------------------------------------------------------------------

def _check_over(over):
  if over not in NORMALISATIONS:
    raise ValueError(f"over={over!r}: allowed {', '.join(NORMALISATIONS)}")


def _finite_list(values, what):
  try:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
  except (TypeError, ValueError):
    raise ValueError(f"{what} must be a list of numbers, got {values!r}") from None
  if array.size == 0:
    raise ValueError(f"{what} is empty: an evaluation needs at least one episode return")
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{what} holds non-finite returns {array[~np.isfinite(array)][:3].tolist()}")
  return array


def check_runs(runs):
  """Validated copies of the run records: steps as ints (strictly increasing), returns as float arrays.

  Raises ValueError naming the first bad record: a missing key, a task or estimator that is not a
  non-empty string, a seed that is not an int, no evaluations, a step that is not an int >= 0 or does not
  increase, an evaluation without finite returns, or two records of the same (task, estimator, seed).
  """
  if isinstance(runs, (str, bytes, dict)) or not hasattr(runs, "__iter__"):
    raise ValueError(f"runs must be a list of run records (dicts), got {type(runs).__name__}")
  checked, seen = [], set()
  for index, run in enumerate(runs):
    if not isinstance(run, dict):
      raise ValueError(f"runs[{index}] must be a dict with task, estimator, seed, evaluations; got "
                       f"{type(run).__name__}")
    missing = [key for key in ("task", "estimator", "seed", "evaluations") if key not in run]
    if missing:
      raise ValueError(f"runs[{index}] lacks {', '.join(missing)} (needs task, estimator, seed, evaluations)")
    for key in ("task", "estimator"):
      if not isinstance(run[key], str) or not run[key]:
        raise ValueError(f"runs[{index}].{key} must be a non-empty string, got {run[key]!r}")
    seed = run["seed"]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
      raise ValueError(f"runs[{index}].seed must be an int, got {seed!r}")
    key = (run["task"], run["estimator"], int(seed))
    if key in seen:
      raise ValueError(f"runs[{index}]: a second record of task {key[0]!r}, estimator {key[1]!r}, seed {key[2]}")
    seen.add(key)
    evaluations = run["evaluations"]
    if isinstance(evaluations, (str, bytes)) or not hasattr(evaluations, "__len__") or not len(evaluations):
      raise ValueError(f"runs[{index}] ({key[0]}, {key[1]}, seed {key[2]}) has no evaluations")
    steps, returns = [], []
    for j, evaluation in enumerate(evaluations):
      try:
        step, episode_returns = evaluation
      except (TypeError, ValueError):
        raise ValueError(f"runs[{index}].evaluations[{j}] must be (step, returns), got {evaluation!r}") from None
      if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"runs[{index}].evaluations[{j}] step must be an int >= 0, got {step!r}")
      if steps and step <= steps[-1]:
        raise ValueError(f"runs[{index}].evaluations[{j}] step {step} does not follow step {steps[-1]} "
                         f"(steps must increase)")
      steps.append(int(step))
      returns.append(_finite_list(episode_returns, f"runs[{index}].evaluations[{j}] returns"))
    record = dict(task=key[0], estimator=key[1], seed=key[2], steps=np.asarray(steps, np.int64),
                  returns=returns)
    if run.get("absolute_returns") is not None:
      record["absolute_returns"] = _finite_list(run["absolute_returns"], f"runs[{index}].absolute_returns")
    checked.append(record)
  if not checked:
    raise ValueError("runs is empty: no run records to aggregate")
  return checked


def read_evaluations(path):
  """[(step, [episode returns])] from a run's evaluations.csv (columns step, mean_return, episodes,
  return_0, ...; each row holds `episodes` returns)."""
  evaluations = []
  with open(path, newline="") as handle:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None or header[:3] != ["step", "mean_return", "episodes"]:
      raise ValueError(f"{path}: not an evaluations CSV (its header is {header!r}, expected step, mean_return, "
                       f"episodes, return_0, ...)")
    for line, row in enumerate(reader, start=2):
      try:
        count = int(row[2])
        returns = [float(v) for v in row[3:3 + count]]
        if len(returns) != count:
          raise ValueError
        evaluations.append((int(row[0]), returns))
      except (ValueError, IndexError):
        raise ValueError(f"{path}: line {line} is not step, mean_return, episodes and that many returns: "
                         f"{row[:5]!r}") from None
  return evaluations


def runs_from_results(results):
  """Run records of every `<results>/<task>/<estimator>/seed<k>/evaluations.csv` with an evaluation.

  Records come in sorted (task, estimator, seed) order; a run without evaluations yet is left out. A run
  whose workdir holds an absolute metric (`statistics.read_absolute`: absolute.json, written after
  training) carries its episode returns as `absolute_returns`.
  """
  if not os.path.isdir(results):
    raise ValueError(f"results={results!r} is not a directory")
  runs = []
  for task in sorted(os.listdir(results)):
    task_dir = os.path.join(results, task)
    if not os.path.isdir(task_dir) or task in ("logs", "figures", "aggregate"):
      continue
    for estimator in sorted(os.listdir(task_dir)):
      estimator_dir = os.path.join(task_dir, estimator)
      if not os.path.isdir(estimator_dir):
        continue
      for name in os.listdir(estimator_dir):
        path = os.path.join(estimator_dir, name, "evaluations.csv")
        if not (name.startswith("seed") and name[4:].isdigit() and os.path.isfile(path)):
          continue
        evaluations = read_evaluations(path)
        if not evaluations:
          continue
        run = dict(task=task, estimator=estimator, seed=int(name[4:]), evaluations=evaluations)
        absolute = statistics.read_absolute(os.path.join(estimator_dir, name))
        if absolute is not None:
          run["absolute_returns"] = [float(r) for r in absolute["returns"]]
        runs.append(run)
  return sorted(runs, key=lambda r: (r["task"], r["estimator"], r["seed"]))


# ---- normalisation and scores -----------------------------------------------------------------------------

def normalisation_bounds(runs, over="episodes"):
  """{task: (lo, hi)}: min and max of the task's returns in the grid (see the module docstring)."""
  _check_over(over)
  runs = runs if _is_checked(runs) else check_runs(runs)
  bounds = {}
  for run in runs:
    if over == "episodes":
      values = np.concatenate(run["returns"] + ([run["absolute_returns"]] if "absolute_returns" in run else []))
    else:
      values = np.array([r.mean() for r in run["returns"]]
                        + ([run["absolute_returns"].mean()] if "absolute_returns" in run else []))
    lo, hi = float(values.min()), float(values.max())
    if run["task"] in bounds:
      lo, hi = min(lo, bounds[run["task"]][0]), max(hi, bounds[run["task"]][1])
    bounds[run["task"]] = (lo, hi)
  return bounds


def _is_checked(runs):
  return isinstance(runs, list) and runs and all(isinstance(r, dict) and "steps" in r for r in runs)


def normalise(runs, over="episodes", bounds=None):
  """(normalised runs, bounds): each run as dict(task, estimator, seed, steps [E] int, scores [E] float).

  scores[j] = (mean_k returns[j][k] - lo) / (hi - lo) with the task's (lo, hi) from `bounds`
  (default `normalisation_bounds(runs, over)`); 0 where hi == lo.
  """
  runs = runs if _is_checked(runs) else check_runs(runs)
  if bounds is None:
    bounds = normalisation_bounds(runs, over)
  normalised = []
  for run in runs:
    if run["task"] not in bounds:
      raise ValueError(f"bounds lack task {run['task']!r} (they have {', '.join(sorted(bounds))})")
    lo, hi = bounds[run["task"]]
    means = np.array([r.mean() for r in run["returns"]])
    scores = np.zeros_like(means) if hi == lo else (means - lo) / (hi - lo)
    absolute = None
    if "absolute_returns" in run:
      absolute = 0.0 if hi == lo else float((run["absolute_returns"].mean() - lo) / (hi - lo))
    normalised.append(dict(task=run["task"], estimator=run["estimator"], seed=run["seed"],
                           steps=run["steps"].copy(), scores=scores, absolute=absolute))
  return normalised, bounds


def run_scores(normalised):
  """{score: {estimator: {task: [runs] array in seed order}}} and {task: common evaluation count}.

  Each task's scores use the first L_m evaluations of each run, L_m = the fewest any run of task m has.
  """
  common = {}
  for run in normalised:
    common[run["task"]] = min(common.get(run["task"], len(run["scores"])), len(run["scores"]))
  table = {score: collections.defaultdict(dict) for score in SCORES}
  grouped = collections.defaultdict(list)
  for run in normalised:
    grouped[(run["estimator"], run["task"])].append(run)
  for (estimator, task), group in grouped.items():
    group = sorted(group, key=lambda r: r["seed"])
    length = common[task]
    table["average"][estimator][task] = np.array([r["scores"][:length].mean() for r in group])
    table["final"][estimator][task] = np.array([r["scores"][length - 1] for r in group])
    if all(r.get("absolute") is not None for r in group):  # a group with a run lacking one has none
      table["absolute"][estimator][task] = np.array([r["absolute"] for r in group])
  return {score: dict(by_estimator) for score, by_estimator in table.items()}, common


# ---- point statistics (rliable's definitions) --------------------------------------------------------

def _strata(scores):
  """A list of per-task float arrays [N_m, ...] from a [runs, tasks] matrix or a sequence of arrays."""
  if isinstance(scores, np.ndarray) and scores.dtype != object:
    if scores.ndim != 2:
      raise ValueError(f"scores must be a [runs, tasks] matrix or a list of per-task arrays, got shape "
                       f"{scores.shape}")
    strata = [scores[:, m].astype(np.float64) for m in range(scores.shape[1])]
  else:
    if isinstance(scores, dict):
      scores = list(scores.values())
    strata = [np.asarray(s, dtype=np.float64) for s in scores]
  if not strata:
    raise ValueError("scores hold no task")
  for m, stratum in enumerate(strata):
    if stratum.ndim == 0 or stratum.shape[0] == 0:
      raise ValueError(f"scores of task {m} hold no run")
    if not np.all(np.isfinite(stratum)):
      raise ValueError(f"scores of task {m} hold non-finite values")
  return strata


def _batched_iqm(strata):
  pooled = np.sort(np.concatenate(strata, axis=1), axis=1)
  cut = int(0.25 * pooled.shape[1])
  return pooled[:, cut:pooled.shape[1] - cut].mean(axis=1)


def _task_means(strata):
  return np.stack([s.mean(axis=1) for s in strata], axis=1)  # [B, M, ...]


def _batched_median(strata):
  return np.median(_task_means(strata), axis=1)


def _batched_mean(strata):
  return _task_means(strata).mean(axis=1)


def _batched_optimality_gap(strata):
  return 1.0 - np.minimum(np.concatenate(strata, axis=1), 1.0).mean(axis=1)


BATCHED_METRICS = {"iqm": _batched_iqm, "median": _batched_median, "mean": _batched_mean,
                   "optimality_gap": _batched_optimality_gap}


def _point(statistic, strata):
  return statistic([s[None] for s in strata])[0]


def iqm(scores):
  """The 25% trimmed mean of all run x task scores (rliable's aggregate_iqm)."""
  return float(_point(_batched_iqm, _strata(scores)))


def aggregate_median(scores):
  """The median over tasks of the per-task mean scores (rliable's aggregate_median)."""
  return float(_point(_batched_median, _strata(scores)))


def aggregate_mean(scores):
  """The mean over tasks of the per-task mean scores (rliable's aggregate_mean)."""
  return float(_point(_batched_mean, _strata(scores)))


def optimality_gap(scores):
  """1 - mean over all run x task scores of min(score, 1) (rliable's aggregate_optimality_gap, gamma = 1)."""
  return float(_point(_batched_optimality_gap, _strata(scores)))


def _batched_improvement(x_strata, y_strata):
  per_task = []
  for x, y in zip(x_strata, y_strata):
    diff = x[:, :, None] - y[:, None, :]
    per_task.append((diff > 0).mean(axis=(1, 2)) + 0.5 * (diff == 0).mean(axis=(1, 2)))
  return np.mean(per_task, axis=0)


# ---- the stratified bootstrap --------------------------------------------------------------------------

def _check_bootstrap(reps, seed, confidence):
  if isinstance(reps, bool) or not isinstance(reps, numbers.Integral) or reps < 1:
    raise ValueError(f"reps={reps!r}: must be an int >= 1")
  if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.random.SeedSequence)) or (
      isinstance(seed, numbers.Integral) and seed < 0):
    raise ValueError(f"seed={seed!r}: must be an int >= 0 (or a numpy SeedSequence)")
  if not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
    raise ValueError(f"confidence={confidence!r}: must be in (0, 1)")


def stream(seed, *labels):
  """A SeedSequence for one named use of `seed` (e.g. stream(0, 'aggregate', 'gst', 'final'))."""
  if isinstance(seed, np.random.SeedSequence):
    return np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key)
                                  + tuple(zlib.crc32(str(l).encode()) for l in labels))
  return np.random.SeedSequence(int(seed), spawn_key=tuple(zlib.crc32(str(l).encode()) for l in labels))


def _generators(seed, count, offset=0):
  base = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
  return [np.random.Generator(np.random.PCG64(
      np.random.SeedSequence(base.entropy, spawn_key=tuple(base.spawn_key) + (offset + m,))))
          for m in range(count)]


def _draw(generators, sizes, reps):
  return [np.minimum((g.random((reps, n)) * n).astype(np.int64), n - 1) for g, n in zip(generators, sizes)]


def stratified_indices(sizes, reps, seed=0):
  """[reps, N_m] int arrays, one per task: the runs (0 .. N_m - 1 of that task) each replicate draws."""
  _check_bootstrap(reps, seed, CONFIDENCE)
  sizes = [int(n) for n in sizes]
  if not sizes or min(sizes) < 1:
    raise ValueError(f"sizes={sizes!r}: every task needs at least one run")
  return _draw(_generators(seed, len(sizes)), sizes, int(reps))


def _chunks(reps, per_replicate):
  size = max(1, _CHUNK_ELEMENTS // max(1, per_replicate))
  for start in range(0, reps, size):
    yield min(size, reps - start)


def _percentiles(replicates, confidence):
  alpha = 100 * (1 - confidence) / 2
  low, high = np.percentile(replicates, [alpha, 100 - alpha], axis=0)
  return low, high


def stratified_bootstrap_ci(scores, statistic, *, reps=50_000, seed=0, confidence=CONFIDENCE):
  """(point, low, high) of `statistic` with a stratified-bootstrap percentile interval.

  scores: a [runs, tasks] matrix, or a sequence of per-task arrays [N_m, ...] (runs first; trailing axes,
    such as evaluation steps, are carried through). statistic: a name in METRICS, or a function of a list
    of per-task arrays [B, N_m, ...] (B replicates) returning [B, ...]. Each replicate resamples every
    task's runs with replacement within that task. Returns floats for a scalar statistic, else arrays.
  """
  _check_bootstrap(reps, seed, confidence)
  if isinstance(statistic, str):
    if statistic not in BATCHED_METRICS:
      raise ValueError(f"statistic={statistic!r}: allowed {', '.join(METRICS)} or a function")
    statistic = BATCHED_METRICS[statistic]
  strata = _strata(scores)
  point = np.asarray(_point(statistic, strata))
  generators = _generators(seed, len(strata))
  sizes = [s.shape[0] for s in strata]
  replicates = []
  for chunk in _chunks(int(reps), sum(s.size for s in strata)):
    indices = _draw(generators, sizes, chunk)
    replicates.append(np.asarray(statistic([s[i] for s, i in zip(strata, indices)])))
  low, high = _percentiles(np.concatenate(replicates, axis=0), confidence)
  if point.ndim == 0:
    return float(point), float(low), float(high)
  return point, low, high


def probability_of_improvement(scores_x, scores_y, *, reps=2_000, seed=0, confidence=CONFIDENCE):
  """(P(X > Y), low, high): the task-mean Mann-Whitney probability, ties one half, with an interval.

  scores_x, scores_y: per-task run scores of X and Y over the same M tasks, in the same order (matrices
  [runs, tasks] or sequences of 1-D arrays; run counts may differ). The interval resamples X's and Y's
  runs independently within each task.
  """
  _check_bootstrap(reps, seed, confidence)
  x_strata, y_strata = _strata(scores_x), _strata(scores_y)
  if len(x_strata) != len(y_strata):
    raise ValueError(f"scores_x have {len(x_strata)} tasks and scores_y {len(y_strata)}: they must cover "
                     f"the same tasks")
  for m, (x, y) in enumerate(zip(x_strata, y_strata)):
    if x.ndim != 1 or y.ndim != 1:
      raise ValueError(f"task {m}: scores must be one value per run, got shapes {x.shape} and {y.shape}")
  point = float(_batched_improvement([x[None] for x in x_strata], [y[None] for y in y_strata])[0])
  m = len(x_strata)
  x_gen, y_gen = _generators(seed, m), _generators(seed, m, offset=m)
  x_sizes, y_sizes = [x.size for x in x_strata], [y.size for y in y_strata]
  per_replicate = sum(a * b for a, b in zip(x_sizes, y_sizes))
  replicates = []
  for chunk in _chunks(int(reps), per_replicate):
    xi, yi = _draw(x_gen, x_sizes, chunk), _draw(y_gen, y_sizes, chunk)
    replicates.append(_batched_improvement([x[i] for x, i in zip(x_strata, xi)],
                                           [y[i] for y, i in zip(y_strata, yi)]))
  low, high = _percentiles(np.concatenate(replicates), confidence)
  return point, float(low), float(high)


def performance_profile(scores, taus=None, *, reps=2_000, seed=0, confidence=CONFIDENCE):
  """(taus, profile, low, high): the fraction of run x task scores above each tau, with bands.

  profile(tau) = 1/N sum_{n,m} [x_{n,m} > tau] (rliable's score distribution); taus default to 101 points
  on [0, 1]. Bands: stratified bootstrap percentile intervals at each tau.
  """
  taus = np.linspace(0.0, 1.0, 101) if taus is None else np.asarray(taus, dtype=np.float64).reshape(-1)
  if taus.size == 0 or not np.all(np.isfinite(taus)):
    raise ValueError(f"taus must be finite thresholds, got {taus[:5].tolist()}")

  def fraction_above(strata):
    pooled = np.concatenate(strata, axis=1)
    return (pooled[:, :, None] > taus[None, None, :]).mean(axis=1)

  strata = _strata(scores)
  if any(s.ndim != 1 for s in strata):
    raise ValueError("performance_profile takes one score per run (per-task 1-D arrays or a matrix)")
  profile, low, high = stratified_bootstrap_ci(strata, fraction_above, reps=reps, seed=seed,
                                               confidence=confidence)
  return taus, np.atleast_1d(profile), np.atleast_1d(low), np.atleast_1d(high)


def sample_efficiency_curves(curves, *, reps=2_000, seed=0, confidence=CONFIDENCE):
  """(iqm [S], low [S], high [S]): the IQM over run x task scores at each of S common evaluation steps.

  curves: per-task arrays [N_m, S] (run n's normalised evaluation return at step s), or {task: array}.
  The bootstrap resamples whole runs (all S steps together) within each task.
  """
  strata = _strata(curves)
  if any(s.ndim != 2 for s in strata) or len({s.shape[1] for s in strata}) != 1:
    raise ValueError(f"curves must be per-task [runs, steps] arrays with the same steps, got shapes "
                     f"{[s.shape for s in strata]}")
  point, low, high = stratified_bootstrap_ci(strata, _batched_iqm, reps=reps, seed=seed, confidence=confidence)
  return np.atleast_1d(point), np.atleast_1d(low), np.atleast_1d(high)


# ---- the grid's tables -----------------------------------------------------------------------------------

def _estimator_order(estimators):
  order = ("stgs-1", "stgs-t", "tags", "grmck", "gst")
  known = [e for e in order if e in estimators]
  return known + sorted(e for e in estimators if e not in order)


def aggregate_rows(table, *, reps=50_000, seed=0, confidence=CONFIDENCE):
  """Rows of aggregate.csv from `run_scores`' table: every estimator x score x metric."""
  rows = []
  estimators = _estimator_order({e for by_estimator in table.values() for e in by_estimator})
  for estimator in estimators:
    for score in SCORES:
      by_task = table.get(score, {}).get(estimator)
      if not by_task:
        continue
      strata = [by_task[task] for task in sorted(by_task)]

      def all_metrics(batch):
        return np.stack([BATCHED_METRICS[metric](batch) for metric in METRICS], axis=1)

      point, low, high = stratified_bootstrap_ci(strata, all_metrics, reps=reps, confidence=confidence,
                                                 seed=stream(seed, "aggregate", estimator, score))
      for k, metric in enumerate(METRICS):
        rows.append(dict(estimator=estimator, score=score, metric=metric, point=float(point[k]),
                         low=float(low[k]), high=float(high[k]), runs=int(sum(s.size for s in strata)),
                         tasks=len(strata), reps=int(reps)))
  return rows


def improvement_rows(table, *, reps=2_000, seed=0, confidence=CONFIDENCE):
  """Rows of probability_of_improvement.csv: every ordered pair (x, y) of estimators and each score.

  A pair is taken over the tasks both estimators have; a pair with no shared task is left out.
  """
  rows = []
  estimators = _estimator_order({e for by_estimator in table.values() for e in by_estimator})
  for x in estimators:
    for y in estimators:
      if x == y:
        continue
      for score in SCORES:
        xs, ys = table.get(score, {}).get(x, {}), table.get(score, {}).get(y, {})
        tasks = sorted(set(xs) & set(ys))
        if not tasks:
          continue
        point, low, high = probability_of_improvement(
            [xs[t] for t in tasks], [ys[t] for t in tasks], reps=reps, confidence=confidence,
            seed=stream(seed, "improvement", x, y, score))
        rows.append(dict(x=x, y=y, score=score, point=point, low=low, high=high))
  return rows


def common_steps(normalised, tasks=None):
  """The env steps at which every run (of `tasks`, default all) has an evaluation, ascending."""
  steps = None
  for run in normalised:
    if tasks is None or run["task"] in tasks:
      steps = set(run["steps"].tolist()) if steps is None else steps & set(run["steps"].tolist())
  return np.array(sorted(steps or ()), np.int64)


def curve_strata(normalised, estimator, steps, tasks=None):
  """{task: [runs, len(steps)]} normalised evaluation returns of `estimator` at `steps` (seed order)."""
  grouped = collections.defaultdict(list)
  for run in sorted(normalised, key=lambda r: r["seed"]):
    if run["estimator"] == estimator and (tasks is None or run["task"] in tasks):
      where = {int(s): j for j, s in enumerate(run["steps"])}
      grouped[run["task"]].append(run["scores"][[where[int(s)] for s in steps]])
  return {task: np.stack(rows) for task, rows in sorted(grouped.items())}


# ---- files ---------------------------------------------------------------------------------------------
