"""`maddpg-train`: train MADDPG on one task with one estimator.

    maddpg-train                                   # the short default job (LBF 8x8, GST, a few minutes)
    maddpg-train --config=configs/lbf.py:task=lbf-15x15-4p-5f,estimator=gst --workdir=runs/gst-s0 \\
        --config.seed=0 --config.total_steps=7500000 --config.estimator.temperature=0.7

    maddpg-train --config=configs/lbf.py:smoke --seeds=0,1,2 --workdir=runs/gst   # runs/gst/seed0, seed1, seed2

Re-running the same command on an interrupted --workdir resumes from its last complete checkpoint.
`--seeds` trains several seeds in one process, their updates in one compiled call (maddpg_tf.run.packing):
each `<workdir>/seed<k>` is the run `--config.seed=k` would write alone.
`--list` prints the tasks, estimators, budgets and presets; `--print_config` the resolved config (every
key, as --config.<key>=<value> sets it), and neither trains.
"""

import datetime
import os
import sys

from absl import flags
from ml_collections import config_flags

from maddpg_tf import config as config_lib
from maddpg_tf.cli import common
from maddpg_tf.run import checkpointing, errors, loggers, process, workdir as workdir_lib

PROGRAM = "maddpg-train"
# The default job: the library's own config file (configs/ is a preset directory, not installed).
_DEFAULT_CONFIG = config_lib.__file__ + ":short"
_CONFIG_DEFINE_ERROR = None
try:
  _CONFIG = config_flags.DEFINE_config_file("config", _DEFAULT_CONFIG,
                                           "Config file and arguments, e.g. configs/lbf.py:task=lbf-10x10-3p-3f,"
                                           "estimator=gst,smoke (tasks, estimators, presets: --list).",
                                           lock_config=True)
except (AttributeError, KeyError) as _error_at_definition:
  # Without --config=, ml_collections applies --config.* overrides to the default file while defining the
  # flag: an override of a key that does not exist fails here; `_parse_flags` reports it.
  _CONFIG, _CONFIG_DEFINE_ERROR = None, _error_at_definition
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default: runs/<task>_<estimator>_s<seed>_<time>).")
_SEEDS = flags.DEFINE_list("seeds", None, "Several seeds in one process, e.g. 0,1,2: one packed update for all, "
                           "each seed's run in <workdir>/seed<k> (instead of --config.seed).")
_QUIET = flags.DEFINE_bool("quiet", False, "No progress bar.")
_LIST = flags.DEFINE_bool("list", False, "Print the tasks, estimators, budgets and presets, then exit.")
_PRINT_CONFIG = flags.DEFINE_bool("print_config", False, "Print the resolved config (--config with its "
                                  "--config.* overrides and the fidelity's defaults), then exit without training.")
# --help lists what --list prints after the program's usage lines.
__doc__ += "\n" + "\n".join(common.catalogue()) + "\n"


def _error(message):
  return common.error(PROGRAM, message)


def _parse_flags(argv):
  """absl's parsing, with any flag or config-file error as one line and exit status 2."""
  return common.parse_flags(PROGRAM, argv, {"config": _DEFAULT_CONFIG}, _CONFIG_DEFINE_ERROR)


def _flat(tree, prefix=""):
  """[(dotted key, value)] of a nested dict, keys sorted."""
  pairs = []
  for key in sorted(tree):
    if isinstance(tree[key], dict):
      pairs += _flat(tree[key], f"{prefix}{key}.")
    else:
      pairs.append((f"{prefix}{key}", tree[key]))
  return pairs


def main(argv):
  if len(argv) > 1:
    return _error(f"unexpected arguments {argv[1:]}; flags are --config, --workdir, --seeds, --quiet, --list, "
                  f"--print_config")
  if _LIST.value:
    print("\n".join(common.catalogue()))
    return 0
  try:
    config = common.config_value(_CONFIG, "config")
  except ValueError as error:
    return _error(error)
  try:
    # The schema's checks and the loggers' packages need no TensorFlow: bad values fail in a second.
    resolved = config_lib.resolve(config)
    loggers.check_packages(resolved)
  except (config_lib.ConfigError, errors.RunError) as error:
    return _error(error)
  seeds = None
  if _SEEDS.value is not None:
    if any(arg.split("=", 1)[0] == "--config.seed" for arg in sys.argv[1:]):
      return _error("give the seeds with --seeds or --config.seed, not both")
    try:
      seeds = config_lib.check_seeds(_SEEDS.value)
    except ValueError as error:
      return _error(f"--seeds: {error}")
  if _PRINT_CONFIG.value:
    # As the flags that set each key: a line can be copied onto the command line.
    print(f"# {config.task} {config.estimator.label}: the resolved config, every key as --config.<key>=<value>")
    print("\n".join(f"--config.{key}={value}" for key, value in _flat(resolved.to_dict())))
    return 0
  if seeds is None and _WORKDIR.value and not config_lib.is_estimator_path(resolved.estimator.name):
    try:  # a directory of something else or of another run: refused in a second, before TensorFlow loads
      workdir_lib.Workdir(_WORKDIR.value).check(resolved)  # (Experiment checks again, as for a user's estimator)
    except errors.RunError as error:
      return _error(error)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  process.import_tensorflow()  # without its import-time log lines
  from maddpg_tf.run import experiment  # after the config loads: bad files fail fast
  process.raise_if_interrupted()  # a Ctrl-C that an import swallowed
  named = f"s{config.seed}" if seeds is None else "s" + "-".join(map(str, seeds))
  workdir = _WORKDIR.value or os.path.join(
      "runs", f"{config.task}_{config.estimator.label}_{named}_{datetime.datetime.now():%Y%m%d-%H%M%S}")
  try:
    if seeds is None:
      with experiment.Experiment(config, workdir, progress=not _QUIET.value) as run:
        summaries = [run.run()]
    else:
      from maddpg_tf.run import packing  # pylint: disable=g-import-not-at-top  (after TensorFlow, as above)
      with packing.PackedRun(config, workdir, seeds, progress=not _QUIET.value) as run:
        summaries = run.run()
  except (experiment.RunError, checkpointing.CheckpointError) as error:
    return _error(str(error))
  except experiment.Interrupted as interrupt:
    print(f"maddpg-train: interrupted: {interrupt}", file=sys.stderr)
    return 128 + interrupt.signum
  for summary in summaries:
    # A finished run given again trains nothing: no rate to report.
    done = ("already finished" if summary["already_finished"] else "done")
    rate = "" if summary["already_finished"] else f", {summary['steps_per_second']:.0f} steps/s"
    print(f"{done}: {summary['task']} {summary['estimator']} seed {summary['seed']} ({summary['fidelity']}): "
          f"{summary['env_steps']:,} env steps, {summary['updates']:,} updates{rate}; eval return final "
          f"{summary['final_return']:.3f}, max {summary['max_return']:.3f}")
    print(f"results: {os.path.join(summary['workdir'], 'evaluations.csv')}; "
          f"TensorBoard: tensorboard --logdir {summary['tensorboard']}")
  return 0


def run():
  """Console entry point."""
  common.run_main(PROGRAM, main, _parse_flags)


if __name__ == "__main__":
  run()
