"""The grid's evaluations in marl-eval's raw data format (Gorsane et al. 2022, `id-marl-eval`), and a checker.

The nesting its loader (`data_process_pipeline`, `create_matrices_for_rliable`, `DiagnoseData`) reads:

  {environment: {task: {algorithm: {run: {
      "step_0": {"step_count": int, "return": [one float per evaluation episode]},
      ...
      "step_k": {...},
      "absolute_metrics": {"return": [floats]}        # where known
  }}}}}

Our names: environment = `environment_of(task)` (e.g. "lbf", "rware"), algorithm = the estimator, run =
"seed_<seed>" (marl-eval's JsonLogger names runs so), step_<j> for the j-th evaluation (from 0) with
step_count = its env step, metric "return" (the name marl-eval's examples normalise: pass
metrics_to_normalize=["return"]). absolute_metrics is written for runs whose record carries
`absolute_returns` (the best policy's returns over 10x the evaluation episodes, marl-eval's absolute
metric); `aggregate.runs_from_results` adds them where a run's workdir holds absolute.json. marl-eval's
`create_matrices_for_rliable` refuses data where a run lacks it, while its `data_process_pipeline` and
`DiagnoseData` read it either way.

What its loader needs (`validate_marl_eval_json`): string keys that stay distinct when lower-cased (it
lower-cases every key), no "extra" environment (it adds that key), no comma in an algorithm name, each
step a dict with an int step_count and each metric a non-empty list of finite numbers, one absolute entry
per run at most, named "absolute_metrics", holding the same metrics as the steps. With strict=True also
what its tools need to stack the data into arrays: within an environment, every task has the same
algorithms, every (task, algorithm) the same number of runs, every run the same number of entries, and
every run an absolute_metrics entry.

The evaluation interval: marl-eval 0.0.4's `data_process_pipeline` infers it per environment as the mean of
the differences of consecutive step_counts, the first taken from 0, so a run's last step_count divided by
its number of steps; its `sample_efficiency_curves` draws evaluation j at j x that interval. Our runs
evaluate at step 0 too (151 evaluations for 7.5M steps every 50k), which it reads as an interval of
7.5M / 151 = 49,669 and an axis ending 0.66% short. The steps are kept (step 0 is a real evaluation, and
the normalisation bounds include it, as ours do); `evaluation_intervals` gives both numbers, aggregate.md
states them, and the README says what to set: with step 0 drawn at x = 0, j x the true interval is exactly
each evaluation's step.

No import of marl-eval (it pins numpy < 2).
"""

import collections

import json
import math
import numbers
import os

import numpy as np

from maddpg_tf.analysis import aggregate

METRIC = "return"
ABSOLUTE = "absolute_metrics"


def to_marl_eval_json(runs, environment_of=None, metric=METRIC):
  """The marl-eval raw data dict of run records (see `aggregate.check_runs` for the record format).

  Tasks, estimators and seeds appear in sorted order, steps in the run's order.
  """
  environment_of = aggregate.environment_of_task if environment_of is None else environment_of
  if not callable(environment_of):
    raise ValueError(f"environment_of must be a function task -> environment name, got {environment_of!r}")
  if not isinstance(metric, str) or not metric or metric == "step_count":
    raise ValueError(f"metric={metric!r}: must be a non-empty name other than 'step_count'")
  checked = runs if aggregate._is_checked(runs) else aggregate.check_runs(runs)  # pylint: disable=protected-access
  data = {}
  for run in sorted(checked, key=lambda r: (r["task"], r["estimator"], r["seed"])):
    environment = environment_of(run["task"])
    if not isinstance(environment, str) or not environment:
      raise ValueError(f"environment_of({run['task']!r}) gave {environment!r}: must be a non-empty string")
    entry = {f"step_{j}": {"step_count": int(step), metric: [float(r) for r in returns]}
             for j, (step, returns) in enumerate(zip(run["steps"], run["returns"]))}
    if "absolute_returns" in run:
      entry[ABSOLUTE] = {metric: [float(r) for r in run["absolute_returns"]]}
    runs_of = data.setdefault(environment, {}).setdefault(run["task"], {}).setdefault(run["estimator"], {})
    runs_of[f"seed_{run['seed']}"] = entry
  return data


