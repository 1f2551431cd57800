#!/usr/bin/env python
"""Seeds packed in one process against one seed per process: the update and whole training, per seed and
in total, and where the update ran.

    python tools/bench_seeds.py                          # --seeds=1,4,16 on lbf-15x15-4p-5f, ~6 minutes
    python tools/bench_seeds.py --quick --json           # short windows; JSON on the last line
    python tools/bench_seeds.py --task=rware-tiny-4ag --seeds=1,2,4,8

For each K in --seeds, side by side in one process (the machine is shared and noisy: compare ratios):

1. update: a learner packing K seeds (`MADDPGLearner(seeds=...)`) runs `step_block` with a block of 16
   updates per seed, on random batches of the task's shapes at the config's batch size; beside it, in
   turns, one learner of one seed runs the same block. Updates/s per seed and in total; `packed_gain` is
   the total against K single learners called one after another (K x the single learner's time).
2. train: a `packing.PackedRun` of K seeds at the task's config (warm-up cut to about two batches,
   evaluations and checkpoints past the end), its `step()` timed for `window_s` after its first update
   block compiled: env steps/s per seed and in total (every seed's env steps). Beside it the same for
   one seed run alone (`Experiment`), as K separate processes would each see on a machine of their own;
   `total_over_alone` = packed total / one run alone.

3. acting and envs: K seeds' vector steps without updates or storing, through one stacked acting call and
   one env kernel call for all seeds (as a packed run steps them: `agent.actor.JointActing`,
   `envs.joint.JointStep`) against each seed acting and stepping on its own; `joint_over_separate`.

"where the update ran" is the learner's device. On a CPU the update already uses the cores' arithmetic, so
packing gains little there; the figures say how much (README: Training on a GPU).
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tools import bench_train  # noqa: E402  (after the path and TensorFlow's log level)

BLOCK = 16  # updates per seed per compiled call: the run's block size
MODES = {"full": {"update_calls": 20, "window_s": 20.0, "acting_calls": 20},
         "quick": {"update_calls": 6, "window_s": 6.0, "acting_calls": 6},
         "tiny": {"update_calls": 1, "window_s": 0.3, "acting_calls": 1}}  # tiny: for tests, not a measurement


def _learner(spec, config, seeds=None):
  from maddpg_tf import config as config_lib
  from maddpg_tf.agent import learner as learner_lib
  return learner_lib.MADDPGLearner(
      spec.num_agents, spec.observation_size, spec.num_actions, config_lib.learner_config(config),
      estimator=config.estimator.name, estimator_params=config_lib.estimator_params(config),
      jit_compile=config.jit_compile, **({"seed": 0} if seeds is None else {"seeds": seeds}))


def measure_update(spec, config, num_seeds, calls):
  """ms per packed call of BLOCK updates for each of `num_seeds` seeds, and per single learner's call."""
  import numpy as np
  rng = np.random.default_rng(0)
  from maddpg_tf.agent import types
  batches = [types.random_transitions(rng, config.replay.batch_size, spec.num_agents, spec.observation_size,
                                      spec.num_actions, terminal_rate=0.05) for _ in range(BLOCK)]
  packed, single = _learner(spec, config, tuple(range(num_seeds))), _learner(spec, config)
  counter = [0]

  def seeds_and_steps():
    counter[0] += 1
    first = BLOCK * counter[0]
    return [np.array([0, first + j], np.int64) for j in range(BLOCK)], [float(first + j) for j in range(BLOCK)]

  def packed_call():
    seeds, steps = seeds_and_steps()
    packed.step_block([batches] * num_seeds, [seeds] * num_seeds, [steps] * num_seeds, block_size=BLOCK)

  def single_call():
    seeds, steps = seeds_and_steps()
    single.step_block(batches, seeds, steps, block_size=BLOCK)

  packed_s, single_s = bench_train._interleaved_seconds([packed_call, single_call], calls)
  return {"packed_call_ms": packed_s * 1e3, "single_call_ms": single_s * 1e3, "device": packed.device,
          "updates_per_s_per_seed": BLOCK / packed_s, "updates_per_s_total": num_seeds * BLOCK / packed_s,
          "single_updates_per_s": BLOCK / single_s, "packed_gain": num_seeds * single_s / packed_s}


