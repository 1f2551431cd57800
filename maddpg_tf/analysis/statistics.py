"""Table 1 statistics: maximum and average evaluation returns with 95% Student-t intervals (maddpg_tf/FIDELITY.md: Table 1 aggregation).

A task's results for one estimator are its evaluation curves, shaped [seeds, evaluations] (one value per
evaluation: the mean team return over that evaluation's episodes). For every estimator:

  maximum return   i* = argmax_j mean_s curves[s, j] (the evaluation with the highest seed-mean);
                   reported: mean_s curves[s, i*]  +-  t_{0.975, n-1} * sem(curves[:, i*]),  n = seeds.
  average return   v = curves.flatten() (all evaluations of all seeds pooled, N = seeds x evaluations);
                   reported: mean(v)  +-  t_{0.975, N-1} * sem(v).

sem is the standard error with ddof = 1 (scipy.stats.sem). Within a task, the estimator with the highest
reported value is bold (every estimator tied with it too); any other estimator gets an asterisk when a
two-sided Welch t-test (scipy.stats.ttest_ind, equal_var=False) at level alpha = 0.05 finds no significant
difference from the best. The samples compared are, for the maximum, the per-seed values at each
estimator's OWN maximising evaluation, and for the average, the pooled values (the paper does not say
which samples it used; this is the presumption recorded in maddpg_tf/FIDELITY.md: Table 1 aggregation).

Absolute metric (Gorsane et al. 2022), where the runs have one: each seed's policy of its best evaluation,
evaluated after training with 10x the run's evaluation episodes (`<workdir>/absolute.json`, `read_absolute`).
Reported: the mean over seeds of each seed's mean return +- t_{0.975, n-1} * sem, n = the seeds that have
one (the cell says how many of the estimator's seeds that is); bold and asterisk as for the maximum, on
those per-seed values.

Against the reference (`REFERENCE`, STGS-1, where the task has it): every other estimator's two-sided Welch
p-value against it, for the maximum and for the average, on the same samples as the asterisks.

Degenerate cases, decided here: one value gives a NaN half-width (no interval); two samples that are both
constant give p = 1 when their values are equal and p = 0 otherwise (scipy returns NaN there); when several
estimators share the best value, each is bold and the first in the given order is the reference for the
tests.

Pure NumPy/SciPy: no TensorFlow. `table1(curves_by_task, steps_by_task, absolute=...)` is the entry point.
"""

import dataclasses
import json
import math
import numbers
import os

import numpy as np
from scipy import stats

from maddpg_tf.files import ABSOLUTE_FILE  # in a run's workdir, written by the grid after training

CONFIDENCE = 0.95
ALPHA = 0.05
REFERENCE = "stgs-1"  # the estimator every other one is tested against (the paper's baseline)


@dataclasses.dataclass(frozen=True)
class Interval:
  """mean +- half_width: a Student-t interval at `CONFIDENCE` over `n` values (`values` kept for tests)."""
  mean: float
  half_width: float
  n: int
  values: tuple


@dataclasses.dataclass(frozen=True)
class Cell:
  """One estimator on one task: both Table 1 metrics, their marks, and what they were computed from."""
  task: str
  estimator: str
  seeds: int
  evaluations: int           # evaluations per seed used (the common prefix of the seeds' curves)
  max_index: int             # the evaluation index with the highest seed-mean
  max_step: int | None       # its env step, when steps were given
  maximum: Interval
  average: Interval
  max_bold: bool = False
  max_asterisk: bool = False
  max_pvalue: float = math.nan    # Welch p-value against the best (NaN for the best itself)
  average_bold: bool = False
  average_asterisk: bool = False
  average_pvalue: float = math.nan
  absolute: Interval | None = None  # over the seeds that have an absolute metric; None when none has
  absolute_seeds: int = 0           # how many seeds that is (of `seeds`)
  absolute_bold: bool = False
  absolute_asterisk: bool = False
  absolute_pvalue: float = math.nan
  reference: str | None = None      # the task's reference estimator; None when the task lacks it
  max_pvalue_reference: float = math.nan      # Welch p-value against the reference (NaN for the reference)
  average_pvalue_reference: float = math.nan


def t_interval(values, confidence=CONFIDENCE):
  """Interval(mean, t_{(1+confidence)/2, n-1} * sem(values, ddof=1)) over the 1-D `values`."""
  values = np.asarray(values, dtype=np.float64).reshape(-1)
  if values.size == 0:
    raise ValueError("t_interval needs at least one value")
  if not np.all(np.isfinite(values)):
    raise ValueError(f"t_interval got non-finite values: {values[~np.isfinite(values)][:3].tolist()}")
  mean = float(values.mean())
  if values.size < 2:
    half = math.nan
  else:
    half = float(stats.t.ppf(0.5 + confidence / 2, df=values.size - 1) * stats.sem(values, ddof=1))
  return Interval(mean, half, int(values.size), tuple(float(v) for v in values))


