"""Bad input by the thousand: configs, command lines, import paths and checkpoints generated from the
schema (`maddpg_tf.config.SCHEMA`) with Hypothesis, invalid ones mixed with valid ones.

- Every invalid config value (wrong type, out of range, not a choice, a misspelled key) is refused by the
  schema with one line naming the key, the value and what is allowed; every valid one passes it.
- Valid generated configs train a few steps on the fake environment without an exception.
- Invalid `maddpg-train` command lines exit 2 with one line, leaving every file byte-identical.
- Import paths that do not import are one line naming them; a checkpoint damaged in any way is refused.

The examples are derandomised (the same ones every run) and sized for CI; `HYPOTHESIS_PROFILE=long` runs
about 5,000 config examples and more of the rest (`python -m pytest -q -n 0 tests/test_generated_inputs.py`
with it set; README: Reliability).
"""

import hashlib
import json
import math
import os
import string
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st

from maddpg_tf import config as config_lib
from maddpg_tf.run import checkpointing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
# Examples per test: (CI, long). The long run's config examples total about 5,000.
COUNTS = {"invalid": (300, 3000), "valid": (150, 1500), "paths": (40, 300), "train": (6, 40), "cli": (8, 60),
          "checkpoint": (60, 500), "keys": (80, 500)}


def examples(kind, **more):
  return settings(max_examples=COUNTS[kind][LONG], derandomize=True, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], **more)


# Examples that start a process or train: a failure is reported as drawn (shrinking one would retrain
# for minutes), with its values in the assertion message.
EXPENSIVE = dict(phases=[Phase.explicit, Phase.generate])


TASKS = ("lbf-8x8-2p-2f-coop", "lbf-15x15-4p-5f", "Foraging-10x10-3p-3f-v3", "rware-tiny-2ag", "simple_spread")
BASES = {task: config_lib.get_config(f"task={task}").to_dict() for task in TASKS}
ENV_LIMIT = {task: config_lib.tasks_lib.resolve_task(task).env_episode_limit for task in TASKS}


def set_leaf(tree, dotted, value):
  *parents, leaf = dotted.split(".")
  for part in parents:
    tree = tree[part]
  tree[leaf] = value


# ---- values the schema allows, and values it does not --------------------------------------------------

def valid_value(key, field, task):
  """A strategy of values `field` allows (and the task and the other keys allow: kept small)."""
  if key == "task":
    return st.just(task)
  if key == "lbf_food_rule":
    return st.sampled_from(("v2", "v3", None)) if task.startswith(("lbf", "Foraging")) else st.none()
  if key == "loop.episode_limit":
    return st.one_of(st.none(), st.integers(1, ENV_LIMIT[task]))
  if key in ("estimator.name", "estimator.label", "estimator.schedule", "estimator.options", "env_workers",
             "log.video_every_evals", "log.to", "device.visible_gpus"):
    # checked beyond the schema (log.to: config.log_targets; device.visible_gpus: config.visible_gpus)
    return st.just(BASES[task][key.split(".")[0]][key.split(".")[1]] if "." in key else BASES[task][key])
  if field.choices is not None:
    choices = st.sampled_from(field.choices)
    return st.one_of(st.none(), choices) if field.optional else choices
  if field.kind == "bool":
    values = st.booleans()
  elif field.kind == "sizes":
    values = st.lists(st.integers(1, 64), min_size=1, max_size=3).map(tuple)
  elif field.kind == "int":
    values = st.integers(int(field.low) if field.low is not None else -10**6,
                         int(field.high) if field.high is not None else 10**6)
    if key in ("num_envs", "loop.eval_num_envs"):
      values = st.integers(1, 64)
    if key in ("replay.capacity",):
      values = st.integers(10**4, 10**6)
    if key in ("replay.batch_size",):
      values = st.integers(1, 10**4)
  elif field.kind == "float":
    low = field.low if field.low is not None else -1e6
    high = field.high if field.high is not None else 1e6
    values = st.floats(low, high, allow_nan=False, exclude_min=field.open_low)
  else:
    values = st.text(string.ascii_letters, max_size=8)
  return st.one_of(st.none(), values) if field.optional else values