def measure_acting(config, spec, num_seeds, calls):
  """µs per vector step of `num_seeds` seeds' acting and env stepping (no updates, no storing): through
  one stacked acting call and one joint env call (`JointActing`, `JointStep`, as a packed run steps), and
  each seed on its own (K acting calls and K env calls). Env steps/s total for both, and the ratio."""
  import numpy as np
  from maddpg_tf.agent import actor as actor_lib
  from maddpg_tf.envs import builder as environments, joint as joint_lib
  from maddpg_tf.run import experiment
  c = experiment.resolve_config(config)
  rng = np.random.default_rng(0)
  sizes = (spec.observation_size, *c.learner.hidden_sizes, spec.num_actions)
  weights = [[(rng.normal(0, 0.3, (spec.num_agents, a, b)).astype(np.float32),
               np.zeros((spec.num_agents, 1, b), np.float32)) for a, b in zip(sizes[:-1], sizes[1:])]
             for _ in range(num_seeds)]

  def seeds_parts():
    envs = [environments.make(c.task, num_envs=c.num_envs, seed=k, episode_limit=c.loop.episode_limit,
                              lbf_food_rule=c.lbf_food_rule, backend=c.env_backend) for k in range(num_seeds)]
    actors = [actor_lib.NumpyActor(k) for k in range(num_seeds)]
    for actor, layers in zip(actors, weights):
      actor.set_weights(layers)
    return envs, actors, [env.reset() for env in envs]

  envs_j, actors_j, obs_j = seeds_parts()
  envs_s, actors_s, obs_s = seeds_parts()
  acting, stepping = actor_lib.JointActing(actors_j), (joint_lib.JointStep(envs_j) if joint_lib.joinable(envs_j)
                                                       else None)

  def joint_step():
    actions = acting.select_actions(obs_j)
    steps = (stepping.step(actions) if stepping is not None
             else [env.step(a) for env, a in zip(envs_j, actions)])
    obs_j[:] = [step.next_observation for step in steps]

  def separate_step():
    for k, (env, actor) in enumerate(zip(envs_s, actors_s)):
      obs_s[k] = env.step(actor.select_actions(obs_s[k])).next_observation

  steps_per_call = 50

  def many(function):
    return lambda: [function() for _ in range(steps_per_call)]

  joint_s, separate_s = bench_train._interleaved_seconds([many(joint_step), many(separate_step)], calls)
  for env in envs_j + envs_s:
    env.close()
  joint_s, separate_s = joint_s / steps_per_call, separate_s / steps_per_call
  return {"joint_envs": stepping is not None, "acting_env_joint_us": joint_s * 1e6,
          "acting_env_separate_us": separate_s * 1e6,
          "acting_env_joint_steps_per_s": num_seeds * c.num_envs / joint_s,
          "acting_env_separate_steps_per_s": num_seeds * c.num_envs / separate_s,
          "joint_over_separate": separate_s / joint_s}


def _bench_config(config):
  from maddpg_tf.run import experiment
  config = config.copy_and_resolve_references()
  limit = experiment.resolve_config(config).loop.episode_limit
  # About two batches of random transitions (the paper's 400 warm-up episodes only fill the buffer).
  config.loop.warmup_episodes = max(config.num_envs, math.ceil(2 * config.replay.batch_size / limit))
  config.loop.eval_every_steps = config.checkpoint.every_steps = config.total_steps = 10 ** 15
  config.loop.eval_episodes = config.loop.eval_num_envs = 1  # the step-0 evaluation, before the window
  return config


def _timed_steps(step, updates, window_s, max_wait_s=600.0):
  """Steps until two update blocks ran (the first compiles), then for `window_s`: (iterations, seconds)."""
  started = time.perf_counter()
  while updates() < 2 * BLOCK:
    step()
    if time.perf_counter() - started > max_wait_s:
      raise RuntimeError(f"bench_seeds: no update block after {max_wait_s:.0f} s")
  iterations, started = 0, time.perf_counter()
  while time.perf_counter() - started < window_s:
    step()
    iterations += 1
  return iterations, time.perf_counter() - started


