"""`maddpg_tf.run.workdir`: which directories a run may use, what makes two configs one run, how the
differences are named, and the run files' atomic writes."""

import json
import os

import pytest

from maddpg_tf import config as config_lib, files
from maddpg_tf.envs import tasks as tasks_lib
from maddpg_tf.run import errors, locking
from maddpg_tf.run import workdir as workdir_lib


def resolved(**overrides):
  config = config_lib.get_config("smoke")
  with config.unlocked():
    for key, value in overrides.items():
      config_lib.set_value(config, key, value)
  return config_lib.resolve(config)


def write_config(path, config):
  os.makedirs(path, exist_ok=True)
  files.write_json(os.path.join(path, "config.json"), config.to_dict())


def test_a_new_an_empty_and_a_lock_only_directory_are_accepted(tmp_path):
  config = resolved()
  workdir_lib.Workdir(str(tmp_path / "new")).check(config)
  workdir_lib.Workdir(str(tmp_path)).check(config)
  (tmp_path / "run.lock").write_text("")  # what a finished run's released lock leaves
  workdir_lib.Workdir(str(tmp_path)).check(config)


def test_a_file_and_a_directory_of_something_else_are_refused(tmp_path):
  config = resolved()
  (tmp_path / "file").write_text("x")
  with pytest.raises(errors.RunError, match=r"^--workdir .*file is a file, not a directory$"):
    workdir_lib.Workdir(str(tmp_path / "file")).check(config)
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "notes.txt").write_text("x")
  with pytest.raises(errors.RunError, match=r"exists and holds no maddpg-tf run \(no config.json\)"):
    workdir_lib.Workdir(str(tmp_path / "other")).check(config)


def test_the_same_run_with_another_budget_or_backend_is_the_same_run(tmp_path):
  write_config(str(tmp_path), resolved())
  workdir_lib.Workdir(str(tmp_path)).check(resolved(total_steps=10_000_000, env_backend="reference"))


def test_another_run_is_refused_naming_the_task_and_estimator_before_other_keys(tmp_path):
  write_config(str(tmp_path), resolved())
  other = resolved(**{"task": "lbf-10x10-3p-3f", "estimator.name": "stgs-1", "learner.gamma": 0.5, "replay.batch_size": 64})
  with pytest.raises(errors.RunError) as refused:
    workdir_lib.Workdir(str(tmp_path)).check(other)
  message = str(refused.value)
  assert "holds a different run (task: " in message  # named first, though "estimator.name" sorts before it
  assert message.index("task:") < message.index("estimator.name:")
  assert message.count(" there, ") == 3  # the first three differences only
  assert message.endswith("use a new --workdir, or the same config to resume")


def test_an_unreadable_config_json_is_one_line_and_left_as_it_was(tmp_path):
  (tmp_path / "config.json").write_text("{not json")
  with pytest.raises(errors.RunError, match=r"config.json is unreadable .*restore it, or use a new --workdir"):
    workdir_lib.Workdir(str(tmp_path)).check(resolved())
  assert (tmp_path / "config.json").read_text() == "{not json"


def test_run_files_are_written_whole_and_a_resume_keeps_the_first_provenance(tmp_path):
  workdir = workdir_lib.Workdir(str(tmp_path / "run"))
  config = resolved()
  workdir.write_run_files(config, {"first": True})
  workdir.write_run_files(config, {"first": False})
  with open(os.path.join(workdir.path, "provenance.json")) as handle:
    assert json.load(handle) == {"first": True}
  resumes = [name for name in os.listdir(workdir.path) if name.startswith("provenance-resume-")]
  assert len(resumes) == 1
  with open(os.path.join(workdir.path, "config.json")) as handle:
    assert json.load(handle) == json.loads(json.dumps(config.to_dict()))
  assert not [name for name in os.listdir(workdir.path) if ".tmp" in name]  # no temporary file left


def test_the_lock_is_held_re_entrantly_and_released_empty(tmp_path):
  workdir = workdir_lib.Workdir(str(tmp_path / "run"))
  with workdir.hold():
    with workdir.hold():  # the grid's run lock, then the run's own
      assert locking.holder(workdir.lock)["pid"] == os.getpid()
  assert locking.holder(workdir.lock) is None


def test_provenance_names_the_food_rule_of_an_lbf_run_only():
  lbf = resolved()
  record = workdir_lib.provenance(lbf, tasks_lib.resolve_task(lbf.task))
  assert record["task"] == lbf.task and record["seed"] == lbf.seed and record["fidelity"] == lbf.fidelity
  assert record["lbf_food_rule"] == lbf.lbf_food_rule and "food rule" in record["note"]
  assert set(record["packages"]) == set(workdir_lib.PACKAGES)
  rware = resolved(task="rware-tiny-2ag")
  record = workdir_lib.provenance(rware, tasks_lib.resolve_task(rware.task))
  assert "lbf_food_rule" not in record and record["note"].startswith("rware ")


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path):
  (tmp_path / "m.py").write_bytes(b"abc")
  assert workdir_lib.file_sha256(str(tmp_path / "m.py")) == (
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")  # FIPS 180-2's "abc" example
