"""`maddpg-evaluate`: evaluate a saved policy, watch it act, or export it.

    maddpg-evaluate --workdir=runs/gst-s0                                  # the latest complete checkpoint
    maddpg-evaluate --workdir=runs/gst-s0 --checkpoint=ckpt-500000 --episodes=1000 --greedy
    maddpg-evaluate --workdir=runs/gst-s0 --best                           # the absolute metric
    maddpg-evaluate --workdir=runs/gst-s0 --episodes=3 --video=videos/gst.mp4   # or .gif; --frames=DIR (PNG)
    maddpg-evaluate --workdir=runs/gst-s0 --export=exported/gst             # actors as a SavedModel

Which episodes are played, what is reported (printed, and written to `<workdir>/evaluations/`) and what
`--best` means: `maddpg_tf.run.saved_policies`, the library behind this command. With `--video`, `--frames`
or `--export` the command does those and writes no evaluation files.

Bad input is one line on stderr and exit status 2, checked before anything is written.
"""

import math
import os
import sys

from absl import flags

from maddpg_tf import files
from maddpg_tf.cli import common
from maddpg_tf.envs import builder as environments
from maddpg_tf.envs import pettingzoo as pettingzoo_envs
from maddpg_tf.media import video
from maddpg_tf.run import checkpointing, errors, process, saved_policies

PROGRAM = "maddpg-evaluate"

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (as given to maddpg-train).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "ckpt-<env step> (default: the latest complete one).")
_BEST = flags.DEFINE_bool("best", False, "Evaluate the learner saved at the run's best evaluation (else the "
                                         "checkpoint nearest it), with "
                                         f"{saved_policies.BEST_EPISODES_FACTOR}x the run's evaluation episodes.")
_EPISODES = flags.DEFINE_integer("episodes", saved_policies.DEFAULT_EPISODES, "Episodes to evaluate (to play: default 1).")
_GREEDY = flags.DEFINE_bool("greedy", False, "Greedy actions (argmax) instead of sampled ones.")
_SEED = flags.DEFINE_integer("seed", None, "A fresh evaluation stream seeded so (default: the checkpoint's).")
_EPISODE_LIMIT = flags.DEFINE_integer("episode_limit", None, "Episode cut-off (default: the run's).")
_VIDEO = flags.DEFINE_string("video", None, "Write the played episodes as a video (.gif or .mp4).")
_FRAMES = flags.DEFINE_string("frames", None, "Write the played episodes' frames as PNGs in this directory.")
_FPS = flags.DEFINE_float("fps", 5.0, "Frames per second of --video.")
_CELL = flags.DEFINE_integer("cell", 48, "Pixels per grid cell of --video/--frames.")
_EXPORT = flags.DEFINE_string("export", None, "Write the actors as a TensorFlow SavedModel in this new directory.")


def _error(message):
  return common.error(PROGRAM, message)


def _parse_flags(argv):
  return common.parse_flags(PROGRAM, argv, {})


def _check_request():
  """Every flag and path, before anything is loaded or written; returns what to do (a dict)."""
  if not _WORKDIR.value:
    raise errors.RunError("--workdir is required: the run directory of maddpg-train")
  workdir = _WORKDIR.value
  config = saved_policies.load_run_config(workdir)
  task = environments.resolve_task(config.task)
  playing = bool(_VIDEO.value or _FRAMES.value)
  episodes = _EPISODES.value
  if episodes < 1:
    raise errors.RunError(f"--episodes={episodes} is not allowed: expected an integer >= 1")
  if _SEED.value is not None and _SEED.value < 0:
    raise errors.RunError(f"--seed={_SEED.value} is not allowed: expected an integer >= 0")
  if _EPISODE_LIMIT.value is not None and not 1 <= _EPISODE_LIMIT.value <= (task.env_episode_limit or math.inf):
    allowed = (f"an integer in 1..{task.env_episode_limit} (the env's own limit)" if task.env_episode_limit
               else "an integer >= 1")
    raise errors.RunError(f"--episode_limit={_EPISODE_LIMIT.value} is not allowed for {task.name}: expected "
                          f"{allowed}")
  if not 0 < _FPS.value <= 100:
    raise errors.RunError(f"--fps={_FPS.value:g} is not allowed: expected a number in (0, 100]")
  if not 8 <= _CELL.value <= 512:
    raise errors.RunError(f"--cell={_CELL.value} is not allowed: expected an integer number of pixels in [8, 512]")
  if _BEST.value and _CHECKPOINT.value:
    raise errors.RunError("--best and --checkpoint both choose the checkpoint: give one of them")
  step, path, best = saved_policies.choose_checkpoint(workdir, _CHECKPOINT.value, _BEST.value)
  if not _EPISODES.present:
    if playing:
      episodes = 1
    elif best is not None:
      episodes = saved_policies.BEST_EPISODES_FACTOR * config.loop.eval_episodes
  try:
    if _VIDEO.value:
      video.check_video_path(_VIDEO.value)
    if _FRAMES.value:
      video.check_frames_directory(_FRAMES.value)
    if _EXPORT.value:
      _check_export_directory(_EXPORT.value)
  except ValueError as error:
    raise errors.RunError(str(error)) from None
  evaluating = not (playing or _EXPORT.value)
  outputs = None
  if evaluating:
    limit = _EPISODE_LIMIT.value if _EPISODE_LIMIT.value not in (None, config.loop.episode_limit) else None
    outputs = saved_policies.new_output_paths(workdir, saved_policies.checkpoint_name(path), _GREEDY.value,
                                              episodes, _SEED.value, limit)
  return {"workdir": workdir, "config": config, "task": task, "step": step, "path": path, "best": best,
          "episodes": episodes, "outputs": outputs, "evaluating": evaluating}


