"""What `maddpg-reproduce` writes from a grid's runs: the curves of their evaluations (`collect_curves`),
Table 1, the field's aggregates, Figures 1-3 and S1, Figure 4 and Table 2, each stating the budget it
came from (`describe`). Only the runs' files are read (no TensorFlow), except by Table 2's benchmark and
the beyond table's estimator lab.

Outputs under `--results`: `table1.{md,tex,csv}`, `aggregate/` (with table1 and aggregate: IQM, median,
mean, optimality gap with stratified bootstrap intervals, probabilities of improvement, profiles and
sample-efficiency figures, `marl_eval.json`; see `maddpg_tf.analysis.aggregate`), `figures/figure{1,2,3,S1}.{png,pdf}`,
`figures/figure4.{png,pdf}`, `table2.{md,tex,csv,json}`, `beyond/beyond.{md,csv}` (the returns beside the
estimator lab's bias and variance, `write_beyond`), and `grid.json` (each run's state). On a
multi-node cluster `--results` should be a shared filesystem (resuming and Figure 4 read the run
directories); without one the driver still writes each finished run's evaluations and summary.
"""

import csv
import datetime
import io
import os

import ml_collections
import numpy as np

from maddpg_tf import config as common
from maddpg_tf import files
from maddpg_tf.grid.budgets import BUDGETS, FIGURE4_ESTIMATORS
from maddpg_tf.grid.runs import PROG, RunSpec, UsageError, _read_json, estimator_directory, run_state, workdir_of
from maddpg_tf.lab import bias_variance, timing
from maddpg_tf.run import loggers, process


def collect_curves(results, tasks, estimators, seeds):
  """{task: {estimator: runs}}, runs = [dict(seed, steps, returns, workdir, config, finished)] for the seeds
  with at least one evaluation."""
  found = {}
  for task in tasks:
    for estimator in estimators:
      runs = []
      for seed in seeds:
        workdir = workdir_of(results, task, estimator, seed)
        path = os.path.join(workdir, "evaluations.csv")
        if not os.path.isfile(path):
          continue
        rows = loggers.read_evaluations_csv(path)
        if not rows:
          continue
        config = _read_json(os.path.join(workdir, "config.json")) or {}
        steps = np.array([step for step, _ in rows], np.int64)
        values = np.array([value for _, value in rows], np.float64)
        runs.append(dict(seed=seed, steps=steps, returns=values, workdir=workdir, config=config,
                         finished=run_state(RunSpec(task, estimator, seed, workdir,
                                                    {"total_steps": config.get("total_steps", 0)}))[0]
                         == "finished"))
      if runs:
        found.setdefault(task, {})[estimator] = runs
  return found


def describe(budget, fidelity, seeds, total_steps=None, tuned=None):
  """What every output states: the budget, its meaning, the fidelity, the seeds, searched settings."""
  text = BUDGETS[budget].description
  if total_steps is not None:
    text += f"; --total_steps={total_steps:,} per run"
  for (env_family, label), settings in sorted((tuned or {}).items()):
    values = ", ".join(f"{key.split('.')[-1]}={value:.4g}" if isinstance(value, float) else
                       f"{key.split('.')[-1]}={value}" for key, value in sorted(settings.items()))
    text += f"; {label} on {env_family}: searched settings ({values}), not the paper's"
  return dict(budget=budget, fidelity=fidelity, seeds=list(seeds), description=text,
              generated=datetime.datetime.now().isoformat(timespec="seconds"))


