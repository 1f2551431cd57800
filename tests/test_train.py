"""`maddpg-train` from the command line: bad input gets one line and a non-zero exit, nothing already
written changes; SIGTERM writes a checkpoint and the same command resumes to the uninterrupted result."""

import hashlib
import os
import signal
import subprocess
import sys

import pytest

from maddpg_tf.run import checkpointing, experiment
from tests import faulty
from configs import lbf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LBF = os.path.join(REPO, "configs", "lbf.py")


def train(*args, **kwargs):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, "-m", "maddpg_tf.cli.train", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300, **kwargs)


def tree_hashes(directory):
  hashes = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as handle:
        hashes[os.path.relpath(path, directory)] = hashlib.sha256(handle.read()).hexdigest()
  return hashes


def error_lines(result):
  return [line for line in result.stderr.splitlines() if line.startswith("maddpg-train:")]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("cli") / "run")
  result = train(f"--config={LBF}:smoke", "--config.total_steps=500", f"--workdir={workdir}", "--quiet")
  assert result.returncode == 0, result.stderr
  assert "done: lbf-8x8-2p-2f-coop gst seed 0 (code): 500 env steps" in result.stdout
  return workdir


@pytest.mark.slow
@pytest.mark.parametrize("args,message", [
    ([f"--config={LBF}:smoke", "--config.estimator.temprature=0.5"],
     "no such config key 'temprature' in --config.estimator.temprature; allowed under config.estimator: "
     "cv_weight, end_temperature, gap, label,"),
    ([f"--config={LBF}:smoke,task=lbf-9x9"], "unknown task 'lbf-9x9'"),
    ([f"--config={LBF}:smoke,estimator=gumbel"], "unknown estimator 'gumbel'"),
    ([f"--config={LBF}:smoke", "--config.estimator.temperature=0"], "estimator.temperature must be a number > 0"),
    ([f"--config={LBF}:smoke", "--config.total_steps=-1"], "total_steps must be an integer >= 0, got -1"),
    ([f"--config={os.path.join(REPO, 'configs', 'missing.py')}"], "No such file or directory"),
    ([f"--config={LBF}:smok"], "unknown config argument 'smok'"),
])
def test_bad_input_one_line_nonzero_exit_nothing_written(tmp_path, args, message):
  workdir = str(tmp_path / "never")
  result = train(*args, f"--workdir={workdir}", "--quiet")
  assert result.returncode == 2
  assert len(error_lines(result)) == 1 and message in error_lines(result)[0], result.stderr
  assert "Traceback" not in result.stderr
  assert not os.path.exists(workdir)


@pytest.mark.slow
def test_workdir_of_another_run_is_refused_and_unchanged(finished_run):
  before = tree_hashes(finished_run)
  result = train(f"--config={LBF}:smoke,estimator=grmck", f"--workdir={finished_run}", "--quiet")
  assert result.returncode == 2
  assert "holds a different run" in error_lines(result)[0] and "Traceback" not in result.stderr
  assert tree_hashes(finished_run) == before


@pytest.mark.slow
def test_workdir_of_another_task_names_the_task_first(finished_run):
  """Of the keys that differ, the ones a person needs (task, estimator, seed) come first, whatever their
  alphabetical place."""
  before = tree_hashes(finished_run)
  result = train(f"--config={LBF}:smoke,task=lbf-10x10-3p-3f,estimator=grmck", "--config.seed=3",
                 "--config.replay.batch_size=64", f"--workdir={finished_run}", "--quiet")
  assert result.returncode == 2 and len(error_lines(result)) == 1, result.stderr
  named = error_lines(result)[0].split("holds a different run (", 1)[1]
  assert named.startswith("task: 'lbf-8x8-2p-2f-coop' there, 'lbf-10x10-3p-3f' here; estimator.name: 'gst' there, "
                          "'grmck' here; seed: 0 there, 3 here"), named
  assert tree_hashes(finished_run) == before


@pytest.mark.slow
def test_workdir_that_is_a_file(tmp_path):
  path = tmp_path / "file"
  path.write_text("keep me")
  result = train(f"--config={LBF}:smoke", f"--workdir={path}", "--quiet")
  assert result.returncode == 2 and "is a file, not a directory" in error_lines(result)[0]
  assert path.read_text() == "keep me"


