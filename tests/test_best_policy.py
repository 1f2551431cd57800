"""checkpointing.BestPolicy: which evaluations replace the kept learner, and what a resumed run removes."""

import numpy as np

from maddpg_tf.run import checkpointing

METADATA = {"task": "t", "estimator": "e", "seed": 0}


class Learner:
  """A learner whose arrays say when they were taken."""

  def __init__(self):
    self.value = 0.0

  def save(self):
    return {"w": np.full(3, self.value, np.float32)}


def kept(directory):
  return [(step, float(checkpointing.load(path, METADATA)[0]["w"][0]))
          for step, path in checkpointing.complete_checkpoints(directory)]


def test_only_a_strictly_better_finite_evaluation_replaces_the_kept_learner(tmp_path):
  learner, directory = Learner(), str(tmp_path / "best")
  best = checkpointing.BestPolicy(directory, METADATA, learner)
  means = []
  for step, mean in [(0, 0.5), (100, 0.4), (200, 0.5), (300, float("nan")), (400, 0.7), (500, 0.7)]:
    learner.value = step
    written = best.offer(step, mean, means)
    means.append(mean)
    assert (written is not None) == (step in (0, 400)), step  # ties keep the earlier; NaN never wins
  assert kept(directory) == [(400, 400.0)]
  assert checkpointing.load(best.latest(), METADATA)[2]["mean_return"] == 0.7


def test_a_resumed_run_replaces_a_best_written_beyond_its_checkpoint(tmp_path):
  learner, directory = Learner(), str(tmp_path / "best")
  best = checkpointing.BestPolicy(directory, METADATA, learner)
  learner.value = 700
  best.offer(700, 0.9, [0.1, 0.2])  # the process that died got this far
  # Resumed from step 500: its evaluations so far are those before 500, and step 600 beats them.
  learner.value = 600
  assert best.offer(600, 0.3, [0.1, 0.2]) is not None
  assert kept(directory) == [(600, 600.0)]
