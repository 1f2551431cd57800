"""`maddpg-reproduce`: a smoke grid through local Ray (one run resumed, one failing), outputs, bad input.

The grid: lbf-8x8-2p-2f-coop x {STGS-1, GST} x seeds {0, 1} at the smoke budget (2,000 env steps, no XLA),
two runs at a time (num_cpus=2). Before it, GST seed 1 is trained to 1,000 steps only, so the grid finds a
run directory with a complete checkpoint short of its total and must resume it (not start over). One
extra run has a config that cannot run (batch larger than the buffer): it must be reported by name while
the others finish. About 50 s on an idle 2-core machine (2-2.5 min when it is shared with other jobs).
"""

import csv
import json
import os
import subprocess
import sys

import matplotlib.image
import ml_collections
import pytest

from maddpg_tf.grid import budgets, outputs, runs
from maddpg_tf.run import loggers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "lbf-8x8-2p-2f-coop"
ESTIMATORS = ("stgs-1", "gst")
SEEDS = (0, 1)


def _cli(*args, timeout=120):
  return subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", *args], cwd=REPO, capture_output=True,
                        text=True, timeout=timeout, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
  results = str(tmp_path_factory.mktemp("results"))
  specs = runs.plan(results, (TASK,), ESTIMATORS, SEEDS, "smoke")
  resumed = next(s for s in specs if s.estimator == "gst" and s.seed == 1)
  # A run stopped half-way: trained to 1,000 of its 2,000 steps (its last checkpoint is at 1,000).
  short = dict(resumed.config, total_steps=1_000)
  first = runs.train_one(short, resumed.workdir)
  assert first["status"] == "finished", first
  assert runs.run_state(resumed) == ("partial", 1_000)

  broken_config = runs.make_config(TASK, "tags", 0, "smoke").to_dict()
  broken_config["replay"]["batch_size"] = broken_config["replay"]["capacity"] + 1
  broken = runs.RunSpec(TASK, "tags", 0, runs.workdir_of(results, TASK, "tags", 0), broken_config)

  report = runs.run_grid(specs + [broken], results, num_cpus=2, progress=True, quiet=True)
  return dict(results=results, specs=specs, resumed=resumed, broken=broken, report=report)


@pytest.mark.slow
def test_grid_trains_every_run_and_reports_the_failure_by_name(grid):
  report = grid["report"]
  names = sorted(spec.name for spec in grid["specs"])
  assert sorted(report.finished) == names
  assert list(report.failed) == [grid["broken"].name]
  assert "batch_size" in report.failed[grid["broken"].name]
  assert "\n" not in report.failed[grid["broken"].name]
  for spec in grid["specs"]:
    assert runs.run_state(spec) == ("finished", 2_000)
    with open(os.path.join(spec.workdir, "summary.json")) as handle:
      summary = json.load(handle)
    assert summary["env_steps"] == 2_000 and summary["fidelity"] == "code"
  with open(os.path.join(grid["results"], "grid.json")) as handle:
    manifest = json.load(handle)
  assert manifest["runs"][grid["broken"].name]["status"] == "failed"
  assert all(manifest["runs"][name]["status"] == "finished" for name in names)


@pytest.mark.slow
def test_interrupted_run_was_resumed_not_restarted(grid):
  workdir = grid["resumed"].workdir
  resumes = [name for name in os.listdir(workdir) if name.startswith("provenance-resume-")]
  assert resumes, "the grid started the half-trained run over instead of resuming it"
  steps = [step for step, _ in loggers.read_evaluations_csv(os.path.join(workdir, "evaluations.csv"))]
  assert steps == [0, 1_000, 2_000]  # the first evaluation is the one from before the interruption, kept
  assert runs.checkpoint_step(workdir) == 2_000


@pytest.mark.slow
def test_finished_runs_are_skipped(grid):
  report = runs.run_grid(grid["specs"], grid["results"], num_cpus=2, progress=False, quiet=True)
  assert report.finished == [] and report.failed == {}
  assert sorted(report.skipped) == sorted(spec.name for spec in grid["specs"])