def as_curves(curves):
  """[seeds, evaluations] float array from an array or a list of per-seed curves of unequal length.

  Seeds that have run further than others are cut to the shortest (the common prefix), so every
  evaluation index means the same env step for every seed.
  """
  if isinstance(curves, np.ndarray):
    array = np.asarray(curves, dtype=np.float64)
    if array.ndim != 2:
      raise ValueError(f"curves must be [seeds, evaluations], got shape {array.shape}")
  else:
    rows = [np.asarray(c, dtype=np.float64).reshape(-1) for c in curves]
    if not rows:
      raise ValueError("curves: no seeds")
    length = min(len(r) for r in rows)
    array = np.stack([r[:length] for r in rows]) if length else np.zeros([len(rows), 0])
  if array.shape[0] == 0 or array.shape[1] == 0:
    raise ValueError(f"curves must hold at least one seed and one evaluation, got shape {array.shape}")
  return array


def maximum_return(curves, confidence=CONFIDENCE):
  """(index of the best seed-mean evaluation, Interval over the seeds' values at that index)."""
  curves = as_curves(curves)
  index = int(np.argmax(curves.mean(axis=0)))  # the first index on ties
  return index, t_interval(curves[:, index], confidence)


def average_return(curves, confidence=CONFIDENCE):
  """Interval over all evaluations of all seeds pooled (df = seeds x evaluations - 1)."""
  return t_interval(as_curves(curves).reshape(-1), confidence)


def welch_pvalue(a, b):
  """Two-sided Welch (unequal variances) t-test p-value between samples a and b."""
  a = np.asarray(a, dtype=np.float64).reshape(-1)
  b = np.asarray(b, dtype=np.float64).reshape(-1)
  if a.size < 2 or b.size < 2:
    return math.nan
  if np.ptp(a) == 0 and np.ptp(b) == 0:  # both constant: scipy gives NaN; decide by the values
    return 1.0 if a[0] == b[0] else 0.0
  return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def mark(intervals, alpha=ALPHA):
  """Bold / asterisk / p-value for each of `intervals` ({label: Interval}, in display order).

  Returns {label: (bold, asterisk, pvalue)}: bold for the highest mean (and any exact tie), an asterisk
  for any other label whose Welch p-value against the best is >= alpha (no significant difference).
  A NaN p-value (fewer than two values) gives no asterisk.
  """
  if not intervals:
    return {}
  best_mean = max(interval.mean for interval in intervals.values())
  best_label = next(label for label, interval in intervals.items() if interval.mean == best_mean)
  best = intervals[best_label]
  marks = {}
  for label, interval in intervals.items():
    if interval.mean == best_mean:
      marks[label] = (True, False, math.nan)
      continue
    p = welch_pvalue(interval.values, best.values)
    marks[label] = (False, bool(p >= alpha), p)  # NaN >= alpha is False
  return marks


def _finite_number(value):
  return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def read_absolute(workdir):
  """The dict in `<workdir>/absolute.json`, or None where it is missing or not an absolute metric.

  Not one (None): unreadable, not a JSON object, no finite "mean_return", or "returns" not a non-empty
  list of finite numbers; a table then counts the seed as one without the metric, never as a value.
  """
  try:
    with open(os.path.join(workdir, ABSOLUTE_FILE)) as handle:
      data = json.load(handle)
  except (OSError, ValueError):  # a missing file, or a torn or non-JSON one (UnicodeDecodeError included)
    return None
  if not isinstance(data, dict) or not _finite_number(data.get("mean_return")):
    return None
  returns = data.get("returns")
  if not isinstance(returns, list) or not returns or not all(_finite_number(r) for r in returns):
    return None
  return data


def absolute_values(workdirs):
  """[each run's absolute mean return, or None where its workdir has none], in the given order."""
  values = []
  for workdir in workdirs:
    data = read_absolute(workdir)
    values.append(None if data is None else float(data["mean_return"]))
  return values


def absolute_intervals(task, absolute, seeds, confidence=CONFIDENCE):
  """{estimator: (Interval, seeds with a value)} from {estimator: [per-seed mean return or None]}.

  `seeds`: {estimator: its seed count}; each list must hold one entry per seed. An estimator whose
  entries are all None is left out.
  """
  intervals = {}
  for estimator, values in (absolute or {}).items():
    if estimator not in seeds:
      raise ValueError(f"absolute[{task!r}] names estimator {estimator!r}, which has no curves there")
    if len(values) != seeds[estimator]:
      raise ValueError(f"absolute[{task!r}][{estimator!r}] holds {len(values)} values for "
                       f"{seeds[estimator]} seeds (one per seed, None where a seed has none)")
    present = [float(v) for v in values if v is not None]
    if present:
      intervals[estimator] = (t_interval(present, confidence), len(present))
  return intervals


