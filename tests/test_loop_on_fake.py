"""The whole training loop (warm-up, updates, evaluation, checkpoints, a resume after a hard stop) on the
fake matching game (tests/fakes.py), in seconds: the harness's parts are injected, so none of it needs LBF."""

import os

import numpy as np
import pytest

from configs import lbf
from maddpg_tf.run import checkpointing, experiment, loggers
from maddpg_tf import config as common
from tests import fakes

TOTAL = 600


def fake_config(**overrides):
  config = lbf.get_config("smoke")
  config.total_steps = TOTAL
  config.jit_compile = False
  config.env_workers = 0
  config.loop.episode_limit = 5
  config.loop.warmup_episodes = 4
  config.loop.eval_every_steps = 100
  config.loop.eval_episodes = 16
  config.loop.updates_per_episode = 3
  config.checkpoint.every_steps = 100
  config.replay.batch_size = 64
  config.learner.actor_learning_rate = config.learner.critic_learning_rate = 3e-3
  for key, value in overrides.items():
    common.set_value(config, key, value)
  return config


def make_fake_env(num_envs, seed, workers):
  del workers
  return fakes.make_fake(num_envs=num_envs, seed=seed)


class StopAt:
  """An observer that ends the process's work abruptly at an env step, as a SIGKILL would: no signal
  checkpoint, nothing flushed (it raises through the loop)."""

  class Died(Exception):
    pass

  def __init__(self, counters_of, step):
    self.counters_of, self.step = counters_of, step

  def observe(self, step, actions):
    if self.counters_of().env_steps >= self.step:
      raise self.Died()

  def metrics(self):
    return {}


def run(workdir, overrides=None, **kwargs):
  with experiment.Experiment(fake_config(**(overrides or {})), workdir, progress=False, make_env=make_fake_env,
                             **kwargs) as exp:
    return exp, exp.run()


# The resume test needs no learning: one update per episode is enough to make its state matter.
CHEAP = {"loop.updates_per_episode": 1}


def test_the_loop_trains_evaluates_checkpoints_and_learns_the_fake_game(tmp_path):
  exp, summary = run(str(tmp_path / "run"))
  c = exp.counters
  assert summary["env_steps"] == TOTAL and c.warmup_episodes >= 4
  # Three updates per finished episode (5-step episodes, 4 envs), all scheduled or still owed.
  assert c.episodes == TOTAL // 5 and c.updates + exp.updates.owed_updates == 3 * c.episodes
  steps = [step for step, _ in loggers.read_evaluations_csv(os.path.join(exp.workdir.path, "evaluations.csv"))]
  assert steps == list(range(0, TOTAL, 100)) + [TOTAL]  # every 100 steps, and the final policy
  assert [s for s, _ in checkpointing.complete_checkpoints(exp.workdir.checkpoints)] == [500, 600]
  # A random policy scores 10/9 per 5-step episode; the last evaluations must do better.
  final = [mean for _, mean in loggers.read_evaluations_csv(exp.workdir.evaluations)][-2:]
  assert min(final) > 10 / 9, final


class LearnerAtEvaluations:
  """A logger that keeps the learner's arrays whenever an evaluation is logged (right after it ran)."""

  def __init__(self, learner_of):
    self.learner_of, self.arrays = learner_of, {}

  def write(self, values, step):
    if "eval/mean_return" in values:
      self.arrays[step] = self.learner_of().save()

  def flush(self):
    pass

  def close(self):
    pass


@pytest.mark.slow  # a second training; how the best is chosen and kept: tests/test_best_policy.py
def test_the_run_keeps_the_learner_of_its_best_evaluation(tmp_path):
  holder = {}
  capture = LearnerAtEvaluations(lambda: holder["exp"].learner)
  with experiment.Experiment(fake_config(), str(tmp_path / "run"), progress=False, make_env=make_fake_env,
                             extra_loggers=[capture]) as exp:
    holder["exp"] = exp
    exp.run()
  rows = loggers.read_evaluations_csv(exp.workdir.evaluations)
  best_step = max(rows, key=lambda row: (row[1], -row[0]))[0]  # the first of the highest means
  kept = checkpointing.complete_checkpoints(exp.workdir.best)
  assert [step for step, _ in kept] == [best_step]
  arrays, state, metadata = checkpointing.load(kept[0][1], common.checkpoint_metadata(exp.config))
  assert state == {} and metadata["mean_return"] == pytest.approx(dict(rows)[best_step])
  assert sorted(arrays) == sorted(capture.arrays[best_step])
  for name, value in capture.arrays[best_step].items():
    np.testing.assert_array_equal(arrays[name], value, err_msg=name)


@pytest.mark.slow  # 13 s; exact resume stays in the fast tier through tests/run/test_training.py and test_experiment.py
def test_a_run_that_dies_resumes_from_its_last_complete_checkpoint_to_the_same_result(tmp_path):
  straight, _ = run(str(tmp_path / "straight"), CHEAP)
  workdir = str(tmp_path / "died")
  holder = {}
  observer = StopAt(lambda: holder["exp"].counters, 350)
  with pytest.raises(StopAt.Died):
    with experiment.Experiment(fake_config(**CHEAP), workdir, progress=False, make_env=make_fake_env,
                               observers=[observer]) as exp:
      holder["exp"] = exp
      exp.run()
  assert checkpointing.latest(os.path.join(workdir, "checkpoints")).endswith("ckpt-300")
  resumed, _ = run(workdir, CHEAP)
  with open(straight.workdir.evaluations) as a, open(resumed.workdir.evaluations) as b:
    assert a.read() == b.read()
  for name, value in straight.learner.save().items():
    np.testing.assert_array_equal(value, resumed.learner.save()[name], err_msg=name)
  # The best learner too: one written beyond the checkpoint by the process that died is replaced.
  (step, straight_best), = checkpointing.complete_checkpoints(straight.workdir.best)
  (resumed_step, resumed_best), = checkpointing.complete_checkpoints(resumed.workdir.best)
  assert resumed_step == step
  metadata = common.checkpoint_metadata(straight.config)
  for name, value in checkpointing.load(straight_best, metadata)[0].items():
    np.testing.assert_array_equal(value, checkpointing.load(resumed_best, metadata)[0][name], err_msg=name)
