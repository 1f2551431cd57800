"""`maddpg_tf.run.checkpointing`'s `Checkpointer`, `save`, `load` and `latest` on small parts: which
checkpoints count and are kept, where a part's values go, and how a checkpoint that does not fit is refused.
(The format and its migration: test_checkpoint_format.py; damaged files: tests/test_generated_inputs.py.)"""

import json
import os

import numpy as np
import pytest

from maddpg_tf.run import checkpointing

METADATA = {"task": "fake", "seed": 3}


class Part:
  """A Saveable whose state is `state`; `restore` records what it was given (and `log`, the order)."""

  def __init__(self, state=None, log=None, error=None):
    self.state, self.log, self.error, self.restored = state or {}, log, error, None

  def save(self):
    return self.state

  def restore(self, state):
    if self.log is not None:
      self.log.append(self)
    if self.error is not None:
      raise self.error
    self.restored = state


def steps(directory):
  return [step for step, _ in checkpointing.complete_checkpoints(directory)]


def test_the_newest_keep_checkpoints_are_kept_and_leftovers_removed(tmp_path):
  directory = str(tmp_path)
  checkpointer = checkpointing.Checkpointer(directory, METADATA, keep=2)
  os.makedirs(tmp_path / ".tmp-ckpt-7-999999")  # a writer killed before its rename
  for step in (10, 20, 30):
    checkpointer.save(step, {"p": Part({"step": step})})
  assert steps(directory) == [20, 30] and checkpointer.latest() == os.path.join(directory, "ckpt-30")
  assert sorted(os.listdir(directory)) == ["ckpt-20", "ckpt-30"]
  checkpointer.save(30, {"p": Part({"step": "again"})})  # the same step again replaces it
  assert steps(directory) == [20, 30]
  assert checkpointing.load(checkpointer.latest(), METADATA)[1] == {"step": "again"}


def test_a_checkpoint_without_its_marker_is_not_restored(tmp_path):
  directory = str(tmp_path)
  checkpointer = checkpointing.Checkpointer(directory, METADATA)
  assert checkpointer.latest() is None and checkpointer.restore_latest({"p": Part()}) is None
  checkpointer.save(10, {"p": Part({"step": 10})})
  newer = checkpointer.save(20, {"p": Part({"step": 20})})
  os.remove(os.path.join(newer, checkpointing.MARKER))  # killed after the data, before the marker
  os.makedirs(tmp_path / "ckpt-30")  # nor an empty one
  part = Part()
  assert checkpointer.restore_latest({"p": part}) == os.path.join(directory, "ckpt-10")
  assert part.restored == {"step": 10}


def test_top_level_arrays_go_to_the_npz_the_rest_to_json_and_parts_restore_in_order(tmp_path):
  log = []
  first = Part({"weights": np.arange(6, dtype=np.float32).reshape(2, 3), "rng": {"state": 5}}, log)
  second = Part({"returns": [1.5, np.float32(2.5)], "env": {"field": np.ones(2, np.int32), "t": 4}}, log)
  checkpointer = checkpointing.Checkpointer(str(tmp_path), METADATA)
  path = checkpointer.save(40, {"first": first, "second": second})
  with np.load(os.path.join(path, "arrays.npz"), allow_pickle=False) as data:
    assert sorted(data.files) == ["state:env/field", "state:returns/1", "weights"]
    np.testing.assert_array_equal(data["weights"], np.arange(6).reshape(2, 3))
  with open(os.path.join(path, "state.json")) as handle:
    assert json.load(handle) == {"rng": {"state": 5},
                                 "returns": [1.5, {"__array__": "state:returns/1", "scalar": True}],
                                 "env": {"field": {"__array__": "state:env/field"}, "t": 4}}
  with open(os.path.join(path, checkpointing.MARKER)) as handle:
    marker = json.load(handle)
  assert {k: marker[k] for k in ("task", "seed", "step", "format")} == {"task": "fake", "seed": 3, "step": 40,
                                                                       "format": checkpointing.FORMAT}

  restored_first, restored_second = Part(log=log), Part(log=log)
  log.clear()
  checkpointer.restore_latest({"second": restored_second, "first": restored_first})
  assert log == [restored_second, restored_first]
  state = restored_first.restored
  assert state is restored_second.restored  # every part reads the one merged state
  assert sorted(state) == ["env", "returns", "rng", "weights"]
  np.testing.assert_array_equal(state["weights"], first.state["weights"])
  assert state["returns"] == [1.5, 2.5]
  assert type(state["returns"][1]) is np.float32  # pylint: disable=unidiomatic-typecheck  # its dtype kept
  assert state["env"]["t"] == 4 and state["env"]["field"].dtype == np.int32


@pytest.mark.parametrize("error,detail", [
    (ValueError("unknown counters ['steps']: not this version's checkpoint"),
     "unknown counters ['steps']: not this version's checkpoint"),
    (KeyError("replay_rng"), "replay_rng is missing: not this run's"),
])
def test_a_part_that_does_not_fit_is_one_checkpoint_error_naming_the_path(tmp_path, error, detail):
  checkpointer = checkpointing.Checkpointer(str(tmp_path), METADATA)
  path = checkpointer.save(50, {"p": Part({"x": 1})})
  with pytest.raises(checkpointing.CheckpointError) as refused:
    checkpointer.restore_latest({"p": Part(error=error)})
  assert str(refused.value) == f"checkpoint {path}: {detail}"


def test_a_checkpoint_of_another_run_is_refused_naming_the_difference(tmp_path):
  path = checkpointing.Checkpointer(str(tmp_path), METADATA).save(60, {"p": Part({"x": 1})})
  other = checkpointing.Checkpointer(str(tmp_path), dict(METADATA, seed=4))
  with pytest.raises(checkpointing.CheckpointError) as refused:
    other.restore_latest({"p": Part()})
  assert str(refused.value) == (f"checkpoint {path} is of another run: its seed is 3, this run's is 4; move it "
                                f"out of the workdir to resume from this run's own checkpoints")


def test_a_checkpoint_that_cannot_be_written_keeps_the_previous_one(tmp_path, monkeypatch):
  directory = str(tmp_path)
  checkpointer = checkpointing.Checkpointer(directory, METADATA)
  previous = checkpointer.save(70, {"p": Part({"x": 1})})

  def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(np, "savez", disk_full)
  with pytest.raises(checkpointing.CheckpointError) as refused:
    checkpointer.save(80, {"p": Part({"x": 2})})
  assert str(refused.value) == (f"could not write checkpoint {os.path.join(directory, 'ckpt-80')}: No space left "
                                f"on device; the previous checkpoint is kept")
  assert os.listdir(directory) == ["ckpt-70"] and checkpointer.latest() == previous
