"""`maddpg-reproduce`: the paper's results, one command each, from a grid of training runs on Ray.

    maddpg-reproduce --what=table1 --budget=small --results=results/        # local Ray on this machine
    maddpg-reproduce --what=table1 --budget=paper --ray_address=auto        # an existing Ray cluster
    maddpg-reproduce --what=figures|figure4|table2|beyond|all --budget=smoke|small|medium|beyond|paper ...
    maddpg-reproduce --what=table1 --norun --results=results/               # tables from the runs already there
    maddpg-reproduce --what=table1 --budget=small --share_parameters        # every run shared (<estimator>+shared/)
    maddpg-reproduce --what=table1 --estimators=gst,gst+shared              # both, in one grid and one table

The grid (tasks x estimators x seeds, each run trained in its own workdir on Ray, finished runs skipped,
interrupted ones resumed, lost ones retried): `maddpg_tf.grid.runs`; the budgets: `maddpg_tf.grid.budgets`;
the outputs under `--results`: `maddpg_tf.grid.outputs`.

Exit status: 0 all runs finished and the outputs written; 1 some run failed (outputs written from the
others); 2 bad flags or input, an unwritable --results or one in use by another grid (one line
`maddpg-reproduce: error: ...`); 130 interrupted.
"""

import os
import sys

from absl import flags

from maddpg_tf import config as config_lib
from maddpg_tf import extras
from maddpg_tf.cli import common
from maddpg_tf.envs import mpe as mpe_tasks
from maddpg_tf.grid import budgets, outputs, runs

WHATS = ("table1", "aggregate", "figures", "figure4", "table2", "beyond", "all")
_TRAINED_FOR = ("table1", "figures", "beyond", "all")  # the outputs whose runs the grid trains (figure4: its own runs)

_WHAT = flags.DEFINE_enum("what", "table1", WHATS, "Which result to produce.")
_BUDGET = flags.DEFINE_enum("budget", "small", budgets.BUDGET_NAMES,
                            "smoke (tests: 6 runs of 2,000 env steps, a few minutes with the outputs), small "
                            "(about 30 min on 2 cores), medium (two tasks, the paper's steps, about 2.5 h on 2 "
                            "cores), beyond (the newer estimators on medium's tasks, about 5.5 h), paper (the "
                            "paper's grid).")
_RESULTS = flags.DEFINE_string("results", "results", "Directory for the runs and the outputs.")
_TASKS = flags.DEFINE_list("tasks", None, f"Tasks of the grid (default: the budget's). One of: "
                           f"{', '.join(budgets.GRID_TASKS)}.")
_ESTIMATORS = flags.DEFINE_list("estimators", None,
                                f"Estimators of the grid (default: the budget's). One of: {', '.join(budgets.ESTIMATORS)}; "
                                f"or your own by import path, {budgets.ESTIMATOR_PATH_FORM}, importable here and on every "
                                f"node (its runs in <task>/module.path.ClassName/).")
_ESTIMATOR_OPTIONS = flags.DEFINE_string(
    "estimator_options", "", "Parameters of the estimators given by import path in --estimators, as "
    "name=value,... (Python literals; each such estimator gets them all and must accept them). Default: "
    "their own defaults (the constructor's). The built-in estimators keep the paper's settings.")
_SEEDS = flags.DEFINE_list("seeds", None, "Seeds, e.g. 0,1,2 (default: the budget's).")
_FIDELITY = flags.DEFINE_enum("fidelity", "code", ("code", "text"), "The authors' code or the paper's text.")
_FOOD_RULE = flags.DEFINE_enum(
    "lbf_food_rule", None, tuple(config_lib.LBF_FOOD_RULES), "LBF tasks' food-level rule (default: each task's, "
    "which for the paper's tasks is v2, the lbforaging the paper ran). "
    + "; ".join(f"{k}: {v}" for k, v in config_lib.LBF_FOOD_RULES.items()) + ". README: Fidelity.")
_AUTHORS_LOOP = flags.DEFINE_bool(
    "authors_loop", False, "The authors' loop exactly: one environment, each episode's updates before the next "
    "episode (num_envs=1, loop.asynchronous_updates=False; maddpg_tf/FIDELITY.md). Default: 16 envs with "
    "update blocks, the same learner and updates per step.")
_SHARE_PARAMETERS = flags.DEFINE_bool(
    "share_parameters", False, "Every run of the grid (and Figure 4's) with one actor and one critic for all "
    f"agents (learner.share_parameters; README: Parameter sharing), in <task>/<estimator>{runs.SHARED_SUFFIX}/, "
    "beside the unshared runs: one --results then compares the two (or name single estimators so in "
    f"--estimators, e.g. gst,gst{runs.SHARED_SUFFIX}).")
