"""What `maddpg-reproduce` writes from a grid's runs: the curves of their evaluations (`collect_curves`),
Table 1, the field's aggregates, Figures 1-3 and S1, Figure 4 and Table 2, each stating the budget it
came from (`describe`). Only the runs' files are read (no TensorFlow), except by Table 2's benchmark.

Outputs under `--results`: `table1.{md,tex,csv}`, `aggregate/` (with table1 and aggregate: IQM, median,
mean, optimality gap with stratified bootstrap intervals, probabilities of improvement, profiles and
sample-efficiency figures, `marl_eval.json`; see `maddpg_tf.analysis.aggregate`), `figures/figure{1,2,3,S1}.{png,pdf}`,
`figures/figure4.{png,pdf}`, `table2.{md,tex,csv,json}`, and `grid.json` (each run's state). On a
multi-node cluster `--results` should be a shared filesystem (resuming and Figure 4 read the run
directories); without one the driver still writes each finished run's evaluations and summary.
"""

import datetime
import os

import numpy as np

from maddpg_tf import config as common
from maddpg_tf.grid.budgets import BUDGETS, FIGURE4_ESTIMATORS
from maddpg_tf.grid.runs import PROG, RunSpec, UsageError, _read_json, estimator_directory, run_state, workdir_of
from maddpg_tf.lab import timing
from maddpg_tf.run import loggers


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
  """The outputs of `--what` (table1, aggregate, figures, figure4, table2 or all); returns the paths written.
  UsageError (one line) where the runs they need are missing."""
  written = []
  if what in ("table1", "all"):
    written += write_table1(results, tasks, estimators, seeds, meta)
  if what in ("table1", "aggregate", "all"):
    written += write_aggregates(results, tasks, estimators, seeds, meta, reps, poi_reps, bootstrap_seed)
  if what in ("figures", "all"):
    written += write_figures(results, tasks, estimators, seeds, meta)
  if what in ("figure4", "all"):
    written += write_figure4(results, figure4_task, figure4_seeds, figure4_meta, figure4_estimators)
  if what in ("table2", "all"):
    written += write_table2(results, budget, meta)
  return written
