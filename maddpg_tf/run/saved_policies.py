"""A finished run's saved policies: a checkpoint of a `maddpg-train` run directory (the latest, a named
one, or the learner of its best evaluation) rebuilt as the run's actors, then evaluated with statistics
and the task's own success measure (`evaluate_policy`, `absolute_metric`), played and drawn (`play`), or
written as results. `maddpg-evaluate` (`maddpg_tf.cli.evaluate`) is its command line.

The run is rebuilt from its own `config.json` (its task, evaluation envs and episode cut-off;
`--episode_limit` overrides the cut-off) and the chosen checkpoint's actors. Actions are sampled,
a_i ~ Categorical(softmax(mu_i(o_i))) as in training's evaluations, or with `--greedy` a_i = argmax mu_i(o_i).

Which episodes (the evaluation stream). A checkpoint holds the run's evaluation envs (their RNGs, mid-way
through the run's sequence of evaluation episodes) and the evaluation actor's generator, as they were
when it was written. Without `--seed`, those are what is evaluated: the episodes are the ones the run's
next evaluation after the checkpoint played. The run's final evaluation comes right after its final
checkpoint with the same weights, so evaluating the final checkpoint with the run's `loop.eval_episodes`
reproduces that evaluation's returns exactly (the test of this module). An earlier checkpoint reproduces
the next evaluation only where no update ran between the two. With `--seed=K` (or a cut-off of another
length, which the saved envs cannot have) the stream is a fresh one built as the run builds its own
evaluation stream at the start: `loop.eval_num_envs` envs seeded from K + `EVAL_SEED_OFFSET`, the actor
from (K, stream 1) (K defaults to the run's seed then). Either way the same command gives the same numbers.

What is reported (printed, and written to `<workdir>/evaluations/<ckpt>-<mode>-<episodes>[-seed<K>]
[-limit<L>].json` and `.csv`; an existing file is never overwritten, the run's own files are never
touched): the mean team return over the episodes with a 95% Student-t interval, mean +- t_{0.975, n-1}
s / sqrt(n) (s the sample standard deviation), each agent's mean return, the mean episode length, and the
task's own success measure (`success_measure`): LBF the fraction of the spawned food collected, RWARE the
number of shelves delivered. The CSV has one row per episode.

`--best` is the absolute metric of the MARL evaluation protocol (Gorsane et al. 2022): the evaluation with
the highest mean in the run's `evaluations.csv`, and the learner the run saved at it (`<workdir>/best/`,
`checkpoint.keep_best`; its results are named `best-ckpt-<step>`), evaluated with 10 x `loop.eval_episodes`
episodes (unless `--episodes` is given) on a fresh seeded stream. A run without `best/` (keep_best off)
falls back to the complete checkpoint nearest that step (the run keeps `checkpoint.keep` of them; which one
and how far is printed and recorded).

`--video`/`--frames` play `--episodes` episodes (default 1 there) on one environment of a fresh stream
(as `--seed` above, env 0 of it), drawing every state with each agent's action and reward
(`maddpg_tf.media.rendering`), and write a GIF or MP4 (`maddpg_tf.media.video`) and/or PNG frames.
`--export=DIR` writes the actors as a TensorFlow SavedModel (`maddpg_tf.media.export`). With any of these three the command
does those and writes no evaluation files.

"""

import contextlib
import copy
import csv
import io
import json
import math
import os
import re

import ml_collections
import numpy as np

from maddpg_tf import config as config_lib
from maddpg_tf import files
from maddpg_tf.envs import builder as environments
from maddpg_tf.media import rendering
from maddpg_tf.run import checkpointing, errors, evaluation, locking, loggers

DEFAULT_EPISODES = 100
BEST_EPISODES_FACTOR = 10

_CKPT_NAME = re.compile(r"^ckpt-(\d+)$")


# ---- the run and its checkpoints (no TensorFlow) ---------------------------------------------------------

