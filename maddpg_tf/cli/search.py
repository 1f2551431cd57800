"""`maddpg-search`: Bayesian search (keras-tuner) over an estimator's settings, on one machine or several.

    maddpg-search --config=configs/lbf.py:task=lbf-15x15-3p-5f,estimator=grmck --max_trials=20 \\
        --dir=searches/grmck
    maddpg-search ... --objective=max --seeds_per_trial=3 --search.temperature.max=0.9 \\
        --search_space=num_samples=5|10

Each trial trains MADDPG with the trial's estimator settings (`--config` plus any `--config.*` override is
the base) and scores it by its evaluation returns. The search space comes from `maddpg_tf/search/spaces.py`
(the paper's ranges), overridable as `--search.<hyperparameter>.<field>=...` or with the `--search_space`
shorthand. When the search ends, the trial table is printed and written to <dir>/trials.csv, and the best
settings to <dir>/best_config.py (`maddpg-train --config=<dir>/best_config.py` trains with them). Running
the same command again continues an interrupted search.

Your own estimator by import path has no default space: give one (see `maddpg_tf/search/spaces.py`):

    maddpg-search --config=configs/lbf.py:task=lbf-8x8-2p-2f-coop,estimator=my_mod:MyEst \\
        --search_space=temperature=0.1:2,weight=0.2:0.8

Several processes or machines: keras-tuner's chief/worker mode (see `maddpg_tf.search.launch`); every
process runs the same command.
"""

import contextlib
import os
import signal
import sys

from absl import flags
from ml_collections import config_flags

from maddpg_tf import extras
from maddpg_tf.cli import common
from maddpg_tf.run import locking, process
from maddpg_tf.search import launch, spaces

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Training config file and arguments, e.g. configs/lbf.py:task=lbf-15x15-3p-5f,estimator=grmck "
    "(the base of every trial; --config.* overrides apply).", lock_config=True)
_SEARCH_FILE = spaces.__file__  # a config file itself (get_config); configs/search.py is the same
_SEARCH_DEFINE_ERROR = None
try:
  _SEARCH = config_flags.DEFINE_config_file(
      "search", _SEARCH_FILE,
      "Search-space config file (default: maddpg_tf/search/spaces.py, the paper's ranges, which "
      "configs/search.py re-exports); override e.g. --search.temperature.max=0.9.", lock_config=True)
except (AttributeError, KeyError) as _error_at_definition:
  # ml_collections applies --search.* overrides to the default file while defining the flag: an override
  # through a key that does not exist fails here; `_parse_flags` reports it.
  _SEARCH, _SEARCH_DEFINE_ERROR = None, _error_at_definition
_SEARCH_SPACE = flags.DEFINE_string(
    "search_space", "", "Search-space shorthand, applied after --search.*: comma-separated name=min:max[:log], "
    "name=v1|v2|..., name=on or name=off, e.g. 'temperature=0.2:0.9,num_samples=5|10'. The only way to "
    "search a parameter of your own estimator (estimator=module.path:ClassName) that the config has no field "
    "for, e.g. 'weight=0.2:0.8'.")
_DIR = flags.DEFINE_string("dir", None, "Search directory (default: searches/<task>_<estimator>).")
_MAX_TRIALS = flags.DEFINE_integer("max_trials", 20, "Trials in all (a restart may raise it).")
_OBJECTIVE = flags.DEFINE_enum("objective", "average", ["average", "max"],
                               "average: mean evaluation return over the run (Table 1's average return); "
                               "max: the best evaluation (Table 1's maximum return).")
_SEEDS = flags.DEFINE_integer("seeds_per_trial", 1, "Training runs per trial (seeds config.seed, +1, ...), "
                              "averaged.")
_INITIAL = flags.DEFINE_integer("num_initial_points", None,
                                "Random trials before the Gaussian process (default 3 x dimensions).")
_SEARCH_SEED = flags.DEFINE_integer("search_seed", 1, "Seed of the Bayesian optimiser's proposals.")
_QUIET = flags.DEFINE_bool("quiet", False, "No progress bars for the training runs.")
_TRIAL_TIMEOUT = flags.DEFINE_float("trial_timeout", 600.0, "Chief/worker mode: seconds without a heartbeat "
                                    "from a trial's worker before the trial goes to another worker (heartbeats "
                                    "every tenth of it).")

PROGRAM = "maddpg-search"


def _error(message, status=2):
  return common.error(PROGRAM, message, status)


def _parse_flags(argv):
  """absl's parsing, with any flag or config-file error as one line and exit status 2."""
  return common.parse_flags(PROGRAM, argv, {"config": None, "search": _SEARCH_FILE}, _SEARCH_DEFINE_ERROR)


def _check_arguments(argv):
  """Everything that needs no training; returns (config, space, directory, role) or raises ValueError. Only a
  user's estimator (by import path) is imported here, to check the names searched against its parameters."""
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}; see --help")
  if _MAX_TRIALS.value < 1:
    raise ValueError(f"--max_trials must be >= 1, got {_MAX_TRIALS.value}")
  if _SEEDS.value < 1:
    raise ValueError(f"--seeds_per_trial must be >= 1, got {_SEEDS.value}")
  if not _TRIAL_TIMEOUT.value > 0:
    raise ValueError(f"--trial_timeout must be a number of seconds > 0, got {_TRIAL_TIMEOUT.value:g}")
  if _INITIAL.value is not None and _INITIAL.value < 1:
    raise ValueError(f"--num_initial_points must be >= 1, got {_INITIAL.value}")
  config = common.config_value(_CONFIG, "config")
  if config is None:
    raise ValueError("--config is required, e.g. --config=configs/lbf.py:task=lbf-15x15-3p-5f,estimator=grmck")
  try:
    estimator, space = spaces.searched_space(config, common.config_value(_SEARCH, "search"), _SEARCH_SPACE.value)
  except spaces.SpaceError as error:
    raise ValueError(str(error)) from None
  directory = _DIR.value or os.path.join("searches", f"{config.task}_{estimator}".replace(":", "_"))
  launch.check_directory(directory)
  return config, space, directory, launch.role()


