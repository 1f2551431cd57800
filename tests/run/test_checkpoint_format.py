"""Checkpoints hold plain data in a versioned format, and those written by earlier versions still resume,
and resume exactly.

`tests/data/checkpoint-v0/` holds the env-step-500 checkpoint of a 1,000-step smoke run on LBF 10x10-3p-3f
(replay capacity 600, 32x32 networks, so the files are small) in the first, version-less format: a pickle of
the live parts. `reference/` ran on the packages' envs (whole gym envs pickled), `fast/` on the numba backend.
A resumed run must end as the uninterrupted run of the same config: the same evaluations, byte for byte,
and the same final arrays.
"""

import json
import os
import pickle
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
    # Written before later config keys existed: read as a run reads it (config.upgrade, through resolve).
    written = config_lib.resolve(json.loads(read(os.path.join(DATA, written_by, "config.json")))).to_dict()
    assert json.loads(json.dumps(written)) == json.loads(json.dumps(expected))


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
  newest = checkpointing.latest(os.path.join(workdir, "checkpoints"))
  assert json.loads(read(os.path.join(newest, checkpointing.MARKER)))["format"] == checkpointing.FORMAT


def test_a_checkpoint_is_json_and_arrays_with_its_format(uninterrupted):
  path = checkpointing.latest(os.path.join(uninterrupted, "checkpoints"))
  assert sorted(os.listdir(path)) == ["COMPLETE", "arrays.npz", "state.json"]
  marker = json.loads(read(os.path.join(path, checkpointing.MARKER)))
  assert marker["format"] == checkpointing.FORMAT == 1 and sorted(marker["sha256"]) == ["arrays.npz", "state.json"]
  state = json.loads(read(os.path.join(path, "state.json")))
  assert state["counters"]["env_steps"] == 1000 and state["warmup_rng"]["bit_generator"] == "PCG64"
  assert state["env"]["backend"] == "fast" and state["env"]["envs"]["field"] == {"__array__": "state:env/envs/field"}
  with np.load(os.path.join(path, "arrays.npz"), allow_pickle=False) as data:
    assert data["state:env/envs/field"].shape == (4, 10, 10) and data["state:env/envs/field"].dtype == np.int32


@pytest.mark.parametrize("written_by", ["reference", "fast"])
def test_migrate_gives_the_plain_data_of_this_format(written_by):
  arrays, state, metadata = checkpointing.load(os.path.join(DATA, written_by, "checkpoints", "ckpt-500"), METADATA)
  assert "format" not in metadata and metadata["step"] == 500
  checkpointing.encode(state, "", {})  # plain data only: anything else raises TypeError
  assert state["env"]["backend"] == state["eval_env"]["backend"] == written_by
  assert state["env"]["num_envs"] == 4 and state["env"]["seeded"] and state["env"]["envs"]["field"].shape == (4, 10, 10)
  assert state["replay_rng"]["bit_generator"] == "PCG64" and state["counters"]["env_steps"] == 500
  assert arrays["observations"].shape == (4, 3, 18) and "replay/observation" in arrays


def test_a_checkpoint_of_an_unknown_format_is_one_line_naming_it(tmp_path):
  path = checkpointing.save(str(tmp_path), 7, {"a": np.zeros(2)}, {"b": 1}, {"task": "t"})
  marker = json.loads(read(os.path.join(path, checkpointing.MARKER)))
  with open(os.path.join(path, checkpointing.MARKER), "w") as handle:
    json.dump(dict(marker, format=2), handle)
  with pytest.raises(checkpointing.CheckpointError) as refused:
    checkpointing.load(path, {"task": "t"})
  assert str(refused.value) == (f"checkpoint {path} has format 2; this maddpg-tf reads formats 0 and 1: resume it "
                                f"with the maddpg-tf that wrote it, or move it out of the workdir")


class _Runs:
  def __reduce__(self):
    return (os.system, ("true",))


def test_a_first_format_pickle_of_other_code_is_refused_unrun(tmp_path):
  path = tmp_path / "ckpt-5"
  path.mkdir()
  np.savez(path / "arrays.npz", a=np.zeros(2))
  (path / "state.pkl").write_bytes(pickle.dumps({"x": _Runs()}))
  (path / checkpointing.MARKER).write_text(json.dumps({"task": "t", "step": 5}))
  with pytest.raises(checkpointing.CheckpointError, match=r"corrupt or incomplete \(UnpicklingError: a first-format "
                                                          r"checkpoint may not hold posix\.system\)"):
    checkpointing.load(str(path), {"task": "t"})


def test_only_plain_data_is_saved():
  arrays = {}
  assert checkpointing.encode({"a": [np.int64(3), (1.5, None)], "b": np.ones(2)}, "part", arrays) == {
      "a": [{"__array__": "state:part/a/0", "scalar": True}, [1.5, None]], "b": {"__array__": "state:part/b"}}
  decoded = checkpointing.decode(json.loads(json.dumps(checkpointing.encode({"a": np.int64(3)}, "p", arrays))),
                                 arrays)
  assert decoded == {"a": 3} and type(decoded["a"]) is np.int64
  for value, name in ((object(), "object"), (np.random.default_rng(0), "Generator"), ({1: 2}, "dict keys")):
    with pytest.raises(TypeError, match=rf"checkpoint state part/x: .*{name}"):
      checkpointing.encode({"x": value}, "part", {})