def _check_export_directory(directory):
  # The same rule as `export.check_export_directory`, which imports TensorFlow.
  if os.path.lexists(directory):
    raise ValueError(f"export directory {directory!r} already exists: expected a new directory "
                     "(nothing is overwritten)")
  files.check_parent_creatable(directory, "export directory")


def main(argv):
  if len(argv) > 1:
    return _error(f"unexpected arguments {argv[1:]}; see --help for the flags")
  try:
    request = _check_request()
  except (errors.RunError, ValueError) as error:
    return _error(error)
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  process.import_tensorflow()
  process.raise_if_interrupted()
  config, name = request["config"], saved_policies.checkpoint_name(request["path"])
  try:
    learner, state = saved_policies.load_policy(config, request["path"])
  except checkpointing.CheckpointError as error:
    return _error(error)
  head = (f"{name} (env step {request['step']:,}) of {request['task'].name} {config.estimator.label} "
          f"seed {config.seed}")
  best = request["best"]
  if best is not None:
    print(saved_policies.describe_best(best, name), flush=True)
  if _EXPORT.value:
    from maddpg_tf.media import export  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
    try:
      target = export.export_actors(learner, _EXPORT.value, {
          "task": request["task"].name, "estimator": config.estimator.label, "checkpoint": name,
          "step": request["step"]})
    except (ValueError, OSError) as error:
      return _error(error)
    print(f"{head}: actors exported to {target} (tf.saved_model.load(path).act(observations))")
  if _VIDEO.value or _FRAMES.value:
    try:
      frames, returns, lengths = saved_policies.play(config, learner.actor_weights(), request["episodes"],
                                                     _GREEDY.value, _SEED.value, _EPISODE_LIMIT.value,
                                                     _CELL.value)
    except pettingzoo_envs.UnsupportedEnv as error:  # what the probe at start did not meet
      return _error(error)
    try:
      if _VIDEO.value:
        video.write_video(_VIDEO.value, frames, fps=_FPS.value)
        print(f"video: {_VIDEO.value} ({len(frames)} frames)")
      if _FRAMES.value:
        video.write_frames(_FRAMES.value, frames)
        print(f"frames: {_FRAMES.value} ({len(frames)} PNGs)")
    except (ValueError, OSError) as error:
      return _error(error)
    print(f"{head}: {'greedy' if _GREEDY.value else 'sampled'} actions, episode returns "
          f"{' '.join(f'{r:.4f}' for r in returns)}, lengths {' '.join(str(n) for n in lengths)}")
  if not request["evaluating"]:
    return 0
  try:
    with saved_policies.claim_outputs(request["outputs"]):
      return _evaluate_and_write(request, config, learner, state, name, head)
  except (errors.RunError, pettingzoo_envs.UnsupportedEnv) as error:
    return _error(error)


def _evaluate_and_write(request, config, learner, state, name, head):
  """Evaluates the checkpoint's policy and writes its results (under `saved_policies.claim_outputs`)."""
  report = saved_policies.evaluate_policy(config, learner, state, request["episodes"], _GREEDY.value,
                                          _SEED.value, _EPISODE_LIMIT.value)
  report.update({"workdir": request["workdir"], "checkpoint": name, "step": request["step"],
                 "task": request["task"].name, "estimator": config.estimator.label, "run_seed": config.seed,
                 "fidelity": config.fidelity, "lbf_food_rule": config.get("lbf_food_rule"),
                 "share_parameters": bool(config.learner.get("share_parameters")), "best": request["best"]})
  stream = ("the checkpoint's evaluation stream" if report["stream"] == "checkpoint"
            else f"a fresh evaluation stream ({report['stream']})")
  print(f"{head}: {report['mode']} actions, {stream}, episode cut-off {report['episode_limit']}")
  print(saved_policies.describe(report))
  json_path, csv_path = request["outputs"]
  try:
    saved_policies.write_results(report, json_path, csv_path)
  except OSError as error:
    return _error(f"could not write the results: {error}")
  print(f"results: {json_path} and {csv_path}")
  return 0


def run():
  """Console entry point."""
  common.run_main(PROGRAM, main, _parse_flags)


if __name__ == "__main__":
  sys.exit(run())