_TOTAL_STEPS = flags.DEFINE_integer("total_steps", None, "Env steps per run, instead of the budget's.")
_FIGURE4_TASK = flags.DEFINE_string("figure4_task", budgets.FIGURE4_TASK, "Task of Figure 4's runs.")
_RAY_ADDRESS = flags.DEFINE_string("ray_address", None, "Ray cluster address (e.g. auto); default: start a "
                                   "local Ray on this machine.")
_NUM_CPUS = flags.DEFINE_integer("num_cpus", None, "CPUs of the local Ray (default: all of this machine's).")
_CPUS_PER_RUN = flags.DEFINE_integer("cpus_per_run", 1, "CPUs (and TensorFlow threads) per run; with 2 or "
                                    "more, the envs step in a worker process beside the learner.")
_GPUS_PER_RUN = flags.DEFINE_float("gpus_per_run", 0, "Share of a GPU each run asks Ray for, 1/k (e.g. 0.25: "
                                   "four runs per GPU, each taking at most a quarter of its memory); 0: none. "
                                   "Refused on a cluster without GPUs.")
_SEEDS_PER_PROCESS = flags.DEFINE_integer(
    "seeds_per_process", 1, "Seeds of one (task, estimator) trained in one process, their updates in one "
    "compiled call (maddpg_tf/run/packing.py); each seed's run directory is the one it gets alone. "
    "--cpus_per_run and --gpus_per_run are then per process.")
_RETRIES = flags.DEFINE_integer("retries", runs.DEFAULT_RETRIES, "Times a run whose process or node was lost is "
                                "submitted again (it resumes from its last complete checkpoint); a run that "
                                "fails for its own reasons is not retried.")
_TUNED = flags.DEFINE_list("tuned", None, "best_config.py files written by maddpg-search: each one's settings "
                          "replace the paper's for its estimator on every task of its environment family.")
_BOOTSTRAP_REPS = flags.DEFINE_integer("bootstrap_reps", 50_000, "Bootstrap replicates of the aggregate "
                                       "intervals (IQM, median, mean, optimality gap), as rliable.")
_POI_REPS = flags.DEFINE_integer("poi_bootstrap_reps", 2_000, "Bootstrap replicates of the probabilities of "
                                 "improvement (and the bands of profiles and curves).")
_BOOTSTRAP_SEED = flags.DEFINE_integer("bootstrap_seed", 0, "Seed of the bootstrap: same seed, same numbers.")
_ABSOLUTE = flags.DEFINE_bool("absolute", True, "After training, each run's absolute metric (absolute.json: the "
                              "learner of its best evaluation over 10x its evaluation episodes; Table 1's "
                              "absolute column); finished runs without it are evaluated.")
_RUN = flags.DEFINE_bool("run", True, "Train missing runs; --norun builds the outputs from existing runs only.")
_QUIET = flags.DEFINE_bool("quiet", False, "No progress bar.")


def _error(message):
  return common.error(runs.PROG, message)


def _parse_flags(argv):
  """absl's parsing, with any flag error as one line and exit status 2."""
  try:
    return flags.FLAGS(argv)
  except Exception as error:  # flags.Error and friends
    sys.exit(_error(str(error)))


def _require_extras(what, tasks, figure4_task):
  """MissingExtra (one line, status 2 from `common.run_main`) unless what `--what` needs is installed: Ray to
  train a grid, mpe2 for its multi-particle tasks, matplotlib for every output but Table 2's timing."""
  if _RUN.value and what in _TRAINED_FOR + ("figure4",):
    extras.require("grid")
    trained = (tasks if what in _TRAINED_FOR else ()) + ((figure4_task,) if what in ("figure4", "all") else ())
    if any(task in mpe_tasks.MPE_TASKS for task in trained):
      extras.require("mpe")
  if what != "table2":
    extras.require("plots")


def _grid_estimators(preset, train):
  """(--estimators, --estimator_options), checked; with `train` (the grid will run) the estimators given by
  import path are checked in a child process, before anything is written, and made importable by local runs."""
  estimators = runs.choose_estimators(_ESTIMATORS.value, preset.estimators)
  options = runs.check_estimator_options(_ESTIMATOR_OPTIONS.value, estimators)
  if train and any(config_lib.is_estimator_path(estimator) for estimator in estimators):
    runs.check_estimator_paths(estimators, options)
    runs.modules_reach_local_runs()
  return estimators, options