def invalid_value(key, field):
  """A strategy of values `field` refuses."""
  wrong = {
      "int": st.one_of(st.floats(allow_nan=True).filter(lambda v: not float(v).is_integer() if math.isfinite(v)
                                                        else True),
                       st.text(max_size=6), st.booleans(), st.lists(st.integers(), max_size=2)),
      "float": st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), st.text(max_size=6), st.booleans(),
                         st.lists(st.floats(), max_size=2)),
      "bool": st.one_of(st.integers(), st.sampled_from(["True", "false", "yes", ""]), st.floats(allow_nan=False)),
      "str": st.one_of(st.integers(), st.floats(allow_nan=False), st.lists(st.text(max_size=3), max_size=2)),
      "sizes": st.one_of(st.just(()), st.lists(st.integers(-5, 0), min_size=1, max_size=3).map(tuple),
                         st.integers(), st.lists(st.text(max_size=2), min_size=1, max_size=2).map(tuple)),
  }[field.kind]
  options = [wrong]
  if not field.optional:
    options.append(st.none())
  if field.choices is not None:
    options.append(st.text(max_size=10).filter(lambda v: v not in field.choices))
  if field.kind in ("int", "float") and field.low is not None:
    below = st.integers(-10**6, int(math.ceil(field.low)) - (0 if field.open_low else 1))
    options.append(below if field.kind == "int" else below.map(float))
  if field.kind in ("int", "float") and field.high is not None:
    options.append(st.integers(int(field.high) + 1, int(field.high) + 10**6))
  return st.one_of(*options)


@st.composite
def mixed_configs(draw, bad_key=None):
  """(config dict, task): a base config of a task with some keys set to valid generated values."""
  task = draw(st.sampled_from(TASKS))
  tree = json.loads(json.dumps(BASES[task]))
  for key in draw(st.lists(st.sampled_from(sorted(config_lib.SCHEMA)), max_size=6, unique=True)):
    if key != bad_key:
      set_leaf(tree, key, draw(valid_value(key, config_lib.SCHEMA[key], task)))
  set_leaf(tree, "env_workers", 0)
  if tree["device"]["memory_limit_mb"] is not None:  # the two GPU memory bounds exclude each other
    tree["device"]["memory_fraction"] = None
  tree["replay"]["capacity"] = max(tree["replay"]["capacity"], tree["replay"]["batch_size"])
  return tree, task


@st.composite
def invalid_configs(draw):
  key = draw(st.sampled_from(sorted(k for k in config_lib.SCHEMA if k != "task")))
  tree, task = draw(mixed_configs(bad_key=key))
  value = draw(invalid_value(key, config_lib.SCHEMA[key]))
  if key == "lbf_food_rule" and not task.startswith(("lbf", "Foraging")):
    assume(value is not None)
  set_leaf(tree, key, value)
  return tree, key, value


@examples("invalid")
@given(invalid_configs())
def test_every_invalid_value_is_refused_naming_the_key_and_the_value(case):
  tree, key, value = case
  with pytest.raises(config_lib.ConfigError) as refused:
    config_lib.resolve(tree)
  message = str(refused.value)
  assert "\n" not in message
  assert key.rsplit(".", 1)[-1] in message, (key, value, message)
  assert repr(value)[:40] in message or repr(tuple(value) if isinstance(value, list) else value)[:40] in message, \
      (key, value, message)


@examples("valid")
@given(mixed_configs())
def test_valid_values_pass_the_schema_and_are_kept(case):
  tree, _ = case
  resolved = config_lib.resolve(tree)
  for key, value in config_lib.leaves(tree):
    if value is not None:
      kept = config_lib.get_value(resolved, key)
      assert kept == value or (isinstance(value, (list, tuple)) and tuple(kept) == tuple(value)), key


def misspelled(word):
  return st.one_of(
      st.integers(0, len(word) - 1).map(lambda i: word[:i] + word[i + 1:]),                          # a letter out
      st.tuples(st.integers(0, len(word)), st.sampled_from(string.ascii_lowercase)).map(
          lambda p: word[:p[0]] + p[1] + word[p[0]:]),                                               # one more
      st.integers(0, len(word) - 2).map(lambda i: word[:i] + word[i + 1] + word[i] + word[i + 2:]),  # swapped
  ).filter(lambda w: w != word)


@st.composite
def misspelled_keys(draw):
  key = draw(st.sampled_from(sorted(config_lib.SCHEMA)))
  parts = key.split(".")
  at = draw(st.integers(0, len(parts) - 1))
  parts[at] = draw(misspelled(parts[at]))
  wrong = ".".join(parts)
  assume(wrong not in config_lib.SCHEMA and not any(k.startswith(wrong + ".") for k in config_lib.SCHEMA))
  return key, wrong


@examples("keys")
@given(misspelled_keys(), st.sampled_from(TASKS))
def test_a_misspelled_key_is_refused_naming_it_and_the_keys_there_are(keys, task):
  right, wrong = keys
  tree = json.loads(json.dumps(BASES[task]))
  node, parts = tree, wrong.split(".")
  for part in parts[:-1]:
    node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
  node[parts[-1]] = config_lib.get_value(ml_collections.ConfigDict(BASES[task]), right)
  with pytest.raises(config_lib.ConfigError) as refused:
    config_lib.resolve(tree)
  message = str(refused.value)
  assert "\n" not in message and ("unknown config key" in message or "is missing" in message), message


