"""A user's PettingZoo env from the command line, as a person runs it: the factory's module found in the
working directory (as estimator modules are) by a console script, envs that cannot be followed refused in
one line with exit status 2 before anything is written (agents that leave mid-episode, an env that does not
replay its reset seed and actions: the same line from maddpg-train and maddpg-evaluate), an env that ends its
own episodes without declaring a limit trained with --config.loop.episode_limit, and the adapter's changes
(padded observations, actions mod n) said at start and kept in provenance.json."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from maddpg_tf import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET = os.path.join(REPO, "configs", "pettingzoo.py")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)

# A console script runs with its own directory first on sys.path, not the working directory (`python -m`
# would put the working directory there and hide the case): this launcher is the same.
LAUNCHER = "from maddpg_tf.cli.{program} import run\nrun()\n"


def program(tmp_path, name, *args, cwd=None):
  launcher = tmp_path / "bin" / f"maddpg_{name}.py"
  launcher.parent.mkdir(exist_ok=True)
  launcher.write_text(LAUNCHER.format(program=name))
  return subprocess.run([sys.executable, str(launcher), *args], capture_output=True, text=True, env=ENV,
                        cwd=str(cwd or REPO), timeout=600)


def one_error_line(result, name):
  assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"maddpg-{name}: error: "), result.stderr
  assert "Traceback" not in result.stderr and "np.float" not in lines[0]
  return lines[0]


def test_agents_that_leave_mid_episode_are_refused_before_anything_is_written(tmp_path):
  workdir = tmp_path / "run"
  result = program(tmp_path, "train", f"--config={PRESET}:env=tests.pettingzoo_toy:vanishing_counter,smoke",
                   f"--workdir={workdir}", "--quiet")
  line = one_error_line(result, "train")
  assert "no observation for agent 'b'" in line and "supported: one agent set for the whole episode" in line
  assert "-step probe" in line
  assert not workdir.exists()


@pytest.mark.skipif(importlib.util.find_spec("pygame") is None, reason="pettingzoo[butterfly] needs pygame")
def test_knights_archers_zombies_from_a_module_in_the_working_directory_is_refused(tmp_path):
  """pettingzoo's knights_archers_zombies removes an agent when it dies (after 100-300 random steps)."""
  work = tmp_path / "work"
  work.mkdir()
  (work / "kaz_envs.py").write_text(textwrap.dedent("""\
      from pettingzoo.butterfly import knights_archers_zombies_v11

      def make(render_mode=None):
        return knights_archers_zombies_v11.parallel_env(render_mode=render_mode)
      """))
  result = program(tmp_path, "train", f"--config={PRESET}:env=kaz_envs:make,smoke", "--workdir=run", "--quiet",
                   cwd=work)
  line = one_error_line(result, "train")
  assert "env 'kaz_envs:make'" in line and "ended at step" in line and "one agent set" in line
  assert set(os.listdir(work)) - {"__pycache__"} == {"kaz_envs.py"}  # no workdir, nothing written


def test_an_env_that_does_not_replay_gets_the_same_line_from_train_and_evaluate(tmp_path):
  noisy = "tests.pettingzoo_toy:noisy_counter"
  trained = program(tmp_path, "train", f"--config={PRESET}:env={noisy},smoke", f"--workdir={tmp_path / 'run'}",
                    "--quiet")
  train_line = one_error_line(trained, "train")
  assert not (tmp_path / "run").exists()
  # A run of that env made before the probe existed: maddpg-evaluate refuses it before loading anything.
  from configs import pettingzoo as pettingzoo_config  # pylint: disable=g-import-not-at-top
  made = config_lib.resolve(pettingzoo_config.get_config("env=tests.pettingzoo_toy:counter,smoke")).to_dict()
  made["task"] = noisy
  old_run = tmp_path / "old"
  (old_run / "checkpoints" / "ckpt-500").mkdir(parents=True)
  (old_run / "checkpoints" / "ckpt-500" / "COMPLETE").write_text("{}")
  (old_run / "config.json").write_text(json.dumps(made))
  before = sorted(str(p) for p in old_run.rglob("*"))
  evaluate_line = one_error_line(program(tmp_path, "evaluate", f"--workdir={old_run}"), "evaluate")
  assert sorted(str(p) for p in old_run.rglob("*")) == before
  # The same answer (the numbers it found differ: the env draws from a generator that no seed resets).
  for fragment in (f"env '{noisy}' (env 0) replayed its episode", "not a function of reset(seed=...) and its "
                   "actions", "(e.g. self.np_random)", "-step probe of random actions"):
    assert fragment in train_line and fragment in evaluate_line, fragment


USER_ENV = """\
from tests.pettingzoo_toy import Counter


def make(render_mode=None):
  # Ends its own episodes (a goal, or 5 steps) and declares no limit attribute.
  return Counter(render_mode=render_mode, declare_limit=False)
"""


@pytest.mark.slow
def test_a_user_env_in_the_working_directory_without_a_declared_limit_trains(tmp_path):
  work = tmp_path / "work"
  work.mkdir()
  (work / "my_envs.py").write_text(USER_ENV)
  args = [f"--config={PRESET}:env=my_envs:make,estimator=gst,smoke", "--config.total_steps=300",
          "--config.jit_compile=False", "--workdir=run", "--quiet"]
  refused = program(tmp_path, "train", *args, cwd=work)
  line = one_error_line(refused, "train")
  assert "env 'my_envs:make' declares no episode limit: give --config.loop.episode_limit=N" in line
  assert not (work / "run").exists()

  result = program(tmp_path, "train", *args, "--config.loop.episode_limit=4", cwd=work)
  assert result.returncode == 0, result.stderr
  note = ("env my_envs:make: observations zero-padded to 3 from sizes [2, 3]; actions 0..2 sent as a mod n "
          "for action counts [3, 2]")
  assert result.stdout.splitlines()[0] == note  # said once, at start
  with open(work / "run" / "provenance.json") as handle:
    provenance = json.load(handle)
  assert provenance["note"] == note and "lbf_food_rule" not in provenance
  assert provenance["user_code"][0]["module_file"] == str(work / "my_envs.py")
  with open(work / "run" / "config.json") as handle:
    assert json.load(handle)["loop"]["episode_limit"] == 4
