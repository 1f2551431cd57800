"""A user's estimator by import path in `maddpg-search` and `maddpg-reproduce --estimators=`: its search space,
the trial configs and best_config.py, the grid's plan, tables and runs, and bad paths and parameters (one
line, exit status 2, nothing written).

Run as a script (`python tests/test_user_estimator_cli.py <maddpg-search flags>`) this file is
`maddpg-search` with `fake_trial` in place of training.
"""

import csv
import hashlib
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LBF = os.path.join(REPO, "configs", "lbf.py")
MODULE_NAME = "user_cli_estimators"
PATH = f"{MODULE_NAME}:HalfST"
OPTIMUM = 0.4


def fake_trial(config, workdir):
  """A known objective of the user estimator's own parameter: returns peak at scale 0.4. Records the config
  the trial got (`seen.json` in its workdir)."""
  from maddpg_tf import config as config_lib
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "seen.json"), "w") as handle:
    json.dump({"name": config.estimator.name, "temperature": config.estimator.temperature,
               "options": config.estimator.options}, handle)
  scale = config_lib.parse_options(config.estimator.options)["scale"]
  return [1.0 - (scale - OPTIMUM) ** 2]


if __name__ == "__main__":
  sys.path.insert(0, REPO)
  from maddpg_tf.cli import search as search_command
  search_command.run(trial_fn=fake_trial)

from maddpg_tf.grid import outputs, runs  # noqa: E402  (below the script entry)
from maddpg_tf.search import spaces  # noqa: E402

MODULE = '''
import tensorflow as tf

import estimators
from estimators import base


class HalfST(estimators.DiscreteGradientEstimator):
  """Straight-through with the softmax surrogate scaled by `scale`."""

  def __init__(self, logits, temperature=None, scale=0.5, **kwargs):
    parameters = base.record_parameters(locals())
    if not 0 < scale <= 1:
      raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    self._scale = scale
    super().__init__(logits, temperature, parameters=parameters, **kwargs)

  def _surrogate(self, logits, temperature, sample):
    return self._scale * tf.math.softmax(logits / temperature)


class NotAnEstimator:
  pass
'''
# What HalfST's constructor takes (`estimators.parameter_names`), as the search gets it.
PARAMETERS = ("temperature", "start_temperature", "end_temperature", "period", "step", "schedule", "scale")
TASK = "lbf-8x8-2p-2f-coop"


@pytest.fixture
def lab(tmp_path):
  """(environment, working directory, module file): the module in a directory of its own on PYTHONPATH, and
  an empty directory to run in."""
  lib, work = tmp_path / "lib", tmp_path / "work"
  lib.mkdir()
  work.mkdir()
  module = lib / f"{MODULE_NAME}.py"
  module.write_text(MODULE)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore", PYTHONDONTWRITEBYTECODE="1",
             PYTHONPATH=os.pathsep.join([REPO, str(lib)]))
  return env, work, module


def tree(directory):
  """{relative path: sha256 of a file, or 'dir'} of everything under `directory`."""
  found = {}
  for root, dirs, names in os.walk(directory):
    for name in dirs:
      found[os.path.relpath(os.path.join(root, name), directory)] = "dir"
    for name in names:
      with open(os.path.join(root, name), "rb") as handle:
        found[os.path.relpath(os.path.join(root, name), directory)] = hashlib.sha256(handle.read()).hexdigest()
  return found


def assert_one_line_error(done, program, expected):
  assert done.returncode == 2, (done.returncode, done.stderr)
  assert "Traceback" not in done.stderr, done.stderr
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"{program}: error: "), done.stderr
  for text in expected:
    assert text in lines[0], (text, lines[0])


# ---- the search space (no TensorFlow) ---------------------------------------------------------------------

def test_a_user_estimator_is_searched_over_the_space_given_own_parameters_too():
  overrides = spaces.merge(spaces.get_config(), spaces.parse_compact("temperature=0.2:2,scale=0.1:1:log"))
  assert spaces.resolve(PATH, overrides, PARAMETERS) == {
      "temperature": {"kind": "float", "min": 0.2, "max": 2.0, "sampling": "linear"},
      "scale": {"kind": "float", "min": 0.1, "max": 1.0, "sampling": "log"}}
  # Two integers: an integer range; choices stay as given.
  assert spaces.resolve(PATH, spaces.parse_compact("scale=1:3"), PARAMETERS) == {
      "scale": {"kind": "int", "min": 1, "max": 3, "sampling": "linear"}}
  assert spaces.resolve(PATH, spaces.parse_compact("scale=0.25|0.5"), PARAMETERS) == {
      "scale": {"kind": "choice", "choices": (0.25, 0.5)}}


