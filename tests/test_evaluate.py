"""`maddpg-evaluate`: a checkpoint's evaluation equals the run's own, greedy is not sampled, the SavedModel
acts as the checkpoint's actors in a Python that never imports this package, the success measures match
the envs' own state, and every bad input is one line, exit status 2, and nothing written.

The run: the smoke budget on LBF 10x10-3p-3f (random policies score there, so returns vary) without XLA,
3,000 env steps, trained once for the module.
"""

import hashlib
import json
import os
import subprocess
import sys

import gymnasium as gym
import lbforaging  # noqa: F401  (registers Foraging-*-v3)
import numpy as np
import pytest

from configs import lbf
from maddpg_tf.run import saved_policies
from maddpg_tf.run import checkpointing, evaluation
from maddpg_tf import config as common

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
TASK = "lbf-10x10-3p-3f"
TOTAL_STEPS = 3000


def run_config():
  made = lbf.get_config(f"smoke,task={TASK}")
  # lbforaging 2.0.0's food rule, not the task's default: maddpg-evaluate must rebuild the run's own envs
  # (and under it this short run's final evaluation has episodes of different returns).
  for key, value in {"total_steps": TOTAL_STEPS, "jit_compile": False, "env_workers": 0,
                     "lbf_food_rule": "v3"}.items():
    common.set_value(made, key, value)
  return made


def command(*args):
  return subprocess.run([sys.executable, "-m", "maddpg_tf.cli.evaluate", *args], capture_output=True, text=True,
                        env=ENV, cwd=REPO, timeout=300)


def tree(*roots):
  """{path: sha256} of every file under `roots` (and the directories, as None): to see that nothing changed."""
  found = {}
  for root in roots:
    for directory, subdirectories, files in os.walk(root):
      found[directory] = None
      for name in subdirectories:
        found[os.path.join(directory, name)] = None
      for name in files:
        path = os.path.join(directory, name)
        with open(path, "rb") as handle:
          found[path] = hashlib.sha256(handle.read()).hexdigest()
  return found


def assert_one_line_error(result, *fragments):
  assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("maddpg-evaluate: error: "), result.stderr
  for fragment in fragments:
    assert fragment in lines[0], lines[0]
  assert result.stdout == ""


# ---- fast: no training -------------------------------------------------------------------------------

@pytest.fixture()
def fake_run(tmp_path):
  """A workdir that looks like a run to everything checked before a checkpoint is read: config.json,
  complete ckpt-1000 (marker only), ckpt-2000 without its marker."""
  workdir = tmp_path / "run"
  (workdir / "checkpoints" / "ckpt-1000").mkdir(parents=True)
  (workdir / "checkpoints" / "ckpt-2000").mkdir()
  (workdir / "checkpoints" / "ckpt-1000" / checkpointing.MARKER).write_text("{}")
  (workdir / "config.json").write_text(json.dumps(common.resolve(run_config()).to_dict()))
  (tmp_path / "exported").mkdir()
  return workdir


BAD_INPUTS = [
    # (arguments after --workdir=<run>, fragments of the message)
    (["--checkpoint=ckpt-2000"], ["ckpt-2000 is incomplete", "ckpt-1000"]),
    (["--checkpoint=ckpt-5000"], ["no such checkpoint", "ckpt-1000"]),
    (["--checkpoint=latest"], ["'latest' is not allowed", "ckpt-<env step>"]),
    (["--episodes=0"], ["--episodes=0", ">= 1"]),
    (["--episodes=-3"], ["--episodes=-3", ">= 1"]),
    (["--video={tmp}/play.avi"], ["'.avi'", ".gif, .mp4"]),
    # A missing parent is created when the file is written; one under a file cannot be.
    (["--video={tmp}/run/config.json/videos/play.gif"], ["config.json' is not a directory", "cannot be created"]),
    (["--frames={tmp}/run/config.json/frames"], ["config.json' is not a directory"]),
    (["--export={tmp}/exported"], ["already exists"]),
    (["--export={tmp}/run/config.json/exported"], ["config.json' is not a directory"]),
    (["--best", "--checkpoint=ckpt-1000"], ["--best and --checkpoint"]),
    (["--episode_limit=51"], ["--episode_limit=51", "1..50"]),
    (["--seed=-1"], ["--seed=-1", ">= 0"]),
    (["--best"], ["evaluations"]),                      # the fake run has no evaluations.csv
    (["--episodes=3", "extra"], ["unexpected arguments"]),
]


