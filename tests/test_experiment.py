"""End-to-end runs: files written, exact resume, learning on a small LBF task."""

import json
import os
import re

import numpy as np
import pytest

from configs import lbf
from maddpg_tf import config as common
from maddpg_tf.run import checkpointing, experiment, loggers


def smoke_config(**overrides):
  config = lbf.get_config("smoke")
  for key, value in overrides.items():
    common.set_value(config, key, value)
  return config


def evaluation_means(workdir):
  return [mean for _, mean in loggers.read_evaluations_csv(os.path.join(workdir, "evaluations.csv"))]


@pytest.mark.slow
def test_smoke_run_writes_results_and_a_complete_checkpoint(tmp_path):
  workdir = str(tmp_path / "run")
  summary = experiment.Experiment(smoke_config(), workdir, progress=False).run()
  assert summary["env_steps"] == 2000 and summary["updates"] > 0
  with open(os.path.join(workdir, "config.json")) as handle:
    config = json.load(handle)
  assert config["fidelity"] == "code" and config["loop"]["episode_limit"] == 25
  assert config["learner"]["use_target_networks"] is False
  with open(os.path.join(workdir, "provenance.json")) as handle:
    provenance = json.load(handle)
  assert provenance["packages"]["lbforaging"] == "2.0.0" and provenance["gym_id"].endswith("-v3")
  assert len(provenance["git_revision"]) in (40, 7) or provenance["git_revision"] == "unknown"
  steps = [step for step, _ in loggers.read_evaluations_csv(os.path.join(workdir, "evaluations.csv"))]
  assert steps == [0, 1000, 2000]  # every 1,000 steps, and the final policy at the last step
  assert checkpointing.complete_checkpoints(os.path.join(workdir, "checkpoints"))[-1][0] == 2000
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(workdir, "tb")))
  from tensorboard.backend.event_processing import event_accumulator
  events = event_accumulator.EventAccumulator(os.path.join(workdir, "tb"), size_guidance={"tensors": 0})
  events.Reload()
  tags = set(events.Tags()["tensors"])
  for tag in ("eval/mean_return", "train/critic_loss/agent_1", "train/temperature", "perf/env_steps_per_s",
              "policy_grad_variance/dense_0/kernel/agent_0", "per_sample_grad_variance/dense_2/bias"):
    assert tag in tags, (tag, sorted(tags))


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run_whatever_steps_the_envs(tmp_path):
  """Stopping at 1,000 steps and resuming to 2,000 gives the evaluations of a straight 2,000-step run. The
  straight run steps its envs in this process, the interrupted one in two worker processes and the resumed
  one in one: the worker count changes no number, and a checkpoint resumes under any count."""
  straight = str(tmp_path / "straight")
  experiment.Experiment(smoke_config(env_workers=0), straight, progress=False).run()
  resumed = str(tmp_path / "resumed")
  experiment.Experiment(smoke_config(total_steps=1000, env_workers=2), resumed, progress=False).run()
  summary = experiment.Experiment(smoke_config(env_workers=1), resumed, progress=False).run()
  assert summary["env_steps"] == 2000
  with open(os.path.join(straight, "evaluations.csv")) as a, open(os.path.join(resumed,
                                                                              "evaluations.csv")) as b:
    assert a.read() == b.read()


@pytest.mark.slow
def test_every_finished_episode_owes_its_update_and_blocks_stay_full(tmp_path):
  """One update per finished episode (the smoke config's LBF setting), submitted to the learner in blocks of
  at least num_envs (4) updates: fewer are owed, and kept in the checkpoint, until a block is full."""
  workdir = str(tmp_path / "run")
  blocks = []
  run = experiment.Experiment(smoke_config(), workdir, progress=False)
  original = run.updates.run
  run.updates.run = lambda jobs: blocks.append(len(jobs)) or original(jobs)
  run.run()
  run.close()
  _, state, _ = checkpointing.load(checkpointing.latest(os.path.join(workdir, "checkpoints")),
                                   {"task": "lbf-8x8-2p-2f-coop", "estimator": "gst", "seed": 0,
                                    "fidelity": "code"})
  counters, owed = state["counters"], state["owed_updates"]
  assert counters["updates"] + owed == counters["episodes"]  # 1 update per episode
  assert 0 <= owed < 4
  assert sum(blocks) == counters["updates"] and min(blocks) >= 4


