"""The exported actors (maddpg_tf/export.py) in this process: the SavedModel's logits and greedy actions are
the learner's (the fresh-Python check, with TensorFlow alone, is tests/test_evaluate.py's slow test)."""

import numpy as np
import pytest
import tensorflow as tf

from maddpg_tf.media import export
from maddpg_tf.agent import learner as learner_lib


def test_the_saved_model_acts_as_the_learners_actors(tmp_path):
  learner = learner_lib.MADDPGLearner(2, 3, 4, learner_lib.LearnerConfig(hidden_sizes=(5,)), seed=3,
                                      jit_compile=False)
  path = export.export_actors(learner, tmp_path / "actors", metadata={"task": "test"})
  observations = np.random.default_rng(0).normal(size=(7, 2, 3)).astype(np.float32)
  model = tf.saved_model.load(str(path))  # kept: its variables live as long as the loaded object
  acted = model.act(tf.constant(observations))
  logits = learner.policy_logits(observations).numpy()
  np.testing.assert_allclose(acted["logits"].numpy(), logits, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(acted["actions"].numpy(), logits.argmax(-1))
  with pytest.raises(ValueError, match="exists"):
    export.export_actors(learner, path)
