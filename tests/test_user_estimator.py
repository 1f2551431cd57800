"""A user's estimator by import path trains through the config and is recorded with its file's hash."""

import hashlib
import json
import os
import sys

import pytest

from configs import lbf
from maddpg_tf.run import experiment

MODULE = '''
import tensorflow as tf

import estimators
from estimators import base


class HalfST(estimators.DiscreteGradientEstimator):
  """Straight-through with the softmax surrogate scaled by `scale`."""

  def __init__(self, logits, temperature=None, scale=0.5, **kwargs):
    parameters = base.record_parameters(locals())
    if not 0 < scale <= 1:
      raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    self._scale = scale
    super().__init__(logits, temperature, parameters=parameters, **kwargs)

  def _surrogate(self, logits, temperature, sample):
    return self._scale * tf.math.softmax(logits / temperature)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
  path = tmp_path / "user_lab_estimators.py"
  path.write_text(MODULE)
  monkeypatch.syspath_prepend(str(tmp_path))
  yield path
  sys.modules.pop("user_lab_estimators", None)


def config(**estimator):
  made = lbf.get_config("smoke")
  made.total_steps, made.jit_compile, made.env_workers = 400, False, 0
  made.loop.eval_every_steps = 200
  for key, value in estimator.items():
    made.estimator[key] = value
  return made


def test_a_user_estimator_trains_and_its_file_hash_is_recorded(user_module, tmp_path):
  workdir = str(tmp_path / "run")
  summary = experiment.Experiment(config(name="user_lab_estimators:HalfST", temperature=0.5,
                                         options="scale=0.25"), workdir, progress=False).run()
  assert summary["updates"] > 0 and summary["estimator"] == "user_lab_estimators:HalfST"
  with open(os.path.join(workdir, "provenance.json")) as handle:
    [source] = json.load(handle)["user_code"]
  assert source["path"] == "user_lab_estimators:HalfST"
  assert source["sha256"] == hashlib.sha256(user_module.read_bytes()).hexdigest()
  assert os.path.samefile(source["module_file"], user_module)


@pytest.mark.parametrize("estimator, message", [
    (dict(name="user_lab_estimators:Missing"), r"has no attribute 'Missing'"),
    (dict(name="no_such_module_here:Thing"), r"no_such_module_here"),
    (dict(name="user_lab_estimators:HalfST", options="sacle=0.3"), r"has no parameter 'sacle'.*scale"),
    (dict(name="user_lab_estimators:HalfST", options="scale=3"), r"scale must be in \(0, 1\], got 3"),
])
def test_bad_user_estimators_are_one_line_and_write_nothing(user_module, tmp_path, estimator, message):
  workdir = tmp_path / "run"
  with pytest.raises(experiment.RunError, match=message) as error:
    experiment.Experiment(config(**estimator), str(workdir), progress=False)
  assert "\n" not in str(error.value) and not workdir.exists()