@pytest.mark.slow
def test_text_fidelity_uses_targets_and_the_env_limit(tmp_path):
  config = experiment.resolve_config(smoke_config(fidelity="text"))
  assert config.learner.use_target_networks is True and config.loop.episode_limit == 50
  assert config.loop.eval_into_replay is False and config.loop.truncation_is_terminal is False
  assert config.estimator.schedule_unit == "env_steps"
  summary = experiment.Experiment(smoke_config(fidelity="text"), str(tmp_path / "text"),
                                  progress=False).run()
  assert summary["env_steps"] == 2000


@pytest.mark.parametrize("overrides,message", [
    ({"task": "lbf-9x9"}, r"unknown task 'lbf-9x9'"),
    ({"estimator.name": "gumbel"}, r"unknown estimator 'gumbel'"),
    ({"estimator.temperature": 0.0}, r"estimator.temperature must be a number > 0 .*got 0.0"),
    ({"estimator.num_samples": 3}, r"estimator 'gst' has no parameter 'num_samples'"),
    ({"total_steps": -5}, r"total_steps must be an integer >= 0, got -5"),
    ({"fidelity": "paper"}, r"fidelity must be one of 'code', 'text', got 'paper'"),
    ({"loop.episode_limit": 80}, r"loop.episode_limit must be an integer in 1..50 \(the env's own limit for "
                                 r"lbf-8x8-2p-2f-coop\), got 80"),
    ({"replay.batch_size": 0}, r"replay.batch_size must be an integer >= 1, got 0"),
])
def test_bad_config_values_raise_one_line(overrides, message):
  with pytest.raises(experiment.RunError, match=message) as error:
    experiment.resolve_config(smoke_config(**overrides))
  assert "\n" not in str(error.value)


@pytest.mark.slow
def test_workdir_of_a_different_run_is_refused_and_untouched(tmp_path):
  workdir = str(tmp_path / "run")
  experiment.Experiment(smoke_config(total_steps=500), workdir, progress=False).run()
  before = {name: open(os.path.join(workdir, name), "rb").read() for name in ("config.json",
                                                                            "evaluations.csv")}
  with pytest.raises(experiment.RunError, match=r"holds a different run \(estimator.temperature: 0.7 "
                                                r"there, 0.3 here\)"):
    experiment.Experiment(smoke_config(**{"estimator.temperature": 0.3}), workdir, progress=False)
  after = {name: open(os.path.join(workdir, name), "rb").read() for name in before}
  assert before == after


@pytest.mark.slow
def test_corrupt_checkpoint_is_reported(tmp_path):
  workdir = str(tmp_path / "run")
  experiment.Experiment(smoke_config(total_steps=500), workdir, progress=False).run()
  latest = checkpointing.latest(os.path.join(workdir, "checkpoints"))
  with open(os.path.join(latest, "arrays.npz"), "r+b") as handle:
    handle.truncate(100)
  with pytest.raises(experiment.RunError, match=r"is corrupt or incomplete"):
    experiment.Experiment(smoke_config(total_steps=1000), workdir, progress=False).run()


@pytest.mark.slow
def test_incomplete_checkpoint_is_ignored(tmp_path):
  """A checkpoint directory without its COMPLETE marker (a kill mid-write) is never restored."""
  workdir = str(tmp_path / "run")
  experiment.Experiment(smoke_config(total_steps=1000), workdir, progress=False).run()
  directory = os.path.join(workdir, "checkpoints")
  newest = checkpointing.latest(directory)
  os.remove(os.path.join(newest, checkpointing.MARKER))
  assert checkpointing.latest(directory) != newest