def load_run_config(workdir):
  """The resolved config of the run in `workdir` (from its config.json), with `env_workers=0`.
  RunError (one line) if `workdir` holds no run."""
  if not os.path.isdir(workdir):
    raise errors.RunError(f"--workdir {workdir} is not a directory: expected a run directory of "
                          f"maddpg-train (it holds config.json)")
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise errors.RunError(f"--workdir {workdir} holds no maddpg-tf run (no config.json)")
  try:
    with open(path) as handle:
      content = json.load(handle)
    config = config_lib.resolve(ml_collections.ConfigDict(content))
  except (OSError, ValueError, TypeError, AttributeError, KeyError) as error:
    raise errors.RunError(f"--workdir {workdir}: config.json is not a usable run config ({error})") from None
  config.env_workers = 0
  return config


def find_checkpoint(workdir, name=None):
  """(step, path) of checkpoint `name` ("ckpt-<step>") of the run in `workdir`, or of its latest complete
  one. RunError for a malformed name, a missing checkpoint, or one without its COMPLETE marker."""
  directory = os.path.join(workdir, "checkpoints")
  complete = checkpointing.complete_checkpoints(directory)
  names = ", ".join(os.path.basename(p) for _, p in complete) or "none"
  if name is None:
    if not complete:
      raise errors.RunError(f"--workdir {workdir} has no complete checkpoint in {directory}")
    return complete[-1]
  match = _CKPT_NAME.match(name)
  if not match:
    raise errors.RunError(f"--checkpoint={name!r} is not allowed: expected ckpt-<env step>, one of {names}")
  path = os.path.join(directory, name)
  if not os.path.isdir(path):
    raise errors.RunError(f"--checkpoint={name}: no such checkpoint in {directory}; complete ones: {names}")
  if not os.path.isfile(os.path.join(path, checkpointing.MARKER)):
    raise errors.RunError(f"--checkpoint={name} is incomplete (no {checkpointing.MARKER} marker: it was "
                          f"being written when the run stopped); complete ones: {names}")
  return int(match.group(1)), path


def best_checkpoint(workdir):
  """The absolute metric's checkpoint: {"best_step", "best_mean_return", "step", "path", "distance",
  "source"}: the evaluation with the highest mean in evaluations.csv (ties: the earliest), and the learner
  saved at that evaluation (`<workdir>/best/`, source "best") where the run kept it (checkpoint.keep_best),
  else the complete checkpoint nearest its step (ties: the later one; source "checkpoints"). RunError
  without evaluations or checkpoints."""
  path = os.path.join(workdir, "evaluations.csv")
  try:
    rows = loggers.read_evaluations_csv(path)
  except (OSError, ValueError, KeyError) as error:
    raise errors.RunError(f"--best: cannot read the run's evaluations {path} ({error})") from None
  rows = [(step, mean) for step, mean in rows if math.isfinite(mean)]
  if not rows:
    raise errors.RunError(f"--best: {path} holds no evaluation")
  best_step, best_mean = max(rows, key=lambda row: (row[1], -row[0]))
  kept = dict(checkpointing.complete_checkpoints(os.path.join(workdir, "best")))
  if best_step in kept:
    return {"best_step": best_step, "best_mean_return": best_mean, "step": best_step,
            "path": kept[best_step], "distance": 0, "source": "best"}
  complete = checkpointing.complete_checkpoints(os.path.join(workdir, "checkpoints"))
  if not complete:
    raise errors.RunError(f"--workdir {workdir} has no complete checkpoint in "
                          f"{os.path.join(workdir, 'checkpoints')}")
  step, ckpt = min(complete, key=lambda item: (abs(item[0] - best_step), -item[0]))
  return {"best_step": best_step, "best_mean_return": best_mean, "step": step, "path": ckpt,
          "distance": abs(step - best_step), "source": "checkpoints"}