@pytest.mark.slow
def test_every_run_has_its_absolute_metric_and_a_finished_run_missing_a_file_is_completed(grid):
  for spec in grid["specs"]:  # also the resumed run, whose 1,000-step absolute.json was replaced
    with open(os.path.join(spec.workdir, "absolute.json")) as handle:
      absolute = json.load(handle)
    assert absolute["total_steps"] == spec.total_steps == 2_000
    assert absolute["episodes"] == len(absolute["returns"]) == 10 * spec.config["loop"]["eval_episodes"]
    assert absolute["source"] == "best" and absolute["stream"] == f"seed {spec.seed}"
    rows = loggers.read_evaluations_csv(os.path.join(spec.workdir, "evaluations.csv"))
    assert (absolute["best_step"], absolute["best_mean_return"]) == max(rows, key=lambda r: (r[1], -r[0]))
  spec, stopped = grid["specs"][:2]
  path = os.path.join(spec.workdir, "absolute.json")
  with open(path) as handle:
    before = json.load(handle)
  with open(os.path.join(spec.workdir, "summary.json")) as handle:
    summary = handle.read()
  os.remove(path)
  # `stopped` as a grid leaves a run killed while it evaluated its absolute metric: trained to its end (the
  # final checkpoint and evaluation written) but neither absolute.json nor summary.json.
  stopped_files = {}
  for name in ("absolute.json", "summary.json", "evaluations.csv"):
    with open(os.path.join(stopped.workdir, name)) as handle:
      stopped_files[name] = handle.read()
  os.remove(os.path.join(stopped.workdir, "absolute.json"))
  os.remove(os.path.join(stopped.workdir, "summary.json"))
  report = runs.run_grid(grid["specs"], grid["results"], num_cpus=2, progress=False, quiet=True)
  assert report.evaluated == [spec.name] and report.finished == [stopped.name] and report.failed == {}
  with open(path) as handle:
    assert json.load(handle) == before  # the same seeded episodes of the same learner
  with open(os.path.join(spec.workdir, "summary.json")) as handle:
    assert handle.read() == summary  # not trained again
  # The stopped run is finished, not trained again: the same evaluations and absolute metric, a summary of
  # the same steps and updates that says it had finished before.
  with open(os.path.join(stopped.workdir, "evaluations.csv")) as handle:
    assert handle.read() == stopped_files["evaluations.csv"]
  with open(os.path.join(stopped.workdir, "absolute.json")) as handle:
    assert json.load(handle) == json.loads(stopped_files["absolute.json"])
  with open(os.path.join(stopped.workdir, "summary.json")) as handle:
    finished = json.load(handle)
  earlier = json.loads(stopped_files["summary.json"])
  assert finished["already_finished"] and not earlier["already_finished"]
  assert (finished["env_steps"], finished["updates"], finished["max_return"]) == (
      earlier["env_steps"], earlier["updates"], earlier["max_return"])
  assert runs.checkpoint_step(stopped.workdir) == 2_000


def _assert_image(path, min_bytes=10_000):
  assert os.path.getsize(path) > min_bytes, path
  image = matplotlib.image.imread(path)
  assert image.ndim == 3 and min(image.shape[:2]) > 100


@pytest.mark.slow
def test_table1_and_figures_from_the_grid(grid):
  results = grid["results"]
  meta = outputs.describe("smoke", "code", SEEDS)
  paths = outputs.write_table1(results, (TASK,), ESTIMATORS, SEEDS, meta)
  with open(os.path.join(results, "table1.csv")) as handle:
    rows = list(csv.DictReader(handle))
  assert [(r["task"], r["estimator"], r["seeds"], r["evaluations"]) for r in rows] == [
      (TASK, "stgs-1", "2", "3"), (TASK, "gst", "2", "3")]  # steps 0, 1,000 and the final policy at 2,000
  assert all(r["budget"] == "smoke" and r["fidelity"] == "code" for r in rows)
  assert "Budget smoke" in open(paths[0]).read()
  for row in rows:  # the absolute column: the mean over seeds of each run's absolute metric
    means = []
    for seed in SEEDS:
      with open(os.path.join(runs.workdir_of(results, TASK, row["estimator"], seed), "absolute.json")) as f:
        means.append(json.load(f)["mean_return"])
    assert float(row["absolute_return"]) == pytest.approx(sum(means) / len(means), abs=1e-6)
    assert row["absolute_seeds"] == "2"

  from maddpg_tf.analysis import plots
  series = plots.read_grad_variance(os.path.join(grid["specs"][0].workdir, "tb"))["policy_grad_variance"]
  assert sorted(parameter for _, parameter in series) == ["bias"] * 3 + ["kernel"] * 3  # 3 policy layers
  assert all(sorted(per_agent) == [0, 1] and per_agent[0] for per_agent in series.values())  # 2 agents

  figures = outputs.write_figures(results, (TASK,), ESTIMATORS, SEEDS, meta)
  figure4 = outputs.write_figure4(results, TASK, SEEDS, meta)  # Figure 4's plot, from these runs' logs
  assert {os.path.basename(p) for p in figures} == {"figureS1.png", "figureS1.pdf"}
  assert {os.path.basename(p) for p in figure4} == {"figure4.png", "figure4.pdf"}
  for path in figures + figure4:
    if path.endswith(".png"):
      _assert_image(path)
    else:
      assert os.path.getsize(path) > 5_000