@pytest.mark.slow
def test_sigterm_checkpoints_and_the_same_command_resumes_exactly(tmp_path):
  workdir = str(tmp_path / "run")
  args = [f"--config={LBF}:smoke", "--config.total_steps=4000", f"--workdir={workdir}", "--quiet"]
  # SIGTERM at env step 1,500 (a fault point: past the first checkpoint, at an exact moment).
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  process = subprocess.Popen(faulty.command(sys.executable, "env-step@1500:TERM", "maddpg_tf.cli.train", args),
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 128 + signal.SIGTERM, stderr
  assert "SIGTERM at env step" in stderr and "run the same command to resume" in stderr
  step = checkpointing.complete_checkpoints(os.path.join(workdir, "checkpoints"))[-1][0]
  assert 1000 <= step < 4000
  resumed = train(*args)
  assert resumed.returncode == 0, resumed.stderr
  straight = str(tmp_path / "straight")
  config = lbf.get_config("smoke")
  config.total_steps = 4000
  experiment.Experiment(config, straight, progress=False).run()
  with open(os.path.join(workdir, "evaluations.csv")) as a, open(os.path.join(straight,
                                                                             "evaluations.csv")) as b:
    assert a.read() == b.read()


def test_help_list_and_print_config_show_what_can_be_chosen(tmp_path):
  # As the console script runs it: a stub without a docstring is __main__ (absl's --help starts with it).
  script = tmp_path / "maddpg-train"
  script.write_text("from maddpg_tf.cli.train import run\nrun()\n")
  shown = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO), timeout=300)
  assert shown.returncode == 1 and shown.stderr == ""  # absl's --help exits with 1
  for fragment in ("maddpg-train --config=configs/lbf.py:task=", "lbf-15x15-4p-5f", "rware-tiny-4ag",
                   "simple_spread", "env=module:factory", "stgs-1, stgs-t, tags, grmck, gst", "expected, rloo",
                   "module.path:ClassName", "smoke: 2,000 env steps", "configs/mpe.py", "--config.<key>=<value>",
                   "--print_config", "--list"):
    assert fragment in shown.stdout, fragment
  listed = train("--list")
  assert listed.returncode == 0 and "estimators (estimator=<name>):" in listed.stdout
  assert "lbf-8x8-2p-2f-coop" in listed.stdout and "configs/pettingzoo.py" in listed.stdout

  printed = train(f"--config={LBF}:task=lbf-10x10-3p-3f,estimator=grmck,smoke", "--config.seed=4",
                  "--config.fidelity=text", "--print_config")
  assert printed.returncode == 0, printed.stderr
  lines = printed.stdout.splitlines()
  # Resolved: the fidelity's defaults filled in, the overrides applied, every key a flag.
  for line in ("--config.seed=4", "--config.task=lbf-10x10-3p-3f", "--config.estimator.name=grmck",
               "--config.estimator.num_samples=10", "--config.loop.episode_limit=50",
               "--config.learner.use_target_networks=True", "--config.total_steps=2000"):
    assert line in lines, line
  assert all(line.startswith("--config.") for line in lines[1:])
  assert "Traceback" not in printed.stderr and not os.path.exists(os.path.join(REPO, "runs", "lbf-10x10-3p-3f"))


@pytest.mark.slow
def test_a_finished_run_given_again_says_so(finished_run):
  result = train(f"--config={LBF}:smoke", "--config.total_steps=500", f"--workdir={finished_run}", "--quiet")
  assert result.returncode == 0, result.stderr
  assert "already finished: lbf-8x8-2p-2f-coop gst seed 0 (code): 500 env steps" in result.stdout
  assert "steps/s" not in result.stdout and "resuming from" not in result.stdout


@pytest.mark.slow
def test_the_progress_bar_shows_the_first_compile(tmp_path):
  result = train(f"--config={LBF}:smoke", "--config.total_steps=500", f"--workdir={tmp_path / 'run'}")
  assert result.returncode == 0, result.stderr
  assert "compiling the update (once per run)" in result.stderr  # the bar (tqdm writes to stderr)