def evaluation_intervals(data):
  """{environment: (the interval marl-eval 0.0.4 infers, the true one)} of a marl-eval raw data dict.

  marl-eval's: round(mean of step_count differences over every run, each run's first one from 0). True:
  the most common difference between consecutive evaluations (the smallest of equally common ones), i.e.
  loop.eval_every_steps; a final evaluation off that grid (total_steps not a multiple) does not change it.
  """
  intervals = {}
  for environment, tasks in data.items():
    marl_eval_differences, differences = [], collections.Counter()
    for algorithms in tasks.values():
      for runs in algorithms.values():
        for steps in runs.values():
          counts = [entry["step_count"] for key, entry in steps.items() if "absolute" not in key.lower()]
          marl_eval_differences += np.diff([0] + counts).tolist()
          differences.update(np.diff(counts).tolist())
    if marl_eval_differences:
      most = max(differences.values(), default=0)
      true = min((d for d, n in differences.items() if n == most), default=None)
      intervals[environment] = (round(float(np.mean(marl_eval_differences))), true)
  return intervals


def interval_notes(data):
  """One line per environment whose interval marl-eval would infer wrongly: both values and what to set."""
  notes = []
  for environment, (inferred, true) in sorted(evaluation_intervals(data).items()):
    if true is not None and inferred != true:
      notes.append(f"marl_eval.json: marl-eval 0.0.4 infers {environment}'s evaluation interval as {inferred:,} "
                   f"(the mean step per evaluation, counting step 0); the runs evaluated every {true:,}: set "
                   f"`matrices['extra']['evaluation_interval'] = {true}` on create_matrices_for_rliable's "
                   f"second result before sample_efficiency_curves")
  return notes


def _finite_numbers(values):
  if not isinstance(values, list) or not values:
    return False
  if all(type(v) is float or type(v) is int for v in values):  # pylint: disable=unidiomatic-typecheck  (fast path: JSON's own types)
    return bool(np.all(np.isfinite(np.asarray(values, dtype=np.float64))))
  return all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _lower_case_clashes(mapping, where):
  seen = {}
  problems = []
  for key in mapping:
    if not isinstance(key, str):
      problems.append(f"{where}: key {key!r} is not a string")
      continue
    if key.lower() in seen:
      problems.append(f"{where}: keys {seen[key.lower()]!r} and {key!r} are the same once lower-cased")
    seen[key.lower()] = key
  return problems


def _step_problems(where_step, step, metrics, previous):
  """(problems, step_count now last, the metric names or None) of one step entry of a run."""
  problems = []
  if not isinstance(metrics, dict) or not metrics:
    return [f"{where_step}: must be a non-empty dict of metrics"], previous, None
  if "absolute" in str(step).lower():
    if "step_count" in metrics:
      problems.append(f"{where_step}: the absolute entry holds no step_count")
  else:
    count = metrics.get("step_count")
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
      problems.append(f"{where_step}: step_count must be an int >= 0, got {count!r}")
    else:
      if previous is not None and count <= previous:
        problems.append(f"{where_step}: step_count {count} does not follow {previous}")
      previous = count
  names = tuple(sorted(str(k).lower() for k in metrics if k != "step_count"))
  if not names:
    problems.append(f"{where_step}: holds no metric")
  for name, values in metrics.items():
    if name == "step_count":
      continue
    if "step_count" in str(name):
      problems.append(f"{where_step}: metric {name!r}: marl-eval reads any name holding "
                      f"'step_count' as the step")
    elif not _finite_numbers(values):
      problems.append(f"{where_step}: metric {name!r} must be a non-empty list of finite numbers")
  return problems, previous, names