def write_table1(results, tasks, estimators, seeds, meta):
  from maddpg_tf.analysis import statistics, tables  # pylint: disable=g-import-not-at-top  (scipy)
  found = collect_curves(results, tasks, estimators, seeds)
  if not found:
    raise UsageError(f"no evaluations under {results} for tasks {','.join(tasks)} and estimators "
                     f"{','.join(estimators)}: run the grid first (without --norun)")
  curves, steps, info, absolute = {}, {}, {}, {}
  for task, by_estimator in found.items():
    for estimator, runs in by_estimator.items():
      length = min(len(run["returns"]) for run in runs)
      curves.setdefault(task, {})[estimator] = [run["returns"][:length] for run in runs]
      steps.setdefault(task, {})[estimator] = runs[0]["steps"][:length]
      fidelities = sorted({run["config"].get("fidelity", "?") for run in runs})
      rules = sorted({str(common.upgrade(run["config"]).get("lbf_food_rule") or "") for run in runs})
      info[(task, estimator)] = dict(
          seeds=[run["seed"] for run in runs], finished=sum(run["finished"] for run in runs),
          total_steps=max(int(run["config"].get("total_steps", 0)) for run in runs),
          last_step=int(runs[0]["steps"][length - 1]), fidelity="/".join(fidelities),
          lbf_food_rule="/".join(rules))
      absolute.setdefault(task, {})[estimator] = statistics.absolute_values([run["workdir"] for run in runs])
  cells = statistics.table1(curves, steps, absolute=absolute)
  return tables.write_table1(cells, results, meta, info)


def write_aggregates(results, tasks, estimators, seeds, meta, reps=50_000, poi_reps=2_000, bootstrap_seed=0):
  """The field's aggregates (rliable / marl-eval) of the grid's runs: `<results>/aggregate/`, with `reps`
  (`--bootstrap_reps`) and `poi_reps` (`--poi_bootstrap_reps`) bootstrap replicates from `bootstrap_seed`."""
  from maddpg_tf.analysis import aggregate, aggregate_outputs  # pylint: disable=g-import-not-at-top  (scipy)
  for name, value, least in (("--bootstrap_reps", reps, 1), ("--poi_bootstrap_reps", poi_reps, 1)):
    if value < least:
      raise UsageError(f"{name} must be an integer >= {least}, got {value}")
  wanted = {str(seed) for seed in seeds}
  labels = {estimator_directory(estimator): estimator for estimator in estimators}  # runs carry directory names
  runs = [dict(run, estimator=labels[run["estimator"]]) for run in aggregate.runs_from_results(results)
          if run["task"] in tasks and run["estimator"] in labels and str(run["seed"]) in wanted]
  if not runs:
    raise UsageError(f"no evaluations under {results} for tasks {','.join(tasks)} and estimators "
                     f"{','.join(estimators)}: run the grid first (without --norun)")
  return aggregate_outputs.write_aggregates(runs, os.path.join(results, "aggregate"), reps=reps, poi_reps=poi_reps,
                                            seed=bootstrap_seed, meta=meta)


def write_figures(results, tasks, estimators, seeds, meta):
  from maddpg_tf.analysis import plots  # pylint: disable=g-import-not-at-top  (matplotlib)
  found = collect_curves(results, tasks, estimators, seeds)
  if not found:
    raise UsageError(f"no evaluations under {results} for tasks {','.join(tasks)}: run the grid first")
  for stem, title, group in plots.FIGURE_GROUPS:
    if not any(task in found for task in group):
      print(f"{PROG}: {stem} ({title}) skipped: no results for its tasks ({', '.join(group)}); add them with "
            f"--tasks", flush=True)
  return plots.write_learning_curve_figures(found, os.path.join(results, "figures"), meta)


def write_figure4(results, task, seeds, meta, estimators=FIGURE4_ESTIMATORS):
  from maddpg_tf.analysis import plots  # pylint: disable=g-import-not-at-top  (matplotlib)
  runs = {}
  for estimator in estimators:
    dirs = [os.path.join(workdir_of(results, task, estimator, seed), "tb") for seed in seeds]
    dirs = [d for d in dirs if os.path.isdir(d)]
    if dirs:
      runs[estimator] = dirs
  if not runs:
    raise UsageError(f"no TensorBoard logs under {results}/{task}/{{{','.join(estimators)}}}: run the "
                     f"Figure 4 grid first")
  config = next((c for c in (_read_json(os.path.join(os.path.dirname(d), "config.json"))
                              for dirs in runs.values() for d in dirs) if c), {})
  bin_size = int(config.get("log", {}).get("grad_variance_every_steps", 1000))
  return plots.write_figure4(runs, task, os.path.join(results, "figures"), meta, bin_size=bin_size)


