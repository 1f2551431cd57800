"""Bad input to every program, table-driven: `maddpg-train`, `maddpg-search`, `maddpg-reproduce` and the tools.

Each case runs the program as a subprocess in a directory of its own (files it needs set up there first:
a finished run, a corrupt checkpoint, ...). It must exit with status 2 and print exactly one line on
stderr, `<program>: error: ...`, containing the bad value and what is allowed (the case's `expect`
substrings), no traceback, and leave every file and directory there as it was: each case's directory is
hashed before and after (nothing added, removed or changed).

The cases run two at a time. Most fail before TensorFlow is imported (tenths of a second); those that need
a resolved config or a checkpoint take a few seconds each.
"""

import collections
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LBF = os.path.join(REPO, "configs", "lbf.py")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
PROGRAMS = {
    "maddpg-train": [sys.executable, "-m", "maddpg_tf.cli.train"],
    "maddpg-search": [sys.executable, "-m", "maddpg_tf.cli.search"],
    "maddpg-reproduce": [sys.executable, "-m", "maddpg_tf.cli.reproduce"],
    "maddpg-bench-estimators": [sys.executable, os.path.join(REPO, "tools", "bench_estimators.py")],
    "bench_train": [sys.executable, os.path.join(REPO, "tools", "bench_train.py")],
    "publish_results": [sys.executable, os.path.join(REPO, "tools", "publish_results.py")],
}
# The finished runs some cases start from: smoke budget, 200 env steps, no XLA (it would only cost time).
RUN_STEPS = 200
SMOKE = [f"--config={LBF}:smoke", f"--config.total_steps={RUN_STEPS}", "--config.jit_compile=False"]
GRMCK = f"--config={LBF}:smoke,estimator=grmck"
REINMAX_RAO = f"--config={LBF}:smoke,estimator=reinmax-rao"
REINMAX_CV = f"--config={LBF}:smoke,estimator=reinmax-cv"
ALL_TASKS = "expected one of lbf-8x8-2p-2f-coop"

Case = collections.namedtuple("Case", "name program args expect setup env", defaults=(None, None))


# ---- set-ups: each builds files in the case's directory `root`; `runs` holds the finished runs ----------

def finished_run(root, runs):
  shutil.copytree(runs["lbf-8x8"], os.path.join(root, "run"))


def newest_checkpoint(root):
  from maddpg_tf.run import checkpointing
  return checkpointing.latest(os.path.join(root, "run", "checkpoints"))


def damaged(name, content=None, truncate=None):
  """A finished run whose newest checkpoint's file `name` is replaced by `content` or cut to `truncate`."""
  def setup(root, runs):
    finished_run(root, runs)
    path = os.path.join(newest_checkpoint(root), name)
    if truncate is not None:
      with open(path, "r+b") as handle:
        handle.truncate(truncate)
    else:
      with open(path, "wb") as handle:
        handle.write(content)
  return setup


def other_tasks_checkpoint(root, runs):
  """The 8x8 run, with the 10x10 run's checkpoint as its newest."""
  finished_run(root, runs)
  from maddpg_tf.run import checkpointing
  source = checkpointing.latest(os.path.join(runs["lbf-10x10"], "checkpoints"))
  shutil.copytree(source, os.path.join(root, "run", "checkpoints", "ckpt-100000"))


def grid_run_of_food_rule(rule):
  """A smoke grid's run directory r/lbf-10x10-3p-3f/gst/seed0 holding that run's config under food `rule`."""
  def setup(root, runs):
    del runs
    import ml_collections
    from maddpg_tf import config as config_lib
    from maddpg_tf.grid import runs as grid_runs
    spec, = grid_runs.plan("r", ["lbf-10x10-3p-3f"], ["gst"], [0], "smoke")
    config = config_lib.resolve(ml_collections.ConfigDict(spec.config))
    config.lbf_food_rule = rule
    os.makedirs(os.path.join(root, spec.workdir))
    with open(os.path.join(root, spec.workdir, "config.json"), "w") as handle:
      json.dump(config.to_dict(), handle)
  return setup


def files(contents):
  """Files (or, for a value None, empty directories) at the given relative paths."""
  def setup(root, runs):
    for relative, content in contents.items():
      path = os.path.join(root, relative)
      if content is None:
        os.makedirs(path)
        continue
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, "wb" if isinstance(content, bytes) else "w") as handle:
        handle.write(content)
  return setup


