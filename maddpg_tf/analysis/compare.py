"""Comparing groups of arbitrary run directories (`maddpg-compare`), outside a `maddpg-reproduce` grid.

A group is a list of `maddpg-train` run directories (each with config.json and evaluations.csv), e.g. the
seeds of one estimator's setting. All groups must be runs of one task. Per group, over its runs' evaluation
curves [runs, evaluations] cut to the evaluations every run of the group has (as Table 1 cuts seeds):

  max return      Table 1's maximum (`statistics.maximum_return`): the evaluation with the highest mean over
                  the runs, mean +- 95% t half-width over the runs' values there (df = runs - 1);
  average return  Table 1's average (`statistics.average_return`): every evaluation of every run pooled,
                  mean +- 95% t half-width (df = runs x evaluations - 1);
  final return    the last common evaluation, mean +- 95% t half-width over the runs (df = runs - 1);
  absolute return Table 1's absolute metric, over the runs whose directory has an absolute.json;
and the two-sided Welch p-value of each against the first group on the same samples (Table 1's p-values
against its reference, with the first group as the reference). The maths is `maddpg_tf.analysis.statistics`
(via `statistics.task_cells`, Table 1's own code); nothing is computed twice.

Everything that can be wrong with the input is found by `load` before anything is written: `CompareError`,
one line naming the pattern, directory, task or flag. `write` writes `curves.png` (each group's mean with a
95% t band across its runs), `comparison.csv` and `comparison.md` into an output directory. No TensorFlow;
matplotlib (the plots extra) only in `write`.
"""

import dataclasses
import glob
import json
import math
import os

import numpy as np

from maddpg_tf import files
from maddpg_tf.analysis import statistics, tables
from maddpg_tf.run import loggers

CONFIG_FILE = "config.json"
EVALUATIONS_FILE = "evaluations.csv"
OUTPUTS = ("curves.png", "comparison.csv", "comparison.md")
COLUMNS = ["group", "task", "runs", "evaluations", "last_step", "max_step", "max_return", "max_ci95",
           "max_pvalue_vs_first", "average_return", "average_ci95", "average_pvalue_vs_first", "final_return",
           "final_ci95", "final_pvalue_vs_first", "absolute_return", "absolute_ci95", "absolute_runs",
           "absolute_pvalue_vs_first"]
_GLOB_CHARACTERS = "*?["


class CompareError(ValueError):
  """Bad input to a comparison; its message is the one line to show."""


@dataclasses.dataclass(frozen=True)
class Run:
  directory: str
  task: str
  estimator: str          # the estimator's label in config.json ("" when it has none)
  steps: np.ndarray       # [E] int64 env steps of its evaluations
  returns: np.ndarray     # [E] float64 mean evaluation returns


@dataclasses.dataclass(frozen=True)
class Group:
  label: str
  runs: tuple             # of Run, in the order given (globs sorted)


# ---- input ------------------------------------------------------------------------------------------------

def expand(spec):
  """The directories of one `--runs` value: a comma list of directories and globs, in order (each glob's
  matches sorted), a directory named twice kept once. CompareError for a part that matches nothing."""
  directories = []
  parts = [part.strip() for part in spec.split(",") if part.strip()]
  if not parts:
    raise CompareError(f"--runs={spec!r} names no run directory")
  for part in parts:
    if any(character in part for character in _GLOB_CHARACTERS):
      matches = sorted(glob.glob(part))
    else:
      matches = [part] if os.path.exists(part) else []
    if not matches:
      raise CompareError(f"no runs match {part!r}")
    for match in matches:
      if os.path.normpath(match) not in (os.path.normpath(d) for d in directories):
        directories.append(match)
  return directories


def read_run(directory):
  """A Run from a `maddpg-train` run directory; CompareError naming what it lacks or cannot be read."""
  missing = [name for name in (CONFIG_FILE, EVALUATIONS_FILE) if not os.path.isfile(os.path.join(directory, name))]
  if missing:
    raise CompareError(f"{directory} is not a maddpg-train run directory: it has no {' and no '.join(missing)}")
  try:
    with open(os.path.join(directory, CONFIG_FILE)) as handle:
      config = json.load(handle)
  except (OSError, ValueError) as failure:
    raise CompareError(f"{os.path.join(directory, CONFIG_FILE)} cannot be read as JSON ({failure})") from None
  if not isinstance(config, dict) or not isinstance(config.get("task"), str) or not config["task"]:
    raise CompareError(f"{os.path.join(directory, CONFIG_FILE)} names no task: not a maddpg-train config")
  path = os.path.join(directory, EVALUATIONS_FILE)
  try:
    rows = loggers.read_evaluations_csv(path)
  except (OSError, KeyError, TypeError, ValueError) as failure:
    raise CompareError(f"{path} is not an evaluations CSV (step, mean_return, ...): "
                       f"{type(failure).__name__}: {failure}") from None
  if not rows:
    raise CompareError(f"{path} holds no evaluation yet")
  returns = np.array([value for _, value in rows], np.float64)
  if not np.all(np.isfinite(returns)):
    raise CompareError(f"{path} holds a non-finite mean return")
  estimator = config.get("estimator") if isinstance(config.get("estimator"), dict) else {}
  label = estimator.get("label") or estimator.get("name") or ""
  return Run(directory=directory, task=config["task"], estimator=str(label),
             steps=np.array([step for step, _ in rows], np.int64), returns=returns)


