"""`maddpg-search`: Bayesian search (keras-tuner) over an estimator's settings, on one machine or several.

    maddpg-search --config=configs/lbf.py:task=lbf-15x15-3p-5f,estimator=grmck --max_trials=20 \\
        --dir=searches/grmck
    maddpg-search ... --objective=max --seeds_per_trial=3 --search.temperature.max=0.9 \\
        --search_space=num_samples=5|10

Each trial trains MADDPG with the trial's estimator settings (`--config` plus any `--config.*` override is
the base) and scores it by its evaluation returns. The search space comes from `maddpg_tf/search_spaces.py` (the
paper's ranges), overridable as `--search.<hyperparameter>.<field>=...` or with the `--search_space`
shorthand. When the search ends, the trial table is printed and written to <dir>/trials.csv, and the best
settings to <dir>/best_config.py (`maddpg-train --config=<dir>/best_config.py` trains with them). Running
the same command again continues an interrupted search.

Your own estimator by import path has no default space; give one (its names are checked against the
estimator's parameters before anything is written, and a searched own parameter goes into the trial's
`estimator.options`; `--search.*` has keys only for the config's fields, so own parameters go in
`--search_space`):

    maddpg-search --config=configs/lbf.py:task=lbf-8x8-2p-2f-coop,estimator=my_mod:MyEst \\
        --search_space=temperature=0.1:2,weight=0.2:0.8

Several processes or machines: keras-tuner's chief/worker mode, switched on by KERASTUNER_ORACLE_IP,
KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID (a "chief" id serves the oracle and trains nothing;
"tuner0", "tuner1", ... train). Every process runs the same command. A worker that dies mid-trial (its
machine lost, the process killed) is noticed by its missing heartbeats: after `--trial_timeout` seconds
(default 600) the chief hands its trial to the next worker that asks, which resumes its training runs from
their checkpoints; a trial whose worker is lost three times ends as FAILED. Idle workers wait for the last
trials to end (so that a lost one finds a worker), then leave. A killed chief restarted with the same
command continues the search.
"""

import contextlib
import os
import signal
import sys

from absl import flags
from ml_collections import config_flags

from maddpg_tf import cli, locking

from maddpg_tf import search_spaces

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Training config file and arguments, e.g. configs/lbf.py:task=lbf-15x15-3p-5f,estimator=grmck "
    "(the base of every trial; --config.* overrides apply).", lock_config=True)
_SEARCH_FILE = search_spaces.__file__  # a config file itself (get_config); configs/search.py is the same
_SEARCH_DEFINE_ERROR = None
try:
  _SEARCH = config_flags.DEFINE_config_file(
      "search", _SEARCH_FILE,
      "Search-space config (configs/search.py); override e.g. --search.temperature.max=0.9.", lock_config=True)
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
  return cli.error(PROGRAM, message, status)


def _parse_flags(argv):
  """absl's parsing, with any flag or config-file error as one line and exit status 2."""
  return cli.parse_flags(PROGRAM, argv, {"config": None, "search": _SEARCH_FILE}, _SEARCH_DEFINE_ERROR)


def role():
  """'single', 'chief' or 'worker', from keras-tuner's environment variables; ValueError if incomplete."""
  if "KERASTUNER_ORACLE_IP" not in os.environ:
    return "single"
  for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
    if not os.environ.get(name):
      raise ValueError(f"KERASTUNER_ORACLE_IP is set but {name} is not; set all three for a distributed "
                       f"search (chief: KERASTUNER_TUNER_ID=chief, workers: tuner0, tuner1, ...)")
  port = os.environ["KERASTUNER_ORACLE_PORT"]
  if not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"KERASTUNER_ORACLE_PORT must be a port number 1-65535, got {port!r}")
  return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def _estimator_parameters(name):
  """The parameter names of a user's estimator given by import path: imports its module (and TensorFlow,
  which the search loads anyway). ValueError (one line) if the path does not import or is no estimator."""
  cli.import_tensorflow()  # without its import-time log lines
  import estimators  # pylint: disable=g-import-not-at-top
  return estimators.parameter_names(name)