def with_run_and(contents):
  def setup(root, runs):
    finished_run(root, runs)
    files(contents)(root, runs)
  return setup


# ---- the table ------------------------------------------------------------------------------------------

CASES = [
    # maddpg-train: config arguments and values
    Case("train-unknown-task", "maddpg-train", [f"--config={LBF}:smoke,task=lbf-9x9", "--workdir=w"],
         ["'lbf-9x9'", ALL_TASKS]),
    Case("train-unknown-estimator", "maddpg-train", [f"--config={LBF}:smoke,estimator=gumbel", "--workdir=w"],
         ["'gumbel'", "allowed: ", "stgs-1"]),
    Case("train-unknown-config-key", "maddpg-train", [*SMOKE, "--config.estimator.temprature=0.5", "--workdir=w"],
         ["'temprature'", "allowed under config.estimator: ", "temperature"]),
    Case("train-unknown-key-without-config", "maddpg-train", ["--config.estimatr.gap=1", "--workdir=w"],
         ["'estimatr'", "allowed in --config: ", "estimator"]),
    Case("train-unknown-config-argument", "maddpg-train", [f"--config={LBF}:smok", "--workdir=w"],
         ["'smok'", "allowed: task, env, estimator, smoke, short"]),
    Case("train-temperature-zero", "maddpg-train", [*SMOKE, "--config.estimator.temperature=0", "--workdir=w"],
         ["temperature", "got 0.0", "> 0"]),
    Case("train-K-zero", "maddpg-train", [GRMCK, "--config.estimator.num_samples=0", "--workdir=w"],
         ["num_samples", "got 0", ">= 1"]),
    Case("train-K-not-an-integer", "maddpg-train", [GRMCK, "--config.estimator.num_samples=2.5", "--workdir=w"],
         ["--config.estimator.num_samples=2.5", "int"]),
    Case("train-gap-zero", "maddpg-train", [*SMOKE, "--config.estimator.gap=0", "--workdir=w"],
         ["gap", "got 0.0", "> 0"]),
    Case("train-reinmax-rao-K-negative", "maddpg-train",
         [REINMAX_RAO, "--config.estimator.num_samples=-1", "--workdir=w"], ["num_samples", "got -1", ">= 1"]),
    Case("train-reinmax-cv-weight-negative", "maddpg-train",
         [REINMAX_CV, "--config.estimator.cv_weight=-1", "--workdir=w"], ["cv_weight", "got -1.0", ">= 0"]),
    Case("train-cv-weight-on-reinmax-rao", "maddpg-train",
         [REINMAX_RAO, "--config.estimator.cv_weight=0.5", "--workdir=w"],
         ["'reinmax-rao' has no parameter 'cv_weight'", "allowed: "]),
    Case("train-more-env-workers-than-envs", "maddpg-train", [*SMOKE, "--config.env_workers=5", "--workdir=w"],
         ["env_workers", "0..num_envs (4)", "got 5"]),
    Case("train-negative-steps", "maddpg-train", [*SMOKE, "--config.total_steps=-1", "--workdir=w"],
         ["total_steps", "got -1", ">= 0"]),
    Case("train-steps-not-a-number", "maddpg-train", [f"--config={LBF}:smoke", "--config.total_steps=lots"],
         ["'lots'", "int"]),
    Case("train-unknown-food-rule", "maddpg-train", [*SMOKE, "--config.lbf_food_rule=v1", "--workdir=w"],
         ["lbf_food_rule must be one of 'v2', 'v3'", "got 'v1'"]),
    Case("train-food-rule-on-rware", "maddpg-train",
         [f"--config={LBF}:smoke,task=rware-tiny-2ag", "--config.lbf_food_rule=v2", "--workdir=w"],
         ["lbf_food_rule applies to LBF tasks only", "rware-tiny-2ag (family rware)", "got 'v2'"]),
    Case("train-food-rule-on-mpe", "maddpg-train",
         [f"--config={LBF}:smoke,task=simple_spread", "--config.lbf_food_rule=v3", "--workdir=w"],
         ["lbf_food_rule applies to LBF tasks only", "simple_spread (family mpe)", "got 'v3'"]),
    Case("train-positional-argument", "maddpg-train", [*SMOKE, "extra", "--workdir=w"],
         ["'extra'", "flags are --config, --workdir, --seeds, --quiet"]),
    # maddpg-train: config files
    Case("train-missing-config-file", "maddpg-train", ["--config=missing.py", "--workdir=w"],
         ["missing.py", "No such file or directory", "defining get_config()"]),
    Case("train-config-is-a-directory", "maddpg-train", ["--config=folder", "--workdir=w"],
         ["folder", "Is a directory", "defining get_config()"], files({"folder": None})),
    Case("train-config-syntax-error", "maddpg-train", ["--config=broken.py:smoke", "--workdir=w"],
         ["broken.py", "SyntaxError", "defining get_config()"], files({"broken.py": "def get_config(:\n"})),
    Case("train-config-binary", "maddpg-train", ["--config=binary.py", "--workdir=w"],
         ["binary.py", "null bytes", "defining get_config()"], files({"binary.py": b"\x00\xff\xfe\x00"})),
    Case("train-config-without-get_config", "maddpg-train", ["--config=other.py", "--workdir=w"],
         ["other.py", "get_config", "defining get_config()"], files({"other.py": "X = 1\n"})),
    # maddpg-train: workdirs and checkpoints
    Case("train-workdir-of-another-seed", "maddpg-train", [*SMOKE, "--config.seed=3", "--workdir=run"],
         ["holds a different run", "seed: 0 there, 3 here", "use a new --workdir, or the same config"],
         finished_run),
    Case("train-workdir-of-another-food-rule", "maddpg-train", [*SMOKE, "--config.lbf_food_rule=v3", "--workdir=run"],
         ["holds a different run (lbf_food_rule: 'v2' there, 'v3' here", "use a new --workdir, or the same config"],
         finished_run),
    Case("train-workdir-is-a-file", "maddpg-train", [*SMOKE, "--workdir=notes.txt"],
         ["notes.txt is a file", "not a directory"], files({"notes.txt": "keep me"})),
    Case("train-workdir-of-something-else", "maddpg-train", [*SMOKE, "--workdir=mine"],
         ["mine exists and holds no maddpg-tf run", "choose a new or empty directory"],
         files({"mine/notes": "mine"})),
    Case("train-workdir-config-json-corrupt", "maddpg-train", [*SMOKE, "--workdir=run"],
         ["config.json is unreadable", "Expecting", "restore it, or use a new --workdir"], with_run_and({"run/config.json": "{not json"})),
    Case("train-checkpoint-truncated", "maddpg-train", [*SMOKE, "--workdir=run"],
         ["ckpt-200 is corrupt or incomplete", "delete it to resume from an earlier one"],
         damaged("arrays.npz", truncate=100)),
    Case("train-checkpoint-state-garbage", "maddpg-train", [*SMOKE, "--workdir=run"],
         ["ckpt-200 is corrupt or incomplete", "delete it to resume from an earlier one"],
         damaged("state.json", content=b"not json")),
    Case("train-checkpoint-marker-garbage", "maddpg-train", [*SMOKE, "--workdir=run"],
         ["ckpt-200 is corrupt or incomplete", "delete it to resume from an earlier one"],
         damaged("COMPLETE", content=b"{")),
    Case("train-checkpoint-of-another-task", "maddpg-train", [*SMOKE, "--workdir=run"],
         ["ckpt-100000 is of another run", "its task is 'lbf-10x10-3p-3f'", "this run's is 'lbf-8x8-2p-2f-coop'",
          "move it out of the workdir"],
         other_tasks_checkpoint),

    # maddpg-search
    Case("search-max-trials-zero", "maddpg-search", [GRMCK, "--max_trials=0", "--dir=s"],
         ["--max_trials", "got 0", ">= 1"]),
    Case("search-max-trials-negative", "maddpg-search", [GRMCK, "--max_trials=-3", "--dir=s"],
         ["--max_trials", "got -3", ">= 1"]),
    Case("search-seeds-per-trial-zero", "maddpg-search", [GRMCK, "--seeds_per_trial=0", "--dir=s"],
         ["--seeds_per_trial", "got 0", ">= 1"]),
    Case("search-inverted-range", "maddpg-search",
         [GRMCK, "--search.temperature.min=0.9", "--search.temperature.max=0.5", "--dir=s"],
         ["min 0.9 > max 0.5", "min must be <= max"]),
    Case("search-empty-range", "maddpg-search",
         [GRMCK, "--search.temperature.min=0.5", "--search.temperature.max=0.5", "--dir=s"],
         ["[0.5, 0.5]"]),
    Case("search-unknown-estimator", "maddpg-search", [f"--config={LBF}:smoke,estimator=gumbel", "--dir=s"],
         ["'gumbel'", "allowed: "]),
    Case("search-unknown-hyperparameter", "maddpg-search", [GRMCK, "--search.tau.min=0.1", "--dir=s"],
         ["'tau'", "allowed in --search: ", "temperature"]),
    Case("search-hyperparameter-the-estimator-lacks", "maddpg-search", [GRMCK, "--search_space=gap=0.5:2", "--dir=s"],
         ["'grmck' has no hyperparameter 'gap'"]),
    Case("search-own-parameter-as-a-config-key", "maddpg-search",
         [f"--config={LBF}:smoke,estimator=my_lab:MyEst", "--search.weight.min=0.1", "--dir=s"],
         ["'weight'", "allowed in --search: ", "temperature"]),
    Case("search-unreadable-shorthand", "maddpg-search", [GRMCK, "--search_space=temperature=hot", "--dir=s"],
         ["'temperature=hot'", "use name=min:max"]),
    Case("search-unknown-objective", "maddpg-search", [GRMCK, "--objective=median", "--dir=s"],
         ["median", "<average|max>"]),
    Case("search-nothing-to-search", "maddpg-search", [f"--config={LBF}:smoke,estimator=stgs-1", "--dir=s"],
         ["'stgs-1' has nothing to search", "search stgs-t instead"]),
    Case("search-no-config", "maddpg-search", ["--max_trials=2", "--dir=s"],
         ["--config is required", "e.g. --config="]),
    Case("search-reinmax-cv-weight-range-negative", "maddpg-search",
         [REINMAX_CV, "--search.cv_weight.min=-1", "--search.cv_weight.max=1", "--dir=s"],
         ["search.cv_weight.min", "got -1", "> 0"]),
    Case("search-temperature-zero", "maddpg-search", [GRMCK, "--config.estimator.temperature=0", "--dir=s"],
         ["temperature", "got 0.0", "> 0"]),
    Case("search-dir-is-a-file", "maddpg-search", [GRMCK, "--dir=notes.txt"],
         ["notes.txt is a file", "not a directory"], files({"notes.txt": "keep me"})),
    Case("search-dir-of-something-else", "maddpg-search", [GRMCK, "--dir=mine"],
         ["holds no maddpg-search search", "choose a new or empty directory"], files({"mine/notes": "mine"})),
    Case("search-dir-of-another-search", "maddpg-search", [GRMCK, "--dir=old"],
         ["old holds a different search"], files({"old/search.json": json.dumps({"objective": "max"})})),
    Case("search-oracle-port-missing", "maddpg-search", [GRMCK, "--dir=s"],
         ["KERASTUNER_ORACLE_PORT is not", "set all three"], env={"KERASTUNER_ORACLE_IP": "127.0.0.1"}),
    Case("search-oracle-port-out-of-range", "maddpg-search", [GRMCK, "--dir=s"],
         ["'99999'", "1-65535"], env={"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "99999",
                                      "KERASTUNER_TUNER_ID": "chief"}),
    Case("search-missing-search-file", "maddpg-search", [GRMCK, "--search=nowhere.py", "--dir=s"],
         ["nowhere.py", "No such file"]),

    # maddpg-reproduce
    Case("reproduce-results-is-a-file", "maddpg-reproduce", ["--budget=smoke", "--results=notes.txt"],
         ["notes.txt is a file", "not a directory"], files({"notes.txt": "keep me"})),
    Case("reproduce-results-of-another-budget", "maddpg-reproduce", ["--budget=smoke", "--results=old"],
         ["holds runs of budget 'small'", "use another --results for budget 'smoke'"],
         files({"old/grid.json": json.dumps({"budget": "small", "fidelity": "code", "runs": {}})})),
    Case("reproduce-unknown-food-rule", "maddpg-reproduce", ["--budget=smoke", "--lbf_food_rule=v1", "--results=r"],
         ["--lbf_food_rule=v1", "<v2|v3>"]),
    Case("reproduce-run-of-another-food-rule", "maddpg-reproduce",
         ["--budget=smoke", "--tasks=lbf-10x10-3p-3f", "--estimators=gst", "--seeds=0", "--results=r"],
         ["lbf-10x10-3p-3f/gst/seed0", "holds a different run (lbf_food_rule: 'v3' there, 'v2' here"],
         grid_run_of_food_rule("v3")),
    Case("reproduce-unknown-task", "maddpg-reproduce", ["--budget=smoke", "--tasks=lbf-9x9", "--results=r"],
         ["'lbf-9x9'", "allowed: lbf-8x8-2p-2f-coop"]),
    Case("reproduce-unknown-estimator", "maddpg-reproduce", ["--budget=smoke", "--estimators=gst,gumbel", "--results=r"],
         ["'gumbel'", "allowed: stgs-1"]),
    Case("reproduce-estimator-path-malformed", "maddpg-reproduce",
         ["--budget=smoke", "--estimators=gst,my-lab:MyEst", "--results=r"],
         ["'my-lab:MyEst'", "allowed: stgs-1", "or module.path:ClassName"]),
    Case("reproduce-estimator-options-without-a-path", "maddpg-reproduce",
         ["--budget=smoke", "--estimator_options=weight=0.3", "--results=r"],
         ["--estimator_options is for estimators given by import path", "--estimators has none (stgs-1, gst)"]),
    Case("reproduce-negative-seed", "maddpg-reproduce", ["--budget=smoke", "--seeds=0,-1", "--results=r"],
         ["got -1", "integers >= 0"]),
    Case("reproduce-seed-not-a-number", "maddpg-reproduce", ["--budget=smoke", "--seeds=0,x", "--results=r"],
         ["'x'", "integers >= 0"]),
    Case("reproduce-total-steps-zero", "maddpg-reproduce", ["--budget=smoke", "--total_steps=0", "--results=r"],
         ["--total_steps", "got 0", ">= 1"]),
    Case("reproduce-num-cpus-zero", "maddpg-reproduce", ["--budget=smoke", "--num_cpus=0", "--results=r"],
         ["--num_cpus", "got 0", ">= 1"]),
    Case("reproduce-retries-negative", "maddpg-reproduce", ["--budget=smoke", "--retries=-1", "--results=r"],
         ["--retries", "got -1", ">= 0"]),
    Case("reproduce-unknown-figure4-task", "maddpg-reproduce", ["--figure4_task=lbf-9x9", "--results=r"],
         ["'lbf-9x9'", "allowed: lbf-8x8-2p-2f-coop"]),
    Case("reproduce-unknown-budget", "maddpg-reproduce", ["--budget=huge", "--results=r"],
         ["--budget=huge", "<smoke|small|medium|beyond|paper>"]),
    Case("reproduce-unknown-output", "maddpg-reproduce", ["--what=table3", "--results=r"],
         ["--what=table3", "<table1|aggregate|figures|figure4|table2|beyond|all>"]),
    Case("reproduce-norun-without-results", "maddpg-reproduce", ["--budget=smoke", "--norun", "--results=none"],
         ["--results none does not exist", "an existing --results directory"]),
    Case("reproduce-norun-tables-without-runs", "maddpg-reproduce", ["--budget=smoke", "--norun", "--results=empty"],
         ["no evaluations under empty", "run the grid first"], files({"empty": None})),
    Case("reproduce-norun-figure4-without-runs", "maddpg-reproduce",
         ["--budget=smoke", "--norun", "--what=figure4", "--results=empty"],
         ["no TensorBoard logs under empty", "run the Figure 4 grid first"], files({"empty": None})),

    # the tools
    Case("bench-estimators-threads-zero", "maddpg-bench-estimators", ["--tiny", "--threads=0"],
         ["--threads", "got 0", ">= 1"]),
    Case("bench-estimators-number-zero", "maddpg-bench-estimators", ["--tiny", "--number=0"],
         ["--number", "got 0", ">= 1"]),
    Case("bench-estimators-negative-call-seconds", "maddpg-bench-estimators", ["--tiny", "--call-seconds=-1"],
         ["--call-seconds", "got -1.0", ">= 0"]),
    Case("bench-estimators-unknown-section", "maddpg-bench-estimators", ["--tiny", "--only=all"],
         ["'all'", "choose from 'paper', 'training'"]),
    Case("bench-train-unknown-task", "bench_train", ["--tiny", "--tasks=lbf-9x9"], ["'lbf-9x9'", ALL_TASKS]),
    Case("bench-train-unknown-estimator", "bench_train", ["--tiny", "--estimator=gumbel"],
         ["'gumbel'", "allowed: "]),
    Case("bench-train-unknown-config-field", "bench_train", ["--tiny", "--set", "loop.nope=1"],
         ["'loop.nope'", "fields at loop: ", "warmup_episodes"]),
    Case("bench-train-set-without-value", "bench_train", ["--tiny", "--set", "loop"],
         ["'loop'", "key=value"]),
    Case("bench-train-bad-config-value", "bench_train", ["--tiny", "--tasks=lbf-8x8-2p-2f-coop", "--set", "num_envs=0"],
         ["num_envs", "got 0", ">= 1"]),
    Case("bench-train-no-tasks", "bench_train", ["--tiny", "--tasks=,"], ["','", "comma-separated task names"]),
    Case("bench-train-negative-seed", "bench_train", ["--tiny", "--seed=-1"], ["--seed", "got -1", ">= 0"]),
    # tools/publish_results.py
    Case("publish-missing-results", "publish_results", ["--results=grid", "--to=out"],
         ["--results grid", "not a directory"]),
    Case("publish-results-not-a-grid", "publish_results", ["--results=grid", "--to=out"],
         ["--results grid", "no grid.json"], files({"grid/notes.txt": "x"})),
    Case("publish-to-exists", "publish_results", ["--results=grid", "--to=out"],
         ["--to out exists", "--update"], files({"grid/grid.json": "{}", "out/table1.md": "x"})),
    Case("publish-update-of-something-else", "publish_results", ["--results=grid", "--to=out", "--update"],
         ["--to out", "not an earlier publication"], files({"grid/grid.json": "{}", "out/table1.md": "x"})),
    Case("publish-to-inside-results", "publish_results", ["--results=grid", "--to=grid/pub"],
         ["--to grid/pub", "must not contain each other"], files({"grid/grid.json": "{}"})),
]


