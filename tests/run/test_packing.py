"""`maddpg_tf.run.packing.PackedRun` and `maddpg-train --seeds`: several seeds in one process write, seed by
seed, the runs each seed writes alone; a packed run resumes after a stop; bad input is one line.

How close "the same run" is: evaluations.csv, the counters, generators, envs and replay of each seed's
checkpoint are equal to the last bit; the learner's floats to float32 rounding, held here to rtol 1e-4
(TensorFlow's graph optimiser sums the packed update's graph in another order than one run's: after these
80 updates the weights differ by up to about 1e-7 relative; tests/agent/test_seed_axis.py measures it
update by update). A packed run resumed after a stop equals the packed run without one to the last bit.
"""

import glob
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from configs import lbf
from maddpg_tf import config as config_lib
from maddpg_tf.envs.joint import JointStep
from maddpg_tf.run import experiment, packing
from maddpg_tf.run.errors import RunError
from tests import faulty

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LBF = os.path.join(REPO, "configs", "lbf.py")
SEEDS = (0, 3)
# The learner's float arrays in a checkpoint (everything else: replay, envs, counters, integers).
LEARNER_FLOATS = ("actors/", "critics/", "target_actors/", "target_critics/", "actor_adam/", "critic_adam/",
                  "reward/")


def smoke(seed=0, **values):
  config = lbf.get_config("smoke")
  for key, value in {"jit_compile": False, "seed": seed, **values}.items():
    config_lib.set_value(config, key, value)
  return config


def last_checkpoint(workdir):
  return sorted(glob.glob(os.path.join(workdir, "checkpoints", "ckpt-*")),
                key=lambda path: int(path.rsplit("-", 1)[1]))[-1]


def assert_same_run(packed_dir, single_dir, exact_floats):
  for name in ("evaluations.csv", "config.json"):
    with open(os.path.join(packed_dir, name)) as a, open(os.path.join(single_dir, name)) as b:
      assert a.read() == b.read(), name
  packed, single = last_checkpoint(packed_dir), last_checkpoint(single_dir)
  assert os.path.basename(packed) == os.path.basename(single)
  with open(os.path.join(packed, "state.json")) as a, open(os.path.join(single, "state.json")) as b:
    packed_state, single_state = json.load(a), json.load(b)
  for state in (packed_state, single_state):
    del state["tensorboard_files"]  # event file names hold the time and process they were written by
  assert packed_state == single_state
  with np.load(os.path.join(packed, "arrays.npz")) as a, np.load(os.path.join(single, "arrays.npz")) as b:
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
      if exact_floats or not name.startswith(LEARNER_FLOATS):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
      else:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-7, err_msg=name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """A packed run of SEEDS and each seed's run alone (smoke: 2,000 env steps, 80 updates, no XLA)."""
  root = tmp_path_factory.mktemp("packing")
  with packing.PackedRun(smoke(), str(root / "packed"), SEEDS, progress=False) as run:
    summaries = run.run()
    assert isinstance(run.joint_envs, JointStep)  # the fast backend: every seed's envs in one call
  for seed in SEEDS:
    with experiment.Experiment(smoke(seed), str(root / f"single{seed}"), progress=False) as single:
      single.run()
  return root, summaries


# A packed run and two runs alone (25 s): the full suite; the packed update's equality stays in the fast tier
# (tests/agent/test_seed_axis.py).
@pytest.mark.slow
def test_each_packed_seed_writes_the_run_of_that_seed_alone(runs):
  root, summaries = runs
  assert [s["seed"] for s in summaries] == list(SEEDS)
  assert [s["updates"] for s in summaries] == [80, 80]
  for seed in SEEDS:
    assert_same_run(str(root / "packed" / f"seed{seed}"), str(root / f"single{seed}"), exact_floats=False)
    with open(root / "packed" / f"seed{seed}" / "provenance.json") as handle:
      assert json.load(handle)["packed"] == {"seeds": list(SEEDS), "directory": str(root / "packed")}


@pytest.mark.slow  # the packed runs of the fixture above
def test_a_packed_seeds_directory_resumes_as_a_run_alone(runs, tmp_path):
  """A packed seed's checkpoint is a run's: extended alone, it continues where the packed run stopped."""
  root, _ = runs
  import shutil  # pylint: disable=g-import-not-at-top
  copy = tmp_path / "seed3"
  shutil.copytree(root / "packed" / "seed3", copy)
  with experiment.Experiment(smoke(3, total_steps=2_500), str(copy), progress=False) as run:
    summary = run.run()
  assert summary["env_steps"] == 2_500 and summary["updates"] > 80


@pytest.mark.slow  # a second packed run and two runs alone
def test_packed_shared_parameters_with_synchronous_updates_write_the_runs_alone(tmp_path):
  """Also the envs that step on their own: the reference backend's, each seed's in its turn."""
  values = {"learner.share_parameters": True, "loop.asynchronous_updates": False, "env_backend": "reference"}
  with packing.PackedRun(smoke(**values), str(tmp_path / "packed"), SEEDS, progress=False) as run:
    run.run()
    assert run.joint_envs is None
  for seed in SEEDS:
    with experiment.Experiment(smoke(seed, **values), str(tmp_path / f"single{seed}"), progress=False) as single:
      single.run()
    assert_same_run(str(tmp_path / "packed" / f"seed{seed}"), str(tmp_path / f"single{seed}"), exact_floats=False)