@pytest.mark.parametrize("args, fragments", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_writes_nothing(fake_run, args, fragments):
  tmp = str(fake_run.parent)
  before = tree(tmp)
  result = command(f"--workdir={fake_run}", *(a.format(tmp=tmp) for a in args))
  assert_one_line_error(result, *fragments)
  assert tree(tmp) == before


def test_workdir_that_is_not_a_run(tmp_path):
  (tmp_path / "notes.txt").write_text("not a run")
  (tmp_path / "broken").mkdir()
  (tmp_path / "broken" / "config.json").write_text("{not json")
  before = tree(str(tmp_path))
  assert_one_line_error(command(f"--workdir={tmp_path}"), "no config.json")
  assert_one_line_error(command(f"--workdir={tmp_path / 'notes.txt'}"), "not a directory")
  assert_one_line_error(command(f"--workdir={tmp_path / 'absent'}"), "not a directory")
  assert_one_line_error(command(), "--workdir is required")
  assert_one_line_error(command(f"--workdir={tmp_path / 'broken'}"), "config.json is not a usable run config")
  assert tree(str(tmp_path)) == before


def test_run_without_a_complete_checkpoint(fake_run):
  os.remove(fake_run / "checkpoints" / "ckpt-1000" / checkpointing.MARKER)
  before = tree(str(fake_run))
  assert_one_line_error(command(f"--workdir={fake_run}"), "no complete checkpoint")
  assert tree(str(fake_run)) == before


def test_existing_results_are_not_overwritten(fake_run):
  (fake_run / "evaluations").mkdir()
  (fake_run / "evaluations" / "ckpt-1000-greedy-7.csv").write_text("kept")
  before = tree(str(fake_run))
  assert_one_line_error(command(f"--workdir={fake_run}", "--greedy", "--episodes=7"),
                        "ckpt-1000-greedy-7.csv already exists")
  assert tree(str(fake_run)) == before


def test_output_names():
  assert saved_policies.output_paths("w", "ckpt-5", False, 100) == (
      os.path.join("w", "evaluations", "ckpt-5-sampled-100.json"),
      os.path.join("w", "evaluations", "ckpt-5-sampled-100.csv"))
  assert saved_policies.output_paths("w", "ckpt-5", True, 3, seed=7, episode_limit=10)[0] == os.path.join(
      "w", "evaluations", "ckpt-5-greedy-3-seed7-limit10.json")


def test_summary_by_hand():
  # returns [1, 2, 3, 4]: mean 2.5, s = sqrt(5/3) = 1.290994, t_{0.975, 3} = 3.182446: half-width 2.054260.
  report = {"returns": [1.0, 2.0, 3.0, 4.0], "agent_returns": [[1., 0.], [1., 1.], [2., 1.], [2., 2.]],
            "lengths": [5, 5, 7, 7], "success": [0., 1., 1., 1.]}
  summary = saved_policies.summarise(report)
  assert summary["mean_return"] == 2.5
  assert summary["ci95"] == pytest.approx([2.5 - 2.054260, 2.5 + 2.054260], abs=1e-6)
  assert summary["std_return"] == pytest.approx(1.290994, abs=1e-6)
  assert summary["agent_mean_returns"] == [1.5, 1.0]
  assert summary["mean_length"] == 6.0 and summary["success_mean"] == 0.75
  one = saved_policies.summarise({"returns": [0.25], "agent_returns": [[0.25]], "lengths": [3], "success": None})
  assert one["mean_return"] == 0.25 and np.isnan(one["ci95"]).all() and np.isnan(one["std_return"])
  assert one["success_mean"] is None


def test_best_checkpoint_is_nearest_the_best_evaluation(tmp_path):
  (tmp_path / "evaluations.csv").write_text(
      "step,mean_return,episodes,return_0\n0,0.1,1,0.1\n1000,0.7,1,0.7\n2000,0.7,1,0.7\n3000,0.2,1,0.2\n")
  for step in (1400, 1600, 3000):
    (tmp_path / "checkpoints" / f"ckpt-{step}").mkdir(parents=True)
    (tmp_path / "checkpoints" / f"ckpt-{step}" / checkpointing.MARKER).write_text("{}")
  (tmp_path / "checkpoints" / "ckpt-1000").mkdir()  # incomplete: never chosen
  best = saved_policies.best_checkpoint(str(tmp_path))
  # The best mean 0.7 first at step 1000; ckpt-1400 is 400 steps from it.
  assert (best["best_step"], best["best_mean_return"], best["step"], best["distance"]) == (1000, 0.7, 1400, 400)
  os.remove(tmp_path / "checkpoints" / "ckpt-1400" / checkpointing.MARKER)
  assert saved_policies.best_checkpoint(str(tmp_path))["step"] == 1600
  # A kept best learner of another step is not the best evaluation's: the nearest checkpoint still is.
  for step in (2000, 1000):
    (tmp_path / "best" / f"ckpt-{step}").mkdir(parents=True)
    (tmp_path / "best" / f"ckpt-{step}" / checkpointing.MARKER).write_text("{}")
    best = saved_policies.best_checkpoint(str(tmp_path))
    expected = ("best", 1000, 0) if step == 1000 else ("checkpoints", 1600, 600)
    assert (best["source"], best["step"], best["distance"]) == expected
  assert saved_policies.checkpoint_name(best["path"]) == "best-ckpt-1000"


def test_lbf_food_collected_equals_the_fields_account():
  """Sum of positive rewards == 1 - (food left on the field) / _food_spawned, on envs stepped by hand so
  the final field is there to read; random actions on a small field collect food often."""
  name, per_step = saved_policies.success_measure("lbf", None)
  assert name == "food_collected"
  rng = np.random.default_rng(0)
  collected = []
  for gym_id in ("Foraging-5x5-2p-2f-v3", "Foraging-6x6-3p-3f-v3"):
    env = gym.make(gym_id, disable_env_checker=True).unwrapped
    env.reset(seed=1)
    for _ in range(40):
      spawned, total, done = float(env._food_spawned), 0.0, False
      while not done:
        _, rewards, done, _, _ = env.step(rng.integers(0, 6, size=len(env.players)).tolist())
        total += float(per_step(np.asarray(rewards, np.float32)[np.newaxis])[0])
      assert total == pytest.approx(1.0 - env.field.sum() / spawned, abs=1e-6)
      collected.append(total)
      env.reset()
  assert 0 < np.mean(collected) and max(collected) == pytest.approx(1.0)  # the identity was exercised


def test_rware_deliveries_count_positive_rewards():
  import rware  # noqa: F401  pylint: disable=g-import-not-at-top
  env = gym.make("rware-tiny-2ag-v2", disable_env_checker=True).unwrapped
  name, per_step = saved_policies.success_measure("rware", env)
  assert name == "deliveries"
  rewards = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], np.float32)
  np.testing.assert_array_equal(per_step(rewards), [1.0, 2.0, 0.0])
  from rware.warehouse import RewardType  # pylint: disable=g-import-not-at-top
  env.reward_type = RewardType.GLOBAL  # one delivery pays every agent
  np.testing.assert_array_equal(saved_policies.success_measure("rware", env)[1](rewards), [0.0, 1.0, 0.0])
  env.reward_type = RewardType.TWO_STAGE
  assert saved_policies.success_measure("rware", env) is None