@pytest.mark.slow
def test_cli_builds_outputs_from_existing_runs(grid):
  done = _cli("--what=figures", "--budget=smoke", f"--results={grid['results']}", "--norun")
  assert done.returncode == 0, done.stderr
  assert "figureS1.png" in done.stdout


@pytest.mark.parametrize("args, expected", [
    (["--what=tables"], "--what"),
    (["--tasks=lbf-9x9"], "unknown task 'lbf-9x9'"),
    (["--estimators=gst,gumbel"], "unknown estimator 'gumbel'"),
    (["--seeds=0,x"], "--seeds"),
    (["--budget=huge"], "--budget"),
    (["positional"], "unexpected arguments"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, expected):
  done = _cli(*args, f"--results={tmp_path}")
  assert done.returncode == 2, (done.stdout, done.stderr)
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("maddpg-reproduce: error: ") and expected in lines[0], lines
  assert os.listdir(tmp_path) == []  # nothing trained or written


def test_results_that_is_a_file_is_refused(tmp_path):
  path = tmp_path / "results"
  path.write_text("not a directory")
  done = _cli("--what=table1", "--budget=smoke", f"--results={path}")
  assert done.returncode == 2
  assert done.stderr.strip() == f"maddpg-reproduce: error: --results {path} is a file, not a directory"


def test_results_of_another_budget_are_refused(tmp_path):
  (tmp_path / "grid.json").write_text(json.dumps({"budget": "small", "fidelity": "code", "runs": {}}))
  done = _cli("--what=table1", "--budget=smoke", f"--results={tmp_path}")
  assert done.returncode == 2 and "holds runs of budget 'small'" in done.stderr
  assert len(done.stderr.strip().splitlines()) == 1


def _best_config_file(tmp_path, estimator, best, arg_extra=""):
  """A best_config.py as maddpg-search writes it (its own template), for `estimator` on LBF."""
  from maddpg_tf.search import tuner as search
  path = tmp_path / f"best_{estimator}.py"
  path.write_text(search._BEST_CONFIG.format(
      directory=str(tmp_path), trial_id="03", trials=5, objective="average_return", score=0.5, seeds="seed 0",
      values="...", path=str(path), label=estimator, base="module:configs.lbf",
      base_arg=f"task=lbf-15x15-3p-5f,estimator={estimator}{arg_extra}", overrides="{}",
      best=search._literal_dict(best)))
  return str(path)


def test_tuned_settings_replace_the_papers_for_their_estimator_and_family(tmp_path):
  path = _best_config_file(tmp_path, "grmck", {"estimator.temperature": 0.35, "estimator.num_samples": 50},
                           ",smoke")
  tuned = runs.load_tuned([path])
  assert tuned == {("lbf", "grmck"): {"estimator.temperature": 0.35, "estimator.num_samples": 50}}
  lbf_grmck = runs.make_config("lbf-8x8-2p-2f-coop", "grmck", 0, "smoke", tuned=tuned)
  assert (lbf_grmck.estimator.temperature, lbf_grmck.estimator.num_samples) == (0.35, 50)
  # Only the estimator's settings travel: the search's smoke budget does not.
  assert lbf_grmck.total_steps == runs.make_config("lbf-8x8-2p-2f-coop", "gst", 0, "smoke").total_steps
  # Other estimators, and RWARE (tuned separately in the paper), keep the paper's settings.
  assert runs.make_config("lbf-8x8-2p-2f-coop", "gst", 0, "smoke", tuned=tuned).estimator.temperature == 0.7
  rware_grmck = runs.make_config("rware-tiny-2ag", "grmck", 0, "smoke", tuned=tuned)
  assert (rware_grmck.estimator.temperature, rware_grmck.estimator.num_samples) == (0.7, 5)
  assert "grmck on lbf: searched settings (num_samples=50, temperature=0.35)" in outputs.describe(
      "smoke", "code", (0,), tuned=tuned)["description"]


@pytest.mark.parametrize("make_file, expected", [
    (lambda tmp: str(tmp / "missing.py"), "does not exist"),
    (lambda tmp: (tmp / "bad.py").write_text("BEST = {\n") and str(tmp / "bad.py"),
     "is not a maddpg-search best_config.py (SyntaxError"),
    (lambda tmp: _best_config_file(tmp, "tags", {"estimator.start_temperature": 2.0}),
     "--tuned settings for estimator 'tags', which is not in the grid (stgs-1, gst)"),
])
def test_bad_tuned_file_is_one_line_and_nothing_written(tmp_path, make_file, expected):
  path = make_file(tmp_path)
  results = tmp_path / "results"
  done = _cli("--what=table1", "--budget=smoke", f"--results={results}", f"--tuned={path}")
  assert done.returncode == 2, (done.stdout, done.stderr)
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and expected in lines[0], lines
  assert not results.exists()


def test_the_driver_does_not_import_tensorflow():
  """The grid's driver reads results and draws tables without TensorFlow (seconds and ~0.5 GB saved)."""
  done = subprocess.run([sys.executable, "-c", "import sys, maddpg_tf.cli.reproduce, maddpg_tf.run.loggers, maddpg_tf.analysis.tables, "
                         "maddpg_tf.analysis.aggregate; "
                         "print('tensorflow' in sys.modules)"], cwd=REPO, capture_output=True, text=True)
  assert done.stdout.strip() == "False", done.stderr


@pytest.mark.slow
def test_table2_prints_no_tensorflow_banner_or_retracing_warning_and_judges_no_target_at_smoke(tmp_path):
  """`--what=table2` as a user runs it (TF_CPP_MIN_LOG_LEVEL unset): the driver's benchmark imports TensorFlow
  without its start-up lines, its one trace per (estimator, dimension) is not reported as retracing, and
  the smoke budget's too-short calls leave the targets not judged (no FAIL row)."""
  env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
  done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", "--what=table2", "--budget=smoke",
                         f"--results={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
  assert done.returncode == 0, done.stderr
  output = done.stdout + done.stderr
  for noise in ("oneDNN", "cuInit", "cuda drivers", "absl::InitializeLog", "retracing"):
    assert noise not in output, (noise, output)
  table = (tmp_path / "table2.md").read_text()
  assert "| FAIL |" not in table and "| PASS |" not in table
  assert table.count("| not judged: ") == 3


@pytest.mark.slow
def test_cli_writes_the_fields_aggregates_from_the_grid(grid):
  """IQM / bootstrap intervals / probability of improvement / marl-eval JSON through maddpg-reproduce."""
  done = _cli("--what=aggregate", "--budget=smoke", f"--results={grid['results']}", "--norun",
              "--bootstrap_reps=500", "--poi_bootstrap_reps=200")
  assert done.returncode == 0, done.stderr
  out = os.path.join(grid["results"], "aggregate")
  for name in ("aggregate.csv", "aggregate.md", "probability_of_improvement.csv", "marl_eval.json",
               "aggregate_intervals.png", "probability_of_improvement.png", "performance_profiles.png",
               "sample_efficiency.png"):
    assert os.path.isfile(os.path.join(out, name)), name
  with open(os.path.join(out, "aggregate.csv")) as handle:
    rows = list(csv.DictReader(handle))
  assert {(r["estimator"], r["score"], r["metric"]) for r in rows} == {
      (e, s, m) for e in ESTIMATORS for s in ("average", "final", "absolute")
      for m in ("iqm", "median", "mean", "optimality_gap")}
  assert all(float(r["low"]) <= float(r["point"]) <= float(r["high"]) and r["reps"] == "500" for r in rows)
  from maddpg_tf.analysis import marl_eval
  with open(os.path.join(out, "marl_eval.json")) as handle:
    assert marl_eval.validate_marl_eval_json(json.load(handle)) == []


def test_the_beyond_budget_plans_seven_estimators_on_two_tasks_each_resolving():
  """42 runs: the paper's references and the newer estimators at the paper's settings, cut per family; each
  config passes the schema, and Figure 4 reuses the LBF STGS-1 and GST runs instead of planning more."""
  from maddpg_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  preset = budgets.BUDGETS["beyond"]
  specs = runs.plan_outputs("all", "r", preset.tasks, preset.estimators, preset.seeds, budgets.FIGURE4_TASK,
                            preset.figure4_seeds, "beyond")
  assert len(specs) == 2 * 7 * 3 == len({spec.name for spec in specs})
  assert {spec.config["estimator"]["label"] for spec in specs} == {
      "stgs-1", "gst", "reinmax", "reinmax-rao", "zgr", "rloo", "expected"}
  steps = {spec.config["task"]: spec.config["total_steps"] for spec in specs}
  assert steps == {"lbf-15x15-4p-5f": 2_500_000, "rware-tiny-4ag": 3_500_000}
  paper = runs.make_config("lbf-15x15-4p-5f", "gst", 0, "medium")
  for spec in specs:
    config = config_lib.resolve(ml_collections.ConfigDict(spec.config))
    assert config.checkpoint.keep == 1 and config.loop.eval_episodes == paper.loop.eval_episodes
  assert config_lib.resolve(ml_collections.ConfigDict(specs[0].config)).lbf_food_rule == "v2"