def default_labels(groups_of_runs):
  """Each group's estimator label where all its runs agree on one, else `group<i>` (1-based); a label that
  an earlier group already has gets `-<i>` appended, so that every group stays distinct."""
  labels = []
  for index, runs in enumerate(groups_of_runs, start=1):
    estimators = {run.estimator for run in runs}
    label = estimators.pop() if len(estimators) == 1 and "" not in estimators else f"group{index}"
    labels.append(label if label not in labels else f"{label}-{index}")
  return labels


def load(run_specs, labels=None):
  """[Group] from the `--runs` values (one per group) and optional `--labels`; CompareError otherwise.

  Checks, in this order: every pattern matches, every match is a run directory with a readable config and
  at least one evaluation, no directory is in two groups, all runs are of one task (naming two that
  differ), the runs of a group evaluated at the same steps (their common evaluations), and the labels
  (one per group, distinct, none empty).
  """
  if not run_specs:
    raise CompareError("no --runs given: pass one --runs=DIR[,DIR|GLOB...] per group")
  groups_of_runs, owner = [], {}
  for index, spec in enumerate(run_specs, start=1):
    runs = []
    for directory in expand(spec):
      key = os.path.realpath(directory)
      if key in owner and owner[key] != index:
        raise CompareError(f"{directory} is in groups {owner[key]} and {index}: a run can be in one group")
      owner[key] = index
      runs.append(read_run(directory))
    groups_of_runs.append(runs)
  first = groups_of_runs[0][0]
  for runs in groups_of_runs:
    for run in runs:
      if run.task != first.task:
        raise CompareError(f"runs of different tasks: {first.directory} is {first.task}, {run.directory} is "
                           f"{run.task}; compare runs of one task")
  for index, runs in enumerate(groups_of_runs, start=1):
    length = min(len(run.steps) for run in runs)
    for run in runs[1:]:
      if not np.array_equal(run.steps[:length], runs[0].steps[:length]):
        raise CompareError(f"the runs of group {index} evaluated at different steps ({runs[0].directory}: "
                           f"{_steps_text(runs[0].steps[:length])}; {run.directory}: "
                           f"{_steps_text(run.steps[:length])}): their curves cannot be averaged")
  if labels:
    if len(labels) != len(groups_of_runs):
      raise CompareError(f"--labels has {len(labels)} labels for {len(groups_of_runs)} groups (--runs): give one "
                         f"per group, or none for the runs' estimator labels")
    if any(not label.strip() for label in labels):
      raise CompareError(f"--labels={','.join(labels)} has an empty label")
    if len(set(labels)) != len(labels):
      raise CompareError(f"--labels={','.join(labels)} names a label twice: each group needs its own")
  else:
    labels = default_labels(groups_of_runs)
  return [Group(label.strip(), tuple(runs)) for label, runs in zip(labels, groups_of_runs)]


def _steps_text(steps):
  shown = ", ".join(str(int(step)) for step in steps[:4])
  return shown + (", ..." if len(steps) > 4 else "")


def check_out(out):
  """CompareError unless `out` is absent or an empty directory (a comparison never overwrites one)."""
  if os.path.exists(out):
    if not os.path.isdir(out):
      raise CompareError(f"--out={out} exists and is not a directory")
    if os.listdir(out):
      raise CompareError(f"--out={out} exists and is not empty: choose a new directory")


# ---- statistics -------------------------------------------------------------------------------------------

def curves_of(group):
  """([runs, evaluations] curves cut to the group's common evaluations, their env steps [evaluations])."""
  curves = statistics.as_curves([run.returns for run in group.runs])
  return curves, group.runs[0].steps[:curves.shape[1]]


def _pvalue(group, first, value):
  return tables.REFERENCE_MARK if group.label == first.label else value


def rows(groups, confidence=statistics.CONFIDENCE):
  """One dict per group (keys COLUMNS), in the groups' order; the first group is every p-value's reference."""
  first = groups[0]
  curves, steps = {}, {}
  for group in groups:
    curves[group.label], steps[group.label] = curves_of(group)
  absolute = {group.label: statistics.absolute_values([run.directory for run in group.runs]) for group in groups}
  task = first.runs[0].task
  cells = statistics.task_cells(task, curves, steps, confidence=confidence, absolute=absolute,
                                reference=first.label)
  final_first = curves[first.label][:, -1]
  result = []
  for group, cell in zip(groups, cells):
    final = statistics.t_interval(curves[group.label][:, -1], confidence)
    row = dict(group=group.label, task=task, runs=cell.seeds, evaluations=cell.evaluations,
               last_step=int(steps[group.label][-1]), max_step=cell.max_step,
               max_return=cell.maximum.mean, max_ci95=cell.maximum.half_width,
               max_pvalue_vs_first=_pvalue(group, first, cell.max_pvalue_reference),
               average_return=cell.average.mean, average_ci95=cell.average.half_width,
               average_pvalue_vs_first=_pvalue(group, first, cell.average_pvalue_reference),
               final_return=final.mean, final_ci95=final.half_width,
               final_pvalue_vs_first=_pvalue(group, first, statistics.welch_pvalue(final.values, final_first)),
               absolute_runs=cell.absolute_seeds)
    if cell.absolute is not None:
      first_absolute = [v for v in absolute[first.label] if v is not None]
      row.update(absolute_return=cell.absolute.mean, absolute_ci95=cell.absolute.half_width,
                 absolute_pvalue_vs_first=_pvalue(
                     group, first, statistics.welch_pvalue(cell.absolute.values, first_absolute)
                     if first_absolute else math.nan))
    result.append({column: row.get(column, "") for column in COLUMNS})
  return result