def _searched_estimator(config):
  """What the space is for: a user's estimator named by path in `estimator.name` (also under a preset's
  label), else the preset's label."""
  name = config.estimator.name
  return name if search_spaces.is_import_path(name) else config.estimator.label


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
  config = cli.config_value(_CONFIG, "config")
  if config is None:
    raise ValueError("--config is required, e.g. --config=configs/lbf.py:task=lbf-15x15-3p-5f,estimator=grmck")
  overrides = cli.config_value(_SEARCH, "search")
  estimator = _searched_estimator(config)
  try:
    overrides = search_spaces.merge(overrides, search_spaces.parse_compact(_SEARCH_SPACE.value))
    parameters = _estimator_parameters(estimator) if search_spaces.is_import_path(estimator) else None
    space = search_spaces.resolve(estimator, overrides, parameters)
  except search_spaces.SpaceError as error:
    raise ValueError(str(error)) from None
  directory = _DIR.value or os.path.join("searches", f"{config.task}_{estimator}".replace(":", "_"))
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise ValueError(f"--dir {directory} is a file, not a directory")
  if os.path.isdir(directory) and set(os.listdir(directory)) - {"search.lock"} and not os.path.isfile(
      os.path.join(directory, "search.json")):
    raise ValueError(f"--dir {directory} exists and holds no maddpg-search search (no search.json); "
                     f"choose a new or empty directory")
  return config, space, directory, role()


def main(argv):
  try:
    config, space, directory, mode = _check_arguments(argv)
  except ValueError as error:
    return _error(error)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  cli.import_tensorflow()  # without its import-time log lines
  from maddpg_tf import experiment, search  # after the cheap checks: bad input fails fast
  cli.raise_if_interrupted()  # a Ctrl-C that an import swallowed

  # The training config must work as given and at a corner of the space before any trial starts.
  corner = {name: spec["choices"][0] if spec["kind"] == "choice" else spec["min"] for name, spec in space.items()}
  try:
    experiment.resolve_config(config)
    experiment.resolve_config(search.apply_hyperparameters(config, corner))
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
    return _error(f"--dir {directory}: cannot continue the search there ({cli.one_line(error)})")
  _announce(search, tuner, mode, tuner_id, directory, log)

  previous = signal.signal(signal.SIGTERM, cli.raise_interrupt)
  status = 0
  try:
    tuner.search()
  except search.SearchInterrupted as interrupt:
    message = str(interrupt).replace("to resume", "to continue the search")
    print(f"{PROGRAM}: interrupted: {message}",
          file=sys.stderr, flush=True)
    return 128 + interrupt.signum
  except KeyboardInterrupt as interrupt:
    signum = signal.SIGTERM if isinstance(interrupt, cli.Terminated) else signal.SIGINT
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
    return _error(f"{tuner_id}: the chief at {os.environ['KERASTUNER_ORACLE_IP']}:"
                  f"{os.environ['KERASTUNER_ORACLE_PORT']} failed: {getattr(error, 'details', lambda: error)()}",
                  status=1)
  finally:
    signal.signal(signal.SIGTERM, previous)

  if mode == "worker":
    log(f"{tuner_id}: no trials left; the chief prints the trial table and writes best_config.py")
    return status
  _report(search, tuner, directory)
  return status


def _announce(search, tuner, mode, tuner_id, directory, log):
  """What this process is about to do: serve the oracle, work for a chief, or continue a search."""
  if mode == "chief":
    log(f"chief: serving the oracle at {os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
        f" for up to {_MAX_TRIALS.value} trials; workers run the same command with KERASTUNER_TUNER_ID=tuner0, "
        f"tuner1, ...; a trial silent for {_TRIAL_TIMEOUT.value:g} s goes to another worker")
  elif mode == "worker":
    log(f"{tuner_id}: asking the chief at {os.environ['KERASTUNER_ORACLE_IP']}:"
        f"{os.environ['KERASTUNER_ORACLE_PORT']} for trials")
  elif tuner.oracle.trials:
    done = sum(t.status in search.FINISHED for t in tuner.oracle.trials.values())
    log(f"continuing the search in {directory}: {done} of {_MAX_TRIALS.value} trials finished")


def _report(search, tuner, directory):
  print(search.format_table(tuner.oracle, tuner.objective_name), flush=True)
  search.write_trials_csv(os.path.join(directory, "trials.csv"), tuner.oracle)
  source = search.config_source(config_flags.get_config_filename(flags.FLAGS["config"]),
                                config_flags.get_override_values(flags.FLAGS["config"]))
  path = os.path.join(directory, "best_config.py")
  best = search.write_best_config(path, tuner, source)
  if best is None:
    print(f"no trial completed; nothing written to {path}", flush=True)
    return
  print(f"best: trial {best.trial_id}, {tuner.objective_name} {best.score:.4g}: "
        f"{search.format_values(best.hyperparameters.values)}", flush=True)
  print(f"written: {path} (maddpg-train --config={path}), {os.path.join(directory, 'trials.csv')}; "
        f"TensorBoard: tensorboard --logdir {directory}", flush=True)


_TRIAL_FN = None  # `run(trial_fn=...)` replaces real training (tests use a known objective)


def run(trial_fn=None):
  """Console entry point. `trial_fn(config, workdir) -> [evaluation returns]` replaces training."""
  global _TRIAL_FN
  _TRIAL_FN = trial_fn

  cli.run_main(PROGRAM, main, _parse_flags)


if __name__ == "__main__":
  run()