@pytest.mark.slow
def test_nan_loss_stops_with_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  experiment.Experiment(smoke_config(total_steps=1000), workdir, progress=False).run()
  directory = os.path.join(workdir, "checkpoints")
  kept = checkpointing.latest(directory)
  original = experiment.replay_buffer.ReplayBuffer.sample

  def poisoned(self, batch_size, rng):
    batch = original(self, batch_size, rng)
    batch.reward[0, 0] = np.nan
    return batch

  monkeypatch.setattr(experiment.replay_buffer.ReplayBuffer, "sample", poisoned)
  with pytest.raises(experiment.RunError, match=r"training stopped in updates [\d,]+-[\d,]+ \(env step [\d,]+\): "
                                                r"the critic loss is NaN or infinite; last good checkpoint: "
                                                + re.escape(kept)) as error:
    experiment.Experiment(smoke_config(total_steps=2000), workdir, progress=False).run()
  assert "\n" not in str(error.value)
  assert checkpointing.latest(directory) == kept


def _scalar_points(logdir):
  """[(tag, step)] of every scalar record in the event files of `logdir`, duplicates included."""
  import tensorflow as tf
  points = []
  for name in sorted(os.listdir(logdir)):
    if name.startswith("events.out.tfevents."):
      for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
        points += [(value.tag, event.step) for value in event.summary.value]
  return points


@pytest.mark.slow
def test_resumed_run_logs_each_tensorboard_point_once(tmp_path):
  """A run killed after logging past its checkpoint repeats those points on resume; TensorBoard must show
  them once (the superseded event files are kept aside, whole)."""
  config = smoke_config(**{"checkpoint.every_steps": 1000})
  straight = str(tmp_path / "straight")
  experiment.Experiment(config, straight, progress=False).run()
  resumed = str(tmp_path / "resumed")
  experiment.Experiment(config, resumed, progress=False).run()
  checkpoints = os.path.join(resumed, "checkpoints")
  import shutil
  shutil.rmtree(os.path.join(checkpoints, "ckpt-2000"))  # as if killed just before its last checkpoint
  experiment.Experiment(config, resumed, progress=False).run()
  points = _scalar_points(os.path.join(resumed, "tb"))
  assert len(points) == len(set(points))
  assert sorted(points) == sorted(_scalar_points(os.path.join(straight, "tb")))
  archived = os.listdir(os.path.join(resumed, "tb_superseded"))
  assert len(archived) == 1
  assert len(_scalar_points(os.path.join(resumed, "tb_superseded", archived[0]))) > len(points) // 2


@pytest.mark.slow
def test_a_run_resumes_across_env_backends_with_the_same_numbers(tmp_path):
  """LBF 10x10 (random policies score there): a straight run on the reference envs, and a run whose first
  half steps the fast backend in two worker processes and whose second half resumes on the reference envs
  in one, end with the same evaluations and networks (the checkpoint's env state converts)."""
  base = {"task": "lbf-10x10-3p-3f", "jit_compile": False, "loop.eval_every_steps": 500,
          "loop.eval_episodes": 8}
  straight = str(tmp_path / "straight")
  first = experiment.Experiment(smoke_config(**base, env_workers=0, env_backend="reference"), straight,
                                progress=False)
  first.run()
  resumed = str(tmp_path / "resumed")
  experiment.Experiment(smoke_config(**base, total_steps=1000, env_workers=2, env_backend="fast"), resumed,
                        progress=False).run()
  second = experiment.Experiment(smoke_config(**base, env_workers=1, env_backend="reference"), resumed,
                                 progress=False)
  second.run()
  second.close()
  assert evaluation_means(straight) == evaluation_means(resumed) and max(evaluation_means(straight)) > 0
  for name, value in first.learner.save().items():
    np.testing.assert_array_equal(value, second.learner.save()[name], err_msg=name)