def choose_checkpoint(workdir, name=None, best=False):
  """(step, path, best) of the checkpoint to evaluate: with `best`, the absolute metric's (`best_checkpoint`,
  also returned), else checkpoint `name` or the latest complete one (`find_checkpoint`; best None)."""
  if best:
    chosen = best_checkpoint(workdir)
    return chosen["step"], chosen["path"], chosen
  return (*find_checkpoint(workdir, name), None)


def describe_best(best, name):
  """`best_checkpoint`'s choice as one line; `name`: how results name its checkpoint (`checkpoint_name`)."""
  where = ("the learner saved at it (best/)" if best["source"] == "best" else
           f"nearest complete checkpoint {name}, {best['distance']:,} env steps from it")
  return f"best evaluation: step {best['best_step']:,}, mean return {best['best_mean_return']:.4f}; {where}"


def checkpoint_name(path):
  """How results name checkpoint `path`: `ckpt-<step>`, or `best-ckpt-<step>` for a run's best learner."""
  name = os.path.basename(os.path.normpath(path))
  return f"best-{name}" if os.path.basename(os.path.dirname(os.path.normpath(path))) == "best" else name


def output_paths(workdir, checkpoint_name, greedy, episodes, seed=None, episode_limit=None):
  """(json, csv) paths of an evaluation's results in `<workdir>/evaluations/`."""
  stem = f"{checkpoint_name}-{'greedy' if greedy else 'sampled'}-{episodes}"
  if seed is not None:
    stem += f"-seed{seed}"
  if episode_limit is not None:
    stem += f"-limit{episode_limit}"
  directory = os.path.join(workdir, "evaluations")
  return os.path.join(directory, stem + ".json"), os.path.join(directory, stem + ".csv")


def new_output_paths(workdir, checkpoint_name, greedy, episodes, seed=None, episode_limit=None):
  """`output_paths`, checked: RunError if either file exists (nothing is overwritten) or their directory is
  a file."""
  outputs = output_paths(workdir, checkpoint_name, greedy, episodes, seed, episode_limit)
  for output in outputs:
    if os.path.lexists(output):
      raise errors.RunError(f"{output} already exists: this evaluation was written before (nothing is "
                            f"overwritten; move it away to evaluate again)")
  if os.path.exists(os.path.dirname(outputs[0])) and not os.path.isdir(os.path.dirname(outputs[0])):
    raise errors.RunError(f"{os.path.dirname(outputs[0])} is a file: expected a directory for the results")
  return outputs


# ---- success measures --------------------------------------------------------------------------------

def success_measure(family, base_env):
  """(name, per_step) of the task's own success measure, or None where it has none we can read:
  `per_step(rewards float [E, N]) -> [E]` is summed over an episode's steps.

  LBF, "food_collected": the fraction of the episode's spawned food collected, weighted by level as
  lbforaging counts it (`_food_spawned` = the sum of the food levels on the field after a reset). With
  its normalised rewards (every registered id) a food of level F loaded by players of total level P pays
  player i level_i F / (P _food_spawned), so the loaders' rewards sum to F / _food_spawned, and failed
  loads only ever cost (a penalty): the fraction collected is the sum of the positive rewards. (The
  vector envs reset an env inside the step that ends its episode, so the final field is not there to be
  read; the tests check this sum against the field of envs stepped by hand.)

  RWARE, "deliveries": shelves delivered. Individual rewards (every registered id) pay +1 to the agent
  at the goal, at most one per agent and step: the count of positive rewards. Global rewards pay +1 to
  every agent: agent 0's reward. Two-stage rewards mix deliveries with returns: None.
  """
  if family == "lbf":
    if not getattr(base_env, "_normalize_reward", True):
      return None
    return "food_collected", lambda rewards: np.maximum(rewards, 0.0).sum(axis=1, dtype=np.float64)
  if family == "rware":
    reward_type = getattr(getattr(base_env, "reward_type", None), "name", None)
    if reward_type == "INDIVIDUAL":
      return "deliveries", lambda rewards: (rewards > 0).sum(axis=1).astype(np.float64)
    if reward_type == "GLOBAL":
      return "deliveries", lambda rewards: np.asarray(rewards[:, 0], np.float64)
  return None