@pytest.mark.parametrize("shorthand, message", [
    ("", "has no default search space (it is yours); give one with --search_space="),
    ("sacle=0.1:1", "estimator 'user_cli_estimators:HalfST' has no parameter 'sacle' to search; allowed: "
                    "temperature, start_temperature, end_temperature, period, scale"),
    ("step=1:9", "has no parameter 'step' to search"),          # how it is built, not a setting
    ("num_samples=5|10", "has no parameter 'num_samples'"),     # a config field HalfST does not take
    ("scale=on", "search.scale: estimator 'user_cli_estimators:HalfST' has no default range for 'scale'"),
    ("scale=0:1:log", "search.scale: log sampling needs min > 0, got 0"),
    ("temperature=0:1", "search.temperature.min must be > 0"),  # a config field keeps its domain
])
def test_bad_spaces_of_a_user_estimator_are_one_line(shorthand, message):
  overrides = spaces.merge(spaces.get_config(), spaces.parse_compact(shorthand))
  with pytest.raises(spaces.SpaceError) as error:
    spaces.resolve(PATH, overrides, PARAMETERS)
  assert message in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_a_searched_own_parameter_goes_into_the_trial_configs_options():
  from configs import lbf
  from maddpg_tf import config as config_lib
  from maddpg_tf.search import tuner as search
  base = lbf.get_config(f"smoke,estimator={PATH}")
  base.estimator.options = "temperature=2.0,mode='hard'"
  trial = search.apply_hyperparameters(base, {"temperature": 0.5, "scale": 0.7})
  assert trial.estimator.temperature == 0.5
  # Merged with what was there; the searched field's option of the same name, which would win, is dropped.
  assert config_lib.parse_options(trial.estimator.options) == {"mode": "hard", "scale": 0.7}
  assert config_lib.estimator_params(trial) == {"temperature": 0.5, "mode": "hard", "scale": 0.7}
  assert base.estimator.options == "temperature=2.0,mode='hard'"  # a copy
  builtin = search.apply_hyperparameters(lbf.get_config("smoke,estimator=grmck"), {"num_samples": 10.0})
  assert builtin.estimator.num_samples == 10 and builtin.estimator.options == ""


# ---- maddpg-search ------------------------------------------------------------------------------------------