# ---- import paths --------------------------------------------------------------------------------------

IDENTIFIER = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
PATHS = st.one_of(
    st.builds(lambda m, c: f"{m}:{c}", IDENTIFIER, IDENTIFIER),                      # a module that is not there
    st.builds(lambda m, c: f"{m}:{c}", st.sampled_from(["os", "json", "estimators"]), IDENTIFIER),  # no such attr
    st.builds(lambda m: f"{m}:", IDENTIFIER), st.builds(lambda c: f":{c}", IDENTIFIER),
    st.text(string.printable, max_size=12).filter(lambda t: ":" in t),
)


@examples("paths")
@given(PATHS)
def test_an_estimator_path_that_does_not_import_is_one_line_naming_it(path):
  from maddpg_tf.run import validation  # pylint: disable=g-import-not-at-top
  config = config_lib.get_config("task=lbf-8x8-2p-2f-coop")
  config.estimator.name = path
  with pytest.raises(validation.RunError) as refused:
    validation.resolve_config(config)
  assert "\n" not in str(refused.value) and repr(path)[1:-1][:20] in str(refused.value), str(refused.value)


@examples("paths")
@given(PATHS)
def test_an_env_factory_path_that_does_not_import_is_one_line_naming_it(path):
  tree = json.loads(json.dumps(BASES["lbf-8x8-2p-2f-coop"]))
  tree["task"] = path
  with pytest.raises(config_lib.ConfigError) as refused:
    config_lib.resolve(tree)
  assert "\n" not in str(refused.value) and repr(path)[1:-1][:20] in str(refused.value), str(refused.value)


# ---- valid configs train on the fake env --------------------------------------------------------------

LEARNING_KEYS = ("learner.hidden_sizes", "learner.gamma", "learner.tau", "learner.use_target_networks",
                 "learner.standardise_rewards", "loop.updates_per_episode", "loop.asynchronous_updates",
                 "loop.truncation_is_terminal", "loop.eval_into_replay", "replay.observation_dtype", "fidelity",
                 "seed")
# Values a researcher would train with (the schema allows any positive rate; 1e6 diverges, as it should,
# which the run reports as a NaN loss in one line).
SANE = {"learner.actor_learning_rate": st.floats(1e-5, 1e-2), "learner.critic_learning_rate": st.floats(1e-5, 1e-2),
        "learner.logit_l2": st.floats(0, 1e-2), "learner.max_grad_norm": st.floats(0.1, 10),
        "learner.adam_epsilon": st.floats(1e-8, 1e-2),
        "loop.updates_per_episode": st.integers(1, 4)}  # (10**6 updates per episode are allowed, and slow)
ESTIMATORS = {"stgs-1": {}, "gst": {}, "grmck": {}, "tags": {}, "reinmax": {}, "zgr": {}, "expected": {},
              "rloo": {}}


@examples("train", **EXPENSIVE)
@given(st.sampled_from(sorted(ESTIMATORS)), st.fixed_dictionaries(
    {**{k: valid_value(k, config_lib.SCHEMA[k], "lbf-8x8-2p-2f-coop") for k in LEARNING_KEYS}, **SANE}),
       st.integers(1, 4), st.integers(2, 32))
@pytest.mark.slow
def test_valid_generated_configs_train_a_few_steps_on_the_fake_env(tmp_path_factory, estimator, values, envs,
                                                                    batch):
  from maddpg_tf.run import experiment  # pylint: disable=g-import-not-at-top
  from tests import fakes  # pylint: disable=g-import-not-at-top
  config = config_lib.get_config(f"task=lbf-8x8-2p-2f-coop,estimator={estimator},smoke")
  for key, value in values.items():
    config_lib.set_value(config, key, min(value, 10**6) if key == "seed" and value is not None else value)
  config.learner.hidden_sizes = tuple(min(h, 16) for h in config.learner.hidden_sizes)
  config.update(dict(total_steps=60, num_envs=envs, jit_compile=False, env_workers=0))
  config.replay.batch_size = batch
  config.loop.update(dict(episode_limit=5, warmup_episodes=2, eval_every_steps=30, eval_episodes=2,
                          eval_num_envs=2))
  config.checkpoint.every_steps = 30

  def make_env(num_envs, seed, workers):
    del workers
    return fakes.make_fake(num_envs=num_envs, seed=seed)

  workdir = str(tmp_path_factory.mktemp("run"))
  with experiment.Experiment(config, workdir, progress=False, make_env=make_env) as run:
    try:
      summary = run.run()
    except experiment.RunError as error:
      raise AssertionError(f"{estimator} {values} envs={envs} batch={batch}: {error}") from None
  assert summary["env_steps"] >= 60 and summary["evaluations"] >= 2