def main(argv):
  try:
    config, space, directory, mode = _check_arguments(argv)
  except ValueError as error:
    return _error(error)
  extras.require("search")  # keras-tuner and gRPC, before TensorFlow loads (missing: one line, status 2)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  process.import_tensorflow()  # without its import-time log lines
  from maddpg_tf.run import experiment  # pylint: disable=g-import-not-at-top  (after the cheap checks:
  from maddpg_tf.search import tuner as search  # pylint: disable=g-import-not-at-top  bad input fails fast)
  process.raise_if_interrupted()  # a Ctrl-C that an import swallowed

  try:
    search.check_config(config, space)
  except experiment.RunError as error:
    return _error(f"--config: {error}")
  content = search.identity(config, space, _OBJECTIVE.value, _SEEDS.value, _INITIAL.value, _SEARCH_SEED.value)
  try:  # first: a directory of another search is refused before this process leaves a lock file there
    search.check_directory(directory, content)
  except search.SearchError as error:
    return _error(error)
  with contextlib.ExitStack() as held:
    if mode != "worker":  # workers share the chief's directory; the chief (or a single search) owns it
      try:
        os.makedirs(directory, exist_ok=True)
        held.enter_context(locking.hold(os.path.join(directory, "search.lock"), f"--dir {directory}",
                                        "wait for it to end, or give another --dir"))
      except locking.Busy as busy:
        return _error(busy)
      except OSError as error:
        return _error(f"--dir {directory}: {error.strerror or error}")
    try:
      search.prepare_directory(directory, content)
    except search.SearchError as error:
      return _error(error)
    return _search(config, space, directory, mode, search)


def _search(config, space, directory, mode, search):
  """Runs (or continues) the search in `directory` and reports it; the exit status."""

  def log(text):
    print(text, flush=True)

  tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
  try:
    tuner = search.EstimatorSearch(
        config, space, directory, objective=_OBJECTIVE.value, seeds_per_trial=_SEEDS.value,
        max_trials=_MAX_TRIALS.value, num_initial_points=_INITIAL.value, search_seed=_SEARCH_SEED.value,
        trial_fn=_TRIAL_FN, progress=not _QUIET.value, log=log, announce_trials=mode == "chief",
        trial_timeout=None if mode == "single" else _TRIAL_TIMEOUT.value)
  except (RuntimeError, ValueError) as error:  # e.g. an unreadable oracle.json
    return _error(f"--dir {directory}: cannot continue the search there ({process.one_line(error)})")
  search.announce(tuner, mode, tuner_id, directory, _MAX_TRIALS.value, _TRIAL_TIMEOUT.value, log)

  previous = signal.signal(signal.SIGTERM, process.raise_interrupt)
  status = 0
  try:
    tuner.search()
  except search.SearchInterrupted as interrupt:
    message = str(interrupt).replace("to resume", "to continue the search")
    print(f"{PROGRAM}: interrupted: {message}", file=sys.stderr, flush=True)
    return 128 + interrupt.signum
  except KeyboardInterrupt as interrupt:
    signum = signal.SIGTERM if isinstance(interrupt, process.Terminated) else signal.SIGINT
    print(f"{PROGRAM}: interrupted ({signal.Signals(signum).name}); run the same command to continue the "
          f"search", file=sys.stderr, flush=True)
    if mode == "chief":
      os._exit(128 + signum)  # the gRPC server's threads would keep the process alive
    return 128 + signum
  except RuntimeError as error:
    if not str(error).startswith("Number of consecutive failures"):
      raise
    # keras-tuner stops after max_consecutive_failed_trials (3) failed trials in a row.
    status = _error(f"the search stopped: {str(error).splitlines()[0]} The last: {search.last_line(str(error))}",
                    status=1)
  except Exception as error:  # a worker that lost its chief (grpc.RpcError), and the like
    if mode != "worker" or "grpc" not in type(error).__module__:
      raise
    details = error.details() if hasattr(error, "details") else error
    return _error(f"{tuner_id}: the chief at {os.environ['KERASTUNER_ORACLE_IP']}:"
                  f"{os.environ['KERASTUNER_ORACLE_PORT']} failed: {details}", status=1)
  finally:
    signal.signal(signal.SIGTERM, previous)

  if mode == "worker":
    log(f"{tuner_id}: no trials left; the chief prints the trial table and writes best_config.py")
    return status
  source = search.config_source(config_flags.get_config_filename(flags.FLAGS["config"]),
                                config_flags.get_override_values(flags.FLAGS["config"]))
  search.report(tuner, directory, source, log)
  return status


_TRIAL_FN = None  # `run(trial_fn=...)` replaces real training (tests use a known objective)


def run(trial_fn=None):
  """Console entry point. `trial_fn(config, workdir) -> [evaluation returns]` replaces training."""
  global _TRIAL_FN
  _TRIAL_FN = trial_fn
  common.run_main(PROGRAM, main, _parse_flags)


if __name__ == "__main__":
  run()