def _search(env, work, *args):
  return subprocess.run([sys.executable, os.path.abspath(__file__), *args], cwd=work, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # three trials in a child process; the trial configs' own parameters are checked above
def test_maddpg_search_searches_an_own_parameter_and_best_config_reproduces_the_best_trial(lab):
  env, work, _ = lab
  directory = work / "s"
  done = _search(env, work, f"--config={LBF}:smoke,estimator={PATH}", "--config.estimator.temperature=0.5",
                 "--search_space=scale=0.1:1", "--max_trials=3", "--num_initial_points=3", f"--dir={directory}",
                 "--quiet")
  assert done.returncode == 0, done.stderr
  trials = {}
  for name in sorted(os.listdir(directory)):
    if name.startswith("trial_"):
      with open(directory / name / "trial.json") as handle:
        state = json.load(handle)
      with open(directory / name / f"trial_{state['trial_id']}_s0" / "seen.json") as handle:
        seen = json.load(handle)
      scale = state["hyperparameters"]["values"]["scale"]
      assert seen == {"name": PATH, "temperature": 0.5, "options": f"scale={scale!r}"}
      trials[state["trial_id"]] = (state["score"], scale)
  assert len(trials) == 3
  best_score, best_scale = max(trials.values())
  assert best_score == pytest.approx(1.0 - (best_scale - OPTIMUM) ** 2)

  import importlib.util
  spec = importlib.util.spec_from_file_location("user_best_config", directory / "best_config.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  assert (config.estimator.name, config.estimator.temperature) == (PATH, 0.5)
  assert config.estimator.options == f"scale={best_scale!r}"


# One program start per refusal (about 9 s each, TensorFlow imported to check the estimator): the fast tier
# keeps maddpg-train's (below), the full suite runs all; the rules themselves are checked in-process above
# and in tests/estimators/test_conformance.py.
@pytest.mark.parametrize("estimator, extra, expected", [
    pytest.param(PATH, [], ["has no default search space", "--search_space=", "scale"], marks=pytest.mark.slow),
    pytest.param(PATH, ["--search_space=sacle=0.1:1"], ["has no parameter 'sacle' to search", "allowed: ", "scale"],
                 marks=pytest.mark.slow),
    pytest.param("no_such_module_xyz:Est", ["--search_space=scale=0.1:1"],
                 ["module 'no_such_module_xyz' does not import", "module.path:ClassName"], marks=pytest.mark.slow),
    pytest.param(f"{MODULE_NAME}:NotAnEstimator", ["--search_space=scale=0.1:1"],
                 ["'user_cli_estimators:NotAnEstimator'", "not a subclass of estimators.DiscreteGradientEstimator"],
                 marks=pytest.mark.slow),
], ids=["no-space", "unknown-parameter", "does-not-import", "not-an-estimator"])
def test_maddpg_search_refuses_bad_user_estimators_with_one_line_and_writes_nothing(lab, estimator, extra,
                                                                                    expected):
  env, work, _ = lab
  done = _search(env, work, f"--config={LBF}:smoke,estimator={estimator}", *extra, "--dir=s")
  assert_one_line_error(done, "maddpg-search", expected)
  assert tree(work) == {}  # no search directory, nothing else


def _train(env, work, *args):
  return subprocess.run([sys.executable, "-m", "maddpg_tf.cli.train", "--quiet", "--workdir=run",
                         f"--config={LBF}:smoke", *args], cwd=work, env=env, capture_output=True, text=True,
                        timeout=300)


@pytest.mark.slow  # a program start that imports every estimator (TensorFlow)
def test_maddpg_train_names_every_estimator(lab):
  """The import-path errors of maddpg-train list every estimator a run takes (the paper's labels and the
  critic's too)."""
  env, work, _ = lab
  done = _train(env, work, "--config.estimator.name=no_such_module_xyz:Est")
  assert_one_line_error(done, "maddpg-train", ["module 'no_such_module_xyz' does not import",
                                               "allowed: expected, grmck, gst, gumbel_softmax, reinforce, reinmax, "
                                               "reinmax-cv, reinmax-rao, rloo, st, stgs, stgs-1, stgs-t, tags, zgr, "
                                               "or module.path:ClassName"])
  assert tree(work) == {}


@pytest.mark.slow  # a program start of its own; the same check in-process: tests/estimators/test_conformance.py
def test_maddpg_train_names_a_user_estimators_own_parameters_not_tfps(lab):
  env, work, _ = lab
  done = _train(env, work, f"--config.estimator.name={PATH}", "--config.estimator.options=sacle=0.3")
  assert_one_line_error(done, "maddpg-train", ["has no parameter 'sacle'", "allowed: temperature, "
                                               "start_temperature, end_temperature, period, step, schedule, scale"])
  assert tree(work) == {}


# ---- maddpg-reproduce ---------------------------------------------------------------------------------------

def test_the_grid_plans_a_path_estimator_under_a_safe_directory(tmp_path):
  results = str(tmp_path / "results")
  specs = runs.plan(results, (TASK,), ("stgs-1", PATH), (0,), "smoke", estimator_options="scale=0.25")
  stgs, mine = specs
  assert (mine.estimator, mine.config["estimator"]["name"], mine.config["estimator"]["label"]) == (PATH, PATH, PATH)
  assert mine.config["estimator"]["options"] == "scale=0.25" and stgs.config["estimator"]["options"] == ""
  assert mine.config["estimator"]["temperature"] is None  # its own default, no preset's
  assert mine.workdir == os.path.join(results, TASK, "user_cli_estimators.HalfST", "seed0")
  assert runs._log_stem(results, mine) == os.path.join(results, "logs", TASK, "user_cli_estimators.HalfST",
                                                            "seed0")
  with pytest.raises(runs.UsageError, match="would share the run directory 'a.b.C'"):
    runs.choose_estimators(["a.b:C", "a:b.C"], ())
  assert runs.choose_estimators([" gst", PATH], ()) == ("gst", PATH)


def _fake_run(workdir, returns):
  """A run's evaluations.csv: evaluation i at step 1000 i, two episodes of mean returns[i]."""
  os.makedirs(workdir)
  with open(os.path.join(workdir, "evaluations.csv"), "w") as handle:
    handle.write("step,mean_return,episodes,return_0,return_1\n" + "".join(
        f"{1000 * i},{value},2,{value - 0.1},{value + 0.1}\n" for i, value in enumerate(returns)))


def test_tables_and_aggregates_name_a_path_estimator_by_its_path(tmp_path):
  results = str(tmp_path / "results")
  curves = {("stgs-1", 0): [0.0, 0.2, 0.4], ("stgs-1", 1): [0.0, 0.4, 0.2],
            (PATH, 0): [0.1, 0.5, 0.3], (PATH, 1): [0.1, 0.7, 0.9]}
  for (estimator, seed), returns in curves.items():
    _fake_run(runs.workdir_of(results, TASK, estimator, seed), returns)
  meta = outputs.describe("smoke", "code", (0, 1))
  outputs.write_table1(results, (TASK,), ("stgs-1", PATH), (0, 1), meta)
  with open(os.path.join(results, "table1.csv")) as handle:
    rows = {row["estimator"]: row for row in csv.DictReader(handle)}
  assert list(rows) == ["stgs-1", PATH]
  assert (rows[PATH]["seeds"], rows[PATH]["evaluations"]) == ("2", "3")
  # Average return: the mean of all six evaluations, (0.1 + 0.5 + 0.3 + 0.1 + 0.7 + 0.9) / 6 = 0.4333.
  assert float(rows[PATH]["average_return"]) == pytest.approx(2.6 / 6, abs=1e-6)
  with open(os.path.join(results, "table1.md")) as handle:
    assert f"| {PATH} |" in handle.read()

  outputs.write_aggregates(results, (TASK,), ("stgs-1", PATH), (0, 1), meta, reps=100, poi_reps=50)
  with open(os.path.join(results, "aggregate", "aggregate.csv")) as handle:
    assert {row["estimator"] for row in csv.DictReader(handle)} == {"stgs-1", PATH}


@pytest.mark.slow  # a child process of its own; maddpg-reproduce's refusal below goes through the same check
def test_a_path_estimator_is_checked_in_a_child_process_and_passes(lab, monkeypatch):
  env, work, _ = lab
  monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
  runs.check_estimator_paths(("stgs-1", PATH), "scale=0.5")  # no UsageError


def _reproduce(env, work, *args):
  return subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", "--budget=smoke", "--results=r", *args],
                        cwd=work, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, expected", [
    pytest.param(["--estimators=stgs-1,no_such_module_xyz:Est"],
                 ["--estimators: ", "module 'no_such_module_xyz' does not import"], marks=pytest.mark.slow),
    pytest.param([f"--estimators={MODULE_NAME}:NotAnEstimator"],
                 ["'user_cli_estimators:NotAnEstimator'", "not a subclass of estimators.DiscreteGradientEstimator"],
                 marks=pytest.mark.slow),
    pytest.param([f"--estimators={PATH}", "--estimator_options=sacle=0.3"],
                 ["estimator 'user_cli_estimators:HalfST' has no parameter 'sacle'", "allowed: ", "scale"],
                 marks=pytest.mark.slow),
], ids=["does-not-import", "not-an-estimator", "unknown-parameter"])
def test_maddpg_reproduce_refuses_bad_user_estimators_with_one_line_and_writes_nothing(lab, args, expected):
  env, work, _ = lab
  done = _reproduce(env, work, *args)
  assert_one_line_error(done, "maddpg-reproduce", expected)
  assert tree(work) == {}  # no --results directory, nothing else