class _MeasuredEnvironment:
  """A vector env seen through the success measure: forwards what an `Evaluator` calls and records, per
  finished episode, (env index, measure, team return) in the order the episodes finished."""

  def __init__(self, env, per_step):
    self.env, self.per_step = env, per_step
    self.num_envs, self.spec = env.num_envs, env.spec
    self.finished = []
    self._running = None

  def reset(self):
    self._running = np.zeros(self.num_envs, np.float64)
    return self.env.reset()

  def step(self, actions):
    step = self.env.step(actions)
    self._running += self.per_step(step.reward)
    for k in np.flatnonzero(~np.isnan(step.episode_return)):
      self.finished.append((int(k), float(self._running[k]), float(step.episode_return[k])))
      self._running[k] = 0.0
    return step

  def get_state(self):
    return self.env.get_state()

  def set_state(self, state):
    self.env.set_state(state)

  def measures_of(self, episodes, returns):
    """The measures of the episodes an `Evaluator` of `episodes` counted (each env's first quota ones, as
    it shares them out), checked against its `returns`."""
    quota = [episodes // self.num_envs + (1 if k < episodes % self.num_envs else 0)
             for k in range(self.num_envs)]
    counted, values, seen = [0] * self.num_envs, [], []
    for k, value, team_return in self.finished:
      if counted[k] < quota[k]:
        counted[k] += 1
        values.append(value)
        seen.append(team_return)
    if seen != list(returns):
      raise RuntimeError("the success measures do not line up with the evaluation's episodes")
    return values


# ---- checkpoint -> policy, evaluation, video (TensorFlow) ---------------------------------------------

def _eval_seed_offset():
  return evaluation.EVAL_SEED_OFFSET


def make_eval_env(config, num_envs=None, seed=None, episode_limit=None):
  """Evaluation envs as the run builds them (seeded from `seed` + EVAL_SEED_OFFSET, default the run's
  seed), with `num_envs` (default `loop.eval_num_envs`) and the cut-off `episode_limit` (the run's).

  Always the packages' own envs (backend "reference"), stepped in this process: the success measures
  and the frames read them. A run trained on the fast backends has the same numbers, and its saved
  evaluation envs convert on `set_state`.
  """
  seed = config.seed if seed is None else seed
  settings = {**config_lib.env_settings(config), "backend": "reference"}
  if episode_limit:
    settings["episode_limit"] = episode_limit
  return environments.make(config.task, num_envs=num_envs or config.loop.eval_num_envs,
                           seed=seed + _eval_seed_offset(), **settings)


def load_policy(config, path):
  """(learner, state) of checkpoint `path`: a `MADDPGLearner` holding its networks, and the checkpoint's
  other parts ({name: value}, e.g. "eval_env", "eval_actor_rng"). CheckpointError (one line) for a
  checkpoint that is corrupt, incomplete or of another run."""
  from maddpg_tf.agent import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from maddpg_tf.run import devices  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  devices.configure(config.device)  # the run's GPU settings, before the learner is built (once per process)
  arrays, state, _ = checkpointing.load(path, config_lib.checkpoint_metadata(config))
  probe = environments.make(config.task, num_envs=1, seed=0,
                            **{**config_lib.env_settings(config), "backend": "reference"})
  spec = probe.spec
  probe.close()
  learner = learner_lib.MADDPGLearner(
      spec.num_agents, spec.observation_size, spec.num_actions, config_lib.learner_config(config),
      estimator=config.estimator.name, estimator_params=config_lib.estimator_params(config), seed=config.seed,
      jit_compile=False)
  try:
    learner.restore({**state, **arrays})  # scalars (the optimisers' step counts) are kept in the state
  except ValueError as error:
    raise checkpointing.CheckpointError(f"checkpoint {path}: {error}") from None
  return learner, state