# ---- slow: a real run --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """(workdir, the run's own evaluations [{step, returns}]) of a smoke run trained in this process."""
  from maddpg_tf.run import experiment  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp("evaluate") / "run")
  with experiment.Experiment(run_config(), workdir, progress=False) as run:
    run.run()
    return workdir, [dict(e) for e in run.training.evaluations]


def load(workdir, name):
  config = saved_policies.load_run_config(workdir)
  step, path = saved_policies.find_checkpoint(workdir, name)
  learner, state = saved_policies.load_policy(config, path)
  return config, learner, state


@pytest.mark.slow
def test_checkpoint_evaluation_equals_the_runs_own(trained):
  """The final evaluation runs right after the final checkpoint with its weights: evaluating the
  checkpoint from its own evaluation stream gives the same episodes, bit for bit."""
  workdir, evaluations = trained
  config, learner, state = load(workdir, f"ckpt-{TOTAL_STEPS}")
  final = evaluations[-1]
  assert final["step"] == TOTAL_STEPS
  episodes = config.loop.eval_episodes
  report = saved_policies.evaluate_policy(config, learner, state, episodes=episodes)
  assert report["stream"] == "checkpoint"
  assert report["returns"] == final["returns"]
  assert len(set(final["returns"])) > 1  # returns vary: matching them is not luck
  assert np.asarray(report["agent_returns"]).sum(axis=1) == pytest.approx(report["returns"], abs=1e-6)
  assert report["success"] == pytest.approx(report["returns"], abs=1e-6)  # LBF: the return is the food share
  # The same command gives the same numbers; a fresh stream (explicit seed) gives others.
  assert saved_policies.evaluate_policy(config, learner, state, episodes=episodes)["returns"] == final["returns"]
  fresh = saved_policies.evaluate_policy(config, learner, state, episodes=20, seed=5)
  assert fresh["stream"] == "seed 5"
  assert fresh["returns"][:episodes] != final["returns"]
  assert saved_policies.evaluate_policy(config, learner, state, episodes=20, seed=5)["returns"] == fresh["returns"]
  # Without the checkpoint's stream (the run's first one, as of step 0) the same weights play other episodes.
  assert saved_policies.evaluate_policy(config, learner, None, episodes=episodes)["returns"] != final["returns"]
  # Another cut-off cannot be the saved envs': a fresh stream, episodes cut there.
  short = saved_policies.evaluate_policy(config, learner, state, episodes=episodes, episode_limit=5)
  assert short["stream"] == f"seed {config.seed}" and max(short["lengths"]) <= 5
  # Another checkpoint's stream is another point of the run's sequence of evaluation episodes.
  earlier = saved_policies.evaluate_policy(config, learner, load(workdir, "ckpt-2000")[2], episodes=episodes)
  assert earlier["returns"] != final["returns"]