@pytest.mark.slow
def test_a_grid_trains_a_path_estimator_and_records_its_module_hash(lab, monkeypatch):
  env, work, module = lab
  monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])  # the local Ray's workers import it from there
  results = str(work / "results")
  [spec] = runs.plan(results, (TASK,), (PATH,), (0,), "smoke", estimator_options="scale=0.25",
                          overrides={"total_steps": 400, "loop.eval_every_steps": 200})
  report = runs.run_grid([spec], results, num_cpus=1, progress=False, quiet=True, absolute=False)
  assert report.finished == [spec.name], (report.failed, report.finished)
  with open(os.path.join(spec.workdir, "provenance.json")) as handle:
    [source] = json.load(handle)["user_code"]
  assert source["path"] == PATH
  assert source["sha256"] == hashlib.sha256(module.read_bytes()).hexdigest()
  with open(os.path.join(spec.workdir, "config.json")) as handle:
    assert json.load(handle)["estimator"]["options"] == "scale=0.25"


@pytest.mark.slow
def test_maddpg_train_trains_a_path_estimator_without_autograph_warnings(lab):
  """The estimator's module is imported while the update is traced: AutoGraph must not try to convert the
  import machinery (it printed a 3-line warning per run)."""
  env, work, _ = lab
  done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.train", "--quiet", "--workdir=run",
                         f"--config={LBF}:smoke", f"--config.estimator.name={PATH}", "--config.total_steps=400"],
                        cwd=work, env=dict(env, TF_CPP_MIN_LOG_LEVEL="0"), capture_output=True, text=True,
                        timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "AutoGraph" not in done.stderr, done.stderr[-3000:]
  assert os.path.isfile(os.path.join(work, "run", "evaluations.csv"))