def write_table2(results, budget, meta):
  from maddpg_tf.analysis import tables  # pylint: disable=g-import-not-at-top  (scipy)
  bench = timing.run_benchmark(quick=budget == "small", tiny=budget == "smoke")
  return tables.write_table2(bench, results, meta, timing.format_report(bench))


def write(what, results, tasks, estimators, seeds, meta, figure4_task, figure4_seeds, figure4_meta, budget,
          reps=50_000, poi_reps=2_000, bootstrap_seed=0, figure4_estimators=FIGURE4_ESTIMATORS):
  """The outputs of `--what` (table1, aggregate, figures, figure4, table2, beyond, or all: with the beyond
  budget, beyond too); returns the paths written.
  UsageError (one line) where the runs they need are missing; `all` skips Figure 4 with a line where the runs
  kept no TensorBoard logs (tools/publish_results.py leaves them out)."""
  written = []
  if what in ("table1", "all"):
    written += write_table1(results, tasks, estimators, seeds, meta)
  if what in ("table1", "aggregate", "all"):
    written += write_aggregates(results, tasks, estimators, seeds, meta, reps, poi_reps, bootstrap_seed)
  if what in ("figures", "all"):
    written += write_figures(results, tasks, estimators, seeds, meta)
  if what == "figure4":
    written += write_figure4(results, figure4_task, figure4_seeds, figure4_meta, figure4_estimators)
  elif what == "all":
    try:
      written += write_figure4(results, figure4_task, figure4_seeds, figure4_meta, figure4_estimators)
    except UsageError as error:  # runs without TensorBoard logs (a publication of a grid): the rest still builds
      print(f"{PROG}: figure4 skipped: {error}", flush=True)
  if what in ("table2", "all"):
    written += write_table2(results, budget, meta)
  if what == "beyond" or (what == "all" and budget == "beyond"):
    written += write_beyond(results, tasks, estimators, seeds, meta)
  return written


# ---- beyond the paper: returns beside the lab's gradient bias and variance ----------------------------------

# The lab's problem for each family: a random quadratic function of the one-hot action over the family's
# action set (LBF 6 actions, RWARE 5), 64 rows of random logits; each estimator at its training settings.
BEYOND_LAB_ACTIONS = {"lbf": 6, "rware": 5}
BEYOND_LAB = dict(rows=64, samples=1_000, replicates=10, seed=0)
BEYOND_REFERENCES = ("stgs-1", "gst")
# The beyond table's Welch tests against each reference, in its column order (`beyond_rows`).
P_VALUE_KINDS = ("max", "average", "average_seeds")


def _family(task):
  return task.split("-", 1)[0]


def beyond_lab_rows(config, num_actions):
  """The lab's row (bias, variance, MSE with intervals) of a run's estimator at its training settings on the
  family's problem; `expected` is the exact gradient (all zero, no sampling)."""
  process.import_tensorflow()  # without the lines TensorFlow logs while it loads
  from estimators import lab  # pylint: disable=g-import-not-at-top  (TensorFlow)
  settings = ml_collections.ConfigDict(common.upgrade(config))
  name, params = settings.estimator.name, common.estimator_params(settings)
  temperature = params.pop("temperature", None)
  if name == "expected":
    return {"estimator": name, "params": "", "temperature": "", **{
        f"{m}{s}": 0.0 for m in ("bias", "variance", "mse") for s in ("", "_low", "_high")}}
  (_, _, logits, f), = bias_variance.random_problems("quadratic", [num_actions], BEYOND_LAB["rows"], 1.0,
                                                       BEYOND_LAB["seed"])
  stats = lab.gradient_statistics(name, f, logits, params, temperature=temperature,
                                  num_samples=BEYOND_LAB["samples"], num_replicates=BEYOND_LAB["replicates"],
                                  seed=BEYOND_LAB["seed"])
  return stats.as_row()