@pytest.mark.slow
def test_greedy_differs_from_sampled(trained):
  workdir, _ = trained
  config, learner, state = load(workdir, None)
  from maddpg_tf.agent import actor as actor_lib  # pylint: disable=g-import-not-at-top
  observations = np.random.default_rng(3).uniform(0, 10, (64, 3, learner.observation_size)).astype(np.float32)
  greedy, sampled = actor_lib.GreedyNumpyActor(0, 1), actor_lib.NumpyActor(0, 1)
  for actor in (greedy, sampled):
    actor.set_weights(learner.actor_weights())
  logits = greedy.logits(observations)
  probabilities = np.exp(logits - logits.max(-1, keepdims=True))
  probabilities /= probabilities.sum(-1, keepdims=True)
  assert probabilities.max() < 0.99  # the policy is not deterministic
  rng_state = greedy.rng.bit_generator.state
  np.testing.assert_array_equal(greedy.select_actions(observations), np.argmax(logits, -1))
  assert greedy.rng.bit_generator.state == rng_state  # greedy draws nothing
  assert np.any(sampled.select_actions(observations) != np.argmax(logits, -1))

  runs = {mode: saved_policies.evaluate_policy(config, learner, state, episodes=20, greedy=mode == "greedy")
          for mode in ("greedy", "sampled")}
  assert runs["greedy"]["mode"] == "greedy"
  assert (runs["greedy"]["returns"], runs["greedy"]["lengths"]) != (runs["sampled"]["returns"],
                                                                   runs["sampled"]["lengths"])
  again = saved_policies.evaluate_policy(config, learner, state, episodes=20, greedy=True)
  assert again["returns"] == runs["greedy"]["returns"]


