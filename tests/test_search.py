"""`maddpg-search`: search spaces, a search on a known objective, a real smoke search, bad input, a chief
with two workers that survives being killed, and resume.

Run as a script (`python tests/test_search.py <maddpg-search flags>`) this file is `maddpg-search` with
`fake_trial` in place of training: the subprocess tests use it.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LBF = os.path.join(REPO, "configs", "lbf.py")
OPTIMUM = 0.3


def fake_trial(config, workdir):
  """A known objective: evaluation returns peak at temperature 0.3. FAKE_TRIAL_LOG (a file) records each
  call as '<run> <tuner id>'. FAKE_TRIAL_GATE (a directory) holds each call until the test lets it end: the
  call writes `<run>.started` there, waits for `<run>.go` or `all.go`, and writes `<run>.returned`."""
  run = os.path.basename(workdir)
  log = os.environ.get("FAKE_TRIAL_LOG")
  if log:
    with open(log, "a") as handle:
      handle.write(f"{run} {os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')}\n")
  gate = os.environ.get("FAKE_TRIAL_GATE")
  if gate:
    open(os.path.join(gate, f"{run}.started"), "w").close()
    while not any(os.path.exists(os.path.join(gate, f"{name}.go")) for name in (run, "all")):
      time.sleep(0.02)
    open(os.path.join(gate, f"{run}.returned"), "w").close()
  peak = 1.0 - (config.estimator.temperature - OPTIMUM) ** 2
  return [peak - 0.2, peak - 0.1, peak]


if __name__ == "__main__":
  sys.path.insert(0, REPO)
  from maddpg_tf.cli import search as search_command
  search_command.run(trial_fn=fake_trial)

import numpy as np  # noqa: E402  (below the script entry, which needs none of this)

from configs import lbf  # noqa: E402
from maddpg_tf.search import spaces  # noqa: E402

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # keras-tuner's threading calls
              pytest.mark.filterwarnings("ignore:The optimal value found")]  # its Gaussian process


def maddpg_search(*args, env=None, timeout=300):
  return subprocess.run([sys.executable, "-m", "maddpg_tf.cli.search", *args], cwd=REPO, env=env or ENV,
                        capture_output=True, text=True, timeout=timeout)


def error_lines(result):
  return [line for line in result.stderr.splitlines() if line.startswith("maddpg-search:")]


def read_trials(directory):
  """{trial id: keras-tuner's trial.json} for every trial in a search directory."""
  trials = {}
  for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
    path = os.path.join(directory, name, "trial.json")
    if name.startswith("trial_") and os.path.isfile(path):
      with open(path) as handle:
        state = json.load(handle)
      trials[state["trial_id"]] = state
  return trials


def load_config_file(path):
  import importlib.util
  spec = importlib.util.spec_from_file_location(f"loaded_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


# ---- search spaces (no TensorFlow) --------------------------------------------------------------------

def test_spaces_are_the_papers_ranges():
  assert spaces.resolve("stgs-t") == {"temperature": {"kind": "float", "min": 0.01, "max": 0.99,
                                                      "sampling": "linear"}}
  tags = spaces.resolve("tags")
  assert (tags["start_temperature"]["min"], tags["start_temperature"]["max"]) == (1.0, 5.0)
  assert (tags["end_temperature"]["min"], tags["end_temperature"]["max"]) == (0.1, 0.5)
  grmck = spaces.resolve("grmck")
  assert (grmck["temperature"]["min"], grmck["temperature"]["max"]) == (0.01, 1.0)
  assert grmck["num_samples"] == {"kind": "choice", "choices": (5, 10, 50)}
  assert list(spaces.resolve("gst")) == ["temperature"]  # the gap is optional, off by default
  assert list(spaces.resolve("gst", {"gap": {"tune": True}})) == ["temperature", "gap"]
  for label in ("st", "gumbel_softmax", "reinmax", "stgs", "reinmax-rao"):
    assert list(spaces.resolve(label)) == ["temperature"]
  cv = spaces.resolve("reinmax-cv")
  assert list(cv) == ["temperature", "cv_weight"] and (cv["cv_weight"]["min"], cv["cv_weight"]["max"]) == (0.5, 2.0)
  assert spaces.resolve("reinmax-rao", {"num_samples": {"tune": True}})["num_samples"]["choices"] == (10, 50, 100)
  with pytest.raises(spaces.SpaceError, match=r"'reinmax-rao' has no hyperparameter 'cv_weight'"):
    spaces.resolve("reinmax-rao", {"cv_weight": {"tune": True}})


def test_space_overrides_from_the_config_and_the_shorthand():
  overrides = spaces.get_config()
  overrides.temperature.max = 0.9
  overrides.num_samples.choices = (5, 10)
  space = spaces.resolve("grmck", overrides)
  assert space["temperature"]["max"] == 0.9 and space["temperature"]["min"] == 0.01
  assert space["num_samples"]["choices"] == (5, 10)
  merged = spaces.merge(overrides, spaces.parse_compact("temperature=0.2:0.8:log,num_samples=off"))
  space = spaces.resolve("grmck", merged)
  assert space == {"temperature": {"kind": "float", "min": 0.2, "max": 0.8, "sampling": "log"}}
  assert spaces.resolve("grmck", spaces.parse_compact("num_samples=5:20"))["num_samples"] == {
      "kind": "int", "min": 5, "max": 20, "sampling": "linear"}


@pytest.mark.parametrize("label,overrides,message", [
    ("grmck", {"temperature": {"min": 0.5, "max": 0.5}}, "empty range [0.5, 0.5]"),
    ("grmck", {"temperature": {"min": 0.9, "max": 0.2}}, "inverted range, min 0.9 > max 0.2"),
    ("grmck", {"num_samples": {"choices": ()}}, "search.num_samples.choices is empty"),
    ("grmck", {"temperature": {"min": 0.0}}, "search.temperature.min must be > 0"),
    ("grmck", {"num_samples": {"choices": (2.5,)}}, "must be an integer >= 1"),
    ("gst", {"num_samples": {"choices": (5,)}}, "estimator 'gst' has no hyperparameter 'num_samples'"),
    ("grmck", {"tau": {"min": 0.1}}, "unknown hyperparameter 'tau'"),
    ("gumbel", {}, "unknown estimator 'gumbel'"),
    ("stgs-1", {}, "nothing to search"),
    ("stgs-t", {"temperature": {"tune": False}}, "nothing to search"),
])
def test_bad_spaces_raise_one_line(label, overrides, message):
  with pytest.raises(spaces.SpaceError, match=None) as error:
    spaces.resolve(label, overrides)
  assert message in str(error.value) and "\n" not in str(error.value)


def test_objectives_aggregate_seeds_as_table_1():
  from maddpg_tf.search import tuner as search
  metrics = search.objectives([[0.0, 1.0, 2.0], [2.0, 3.0, 1.0]])
  assert metrics["average_return"] == pytest.approx(1.5)        # all 6 values
  assert metrics["max_return"] == pytest.approx(2.0)            # best seed-mean: (1 + 3) / 2
  assert metrics["final_return"] == pytest.approx(1.5)


# ---- searches in this process, on the known objective ---------------------------------------------------

def test_search_on_a_known_objective_finds_the_optimum_and_writes_best_config(tmp_path):
  from maddpg_tf.search import tuner as search
  directory = str(tmp_path / "search")
  config = lbf.get_config("smoke,estimator=stgs-t")
  tuner = search.EstimatorSearch(config, spaces.resolve("stgs-t"), directory, max_trials=8,
                                 num_initial_points=3, trial_fn=fake_trial, log=None)
  tuner.search()
  trials = tuner.oracle.trials.values()
  assert len(trials) == 8 and all(t.status == "COMPLETED" for t in trials)
  distance = {t.trial_id: abs(t.hyperparameters.values["temperature"] - OPTIMUM) for t in trials}
  best = search.best_trial(tuner.oracle)
  worst = min(trials, key=lambda t: t.score)
  assert best.score > worst.score
  assert best.trial_id == min(distance, key=distance.get)  # maximised, not minimised
  assert distance[best.trial_id] < 0.05                      # the Gaussian process homed in
  assert best.score == pytest.approx(1.0 - 0.1 - distance[best.trial_id] ** 2)  # the average objective

  path = os.path.join(directory, "best_config.py")
  source = search.config_source(f"{LBF}:smoke,estimator=stgs-t", {"total_steps": 1500})
  assert search.write_best_config(path, tuner, source).trial_id == best.trial_id
  loaded = load_config_file(path)
  assert loaded.estimator.temperature == best.hyperparameters.values["temperature"]
  assert loaded.total_steps == 1500 and loaded.estimator.label == "stgs-t"
  table = search.format_table(tuner.oracle, tuner.objective_name).splitlines()
  assert table[0].split()[:3] == ["trial", "status", "average_return"] and len(table) == 9


def test_max_objective_and_seeds_per_trial(tmp_path):
  from maddpg_tf.search import tuner as search
  calls = []

  def trial_fn(config, workdir):
    calls.append((config.seed, os.path.basename(workdir)))
    return [0.0, 1.0 + config.seed, 0.5]

  config = lbf.get_config("smoke,estimator=stgs-t")
  tuner = search.EstimatorSearch(config, spaces.resolve("stgs-t"), str(tmp_path / "s"), objective="max",
                                 seeds_per_trial=2, max_trials=1, trial_fn=trial_fn, log=None)
  tuner.search()
  assert calls == [(0, "trial_0_s0"), (1, "trial_0_s1")]
  assert tuner.oracle.trials["0"].score == pytest.approx(1.5)  # max of the seed-mean curve [0, 1.5, 0.5]


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path):
  import keras_tuner
  from maddpg_tf.search import tuner as search

  def fails_first(config, workdir):
    if os.path.basename(workdir) == "trial_0_s0":
      raise keras_tuner.errors.FailedTrialError("training stopped in updates 5-8: the critic loss is NaN")
    return fake_trial(config, workdir)

  tuner = search.EstimatorSearch(lbf.get_config("smoke,estimator=stgs-t"), spaces.resolve("stgs-t"),
                                 str(tmp_path / "s"), max_trials=3, trial_fn=fails_first, log=None)
  tuner.search()
  assert [tuner.oracle.trials[k].status for k in "012"] == ["FAILED", "COMPLETED", "COMPLETED"]
  assert search.best_trial(tuner.oracle).trial_id in ("1", "2")
  row = search.format_table(tuner.oracle, tuner.objective_name).splitlines()[1]
  assert row.split()[:2] == ["0", "FAILED"] and row.endswith("(training stopped in updates 5-8: the critic loss is NaN)")


def test_training_errors_become_failed_trials_and_signals_stop_the_search(tmp_path, monkeypatch):
  import keras_tuner
  from maddpg_tf.search import tuner as search
  from maddpg_tf.run import experiment

  class Stopped:
    def __init__(self, config, workdir, progress=True):
      self.seed = config.seed

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      self.closed = True

    def run(self):
      if self.seed == 0:
        raise experiment.RunError("training stopped: the actor loss is NaN")
      raise experiment.Interrupted(signal.SIGTERM, "SIGTERM at env step 8: checkpoint written")

  monkeypatch.setattr(experiment, "Experiment", Stopped)
  config = lbf.get_config("smoke")
  with pytest.raises(keras_tuner.errors.FailedTrialError, match="the actor loss is NaN"):
    search.train_and_evaluate(config, str(tmp_path / "a"), progress=False)
  config.seed = 1
  with pytest.raises(search.SearchInterrupted) as interrupted:
    search.train_and_evaluate(config, str(tmp_path / "b"), progress=False)
  assert isinstance(interrupted.value, keras_tuner.errors.FatalError)  # keras-tuner lets it through
  assert interrupted.value.signum == signal.SIGTERM


class _Killed(BaseException):
  """Stands for a kill: keras-tuner catches Exception, not this."""


def test_interrupted_search_continues_without_losing_or_rerunning_finished_trials(tmp_path):
  from maddpg_tf.search import tuner as search
  directory = str(tmp_path / "search")
  config = lbf.get_config("smoke,estimator=stgs-t")
  calls = []

  def dies_in_the_third_trial(config, workdir):
    calls.append(os.path.basename(workdir))
    if len(calls) == 3:
      raise _Killed()
    return fake_trial(config, workdir)

  def make(trial_fn):
    return search.EstimatorSearch(config, spaces.resolve("stgs-t"), directory, max_trials=5,
                                  num_initial_points=2, trial_fn=trial_fn, log=None)

  with pytest.raises(_Killed):
    make(dies_in_the_third_trial).search()
  finished = {k: v for k, v in read_trials(directory).items() if v["status"] == "COMPLETED"}
  assert sorted(finished) == ["0", "1"] and read_trials(directory)["2"]["status"] == "RUNNING"

  calls.clear()
  resumed = make(lambda c, w: calls.append(os.path.basename(w)) or fake_trial(c, w))
  resumed.search()
  assert calls == ["trial_2_s0", "trial_3_s0", "trial_4_s0"]  # the interrupted trial first, no rerun
  after = read_trials(directory)
  assert sorted(after) == ["0", "1", "2", "3", "4"] and all(t["status"] == "COMPLETED" for t in after.values())
  for trial_id, state in finished.items():
    assert after[trial_id]["score"] == state["score"]
    assert after[trial_id]["hyperparameters"]["values"] == state["hyperparameters"]["values"]


def test_restarted_oracle_gives_running_trials_back_to_their_tuners(tmp_path):
  import keras_tuner
  from keras_tuner.src.engine import trial as trial_module
  from maddpg_tf.search import tuner as search

  def oracle():
    made = search.ResumableBayesianOracle(
        objective=keras_tuner.Objective("average_return", "max"), max_trials=5, num_initial_points=2, seed=1,
        hyperparameters=search.declare_hyperparameters(spaces.resolve("stgs-t")), tune_new_entries=False,
        allow_new_entries=False)
    made._set_project_dir(str(tmp_path), "search")
    return made

  def finish(chief, trial_id, value):  # a worker's report, as it arrives over gRPC
    chief.update_trial(trial_id, {"average_return": value})
    ended = trial_module.Trial.from_proto(chief.trials[trial_id].to_proto())
    ended.status = "COMPLETED"
    chief.end_trial(ended)

  first = oracle()
  a, b = first.create_trial("tuner0"), first.create_trial("tuner1")
  finish(first, a.trial_id, 0.5)
  finish(first, b.trial_id, 0.6)
  c, d = first.create_trial("tuner0"), first.create_trial("tuner1")  # the chief is killed now

  second = oracle()
  second.reload()
  assert second.create_trial("tuner1").trial_id == d.trial_id  # a tuner asking again gets its own back
  assert len(second._vectorize_trials()[1]) == 3  # a, b and d: not c, which nobody runs for this chief
  e = second.create_trial("tuner2")  # new trials first: tuner0 may still be finishing c
  assert e.status == "RUNNING" and e.trial_id not in (a.trial_id, b.trial_id, c.trial_id, d.trial_id)
  assert second.create_trial("tuner3").trial_id == c.trial_id  # no new trials left: c is taken over
  finish(second, c.trial_id, 0.7)  # tuner0 outlived the restart and reports c ...
  finish(second, c.trial_id, 0.7)  # ... and so does tuner3
  assert second.end_order.count(c.trial_id) == 1 and second.trials[c.trial_id].score == 0.7
  assert second.create_trial("tuner0").status == "STOPPED"


# ---- the command line -----------------------------------------------------------------------------------

SMOKE = f"--config={LBF}:smoke,estimator=grmck"


@pytest.mark.parametrize("args,message", [
    ([SMOKE, "--search.temperature.min=0.5", "--search.temperature.max=0.5"], "empty range"),
    ([SMOKE, "--search.temperature.min=0.9", "--search.temperature.max=0.5"], "inverted range"),
    ([f"--config={LBF}:smoke,estimator=gumbel"], "unknown estimator 'gumbel'"),
    ([SMOKE, "--search_space=gap=0.5:2"], "estimator 'grmck' has no hyperparameter 'gap'"),
    ([SMOKE, "--search.tau.min=0.1"], "no such config key"),
    ([SMOKE, "--search.temperature.mx=0.1"], "no such config key 'mx'"),
    ([SMOKE, "--max_trials=0"], "--max_trials must be >= 1, got 0"),
    ([SMOKE, "--objective=median"], "value should be one of <average|max>"),
    (["--max_trials=2"], "--config is required"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, message):
  directory = str(tmp_path / "never")
  result = maddpg_search(f"--dir={directory}", *args)
  assert result.returncode == 2, result.stderr
  assert len(error_lines(result)) == 1 and message in error_lines(result)[0], result.stderr
  assert "Traceback" not in result.stderr
  assert not os.path.exists(directory)


def test_dir_that_is_a_file_or_another_search_is_refused(tmp_path):
  path = tmp_path / "file"
  path.write_text("keep me")
  result = maddpg_search(SMOKE, f"--dir={path}")
  assert result.returncode == 2 and "is a file, not a directory" in error_lines(result)[0]
  assert path.read_text() == "keep me"
  other = tmp_path / "other"
  other.mkdir()
  (other / "notes.txt").write_text("mine")
  result = maddpg_search(SMOKE, f"--dir={other}")
  assert result.returncode == 2 and "holds no maddpg-search search" in error_lines(result)[0]


@pytest.mark.slow
def test_real_two_trial_smoke_search(tmp_path):
  directory = str(tmp_path / "grmck")
  # jit_compile=False: the smoke budget's runs are shorter than XLA's compilation.
  result = maddpg_search(SMOKE, "--config.jit_compile=False", "--max_trials=2", f"--dir={directory}",
                         "--quiet", "--search_space=num_samples=5|10")
  assert result.returncode == 0, result.stderr[-3000:]
  trials = read_trials(directory)
  assert sorted(trials) == ["0", "1"] and all(t["status"] == "COMPLETED" for t in trials.values())
  for trial_id, state in trials.items():
    values = state["hyperparameters"]["values"]
    assert set(values) == {"temperature", "num_samples"} and values["num_samples"] in (5, 10)
    run = os.path.join(directory, f"trial_{trial_id}", f"trial_{trial_id}_s0")
    with open(os.path.join(run, "config.json")) as handle:
      estimator = json.load(handle)["estimator"]
    assert (estimator["temperature"], estimator["num_samples"]) == (values["temperature"], values["num_samples"])
    with open(os.path.join(run, "evaluations.csv")) as handle:
      returns = [float(line.split(",")[1]) for line in handle.read().splitlines()[1:]]
    assert len(returns) == 3  # steps 0 and 1000 of the smoke budget, and the final policy at 2000
    assert state["metrics"]["metrics"]["average_return"]["observations"][0]["value"][0] == pytest.approx(
        np.mean(returns), abs=1e-6)
    events = b"".join(open(os.path.join(run, "tb", name), "rb").read() for name in os.listdir(os.path.join(run, "tb")))
    assert b"_hparams_/session_start_info" in events and f"trial_{trial_id}_s0".encode() in events
    assert b"search/average_return" in events and b"eval/mean_return" in events

  table = [line.split() for line in result.stdout.splitlines()]
  header = table.index(["trial", "status", "average_return", "max_return", "final_return", "temperature",
                        "num_samples"])
  assert [row[:2] for row in table[header + 1:header + 3]] == [["0", "COMPLETED"], ["1", "COMPLETED"]]
  best = load_config_file(os.path.join(directory, "best_config.py"))
  best_id = max(trials, key=lambda k: (trials[k]["score"], -int(k)))
  assert best.estimator.temperature == trials[best_id]["hyperparameters"]["values"]["temperature"]
  assert best.estimator.num_samples == trials[best_id]["hyperparameters"]["values"]["num_samples"]
  assert best.jit_compile is False and best.total_steps == 2000 and best.estimator.name == "grmck"
  assert os.path.isfile(os.path.join(directory, "trials.csv"))
  board = os.path.join(directory, "tb_search")  # the hparams view's searched settings and metrics
  events = b"".join(open(os.path.join(board, name), "rb").read() for name in os.listdir(board))
  assert b"_hparams_/experiment" in events and b"estimator.temperature" in events
  assert b"search/average_return" in events


def _free_port():
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _completed(directory):
  return {k: v for k, v in read_trials(directory).items() if v["status"] == "COMPLETED"}


class _Search:
  """A chief and workers of one search as subprocesses of this file (fake trials held at FAKE_TRIAL_GATE),
  each writing `<tmp_path>/<tag>.out`. Every wait has a bound only so that a hang fails with the outputs;
  `wait_for` fails at once if a process the test did not kill has exited."""

  def __init__(self, tmp_path, *flags):
    self.tmp_path, self.directory = tmp_path, str(tmp_path / "search")
    self.gate, self.log = tmp_path / "gate", str(tmp_path / "calls.log")
    self.gate.mkdir()
    self.env = dict(ENV, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(_free_port()),
                    FAKE_TRIAL_GATE=str(self.gate), FAKE_TRIAL_LOG=self.log)
    self.command = [sys.executable, os.path.abspath(__file__), f"--config={LBF}:smoke,estimator=stgs-t",
                    f"--dir={self.directory}", *flags]
    self.processes, self.killed = {}, set()

  def start(self, tuner_id, tag=None):
    out = open(self.tmp_path / f"{tag or tuner_id}.out", "w")
    self.processes[tag or tuner_id] = subprocess.Popen(
        self.command, cwd=REPO, env=dict(self.env, KERASTUNER_TUNER_ID=tuner_id), stdout=out,
        stderr=subprocess.STDOUT)
    return self.processes[tag or tuner_id]

  def output(self, tag):
    return (self.tmp_path / f"{tag}.out").read_text()

  def outputs(self):
    return "\n".join(f"== {tag}\n{self.output(tag)[-1500:]}" for tag in self.processes)

  def wait_for(self, condition, what, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
      exited = [tag for tag, process in self.processes.items()
                if tag not in self.killed and process.poll() is not None]
      assert not exited, f"{', '.join(exited)} exited before: {what}\n{self.outputs()}"
      assert time.monotonic() < deadline, f"never: {what}\n{self.outputs()}"
      time.sleep(0.05)

  def wait(self, tag, timeout=300):
    try:
      return self.processes[tag].wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      pytest.fail(f"{tag} did not exit in {timeout} s\n{self.outputs()}")

  def kill(self, tag):
    self.processes[tag].send_signal(signal.SIGKILL)
    self.processes[tag].wait()
    self.killed.add(tag)

  def marked(self, mark):
    return sorted(path.name[:-len(mark) - 1] for path in self.gate.glob(f"*.{mark}"))

  def release(self, run="all"):
    (self.gate / f"{run}.go").touch()

  def calls(self):
    if not os.path.isfile(self.log):
      return []
    with open(self.log) as handle:
      return [line.split() for line in handle.read().splitlines() if len(line.split()) == 2]

  def close(self):
    for process in self.processes.values():
      if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_chief_and_two_workers_complete_the_search_and_survive_a_chief_restart(tmp_path):
  """The chief is killed while both workers are in a trial; they finish those trials while no chief is up,
  then report them to the restarted chief, which completes the search."""
  search = _Search(tmp_path, "--max_trials=6", "--num_initial_points=3")
  try:
    search.start("chief")
    for i in range(2):
      search.start(f"tuner{i}")
    search.wait_for(lambda: len(search.marked("started")) == 2, "both workers in a trial")
    for run in search.marked("started"):
      search.release(run)
    search.wait_for(lambda: len(search.marked("started")) == 4, "both workers in their second trial")
    before = _completed(search.directory)
    assert sorted(before) == ["0", "1"]
    search.kill("chief")
    search.release()  # trials 2 and 3 end with no chief to report them to
    search.wait_for(lambda: len(search.marked("returned")) == 4, "trials 2 and 3 ended")
    search.start("chief", "chief-restarted")
    for i in range(2):
      assert search.wait(f"tuner{i}") == 0, search.outputs()
    assert search.wait("chief-restarted") == 0, search.outputs()  # it polls every 20 s before it exits
  finally:
    search.close()

  after = read_trials(search.directory)
  assert sorted(after) == [str(i) for i in range(6)]
  assert all(state["status"] == "COMPLETED" for state in after.values())
  for trial_id, state in before.items():  # finished before the kill: kept as they were
    assert after[trial_id]["score"] == state["score"]
    assert after[trial_id]["hyperparameters"] == state["hyperparameters"]
  calls = search.calls()
  assert sorted(run for run, _ in calls) == [f"trial_{i}_s0" for i in range(6)]  # each trial trained once
  assert {tuner for _, tuner in calls[:4]} == {"tuner0", "tuner1"}             # both workers worked
  output = search.output("chief-restarted")
  assert "best: trial" in output and os.path.isfile(os.path.join(search.directory, "best_config.py"))
  assert all("no trials left" in search.output(f"tuner{i}") for i in range(2))


# ---- lost workers ---------------------------------------------------------------------------------------

def _lossy_oracle(directory, clock, max_trials=3):
  import keras_tuner
  from maddpg_tf.search import tuner as search
  made = search.ResumableBayesianOracle(
      objective=keras_tuner.Objective("average_return", "max"), max_trials=max_trials, num_initial_points=2,
      seed=1, hyperparameters=search.declare_hyperparameters(spaces.resolve("stgs-t")), tune_new_entries=False,
      allow_new_entries=False, trial_timeout=10.0, clock=clock)
  made._set_project_dir(directory, "search")
  return made


def _finish(chief, trial_id, value):
  """A worker's report of a completed trial, as it arrives over gRPC."""
  from keras_tuner.src.engine import trial as trial_module
  chief.update_trial(trial_id, {"average_return": value})
  ended = trial_module.Trial.from_proto(chief.trials[trial_id].to_proto())
  ended.status = "COMPLETED"
  chief.end_trial(ended)


def test_a_lost_workers_trial_goes_to_another_worker_then_fails_after_three_losses(tmp_path):
  from keras_tuner.src.distribute import oracle_chief
  from maddpg_tf.search import tuner as search
  now = [0.0]
  chief = _lossy_oracle(str(tmp_path), lambda: now[0])
  a, b = chief.create_trial("tuner0"), chief.create_trial("tuner1")
  now[0] = 6.0
  chief.update_trial(a.trial_id, {})  # tuner0's heartbeat; tuner1 says nothing
  now[0] = 10.5
  assert chief.reap_lost_trials() == [b.trial_id]  # silent for 10.5 s > 10 s; tuner0 for 4.5 s
  assert "tuner1" not in chief.ongoing_trials and "tuner1" not in chief.tuner_ids
  _finish(chief, a.trial_id, 0.5)
  assert chief.create_trial("tuner0").trial_id == b.trial_id  # resumed before any new trial
  c = chief.create_trial("tuner2")
  assert c.status == "RUNNING" and c.trial_id not in (a.trial_id, b.trial_id)
  _finish(chief, b.trial_id, 0.6)
  assert chief.create_trial("tuner0").status == "IDLE"  # none new left, but tuner2's trial may be lost

  for loss, taker in ((1, "tuner0"), (2, "tuner3")):  # c's worker lost twice: each time another takes it
    now[0] += 10.0
    assert chief.create_trial(taker).trial_id == c.trial_id, loss
    assert chief._losses[c.trial_id] == loss
  now[0] += 10.0
  assert chief.reap_lost_trials() == [c.trial_id]  # the third loss ends it
  assert chief.trials[c.trial_id].status == "FAILED"
  assert "tuner3 lost: no heartbeat for 10 s (trial_timeout 10 s)" in chief.trials[c.trial_id].message
  assert "lost 3 times" in chief.trials[c.trial_id].message
  assert chief.create_trial("tuner0").status == "STOPPED"
  assert oracle_chief.exit_chief(chief)  # nobody left to wait for: the chief can end
  assert [row["status"] for row in search.trial_rows(chief)] == ["COMPLETED", "COMPLETED", "FAILED"]


def test_without_a_timeout_idle_workers_leave_as_before(tmp_path):
  import keras_tuner
  from maddpg_tf.search import tuner as search
  chief = search.ResumableBayesianOracle(
      objective=keras_tuner.Objective("average_return", "max"), max_trials=1, seed=1,
      hyperparameters=search.declare_hyperparameters(spaces.resolve("stgs-t")), tune_new_entries=False,
      allow_new_entries=False)
  chief._set_project_dir(str(tmp_path), "search")
  chief.create_trial("tuner0")
  assert chief.create_trial("tuner1").status == "STOPPED" and chief.reap_lost_trials() == []
  with pytest.raises(search.SearchError, match="trial_timeout must be a number of seconds > 0"):
    search.ResumableBayesianOracle(objective=keras_tuner.Objective("average_return", "max"), trial_timeout=0)


def test_a_restarted_chief_takes_a_running_trial_back_at_its_heartbeat(tmp_path):
  now = [0.0]
  first = _lossy_oracle(str(tmp_path), lambda: now[0])
  a = first.create_trial("tuner0")  # the chief is killed now
  second = _lossy_oracle(str(tmp_path), lambda: now[0])
  second.reload()
  assert a.trial_id in second._retry_queue and "tuner0" not in second.ongoing_trials
  second.update_trial(a.trial_id, {})  # tuner0, still training, sends its heartbeat
  assert second.ongoing_trials["tuner0"].trial_id == a.trial_id and a.trial_id not in second._retry_queue
  assert second.create_trial("tuner1").trial_id != a.trial_id  # not given to a second worker


@pytest.mark.slow
def test_chief_and_two_workers_finish_the_search_when_one_worker_dies_mid_trial(tmp_path):
  """Fails where a chief waits forever for a dead worker's trial. tuner1 is killed inside its trial; the
  chief hears nothing from it for --trial_timeout and gives the trial to tuner0."""
  search = _Search(tmp_path, "--max_trials=4", "--num_initial_points=2", "--trial_timeout=3")
  try:
    search.start("chief")
    search.start("tuner0")
    search.start("tuner1")
    search.wait_for(lambda: any(tuner == "tuner1" for _, tuner in search.calls()), "tuner1 in a trial")
    search.kill("tuner1")
    lost_run = next(run for run, tuner in search.calls() if tuner == "tuner1")
    lost_trial = lost_run.split("_")[1]
    assert read_trials(search.directory)[lost_trial]["status"] == "RUNNING"  # killed mid-trial
    search.release()
    assert search.wait("tuner0") == 0, search.outputs()
    assert search.wait("chief") == 0, search.outputs()  # it polls every 20 s
  finally:
    search.close()

  after = read_trials(search.directory)
  assert sorted(after) == [str(i) for i in range(4)]
  assert all(state["status"] == "COMPLETED" for state in after.values()), after
  made = search.calls()
  assert sorted(run for run, _ in made) == sorted([f"trial_{i}_s0" for i in range(4)] + [lost_run])
  assert [tuner for run, tuner in made if run == lost_run] == ["tuner1", "tuner0"]  # resumed by the survivor
  output = search.output("chief")
  assert f"trial {lost_trial}: tuner1 lost: no heartbeat for" in output and "another worker resumes it" in output
  assert "best: trial" in output


def test_the_search_command_refuses_bad_flags_with_one_line():
  """maddpg-search (maddpg_tf/cli/search.py) checks its flags before it loads TensorFlow or writes anything."""
  import subprocess  # pylint: disable=g-import-not-at-top
  done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.search", f"--config={LBF}:smoke", "--max_trials=0",
                         "--dir=never"], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert done.returncode == 2 and done.stderr.splitlines() == [
      "maddpg-search: error: --max_trials must be >= 1, got 0"], done.stderr