def measure_training(config, num_seeds, window_s):
  """Env steps/s of a PackedRun of `num_seeds` seeds (per seed and total) and of one run alone."""
  from maddpg_tf.run import experiment, packing
  config = _bench_config(config)
  result = {}
  with tempfile.TemporaryDirectory(prefix="bench_seeds_") as tmp:
    with packing.PackedRun(config, os.path.join(tmp, "packed"), tuple(range(num_seeds)), progress=False) as run:
      run.start()
      run.begin()
      iterations, seconds = _timed_steps(run.step, lambda: run.experiments[0].counters.updates, window_s)
      run.finish("FINISHED")
    per_seed = iterations * config.num_envs / seconds
    result.update(packed_steps_per_s_per_seed=per_seed, packed_steps_per_s_total=num_seeds * per_seed)
    with experiment.Experiment(config, os.path.join(tmp, "alone"), progress=False) as alone:
      alone.start()
      training = alone.training
      training.begin()
      iterations, seconds = _timed_steps(lambda: training.after_step(training.advance()),
                                         lambda: alone.counters.updates, window_s)
      alone.finish("FINISHED")
    result["alone_steps_per_s"] = iterations * config.num_envs / seconds
  result["total_over_alone"] = result["packed_steps_per_s_total"] / result["alone_steps_per_s"]
  return result


def run_benchmark(task, seeds, mode="quick", estimator="gst", log=print):
  from maddpg_tf.envs import builder as environments
  from maddpg_tf.run import devices
  settings = MODES[mode]
  config = bench_train.task_config(task, estimator)
  if mode == "tiny":  # a test of the tool's structure: no XLA compilation
    config.jit_compile = False
  env = environments.make(config.task, num_envs=1, seed=0, backend="reference")
  spec = env.spec
  env.close()
  results = {"task": task, "estimator": estimator, "mode": mode, "block": BLOCK, "seeds": list(seeds),
             "batch_size": config.replay.batch_size, "num_envs": config.num_envs,
             "asynchronous_updates": bool(config.loop.asynchronous_updates), **bench_train.environment_info()}
  log(f"{task} {estimator}: batch {config.replay.batch_size}, {config.num_envs} envs per seed, blocks of "
      f"{BLOCK} updates")
  for k in seeds:
    update = measure_update(spec, config, k, settings["update_calls"])
    acting = measure_acting(config, spec, k, settings["acting_calls"])
    train = measure_training(config, k, settings["window_s"])
    results[f"seeds_{k}"] = {**update, **acting, **train}
    log(f"  {k:>3} seeds: update {update['updates_per_s_per_seed']:8.0f}/s per seed, "
        f"{update['updates_per_s_total']:8.0f}/s total ({update['packed_gain']:.2f}x K single learners, on {devices.short_device(update['device'])}); "
        f"train {train['packed_steps_per_s_per_seed']:7.0f} env steps/s per seed, "
        f"{train['packed_steps_per_s_total']:7.0f} total ({train['total_over_alone']:.2f}x one run alone: "
        f"{train['alone_steps_per_s']:.0f}); acting and envs alone "
        f"{acting['acting_env_joint_steps_per_s']:8.0f} env steps/s in one call each "
        f"({acting['joint_over_separate']:.2f}x each seed on its own: "
        f"{acting['acting_env_separate_steps_per_s']:.0f})")
  return results


def main(argv=None):
  parser = argparse.ArgumentParser(prog="bench_seeds", description=__doc__.split("\n\n")[0])
  parser.add_argument("--task", default="lbf-15x15-4p-5f")
  parser.add_argument("--estimator", default="gst")
  parser.add_argument("--seeds", default="1,4,16", help="comma-separated numbers of seeds per process")
  parser.add_argument("--quick", action="store_true", help="short windows (about 3 minutes on 2 cores)")
  parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--json", action="store_true", help="print one JSON object on the last stdout line")
  args = parser.parse_args(argv)
  try:
    seeds = [int(k) for k in args.seeds.split(",")]
    if not seeds or min(seeds) < 1:
      raise ValueError
  except ValueError:
    parser.error(f"--seeds: comma-separated numbers >= 1, got {args.seeds!r}")
  mode = "tiny" if args.tiny else "quick" if args.quick else "full"
  results = run_benchmark(args.task, seeds, mode, args.estimator)
  if args.json:
    print(json.dumps(bench_train._json_safe(results), sort_keys=True))
  return 0


if __name__ == "__main__":
  sys.exit(main())