def beyond_rows(found, lab_row=beyond_lab_rows):
  """One row per (task, estimator): Table 1's maximum and average (95% t intervals), Welch p-values of both
  against STGS-1 and GST (maximum: per-seed values at each one's own best evaluation; average: every
  evaluation pooled, Table 1's and the paper's test, and `average_seeds_p`: each seed's mean evaluation
  return, one value per run, since a run's evaluations are not independent samples), and the lab's bias,
  variance and MSE of the estimator at its training settings."""
  from maddpg_tf.analysis import statistics  # pylint: disable=g-import-not-at-top  (scipy)
  rows = []
  for task, by_estimator in found.items():
    samples, summaries = {}, {}
    for estimator, runs in by_estimator.items():
      length = min(len(run["returns"]) for run in runs)
      curves = np.array([run["returns"][:length] for run in runs])
      index, best = statistics.maximum_return(curves)
      # What each p-value compares, by its column's kind.
      samples[estimator] = {"max": curves[:, index], "average": curves.reshape(-1),
                            "average_seeds": curves.mean(axis=1)}
      summaries[estimator] = (best, statistics.average_return(curves), runs)
    for estimator, (best, average, runs) in summaries.items():
      row = dict(task=task, estimator=estimator, seeds=len(runs), finished_seeds=sum(run["finished"] for run in runs),
                 last_step=int(min(run["steps"][-1] for run in runs)), max_return=best.mean, max_ci95=best.half_width,
                 average_return=average.mean, average_ci95=average.half_width)
      for reference in BEYOND_REFERENCES:
        theirs = samples.get(reference)
        for kind in P_VALUE_KINDS:
          row[f"{kind}_p_vs_{reference}"] = ("" if theirs is None or reference == estimator
                                             else statistics.welch_pvalue(samples[estimator][kind], theirs[kind]))
      lab = lab_row(runs[0]["config"], BEYOND_LAB_ACTIONS.get(_family(task), 6))
      row.update({f"lab_{name}": lab[name] for name in ("bias", "bias_low", "bias_high", "variance", "mse")})
      rows.append(row)
  return rows


