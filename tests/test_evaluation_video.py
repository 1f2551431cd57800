"""`--config.log.video_every_evals`: episodes in TensorBoard while training, with no number changed."""

import csv
import os
import subprocess
import sys

import pytest

from configs import lbf
from maddpg_tf import config as common
from maddpg_tf.run import evaluation_video, experiment


def config(**overrides):
  made = lbf.get_config("smoke,task=lbf-10x10-3p-3f")
  for key, value in {"jit_compile": False, "loop.eval_every_steps": 500, "loop.eval_episodes": 8,
                     **overrides}.items():
    common.set_value(made, key, value)
  return made


def frame_steps(tb_dir):
  """{step: frames} of the `eval/episode` animated images in a run's TensorBoard files."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  events = event_accumulator.EventAccumulator(tb_dir, size_guidance={"tensors": 0})
  events.Reload()
  if evaluation_video.TAG not in events.Tags()["tensors"]:
    return {}
  return {event.step: event.tensor_proto.string_val[2] for event in events.Tensors(evaluation_video.TAG)}


@pytest.mark.slow
def test_every_second_evaluation_draws_an_episode_and_nothing_else_changes(tmp_path):
  plain, filmed = str(tmp_path / "plain"), str(tmp_path / "filmed")
  experiment.Experiment(config(), plain, progress=False).run()
  experiment.Experiment(config(**{"log.video_every_evals": 2, "log.video_max_frames": 8}), filmed,
                        progress=False).run()
  with open(os.path.join(plain, "evaluations.csv")) as a, open(os.path.join(filmed, "evaluations.csv")) as b:
    assert a.read() == b.read()  # evaluations at 0, 500, 1000, 1500 and the final 2000
  gifs = frame_steps(os.path.join(filmed, "tb"))
  assert sorted(gifs) == [0, 1000, 2000] and all(gif.startswith(b"GIF8") for gif in gifs.values())
  assert frame_steps(os.path.join(plain, "tb")) == {}


def test_video_settings_are_checked_and_do_not_change_a_runs_identity(tmp_path):
  with pytest.raises(experiment.RunError, match=r"log.video_every_evals must be an integer >= 0, got -1"):
    experiment.resolve_config(config(**{"log.video_every_evals": -1}))
  with pytest.raises(experiment.RunError, match=r"log.video_max_frames must be an integer >= 1, got 0"):
    experiment.resolve_config(config(**{"log.video_max_frames": 0}))
  workdir = str(tmp_path / "run")
  experiment.Experiment(config(total_steps=500), workdir, progress=False).run()
  # The same run, resumed with videos on: accepted (videos only log).
  experiment.Experiment(config(total_steps=500, **{"log.video_every_evals": 1}), workdir, progress=False)


@pytest.mark.slow
def test_from_the_command_line(tmp_path):
  """`maddpg-train ... --config.log.video_every_evals=1`, as a person runs it: an episode at every evaluation
  (the video path once imported the maddpg-evaluate program and crashed on a duplicate flag)."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "maddpg_tf.cli.train", f"--config={os.path.join(repo, 'configs', 'lbf.py')}:smoke",
       "--config.total_steps=1000", "--config.jit_compile=False", "--config.log.video_every_evals=1",
       "--config.log.video_max_frames=4", f"--workdir={workdir}", "--quiet"],
      capture_output=True, text=True, cwd=repo, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600)
  assert result.returncode == 0, result.stderr
  with open(workdir / "evaluations.csv") as handle:
    evaluated = sorted({int(row["step"]) for row in csv.DictReader(handle)})
  gifs = frame_steps(str(workdir / "tb"))
  assert len(evaluated) >= 2 and sorted(gifs) == evaluated
  assert all(gif.startswith(b"GIF8") for gif in gifs.values())
