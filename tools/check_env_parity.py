"""Parity of the fast environment backends with the reference packages, step for step; and their speed.

  python tools/check_env_parity.py --task=lbf-8x8-2p-2f-coop --steps=200000
  python tools/check_env_parity.py --task=all --steps=200000 --count_steps=1000000
  python tools/check_env_parity.py --task=lbf-15x15-4p-5f --lbf_food_rule=v2   # one food rule only
  python tools/check_env_parity.py --bench                      # bare env steps/s at 16 envs, both backends

Parity: the reference `VectorEnvironment` and the fast backend are built with the same seed and stepped with
the same random joint actions; every `Step` field (observation, reward, terminated, truncated,
next_observation, episode_return, episode_length) and the first observations must be equal bit for bit,
through auto-resets. Both packages' infos are always empty (`{}`), so there is nothing more to compare.
Every `--state_every` vector steps the whole state is compared as well: the fast state read back from the
reference (`from_reference`) and through a round trip (`from_reference(to_reference())`) must equal the
fast state, generators included. An env step that the fast backend marks order-dependent (LBF: a loading
player touching two foods where the package's set order decides the outcome; see `fast_lbf`) is left out of
the comparison, counted, and the reference is set to the fast state before stepping on.

`--count_steps=N` also steps only the fast backend for N random env steps (its states are the
reference's, by the parity above) and counts the steps where a loading player touched two foods and the
order-dependent ones among them.

LBF's food-level rule (`lbf_food_rule`: v2, the lbforaging the paper ran; v3, lbforaging 2.0.0's) changes
the non-coop LBF tasks, so by default (`--lbf_food_rule=both`) those are checked under both rules; every
other task (coop LBF, RWARE) is the same env under either rule and is checked once.

Exit status 0 when every compared step is equal, 1 at the first difference (printed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from maddpg_tf.envs.builder import LBF_FOOD_RULES, TASKS, Step, VectorEnvironment, resolve_task
from maddpg_tf.envs.fast import FastVectorEnvironment
from maddpg_tf.envs.tasks import food_rule_matters

BENCH_TASKS = ("lbf-8x8-2p-2f-coop", "lbf-15x15-4p-5f", "rware-tiny-4ag")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
  """Bit-for-bit equality (dtype, shape and bytes: NaN patterns and signed zeros included)."""
  return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _first_difference(x: Step, y: Step, envs: np.ndarray) -> str | None:
  for name in Step._fields:
    a, b = getattr(x, name)[envs], getattr(y, name)[envs]
    if not _same(a, b):
      bad = [int(envs[k]) for k in range(len(envs)) if not _same(a[k], b[k])] if a.shape == b.shape else []
      return f"field {name} differs (envs {bad}): reference {a.tolist()} fast {b.tolist()}"
  return None


def _state_difference(fast: FastVectorEnvironment, other: FastVectorEnvironment) -> str | None:
  for name, array in fast._arrays.items():
    if name not in fast.diagnostics and not _same(array, other._arrays[name]):
      return f"state array {name} differs"
  for name in ("_t", "_returns"):
    if not _same(getattr(fast, name), getattr(other, name)):
      return f"clock {name} differs"
  for k, (g, h) in enumerate(zip(fast._rngs, other._rngs)):
    if (g is None) != (h is None) or (g is not None and g.bit_generator.state != h.bit_generator.state):
      return f"generator of env {k} differs"
  return None


def random_actions(vector, rng: np.random.Generator, observation=None, greedy: float = 0.0) -> np.ndarray:
  """Uniform random joint actions, or (LBF, `greedy` > 0) with that probability per agent a step towards
  the first food in view and LOAD beside it (random LBF agents seldom load together, so without it
  episodes seldom end by the last food)."""
  actions = vector.random_actions(rng)
  if greedy > 0 and observation is not None and vector.task.family == "lbf":
    num_food = (vector.spec.observation_size - 3 * vector.spec.num_agents) // 3
    food = observation[..., 0:2]
    me = observation[..., 3 * num_food:3 * num_food + 2]
    dr, dc = food[..., 0] - me[..., 0], food[..., 1] - me[..., 1]
    step = np.where(np.abs(dr) >= np.abs(dc), np.where(dr < 0, 1, 2), np.where(dc < 0, 3, 4))
    step = np.where(np.abs(dr) + np.abs(dc) == 1, 5, step)
    step = np.where(observation[..., 2] > 0, step, actions)
    actions = np.where(rng.random(actions.shape) < greedy, step, actions).astype(np.int64)
  return actions


def rules_to_check(task: str, choice: str = "both") -> tuple:
  """The food rules under which `task` is checked: `choice` ("v2", "v3" or "both"); a task the rule does
  not change (coop LBF, RWARE) once, under v3."""
  if not food_rule_matters(resolve_task(task)):
    return ("v3",)
  return tuple(sorted(LBF_FOOD_RULES)) if choice == "both" else (choice,)


def check_parity(task: str, steps: int, num_envs: int = 16, seed: int = 0, episode_limit: int | None = None,
                 action_seed: int = 1, state_every: int = 2000, greedy: float = 0.0, log=print,
                 lbf_food_rule: str = "v3") -> dict:
  """Steps both backends for about `steps` env steps; a summary dict (raises AssertionError on a difference)."""
  spec = resolve_task(task)
  limit = spec.code_cutoff if episode_limit is None else episode_limit
  reference = VectorEnvironment(spec, num_envs, seed, limit, lbf_food_rule)
  fast = FastVectorEnvironment(spec, num_envs, seed, limit, lbf_food_rule)
  first_ref, first_fast = reference.reset(), fast.reset()
  assert _same(first_ref, first_fast), f"{task}: first observations differ"
  observation = first_fast
  rng = np.random.default_rng(action_seed)
  counts = dict(task=task, lbf_food_rule=lbf_food_rule if food_rule_matters(spec) else "-", env_steps=0, compared_env_steps=0, excluded_order_dependent=0, episodes=0,
                terminated=0, truncated=0, rewarded_env_steps=0, state_checks=0)
  every_env = np.arange(num_envs)
  vector_steps = -(-steps // num_envs)
  for i in range(vector_steps):
    actions = random_actions(fast, rng, observation, greedy)
    x, y = reference.step(actions), fast.step(actions)
    observation = y.next_observation
    excluded = fast.last_order_dependent
    envs = every_env[~excluded] if excluded.any() else every_env
    difference = _first_difference(x, y, envs)
    if difference is not None:
      raise AssertionError(f"{task}: vector step {i} (env steps {i * num_envs}..): {difference}")
    counts["env_steps"] += num_envs
    counts["compared_env_steps"] += len(envs)
    counts["excluded_order_dependent"] += int(excluded.sum())
    ended = y.terminated | y.truncated
    counts["episodes"] += int(ended.sum())
    counts["terminated"] += int(y.terminated.sum())
    counts["truncated"] += int(y.truncated.sum())
    counts["rewarded_env_steps"] += int((y.reward != 0).any(axis=1).sum())
    if excluded.any():
      reference = fast.to_reference()
    if (i + 1) % state_every == 0 or i + 1 == vector_steps:
      for what, other in (("from_reference", FastVectorEnvironment.from_reference(reference)),
                          ("round trip", FastVectorEnvironment.from_reference(fast.to_reference()))):
        difference = _state_difference(fast, other)
        if difference is not None:
          raise AssertionError(f"{task}: after vector step {i}, {what}: {difference}")
      counts["state_checks"] += 1
  if spec.family == "rware":
    counts["networkx_resolved_env_steps"] = int(fast._arrays["networkx_steps"].sum())
  log(" ".join(f"{k}={v}" for k, v in counts.items()))
  return counts


def count_order_dependent(task: str, steps: int, num_envs: int = 16, seed: int = 0, action_seed: int = 2,
                          log=print, lbf_food_rule: str = "v3") -> dict:
  """Fast backend only: steps with a loading player touching two foods, and order-dependent steps."""
  spec = resolve_task(task)
  fast = FastVectorEnvironment(spec, num_envs, seed, spec.code_cutoff, lbf_food_rule)
  fast.reset()
  rng = np.random.default_rng(action_seed)
  for _ in range(-(-steps // num_envs)):
    fast.step(fast.random_actions(rng))
  touching = int(fast.touching_steps().sum()) if spec.family == "lbf" else 0
  counts = dict(task=task, lbf_food_rule=lbf_food_rule if food_rule_matters(spec) else "-", counted_env_steps=-(-steps // num_envs) * num_envs, touching_two_foods=touching,
                order_dependent=int(fast.order_dependent_steps.sum()))
  log(" ".join(f"{k}={v}" for k, v in counts.items()))
  return counts


def bench(tasks, num_envs: int = 16, env_steps: int = 8000, rounds: int = 3, log=print) -> list:
  """Bare env steps/s of both backends, measured in alternating blocks in this process."""
  results = []
  for task in tasks:
    spec = resolve_task(task)
    vectors = {"reference": VectorEnvironment(spec, num_envs, 0, spec.code_cutoff),
               "fast": FastVectorEnvironment(spec, num_envs, 0, spec.code_cutoff)}
    rng = np.random.default_rng(0)
    actions = [vectors["fast"].random_actions(rng) for _ in range(-(-env_steps // num_envs))]
    seconds = {name: 0.0 for name in vectors}
    for vector in vectors.values():
      vector.reset()
      for a in actions[:20]:  # warm-up (first calls, caches)
        vector.step(a)
    for _ in range(rounds):
      for name, vector in vectors.items():
        start = time.perf_counter()
        for a in actions:
          vector.step(a)
        seconds[name] += time.perf_counter() - start
    total = rounds * len(actions) * num_envs
    rate = {name: total / seconds[name] for name in vectors}
    result = dict(task=task, num_envs=num_envs, reference_steps_per_s=round(rate["reference"]),
                  fast_steps_per_s=round(rate["fast"]), ratio=round(rate["fast"] / rate["reference"], 1))
    log(" ".join(f"{k}={v}" for k, v in result.items()))
    results.append(result)
  return results


def _positive(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
  if value < 1:
    raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
  return value


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--task", default=None, help="a task name, a gymnasium id, or 'all' (the nine tasks)")
  parser.add_argument("--steps", type=_positive, default=200_000, help="random env steps per task")
  parser.add_argument("--num_envs", type=_positive, default=16)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--episode_limit", type=_positive, default=None,
                      help="cut-off (default: the task's code cut-off; LBF's own limit is 50)")
  parser.add_argument("--state_every", type=_positive, default=2000, help="vector steps between state checks")
  parser.add_argument("--greedy", type=float, default=0.0,
                      help="LBF: probability that an agent heads for the first food in view (and loads) instead "
                      "of acting at random")
  parser.add_argument("--lbf_food_rule", choices=("both", *sorted(LBF_FOOD_RULES)), default="both",
                      help="the non-coop LBF tasks' food rule(s): v2 (the paper's lbforaging), v3 (2.0.0's), or both")
  parser.add_argument("--count_steps", type=int, default=0, help="also count order-dependent steps over N env steps")
  parser.add_argument("--bench", action="store_true", help="bare env steps/s of both backends at --num_envs")
  parser.add_argument("--bench_steps", type=_positive, default=8000, help="env steps per timed block")
  args = parser.parse_args(argv)
  if not 0.0 <= args.greedy <= 1.0:
    parser.error(f"--greedy must be in [0, 1], got {args.greedy}")
  if args.task is None and not args.bench:
    parser.error("give --task=NAME (or all), and/or --bench")
  tasks = []
  if args.task == "all":
    tasks = list(TASKS)
  elif args.task is not None:
    try:
      tasks = [resolve_task(args.task).name]
    except ValueError as error:
      parser.error(str(error))
  try:
    for task in tasks:
      for rule in rules_to_check(task, args.lbf_food_rule):
        check_parity(task, args.steps, args.num_envs, args.seed, args.episode_limit, state_every=args.state_every,
                     greedy=args.greedy, lbf_food_rule=rule)
        if args.count_steps > 0:
          count_order_dependent(task, args.count_steps, args.num_envs, args.seed, lbf_food_rule=rule)
  except AssertionError as error:
    print(f"PARITY FAILED: {error}", file=sys.stderr)
    return 1
  except ValueError as error:
    parser.error(str(error))
  if args.bench:
    bench(tasks or BENCH_TASKS, args.num_envs, args.bench_steps)
  return 0


if __name__ == "__main__":
  sys.exit(main())