LOAD_IN_FRESH_PYTHON = """
import sys
import numpy as np
import tensorflow as tf
policy = tf.saved_model.load(sys.argv[1])
out = policy.act(np.load(sys.argv[2]))
serving = policy.signatures["serving_default"](observations=tf.constant(np.load(sys.argv[2])))
np.savez(sys.argv[3], logits=out["logits"].numpy(), actions=out["actions"].numpy(),
         serving_logits=serving["logits"].numpy(), num_agents=policy.num_agents.numpy(),
         task=policy.task.numpy(), step=policy.step.numpy())
print(sorted(name for name in sys.modules if name.split(".")[0] in ("maddpg_tf", "estimators", "configs")))
"""


@pytest.mark.slow
def test_saved_model_acts_as_the_checkpoint_in_a_fresh_python(trained, tmp_path):
  workdir, _ = trained
  target = tmp_path / "exported" / "gst"  # the README's command: `exported/` need not exist yet
  run_files = tree(workdir)
  result = command(f"--workdir={workdir}", f"--export={target}")
  assert result.returncode == 0, result.stderr
  assert f"exported to {target}" in result.stdout
  assert tree(workdir) == run_files  # exporting evaluates nothing

  config, learner, _ = load(workdir, None)
  observations = np.random.default_rng(1).uniform(0, 10, (7, 3, learner.observation_size)).astype(np.float32)
  np.save(tmp_path / "observations.npy", observations)
  script = subprocess.run([sys.executable, "-c", LOAD_IN_FRESH_PYTHON, str(target), str(tmp_path /
                           "observations.npy"), str(tmp_path / "out.npz")], capture_output=True, text=True,
                          env=dict(ENV, PYTHONPATH=""), cwd=str(tmp_path), timeout=300)
  assert script.returncode == 0, script.stderr
  assert script.stdout.strip() == "[]"  # this package was never imported
  out = np.load(tmp_path / "out.npz")
  expected = learner.policy_logits(observations).numpy()
  assert out["logits"].shape == (7, 3, 6) and out["actions"].dtype == np.int32
  np.testing.assert_allclose(out["logits"], expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(out["serving_logits"], out["logits"])
  np.testing.assert_array_equal(out["actions"], np.argmax(out["logits"], -1))
  assert (int(out["num_agents"]), out["task"].item().decode(), int(out["step"])) == (3, TASK, TOTAL_STEPS)
  # An existing export directory is refused, and left as it was.
  before = tree(str(target))
  assert_one_line_error(command(f"--workdir={workdir}", f"--export={target}"), "already exists")
  assert tree(str(target)) == before


@pytest.mark.slow
def test_command_writes_results_beside_the_checkpoint(trained, tmp_path):
  workdir, evaluations = trained
  run_files = tree(workdir)
  result = command(f"--workdir={workdir}", "--episodes=4")
  assert result.returncode == 0, result.stderr
  assert "the checkpoint's evaluation stream" in result.stdout and "food collected" in result.stdout
  json_path = os.path.join(workdir, "evaluations", f"ckpt-{TOTAL_STEPS}-sampled-4.json")
  with open(json_path) as handle:
    report = json.load(handle)
  assert report["returns"] == evaluations[-1]["returns"]
  assert report["mean_return"] == pytest.approx(np.mean(evaluations[-1]["returns"]))
  with open(json_path.replace(".json", ".csv")) as handle:
    rows = handle.read().splitlines()
  assert rows[0] == "episode,team_return,agent_0_return,agent_1_return,agent_2_return,length,food_collected"
  assert len(rows) == 5
  assert [float(r.split(",")[1]) for r in rows[1:]] == pytest.approx(evaluations[-1]["returns"], abs=1e-6)
  # Only the two new files: the run's own are as they were.
  after = tree(workdir)
  added = set(after) - set(run_files)
  assert added == {os.path.join(workdir, "evaluations"), json_path, json_path.replace(".json", ".csv")}
  assert {k: after[k] for k in run_files} == run_files
  # Again: refused, nothing changed.
  assert_one_line_error(command(f"--workdir={workdir}", "--episodes=4"), "already exists")
  assert tree(workdir) == after

  # --best: the highest evaluation mean, the learner the run kept at it, 10x the evaluation episodes.
  best = saved_policies.best_checkpoint(workdir)
  assert (best["source"], best["distance"], best["step"]) == ("best", 0, best["best_step"])
  result = command(f"--workdir={workdir}", "--best", "--greedy")
  assert result.returncode == 0, result.stderr
  assert f"best evaluation: step {best['best_step']:,}" in result.stdout and "saved at it (best/)" in result.stdout
  episodes = 10 * saved_policies.load_run_config(workdir).loop.eval_episodes
  with open(os.path.join(workdir, "evaluations", f"best-ckpt-{best['step']}-greedy-{episodes}.json")) as handle:
    report = json.load(handle)
  assert report["best"]["best_step"] == max(evaluations, key=lambda e: np.mean(e["returns"]))["step"]
  assert len(report["returns"]) == episodes


@pytest.mark.slow
def test_video_frames_show_the_episodes_a_one_env_evaluation_plays(trained, tmp_path):
  workdir, _ = trained
  # In directories that do not exist yet (the README's `--video=videos/gst.mp4`): they are created.
  frames_dir, gif = tmp_path / "frames" / "run", tmp_path / "videos" / "play.gif"
  run_files = tree(workdir)
  result = command(f"--workdir={workdir}", "--episodes=2", f"--frames={frames_dir}", f"--video={gif}",
                   "--seed=4")
  assert result.returncode == 0, result.stderr
  assert tree(workdir) == run_files  # playing evaluates nothing
  config, learner, _ = load(workdir, None)
  frames, returns, lengths = saved_policies.play(config, learner.actor_weights(), 2, seed=4)
  # One frame per episode's first state and one per step.
  assert len(os.listdir(frames_dir)) == len(frames) == sum(lengths) + 2
  assert f"episode returns {' '.join(f'{r:.4f}' for r in returns)}" in result.stdout
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  assert iio.imread(frames_dir / "frame_00000.png").shape == frames[0].shape
  assert gif.stat().st_size > 0
  # The same episodes as an Evaluator on one env of the same fresh stream.
  env = saved_policies.make_eval_env(config, num_envs=1, seed=4)
  actor = saved_policies.make_actor(config, learner.actor_weights(), seed=4)
  result = evaluation.Evaluator(env=env, actor=actor, episodes=2, truncation_is_terminal=True).run()
  assert result.returns == pytest.approx(returns, abs=1e-6) and result.lengths == lengths


@pytest.mark.slow
def test_corrupt_checkpoint_is_one_line(trained, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "copy")
  shutil.copytree(trained[0], workdir)
  arrays = os.path.join(workdir, "checkpoints", f"ckpt-{TOTAL_STEPS}", "arrays.npz")
  with open(arrays, "r+b") as handle:
    handle.truncate(100)
  before = tree(workdir)
  assert_one_line_error(command(f"--workdir={workdir}"), f"ckpt-{TOTAL_STEPS} is corrupt or incomplete")
  assert tree(workdir) == before