def test_what_cannot_be_packed_is_refused_before_anything_is_written(tmp_path):
  with pytest.raises(RunError, match="exact-gradient diagnostics .* do not run on packed seeds"):
    packing.PackedRun(smoke(**{"diagnostics.exact_gradient_every": 4}), str(tmp_path / "w"), SEEDS)
  assert not os.path.exists(tmp_path / "w")
  # A seed's directory that holds another run: refused before any seed's directory is made.
  with experiment.Experiment(smoke(3, total_steps=100, **{"loop.warmup_episodes": 1}), str(tmp_path / "w" / "seed3"),
                             progress=False) as other:
    other.run()
  with pytest.raises(RunError, match="seed3"):
    packing.PackedRun(smoke(), str(tmp_path / "w"), SEEDS)
  assert sorted(os.listdir(tmp_path / "w")) == ["seed3"]
  # A one-seed run's directory as the packed directory.
  with pytest.raises(RunError, match="holds a run of one seed"):
    packing.PackedRun(smoke(3, total_steps=100, **{"loop.warmup_episodes": 1}), str(tmp_path / "w" / "seed3"),
                      SEEDS)


def train(*args):
  return subprocess.run([sys.executable, "-m", "maddpg_tf.cli.train", *args], capture_output=True, text=True,
                        cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600)


@pytest.mark.parametrize("args, expected", [
    (["--seeds=0,0"], "--seeds: seeds must be one or more distinct integers >= 0, got [0, 0]"),
    (["--seeds=0,x"], "--seeds: seeds must be integers >= 0, got ['0', 'x']"),
    (["--seeds=-1"], "--seeds: seeds must be one or more distinct integers >= 0, got [-1]"),
    (["--seeds=0,1", "--config.seed=2"], "give the seeds with --seeds or --config.seed, not both"),
], ids=["repeated", "not-an-integer", "negative", "with-config-seed"])
def test_maddpg_train_refuses_bad_seeds_in_one_line(tmp_path, args, expected):
  done = train(f"--config={LBF}:smoke", f"--workdir={tmp_path / 'w'}", *args)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip().splitlines() == [f"maddpg-train: error: {expected}"]
  assert not os.path.exists(tmp_path / "w")


@pytest.mark.slow  # two program runs of two packed seeds and one straight packed run
def test_a_packed_run_stopped_by_sigterm_resumes_to_the_uninterrupted_numbers(tmp_path):
  workdir = str(tmp_path / "w")
  args = [f"--config={LBF}:smoke", "--config.total_steps=3000", "--config.jit_compile=false", "--seeds=0,3",
          f"--workdir={workdir}", "--quiet"]
  process = subprocess.run(faulty.command(sys.executable, "env-step@1500:TERM", "maddpg_tf.cli.train", args),
                           cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True,
                           timeout=600)
  assert process.returncode == 128 + signal.SIGTERM, process.stderr
  assert "SIGTERM: every seed's checkpoint written under" in process.stderr
  resumed = train(*args)
  assert resumed.returncode == 0, resumed.stderr
  assert resumed.stdout.count("resuming ") == 2 and resumed.stdout.count("done: ") == 2
  for seed in SEEDS:  # each line names its seed's run
    assert f"resuming from {os.path.join(workdir, f'seed{seed}', 'checkpoints', 'ckpt-')}" in resumed.stdout
  straight = str(tmp_path / "straight")
  with packing.PackedRun(smoke(total_steps=3000), straight, SEEDS, progress=False) as run:
    run.run()
  for seed in SEEDS:
    assert_same_run(os.path.join(workdir, f"seed{seed}"), os.path.join(straight, f"seed{seed}"), exact_floats=True)


@pytest.mark.slow  # a second packed run, resumed
def test_seeds_killed_between_their_checkpoints_resume_from_different_steps(runs, tmp_path):
  """SIGKILL after seed 0's checkpoint at 2,000 steps but before seed 3's: seed 3 resumes from its 1,000-step
  checkpoint alone (seed 0 is done and its slice of the learner is left as it is) and ends as the run
  without the kill."""
  root, _ = runs
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "packed"
  shutil.copytree(root / "packed", workdir)
  for seed in SEEDS:  # the copies are this test's runs, not the fixture's
    (workdir / f"seed{seed}" / "run.lock").unlink(missing_ok=True)
  shutil.rmtree(workdir / "seed3" / "checkpoints" / "ckpt-2000")
  with packing.PackedRun(smoke(), str(workdir), SEEDS, progress=False) as run:
    summaries = run.run()
  assert [s["already_finished"] for s in summaries] == [True, False]
  for seed in SEEDS:
    assert_same_run(str(workdir / f"seed{seed}"), str(root / "packed" / f"seed{seed}"), exact_floats=True)