def make_actor(config, weights, greedy=False, seed=None):
  """The evaluation actor (`NumpyActor`, or `GreedyNumpyActor`) with `weights`; its generator is the
  run's evaluation actor's for seed `seed` (default the run's), i.e. seeded from (seed, stream 1)."""
  from maddpg_tf.agent import actor as actor_lib  # pylint: disable=g-import-not-at-top
  cls = actor_lib.GreedyNumpyActor if greedy else actor_lib.NumpyActor
  actor = cls(config.seed if seed is None else seed, stream=1)
  actor.set_weights(weights)
  return actor


def evaluate_policy(config, learner, state=None, episodes=DEFAULT_EPISODES, greedy=False, seed=None,
                    episode_limit=None):
  """Plays `episodes` evaluation episodes of `learner`'s actors; returns a dict of the results.

  `state`: the checkpoint's parts (from `load_policy`); its evaluation stream is used unless `seed` is
  given or `episode_limit` differs from the run's (see the module docstring), or `state` is None.
  Keys: stream ("checkpoint" or "seed <K>"), episodes, episode_limit, returns [n], agent_returns [n, N],
  lengths [n], success_name (or None), success [n] (or None), and the summary (`summarise`).
  """
  if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
    raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
  limit = config.loop.episode_limit if episode_limit is None else episode_limit
  own_stream = bool(state) and "eval_env" in state and seed is None and limit == config.loop.episode_limit
  env = make_eval_env(config, seed=seed, episode_limit=limit)
  try:
    actor = make_actor(config, learner.actor_weights(), greedy, seed)
    measure = success_measure(environments.resolve_task(config.task).family, env.envs[0])
    measured = _MeasuredEnvironment(env, measure[1] if measure else lambda rewards: rewards[:, 0] * 0.0)
    evaluator = evaluation.Evaluator(env=measured, actor=actor, episodes=episodes,
                                     truncation_is_terminal=config.loop.truncation_is_terminal)
    if own_stream:
      # A copy: the restored envs and generator are stepped in place, and `state` may be evaluated again.
      evaluator.restore(copy.deepcopy({key: state[key] for key in ("eval_env", "eval_actor_rng")}))
    result = evaluator.run()
    success = measured.measures_of(episodes, result.returns) if measure else None
  finally:
    env.close()
  report = {"stream": "checkpoint" if own_stream else f"seed {config.seed if seed is None else seed}",
            "episodes": episodes, "episode_limit": int(limit), "eval_num_envs": int(env.num_envs),
            "mode": "greedy" if greedy else "sampled", "returns": list(result.returns),
            "agent_returns": result.agent_returns.tolist(), "lengths": list(result.lengths),
            "success_name": measure[0] if measure else None, "success": success}
  report.update(summarise(report))
  return report


def absolute_metric(workdir, config=None):
  """The absolute metric of the run in `workdir` (Gorsane et al. 2022; `--best` with a fresh stream seeded
  from the run's seed): `best_checkpoint`'s policy over BEST_EPISODES_FACTOR x `loop.eval_episodes`
  sampled episodes. Writes and returns `<workdir>/absolute.json` ({best_step, best_mean_return, step,
  source, distance, checkpoint, episodes, stream, returns, lengths, mean_return, ci95, ...}; per-episode
  agent returns left out). RunError or CheckpointError (one line) when the run has nothing to evaluate."""
  config = config or load_run_config(workdir)
  best = best_checkpoint(workdir)
  learner, _ = load_policy(config, best["path"])
  report = evaluate_policy(config, learner, None, BEST_EPISODES_FACTOR * config.loop.eval_episodes,
                           seed=config.seed)
  report.pop("agent_returns")
  record = {**best, **report, "checkpoint": checkpoint_name(best["path"]), "task": config.task,
            "estimator": config.estimator.label, "run_seed": config.seed, "total_steps": config.total_steps}
  record["path"] = os.path.relpath(best["path"], workdir)
  path = os.path.join(workdir, files.ABSOLUTE_FILE)
  temporary = f"{path}.tmp-{os.getpid()}"
  with open(temporary, "w") as handle:
    handle.write(json.dumps(_finite_or_none(record), indent=2, sort_keys=True, allow_nan=False) + "\n")
  os.replace(temporary, path)
  return record