def main(argv):
  if len(argv) > 1:
    return _error(f"unexpected arguments {argv[1:]}; see --help")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  what, budget, results = _WHAT.value, _BUDGET.value, _RESULTS.value
  preset = budgets.BUDGETS[budget]
  try:
    tasks = runs.choose(_TASKS.value, budgets.GRID_TASKS, "tasks", preset.tasks)
    estimators, estimator_options = _grid_estimators(preset, train=_RUN.value and what in _TRAINED_FOR)
    figure4_estimators = budgets.FIGURE4_ESTIMATORS
    if _SHARE_PARAMETERS.value:
      estimators, figure4_estimators = (tuple(runs.split_shared(e)[0] + runs.SHARED_SUFFIX for e in chosen)
                                        for chosen in (estimators, figure4_estimators))
    seeds = runs.choose_seeds(_SEEDS.value, preset.seeds)
    figure4_seeds = runs.choose_seeds(_SEEDS.value, preset.figure4_seeds)
    if _FIGURE4_TASK.value not in budgets.GRID_TASKS:
      raise runs.UsageError(f"unknown task {_FIGURE4_TASK.value!r} in --figure4_task; allowed: "
                            f"{', '.join(budgets.GRID_TASKS)}")
    for name, flag in (("total_steps", _TOTAL_STEPS), ("num_cpus", _NUM_CPUS), ("cpus_per_run", _CPUS_PER_RUN),
                       ("seeds_per_process", _SEEDS_PER_PROCESS)):
      if flag.value is not None and flag.value < 1:
        raise runs.UsageError(f"--{name} must be >= 1, got {flag.value}")
    if _RETRIES.value < 0:
      raise runs.UsageError(f"--retries must be >= 0, got {_RETRIES.value}")
    gpus_per_run = runs.check_gpus_per_run(_GPUS_PER_RUN.value)
    if _RAY_ADDRESS.value and _NUM_CPUS.value:
      raise runs.UsageError("--num_cpus is for a local Ray; a cluster (--ray_address) has its own CPUs")
    tuned = runs.load_tuned(_TUNED.value)
    for env_family, label in tuned:
      if label not in {runs.split_shared(estimator)[0] for estimator in estimators}:
        raise runs.UsageError(f"--tuned settings for estimator {label!r}, which is not in the grid "
                              f"({', '.join(estimators)})")
    _require_extras(what, tasks, _FIGURE4_TASK.value)  # before check_results makes --results
    runs.check_results(results, budget, _FIDELITY.value, _RUN.value)
  except runs.UsageError as error:
    return _error(error)

  fidelity = _FIDELITY.value
  specs = runs.plan_outputs(what, results, tasks, estimators, seeds, _FIGURE4_TASK.value, figure4_seeds, budget,
                            fidelity, _TOTAL_STEPS.value, tuned, estimator_options, _FOOD_RULE.value,
                            overrides=runs.AUTHORS_LOOP if _AUTHORS_LOOP.value else None,
                            figure4_estimators=figure4_estimators)
  status = 0
  if specs and _RUN.value:
    try:
      runs.check_existing_runs(specs)
    except runs.UsageError as error:
      return _error(error)
    try:
      with runs.grid_lock(results):  # before grid.json is touched: a refused grid changes nothing
        runs.record_grid(results, budget, fidelity)
        print(f"{runs.PROG}: {len(specs)} runs ({budget} budget, fidelity {fidelity}) under {results}", flush=True)
        report = runs.run_grid(specs, results, _RAY_ADDRESS.value, _NUM_CPUS.value, _CPUS_PER_RUN.value,
                               _RETRIES.value, progress=not _QUIET.value, quiet=_QUIET.value,
                               absolute=_ABSOLUTE.value, gpus_per_run=gpus_per_run,
                               seeds_per_process=_SEEDS_PER_PROCESS.value)
    except (runs.GridBusy, runs.UsageError) as refused:  # another grid; GPUs asked of a cluster without
      return _error(refused)
    except KeyboardInterrupt:
      print(f"{runs.PROG}: interrupted; run the same command to resume", file=sys.stderr)
      return 130
    except Exception as error:  # pylint: disable=broad-except  (Ray could not start, ...)
      return _error(f"the grid could not run: {type(error).__name__}: {error}")
    runs.print_report(report)
    status = 0 if report.ok else 1

  meta = outputs.describe(budget, fidelity, seeds, _TOTAL_STEPS.value, tuned)
  try:
    written = outputs.write(what, results, tasks, estimators, seeds, meta, _FIGURE4_TASK.value, figure4_seeds,
                            outputs.describe(budget, fidelity, figure4_seeds, _TOTAL_STEPS.value, tuned), budget,
                            _BOOTSTRAP_REPS.value, _POI_REPS.value, _BOOTSTRAP_SEED.value, figure4_estimators)
  except runs.UsageError as error:
    return _error(error)
  for path in written:
    print(f"wrote {path}")
  return status


def run():
  """Console entry point."""
  common.run_main(runs.PROG, main, _parse_flags)


if __name__ == "__main__":
  run()