# ---- outputs ----------------------------------------------------------------------------------------------

def _interval_text(mean, half):
  if mean == "":
    return "n/a"
  return f"{mean:.3f} ± {'n/a' if math.isnan(half) else f'{half:.3f}'}"


def _pvalue_text(value):
  return "n/a" if value == "" else tables.pvalue_text(value)


def markdown_table(table_rows):
  """The comparison as a Markdown table (one row per group)."""
  lines = ["| group | runs | evaluations (last step) | max | p max | average | p average | final | p final | "
           "absolute (runs) | p absolute | max at step |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for row in table_rows:
    absolute = _interval_text(row["absolute_return"], row["absolute_ci95"] if row["absolute_ci95"] != "" else 0)
    if row["absolute_return"] != "":
      absolute += f" ({row['absolute_runs']})"
    lines.append(
        f"| {row['group']} | {row['runs']} | {row['evaluations']} ({row['last_step']}) | "
        f"{_interval_text(row['max_return'], row['max_ci95'])} | {_pvalue_text(row['max_pvalue_vs_first'])} | "
        f"{_interval_text(row['average_return'], row['average_ci95'])} | "
        f"{_pvalue_text(row['average_pvalue_vs_first'])} | "
        f"{_interval_text(row['final_return'], row['final_ci95'])} | {_pvalue_text(row['final_pvalue_vs_first'])} | "
        f"{absolute} | {_pvalue_text(row['absolute_pvalue_vs_first'])} | {row['max_step']} |")
  return "\n".join(lines) + "\n"


def notes(groups):
  """What the numbers are, and the run directories of each group, for comparison.md."""
  first = groups[0].label
  lines = [
      f"Task {groups[0].runs[0].task}. Each group's curves are cut to the evaluations all its runs have.",
      "",
      "Max: Table 1's maximum, the evaluation with the highest mean over the group's runs, mean ± 95% Student-t "
      "half-width over the runs (df = runs - 1). Average: Table 1's average, every evaluation of every run "
      "pooled, mean ± 95% t half-width (df = runs x evaluations - 1). Final: the last common evaluation, mean ± "
      "95% t half-width over the runs. Absolute: Table 1's absolute metric over the runs with an absolute.json "
      "(their count in brackets), \"n/a\" where none has one.",
      "",
      f"p: the two-sided Welch t-test p-value against the first group, {first} (\"ref\"), on the runs' values "
      f"at each group's own best evaluation (max), the pooled values (average), the final values and the "
      f"absolute values; \"n/a\": fewer than two values on a side.",
      "",
      "Runs:",
  ]
  for group in groups:
    lines.append(f"- {group.label}: {', '.join(run.directory for run in group.runs)}")
  return lines


def band_curves(groups, confidence=statistics.CONFIDENCE):
  """[(label, steps, mean, low, high, runs)]: each group's mean curve and its t band across runs."""
  result = []
  for group in groups:
    curves, steps = curves_of(group)
    mean, half = statistics.t_band(curves, confidence)
    result.append((group.label, steps, mean, mean - half, mean + half, curves.shape[0]))
  return result


def write(groups, out, confidence=statistics.CONFIDENCE):
  """Writes OUTPUTS into `out` (made if absent); returns (their paths, the Markdown table). The input is
  checked by `load` and `check_out` first; this needs matplotlib (`extras.require("plots")`)."""
  from maddpg_tf.analysis import plots  # pylint: disable=g-import-not-at-top  (matplotlib)
  table_rows = rows(groups, confidence)
  table = markdown_table(table_rows)
  os.makedirs(out, exist_ok=True)
  paths = [os.path.join(out, name) for name in OUTPUTS]
  task = groups[0].runs[0].task
  figure = plots.plot_comparison(band_curves(groups, confidence), f"{task}: evaluation return",
                                 f"mean over runs (count in legend), band = {confidence:.0%} Student-t interval")
  plots.save_figure(figure, paths[0])
  with files.replacing(paths[1]) as temporary:
    tables.write_csv(temporary, table_rows, COLUMNS)
  files.write_text(paths[2], "\n".join([f"# Comparison: {task}", "", *notes(groups), "", table]))
  return paths, table