def reference_pvalues(computed, reference=REFERENCE):
  """{estimator: (p max, p average)} against `reference` (NaN for itself; {} when it is not there)."""
  if reference not in computed:
    return {}
  ref = computed[reference]
  pvalues = {}
  for estimator, c in computed.items():
    if estimator == reference:
      pvalues[estimator] = (math.nan, math.nan)
    else:
      pvalues[estimator] = (welch_pvalue(c["maximum"].values, ref["maximum"].values),
                            welch_pvalue(c["average"].values, ref["average"].values))
  return pvalues


def _computed(curves_by_estimator, steps, confidence):
  computed = {}
  for estimator, curves in curves_by_estimator.items():
    curves = as_curves(curves)
    index, maximum = maximum_return(curves, confidence)
    step = None
    if steps is not None and estimator in steps and index < len(steps[estimator]):
      step = int(steps[estimator][index])
    computed[estimator] = dict(curves=curves, index=index, step=step, maximum=maximum,
                               average=average_return(curves, confidence))
  return computed


def task_cells(task, curves_by_estimator, steps=None, confidence=CONFIDENCE, alpha=ALPHA, absolute=None,
               reference=REFERENCE):
  """Cells of one task: {estimator: curves [seeds, evals]} -> [Cell] in the given estimator order.

  `steps`: optional {estimator: [env step of each evaluation]} to report the maximising step.
  `absolute`: optional {estimator: [per-seed absolute mean return, or None]} (seeds in the curves' order).
  """
  computed = _computed(curves_by_estimator, steps, confidence)
  absolute = absolute_intervals(task, absolute, {e: c["curves"].shape[0] for e, c in computed.items()},
                                confidence)
  max_marks = mark({e: c["maximum"] for e, c in computed.items()}, alpha)
  average_marks = mark({e: c["average"] for e, c in computed.items()}, alpha)
  absolute_marks = mark({e: interval for e, (interval, _) in absolute.items()}, alpha)
  pvalues = reference_pvalues(computed, reference)
  cells = []
  for estimator, c in computed.items():
    mb, ma, mp = max_marks[estimator]
    ab, aa, ap = average_marks[estimator]
    interval, count = absolute.get(estimator, (None, 0))
    xb, xa, xp = absolute_marks.get(estimator, (False, False, math.nan))
    rmax, ravg = pvalues.get(estimator, (math.nan, math.nan))
    cells.append(Cell(task=task, estimator=estimator, seeds=c["curves"].shape[0],
                      evaluations=c["curves"].shape[1], max_index=c["index"], max_step=c["step"],
                      maximum=c["maximum"], average=c["average"], max_bold=mb, max_asterisk=ma, max_pvalue=mp,
                      average_bold=ab, average_asterisk=aa, average_pvalue=ap, absolute=interval,
                      absolute_seeds=count, absolute_bold=xb, absolute_asterisk=xa, absolute_pvalue=xp,
                      reference=reference if pvalues else None, max_pvalue_reference=rmax,
                      average_pvalue_reference=ravg))
  return cells


def table1(curves_by_task, steps_by_task=None, confidence=CONFIDENCE, alpha=ALPHA, absolute=None,
           reference=REFERENCE):
  """{task: {estimator: curves}} -> [Cell], tasks and estimators in the given order.

  `absolute`: optional {task: {estimator: [per-seed absolute mean return or None]}} (`absolute_values`).
  """
  cells = []
  for task, by_estimator in curves_by_task.items():
    steps = (steps_by_task or {}).get(task)
    cells.extend(task_cells(task, by_estimator, steps, confidence, alpha, (absolute or {}).get(task), reference))
  return cells


def standard_error_band(curves):
  """(mean over seeds, standard error over seeds) per evaluation, for Figures 1-3 (zeros for one seed)."""
  curves = as_curves(curves)
  mean = curves.mean(axis=0)
  if curves.shape[0] < 2:
    return mean, np.zeros_like(mean)
  return mean, stats.sem(curves, axis=0, ddof=1)


def t_band(curves, confidence=CONFIDENCE):
  """(mean over seeds, t half-width over seeds) per evaluation: `t_interval` of each evaluation's column, a
  band at `confidence` for a comparison's curves (Figures 1-3 draw `standard_error_band` instead). One seed
  has no interval: its half-widths are 0, so no band is drawn rather than a NaN one."""
  curves = as_curves(curves)
  intervals = [t_interval(curves[:, j], confidence) for j in range(curves.shape[1])]
  mean = np.array([interval.mean for interval in intervals])
  half = np.array([0.0 if math.isnan(interval.half_width) else interval.half_width for interval in intervals])
  return mean, half
