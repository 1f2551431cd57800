"""Checkpoints written by earlier versions still resume, and resume exactly.

`tests/data/checkpoint-v0/` holds the env-step-500 checkpoint of a 1,000-step smoke run on LBF 10x10-3p-3f
(replay capacity 600, 32x32 networks, so the files are small) in the first, version-less format: a pickle of
the live parts. `reference/` ran on the packages' envs (whole gym envs pickled), `fast/` on the numba backend.
A resumed run must end as the uninterrupted run of the same config: the same evaluations, byte for byte,
and the same final arrays.
"""

import json
import os
import shutil

import numpy as np
import pytest

from configs import lbf
from maddpg_tf import config as config_lib
from maddpg_tf.run import checkpointing, experiment

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "checkpoint-v0")
TASK = "lbf-10x10-3p-3f"
# The overrides the fixture's run was made with (its config.json is the whole config).
OVERRIDES = {"total_steps": 1000, "checkpoint.every_steps": 500, "loop.eval_every_steps": 500,
             "replay.capacity": 600, "jit_compile": False, "checkpoint.keep_best": False,
             "learner.hidden_sizes": (32, 32)}
METADATA = {"task": TASK, "estimator": "gst", "seed": 0, "fidelity": "code"}


def config(backend):
  made = lbf.get_config(f"smoke,task={TASK}")
  for key, value in dict(OVERRIDES, env_backend=backend).items():
    config_lib.set_value(made, key, value)
  return made


def read(path):
  with open(path) as handle:
    return handle.read()


def final_arrays(workdir):
  arrays, _, _ = checkpointing.load(checkpointing.latest(os.path.join(workdir, "checkpoints")), METADATA)
  return arrays


def old_workdir(tmp_path, written_by):
  workdir = str(tmp_path / f"old-{written_by}")
  shutil.copytree(os.path.join(DATA, written_by), workdir)
  return workdir


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  """The fixture's run without a stop (the backend changes no number, so one serves both)."""
  workdir = str(tmp_path_factory.mktemp("uninterrupted") / "run")
  experiment.Experiment(config("fast"), workdir, progress=False).run()
  return workdir


def test_the_fixture_is_of_the_first_format_and_of_this_config():
  for written_by in ("reference", "fast"):
    path = os.path.join(DATA, written_by, "checkpoints", "ckpt-500")
    assert sorted(os.listdir(path)) == ["COMPLETE", "arrays.npz", "state.pkl"]
    assert "format" not in json.loads(read(os.path.join(path, "COMPLETE")))
    expected = config_lib.resolve(config(written_by)).to_dict()
    assert json.loads(read(os.path.join(DATA, written_by, "config.json"))) == json.loads(json.dumps(expected))


@pytest.mark.parametrize("written_by,backend", [("fast", "fast"),
                                                pytest.param("reference", "reference", marks=pytest.mark.slow),
                                                pytest.param("reference", "fast", marks=pytest.mark.slow)])
def test_a_first_format_checkpoint_resumes_and_ends_as_the_uninterrupted_run(uninterrupted, tmp_path, capsys,
                                                                            written_by, backend):
  workdir = old_workdir(tmp_path, written_by)
  summary = experiment.Experiment(config(backend), workdir, progress=False).run()
  assert f"resuming from {workdir}/checkpoints/ckpt-500 (env step 500)" in capsys.readouterr().out
  assert summary["env_steps"] == 1000 and summary["evaluations"] == 3
  assert read(os.path.join(workdir, "evaluations.csv")) == read(os.path.join(uninterrupted, "evaluations.csv"))
  arrays, expected = final_arrays(workdir), final_arrays(uninterrupted)
  assert sorted(arrays) == sorted(expected)
  for name in arrays:
    np.testing.assert_array_equal(arrays[name], expected[name], err_msg=name)
