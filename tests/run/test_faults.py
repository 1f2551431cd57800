"""`maddpg_tf.run.faults`: a fault fires only where a test armed it, at its exact moment, once; the old
environment variable, or any other, arms nothing, so a user's shell cannot stop a real run."""

import os
import signal
import subprocess
import sys

import pytest

from maddpg_tf.run import checkpointing, faults
from tests import faulty

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def sent(monkeypatch):
  """The signals the fault points send (recorded instead of sent)."""
  signals = []
  monkeypatch.setattr(faults.os, "kill", lambda pid, signum: signals.append((pid, signum)))
  yield signals
  faults.disarm()


def test_an_armed_fault_fires_once_at_its_value_or_its_count(sent):
  with faults.armed("env-step@1300:INT"):
    for step in (1296, 1299, 1302, 1305):
      faults.point("env-step", step)
      faults.point("evaluation")
  assert sent == [(os.getpid(), signal.SIGINT)]
  faults.arm("checkpoint-before-marker@2:KILL")
  faults.point("checkpoint-before-marker")
  assert len(sent) == 1
  faults.point("checkpoint-before-marker")
  faults.point("checkpoint-before-marker")
  assert sent[1:] == [(os.getpid(), signal.SIGKILL)]


def test_unarmed_points_and_environment_variables_send_nothing(sent, monkeypatch):
  for name in ("MADDPG_TF_FAULT", "MADDPG_TF_FAULTS", "FAULT"):
    monkeypatch.setenv(name, "env-step@1:KILL")
  for point in faults.POINTS:
    for value in (None, 1, 10**9):
      faults.point(point, value)
  assert sent == []


@pytest.mark.parametrize("spec", ["env-step@1300", "env-step@x:INT", "nowhere@1:KILL", "env-step@1:HUP", None])
def test_a_bad_spec_is_one_line_naming_it(spec):
  with pytest.raises(ValueError, match=r"^fault .*: expected <point>@<n>:<KILL\|INT\|TERM> with point one of "
                                       r"checkpoint-before-marker, env-step"):
    faults.arm(spec)
  assert faults._state["armed"] is None


def test_the_test_launcher_runs_the_plain_command_without_a_fault():
  assert faulty.command("python", "", "m", ["--a"]) == ["python", "-m", "m", "--a"]
  assert faulty.command("python", "env-step@1:INT", "m", ["--a"]) == ["python", "-m", "tests.faulty",
                                                                     "env-step@1:INT", "m", "--a"]


@pytest.mark.slow
def test_the_variable_in_a_users_shell_does_not_stop_a_run(tmp_path):
  """maddpg-train with MADDPG_TF_FAULT set to kill at the first checkpoint (as the kill tests once armed it)
  trains to its end and leaves its complete checkpoints."""
  workdir = str(tmp_path / "run")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO,
             MADDPG_TF_FAULT="checkpoint-before-marker@1:KILL")
  result = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.train", f"--config={REPO}/configs/lbf.py:smoke",
                           "--config.total_steps=400", "--config.checkpoint.every_steps=200",
                           "--config.loop.warmup_episodes=1", "--config.jit_compile=False",
                           f"--workdir={workdir}", "--quiet"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  steps = [step for step, _ in checkpointing.complete_checkpoints(os.path.join(workdir, "checkpoints"))]
  assert steps == [200, 400]