def _strict_problems(env, algorithm_sets, run_counts, entry_counts, without_absolute):
  """What marl-eval's array tools (create_matrices_for_rliable) need beyond its loader, for one environment."""
  problems = []
  if len(algorithm_sets) > 1:
    problems.append(f"{env}: tasks have different algorithms: {sorted(algorithm_sets)} (marl-eval's tools "
                    f"need the same algorithms on every task)")
  if len(run_counts) > 1:
    problems.append(f"{env}: (task, algorithm) pairs have different numbers of runs: {sorted(run_counts)}")
  if len(entry_counts) > 1:
    problems.append(f"{env}: runs have different numbers of entries (steps + absolute): "
                    f"{sorted(entry_counts)}")
  if without_absolute:
    problems.append(f"{env}: {len(without_absolute)} run(s) without {ABSOLUTE!r} (e.g. "
                    f"{without_absolute[0]}); create_matrices_for_rliable needs it in every run")
  return problems


def validate_marl_eval_json(data, strict=False):
  """Problems that keep marl-eval's loader (strict: also its array tools) from reading `data`; [] if none.

  Each problem is one line naming where it is (environment / task / algorithm / run / step).
  """
  if not isinstance(data, dict) or not data:
    return [f"the top level must be a non-empty dict of environments, got {type(data).__name__}"]
  problems = _lower_case_clashes(data, "top level")
  for env, tasks in data.items():
    if str(env).lower() == "extra":
      problems.append(f"{env}: 'extra' is reserved (marl-eval adds that key)")
    if not isinstance(tasks, dict) or not tasks:
      problems.append(f"{env}: must be a non-empty dict of tasks")
      continue
    problems += _lower_case_clashes(tasks, env)
    metric_sets, algorithm_sets, run_counts, entry_counts, without_absolute = set(), set(), set(), set(), []
    for task, algorithms in tasks.items():
      where_task = f"{env}/{task}"
      if not isinstance(algorithms, dict) or not algorithms:
        problems.append(f"{where_task}: must be a non-empty dict of algorithms")
        continue
      problems += _lower_case_clashes(algorithms, where_task)
      algorithm_sets.add(tuple(sorted(str(a).lower() for a in algorithms)))
      for algorithm, runs in algorithms.items():
        where_algorithm = f"{where_task}/{algorithm}"
        if "," in str(algorithm):
          problems.append(f"{where_algorithm}: algorithm names must not contain commas")
        if not isinstance(runs, dict) or not runs:
          problems.append(f"{where_algorithm}: must be a non-empty dict of runs")
          continue
        problems += _lower_case_clashes(runs, where_algorithm)
        run_counts.add(len(runs))
        for run, steps in runs.items():
          where_run = f"{where_algorithm}/{run}"
          if not isinstance(steps, dict) or not steps:
            problems.append(f"{where_run}: must be a non-empty dict of steps")
            continue
          problems += _lower_case_clashes(steps, where_run)
          entry_counts.add(len(steps))
          absolute = [key for key in steps if "absolute" in str(key).lower()]
          if not absolute:
            without_absolute.append(where_run)
          elif len(absolute) > 1 or absolute[0] != ABSOLUTE:
            problems.append(f"{where_run}: one absolute entry, named {ABSOLUTE!r}, at most; got {absolute}")
          previous = None
          for step, metrics in steps.items():
            found, previous, names = _step_problems(f"{where_run}/{step}", step, metrics, previous)
            problems += found
            if names is not None:
              metric_sets.add(names)
    if len(metric_sets) > 1:
      problems.append(f"{env}: steps hold different metrics: {sorted(metric_sets)}")
    if strict:
      problems += _strict_problems(env, algorithm_sets, run_counts, entry_counts, without_absolute)
  return problems


def check_marl_eval_json(data, strict=False):
  """Raises ValueError with the first problem `validate_marl_eval_json` finds (and how many there are)."""
  problems = validate_marl_eval_json(data, strict=strict)
  if problems:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise ValueError(f"not marl-eval's raw data format: {problems[0]}{more}")


def write_marl_eval_json(data, path):
  """Checks the format (not strict), writes `data` to `path` atomically, returns the path."""
  check_marl_eval_json(data)
  temporary = path + ".tmp"
  # compact, and dumps (not dump) so that the C encoder writes it: a grid holds millions of returns
  text = json.dumps(data, separators=(",", ":"), allow_nan=False)
  with open(temporary, "w") as handle:
    handle.write(text + "\n")
  os.replace(temporary, path)
  return path


def read_marl_eval_json(path):
  """The dict in a marl-eval raw data file."""
  with open(path) as handle:
    return json.load(handle)