def tree(directory):
  """{relative path: sha256 of a file, or 'dir'} of everything under `directory`."""
  found = {}
  for root, dirs, names in os.walk(directory):
    for name in dirs:
      found[os.path.relpath(os.path.join(root, name), directory)] = "dir"
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as handle:
        found[os.path.relpath(path, directory)] = hashlib.sha256(handle.read()).hexdigest()
  return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Two finished smoke runs (LBF 8x8 and 10x10, 200 env steps each), trained in this process."""
  from configs import lbf
  from maddpg_tf.run import experiment
  base = tmp_path_factory.mktemp("runs")
  made = {}
  for name, arg in (("lbf-8x8", "smoke"), ("lbf-10x10", "smoke,task=lbf-10x10-3p-3f")):
    config = lbf.get_config(arg)
    config.total_steps, config.jit_compile = RUN_STEPS, False
    made[name] = str(base / name)
    experiment.Experiment(config, made[name], progress=False).run()
  return made


@pytest.fixture(scope="module")
def outcomes(runs, tmp_path_factory):
  """{case name: (CompletedProcess, tree before, tree after, seconds)}, the cases run two at a time."""
  base = tmp_path_factory.mktemp("bad")
  roots = {}
  for case in CASES:
    root = str(base / case.name)
    os.makedirs(root)
    if case.setup is not None:
      case.setup(root, runs)
    roots[case.name] = root

  def run(case):
    before = tree(roots[case.name])
    started = time.time()
    result = subprocess.run(PROGRAMS[case.program] + case.args, cwd=roots[case.name],
                            env=dict(ENV, **(case.env or {})), capture_output=True, text=True, timeout=180)
    return case.name, (result, before, tree(roots[case.name]), time.time() - started)

  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    return dict(pool.map(run, CASES))


def test_the_table_covers_every_program_with_at_least_30_cases():
  assert len(CASES) >= 30 and len({case.name for case in CASES}) == len(CASES)
  assert {case.program for case in CASES} == set(PROGRAMS)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, outcomes):
  result, before, after, _ = outcomes[case.name]
  assert "Traceback" not in result.stderr + result.stdout, result.stderr
  lines = result.stderr.splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith(f"{case.program}: error: "), lines[0]
  for expected in case.expect:
    assert expected in lines[0], (expected, lines[0])
  assert result.returncode == 2, (result.returncode, lines[0])
  assert after == before, "files changed: " + ", ".join(
      sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))