# ---- command lines -------------------------------------------------------------------------------------

def tree_hash(directory):
  found = {}
  for root, _, files in os.walk(directory):
    for name in files:
      with open(os.path.join(root, name), "rb") as handle:
        found[os.path.relpath(os.path.join(root, name), directory)] = hashlib.sha256(handle.read()).hexdigest()
  return found


FLAG_TEXT = st.text(string.ascii_letters + string.digits + ".-_()[],", max_size=8)


@st.composite
def bad_command_lines(draw):
  kind = draw(st.sampled_from(["value", "key", "flag"]))
  if kind == "flag":
    flag = draw(misspelled("workdir"))
    return [f"--{flag}=w"], flag
  if kind == "key":
    _, wrong = draw(misspelled_keys())
    return [f"--config.{wrong}=1"], wrong.split(".")[-1] if "." not in wrong else wrong.split(".")[0]
  key = draw(st.sampled_from(sorted(k for k, f in config_lib.SCHEMA.items()
                                    if f.kind in ("int", "float", "bool") and k != "env_workers")))
  value = draw(invalid_value(key, config_lib.SCHEMA[key]).filter(
      lambda v: isinstance(v, (int, float, str)) and not isinstance(v, bool) and str(v).strip() == str(v)
      and str(v) != "" and "\x00" not in str(v)))
  return [f"--config.{key}={value}"], str(value)


@examples("cli", **EXPENSIVE)
@given(bad_command_lines())
@pytest.mark.slow
def test_invalid_command_lines_are_one_line_exit_2_and_change_nothing(tmp_path_factory, case):
  args, named = case
  directory = tmp_path_factory.mktemp("cli")
  (directory / "notes.txt").write_text("keep me")
  before = tree_hash(directory)
  done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.train", f"--config={REPO}/configs/lbf.py:smoke", *args,
                         "--workdir=w"], cwd=directory, env=ENV, capture_output=True, text=True, timeout=300)
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 2 and len(lines) == 1, (args, done.stderr[-2000:])
  assert lines[0].startswith("maddpg-train: error: ") and named[:20] in lines[0], (args, lines[0])
  assert tree_hash(directory) == before


# ---- checkpoints ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("ckpt"))
  arrays = {"weights": np.arange(300, dtype=np.float32).reshape(10, 30), "count": np.int64(7)}
  path = checkpointing.save(directory, 100, arrays, {"rng": {"state": 3}, "returns": [1.0, 2.0]}, {"task": "t"})
  with open(os.path.join(path, checkpointing.MARKER), "rb") as handle:
    marker = handle.read()
  return path, {name: open(os.path.join(path, name), "rb").read()  # pylint: disable=consider-using-with
                for name in (*checkpointing.DATA_FILES, checkpointing.MARKER)}, marker


DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 0.999)),
    st.tuples(st.just("flip"), st.floats(0, 0.999), st.integers(1, 255)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("replace"), st.binary(max_size=64)),
    st.tuples(st.just("remove")),
)


@examples("checkpoint")
@given(st.sampled_from([*checkpointing.DATA_FILES, checkpointing.MARKER]), DAMAGE)
def test_a_damaged_checkpoint_is_refused_in_one_line(checkpoint, name, damage):
  path, originals, _ = checkpoint
  content = originals[name]
  if damage[0] == "truncate":
    changed = content[:int(damage[1] * len(content))]
  elif damage[0] == "flip":
    at = int(damage[1] * len(content))
    changed = content[:at] + bytes([content[at] ^ damage[2]]) + content[at + 1:]
  elif damage[0] == "append":
    changed = content + damage[1]
  elif damage[0] == "replace":
    changed = damage[1]
  else:
    changed = None
  if name == checkpointing.MARKER and changed is not None:
    try:  # a marker that still reads as the same metadata is not damage
      assume(json.loads(changed) != json.loads(content))
      assume(isinstance(json.loads(changed), dict) and json.loads(changed).get("sha256") != json.loads(content)[
          "sha256"])
    except (ValueError, UnicodeDecodeError):
      pass
  target = os.path.join(path, name)
  try:
    if changed is None:
      os.remove(target)
    else:
      with open(target, "wb") as handle:
        handle.write(changed)
    with pytest.raises(checkpointing.CheckpointError) as refused:
      checkpointing.load(path, {"task": "t"})
    assert "\n" not in str(refused.value) and "is corrupt or incomplete" in str(refused.value)
  finally:
    with open(target, "wb") as handle:
      handle.write(content)
  checkpointing.load(path, {"task": "t"})  # restored: loads again