def summarise(report):
  """{mean_return, ci95 [low, high], std_return, agent_mean_returns [N], mean_length, success_mean}; ci95 is
  the tables' Student-t interval (`analysis.statistics.t_interval`), NaN at both ends for one episode."""
  # Deferred: statistics imports scipy (about 1.5 s), which only a finished evaluation needs.
  from maddpg_tf.analysis import statistics  # pylint: disable=g-import-not-at-top
  interval = statistics.t_interval(report["returns"])
  returns = np.asarray(report["returns"], np.float64)
  return {"mean_return": interval.mean, "ci95": [interval.mean - interval.half_width,
                                                 interval.mean + interval.half_width],
          "std_return": float(returns.std(ddof=1)) if len(returns) > 1 else math.nan,
          "agent_mean_returns": np.asarray(report["agent_returns"], np.float64).mean(axis=0).tolist(),
          "mean_length": float(np.mean(report["lengths"])),
          "success_mean": float(np.mean(report["success"])) if report["success"] is not None else None}


def play(config, weights, episodes=1, greedy=False, seed=None, episode_limit=None, cell=48):
  """Plays `episodes` episodes on env 0 of a fresh evaluation stream (see `make_eval_env`), stepping the
  package's own env and drawing every state. Returns (frames [T] of uint8 [H, W, 3], returns, lengths):
  per episode one frame of its first state, then one per step with each agent's action and reward.

  The episodes are those a one-env `Evaluator` of the same stream plays: the same first reset (seeded),
  the same auto-resets after (the env's own RNG), the same cut-off and the same actor draws.
  """
  if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
    raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
  limit = config.loop.episode_limit if episode_limit is None else episode_limit
  if environments.resolve_task(config.task).family in environments.PETTINGZOO_FAMILIES:
    return _play_pettingzoo(config, weights, episodes, greedy, seed, limit)
  vector = make_eval_env(config, num_envs=1, seed=seed, episode_limit=limit)
  try:
    observations = vector.reset()
    env = vector.envs[0]
    actor = make_actor(config, weights, greedy, seed)
    frames, returns, lengths = [], [], []
    for episode in range(episodes):
      if episode:
        observations = np.asarray(env.reset()[0], np.float32)[np.newaxis]
      frames.append(rendering.render(env, step=0, cell=cell))
      total, t, done = 0.0, 0, False
      while not done:
        actions = actor.select_actions(observations)
        observation, rewards, over, _, _ = env.step(actions[0].tolist())
        t += 1
        rewards = np.asarray(rewards, np.float32)
        total += float(rewards.sum(dtype=np.float64))
        frames.append(rendering.render(env, step=t, actions=actions[0], rewards=rewards, cell=cell))
        observations = np.asarray(observation, np.float32)[np.newaxis]
        done = bool(over) or t >= limit
      returns.append(total)
      lengths.append(t)
  finally:
    vector.close()
  return frames, returns, lengths