def beyond_correlations(rows):
  """{task: {measure: (Spearman rho, p, n)}} of the average return against the lab's bias and MSE over the
  task's estimators."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  found = {}
  for task in dict.fromkeys(row["task"] for row in rows):
    mine = [row for row in rows if row["task"] == task]
    for measure in ("bias", "mse"):
      values = [row[f"lab_{measure}"] for row in mine]
      returns = [row["average_return"] for row in mine]
      if len(mine) < 3 or np.ptp(values) == 0:
        found.setdefault(task, {})[measure] = (float("nan"), float("nan"), len(mine))
        continue
      result = stats.spearmanr(values, returns)
      found.setdefault(task, {})[measure] = (float(result.statistic), float(result.pvalue), len(mine))
  return found


def _p_text(value):
  return "-" if value == "" else "n/a" if not np.isfinite(value) else "< 0.001" if value < 0.001 else f"{value:.3f}"


def _correlation_line(measure, rho, p, n):
  head = (f"Spearman rank correlation of the average return with the lab's {measure} over {n} "
          f"estimator{'' if n == 1 else 's'}: ")
  if np.isfinite(rho):
    return head + f"rho = {rho:.2f} (p = {_p_text(p)})"
  return head + ("not computed (it needs three estimators or more)" if n < 3 else
                 f"not computed (every estimator has the same lab {measure})")


def beyond_markdown(rows, correlations, meta):
  from maddpg_tf.analysis import tables  # pylint: disable=g-import-not-at-top  (scipy)
  lines = ["# Beyond the paper: the newer estimators beside STGS-1 and GST", "",
           f"Budget {meta['budget']} ({meta['description']}); fidelity {meta['fidelity']}; seeds "
           f"{', '.join(map(str, meta['seeds']))}; generated {meta['generated']} by maddpg-reproduce.", "",
           "Each estimator's runs are read to the env step its shortest run reached (`to env step`; `seeds "
           "(finished)`: its runs, and how many of them reached the budget's end). "
           "Maximum and average as Table 1 (95% Student-t half-widths; maximum over seeds at the best evaluation, "
           "average over every evaluation pooled); p: two-sided Welch t-tests against STGS-1 and GST (maximum: "
           "per-seed values at each estimator's own best evaluation; average: the pooled values, Table 1's and "
           "the paper's test; avg (seeds): each seed's mean evaluation return, one value per run, which does not "
           "count a run's correlated evaluations as independent samples and so is the stricter). Lab: the "
           f"estimator at its training settings on a random quadratic function of the one-hot action "
           f"({BEYOND_LAB['rows']} rows of random logits, the task's action count), bias ||E g - g|| with its 95% "
           f"interval, variance tr Cov(g), MSE, from {BEYOND_LAB['samples']:,} samples x "
           f"{BEYOND_LAB['replicates']} replicates (`expected` is the exact gradient: all zero).", ""]
  for task in dict.fromkeys(row["task"] for row in rows):
    lines += [f"## {task}", "", "| estimator | seeds (finished) | to env step | max | average | p max vs STGS-1 | "
              "p avg vs STGS-1 | p avg (seeds) vs STGS-1 | p max vs GST | p avg vs GST | p avg (seeds) vs GST | "
              "lab bias [95% CI] | lab variance | lab MSE |",
              "|---" * 14 + "|"]
    for row in rows:
      if row["task"] != task:
        continue
      lines.append(
          f"| {row['estimator']} | {row['seeds']} ({row['finished_seeds']}) | {row['last_step']:,} | "
          f"{tables.mean_ci_text(row['max_return'], row['max_ci95'])} | "
          f"{tables.mean_ci_text(row['average_return'], row['average_ci95'])} | "
          + "".join(f"{_p_text(row[f'{kind}_p_vs_{reference}'])} | " for reference in BEYOND_REFERENCES
                    for kind in P_VALUE_KINDS) +
          f"{row['lab_bias']:.3g} [{row['lab_bias_low']:.3g}, {row['lab_bias_high']:.3g}] | "
          f"{row['lab_variance']:.3g} | {row['lab_mse']:.3g} |")
    rho = correlations.get(task, {})
    lines += [""] + [_correlation_line(measure, r, p, n) for measure, (r, p, n) in rho.items()] + [""]
  return "\n".join(lines)


def write_beyond(results, tasks, estimators, seeds, meta, lab_row=beyond_lab_rows):
  """`<results>/beyond/beyond.{md,csv}`: `beyond_rows` and `beyond_correlations` of the grid's runs."""
  found = collect_curves(results, tasks, estimators, seeds)
  if not found:
    raise UsageError(f"no evaluations under {results} for tasks {','.join(tasks)} and estimators "
                     f"{','.join(estimators)}: run the grid first (without --norun)")
  rows = beyond_rows(found, lab_row)
  directory = os.path.join(results, "beyond")
  os.makedirs(directory, exist_ok=True)
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  paths = [os.path.join(directory, "beyond.csv"), os.path.join(directory, "beyond.md")]
  files.write_text(paths[0], buffer.getvalue())
  files.write_text(paths[1], beyond_markdown(rows, beyond_correlations(rows), meta) + "\n")
  return paths