def _play_pettingzoo(config, weights, episodes, greedy, seed, limit):
  """`play` for PettingZoo envs, whose frames are their own `render_mode="rgb_array"` (no header)."""
  seed = config.seed if seed is None else seed
  vector = environments.make(config.task, num_envs=1, seed=seed + _eval_seed_offset(), episode_limit=limit,
                             render_mode="rgb_array")
  try:
    actor = make_actor(config, weights, greedy, seed)
    observations = vector.reset()
    frames, returns, lengths = [vector.render_frame()], [], []
    while len(returns) < episodes:
      step = vector.step(actor.select_actions(observations))
      ended = not np.isnan(step.episode_return[0])
      frames.append(vector.final_frames[0] if ended else vector.render_frame())
      if ended:
        returns.append(float(step.episode_return[0]))
        lengths.append(int(step.episode_length[0]))
        if len(returns) < episodes:
          frames.append(vector.render_frame())
      observations = step.next_observation
  finally:
    vector.close()
  return frames, returns, lengths


# ---- files -------------------------------------------------------------------------------------------

def _write_new(path, text):
  """Writes `path` only if it does not exist (a temporary file, then a hard link: never overwrites)."""
  temporary = f"{path}.tmp{os.getpid()}"
  with open(temporary, "w", newline="") as handle:
    handle.write(text)
  try:
    os.link(temporary, path)
  finally:
    os.remove(temporary)


def write_results(report, json_path, csv_path):
  """The report as JSON and its episodes as CSV (episode, team_return, agent_<i>_return, length, success)."""
  os.makedirs(os.path.dirname(json_path), exist_ok=True)
  buffer = io.StringIO()
  writer = csv.writer(buffer)
  num_agents = len(report["agent_returns"][0]) if report["agent_returns"] else 0
  success_name = report["success_name"]
  writer.writerow(["episode", "team_return"] + [f"agent_{i}_return" for i in range(num_agents)] + ["length"]
                  + ([success_name] if success_name else []))
  for k, team_return in enumerate(report["returns"]):
    writer.writerow([k, f"{team_return:.6f}"] + [f"{r:.6f}" for r in report["agent_returns"][k]]
                    + [report["lengths"][k]] + ([f"{report['success'][k]:.6f}"] if success_name else []))
  _write_new(csv_path, buffer.getvalue())
  _write_new(json_path, json.dumps(_finite_or_none(report), indent=2, sort_keys=True, allow_nan=False) + "\n")


def _finite_or_none(value):
  # Strict JSON has no NaN (an interval of one episode): null instead.
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _finite_or_none(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_finite_or_none(v) for v in value]
  return value


def describe(report):
  """The report's summary as one line: mean team return with its interval, per agent, length, success."""
  low, high = report["ci95"]
  interval = f" (95% CI {low:.4f} to {high:.4f})" if math.isfinite(low) else ""
  line = (f"mean team return {report['mean_return']:.4f}{interval} over {report['episodes']} episodes; per agent "
          f"{' '.join(f'{r:.4f}' for r in report['agent_mean_returns'])}; mean length {report['mean_length']:.2f}")
  if report["success_name"]:
    line += f"; {report['success_name'].replace('_', ' ')} {report['success_mean']:.4f}"
  return line


@contextlib.contextmanager
def claim_outputs(outputs):
  """One process at a time writes an evaluation's results: `<stem>.lock` beside them (`maddpg_tf.run.locking`)
  while it evaluates; RunError naming the other process, or naming the results if they appeared meanwhile.
  The lock file goes when its holder is done."""
  json_path = outputs[0]
  os.makedirs(os.path.dirname(json_path), exist_ok=True)
  path = json_path[:-len(".json")] + ".lock"
  held = False
  try:
    with locking.hold(path, f"the evaluation {json_path}", "wait for it to end; it writes these results"):
      held = True
      for output in outputs:
        if os.path.lexists(output):
          raise errors.RunError(f"{output} already exists: this evaluation was written before (nothing is "
                                f"overwritten; move it away to evaluate again)")
      yield
  except locking.Busy as busy:
    raise errors.RunError(str(busy)) from None
  finally:
    if held:  # after release: a process that opened it meanwhile re-checks the results once it holds it
      with contextlib.suppress(OSError):
        os.remove(path)
