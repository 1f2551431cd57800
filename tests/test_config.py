"""`maddpg_tf.config`: presets, the fidelity defaults, the schema's bounds, the checks across keys, old
config formats and estimator options."""

import json

import ml_collections
import pytest

from maddpg_tf import config as config_lib
from maddpg_tf.envs import tasks as tasks_lib

ConfigError = config_lib.ConfigError


def config_with(arg="smoke", **values):
  config = config_lib.get_config(arg)
  for key, value in values.items():
    config_lib.set_value(config, key, value)
  return config


def test_parse_arg_reads_task_estimator_and_budget_and_refuses_unknown_words():
  assert config_lib.parse_arg("task=lbf-10x10-3p-3f,estimator=stgs-1,smoke") == {
      "task": "lbf-10x10-3p-3f", "estimator": "stgs-1", "smoke": True}
  assert config_lib.parse_arg("env=my_envs:make") == {"task": "my_envs:make"}
  with pytest.raises(ValueError, match=r"unknown config argument 'smok' in 'smok'; allowed: task, env, "):
    config_lib.parse_arg("smok")
  with pytest.raises(ValueError, match="both name the task"):
    config_lib.parse_arg("task=lbf-8x8-2p-2f-coop,env=m:f")


def test_a_budget_overrides_the_paper_settings_per_family():
  paper, smoke = config_lib.get_config(""), config_lib.get_config("smoke")
  assert paper.total_steps == config_lib.TOTAL_STEPS["lbf-8x8-2p-2f-coop"]
  assert (smoke.total_steps, smoke.replay.batch_size, smoke.num_envs) == (2_000, 64, 4)
  assert paper.replay.batch_size == 512 and paper.replay.capacity == 2_000_000
  rware = config_lib.get_config("task=rware-tiny-2ag,smoke")
  assert (rware.loop.episode_limit, rware.loop.updates_per_episode) == (100, 2)  # RWARE's own smoke values


def test_an_unknown_task_or_estimator_is_a_config_error_naming_it():
  with pytest.raises(ConfigError, match="lbf-9x9"):
    config_lib.get_config("task=lbf-9x9")
  with pytest.raises(ValueError, match=r"unknown estimator 'gts'; allowed: .*gst"):
    config_lib.get_config("estimator=gts")


@pytest.mark.parametrize("fidelity, target, truncation_terminal, eval_into_replay, unit, limit", [
    ("code", False, True, True, "updates", 25), ("text", True, False, False, "env_steps", 50)])
def test_resolve_fills_what_fidelity_chooses(fidelity, target, truncation_terminal, eval_into_replay, unit,
                                             limit):
  config = config_lib.resolve(config_with(fidelity=fidelity))
  assert config.learner.use_target_networks is target
  assert config.loop.truncation_is_terminal is truncation_terminal
  assert config.loop.eval_into_replay is eval_into_replay
  assert config.estimator.schedule_unit == unit
  task = tasks_lib.resolve_task(config.task)
  assert config.loop.episode_limit == limit == (task.code_cutoff if fidelity == "code" else task.env_episode_limit)


def test_resolve_keeps_what_the_user_set_and_is_idempotent():
  config = config_lib.resolve(config_with(**{"learner.use_target_networks": True, "loop.episode_limit": 10}))
  assert config.learner.use_target_networks is True and config.loop.episode_limit == 10
  assert config_lib.resolve(config).to_dict() == config.to_dict()


def test_a_config_json_round_trip_resolves_to_the_same_config():
  config = config_lib.resolve(config_with())
  again = config_lib.resolve(ml_collections.ConfigDict(json.loads(json.dumps(config.to_dict()))))
  assert again.to_dict() == config.to_dict() and again.learner.hidden_sizes == (64, 64)


def test_the_default_food_rule_is_the_papers_for_its_names_and_the_packages_for_gym_ids():
  assert config_lib.resolve(config_with()).lbf_food_rule == "v2"
  assert config_lib.default_food_rule(tasks_lib.resolve_task("lbf-10x10-3p-3f")) == "v2"
  rware = config_lib.resolve(config_lib.get_config("task=rware-tiny-2ag,smoke"))
  assert rware.lbf_food_rule is None
  with pytest.raises(ConfigError, match=r"lbf_food_rule applies to LBF tasks only; rware-tiny-2ag"):
    config_lib.resolve(config_with("task=rware-tiny-2ag,smoke", lbf_food_rule="v2"))


@pytest.mark.parametrize("key, value, message", [
    ("env_workers", 5, r"env_workers must be an integer in 0..num_envs \(4\), got 5"),
    ("loop.episode_limit", 51, r"loop.episode_limit must be an integer in 1..50 \(the env's own limit for "),
    ("replay.capacity", 63, r"replay.capacity \(63\) must be >= replay.batch_size \(64\)"),
])
def test_checks_across_keys(key, value, message):
  with pytest.raises(ConfigError, match=message):
    config_lib.resolve(config_with(**{key: value}))


@pytest.mark.parametrize("field, inside, outside", [
    (config_lib.Field("float", low=0, high=1), [0, 0.5, 1], [-1e-9, 1.0000001, float("nan"), True, "0.5"]),
    (config_lib.Field("float", low=0, high=1, open_low=True), [1e-12, 1], [0, 0.0]),
    (config_lib.Field("int", low=1), [1, 10**12], [0, 1.0, True, None]),
    (config_lib.Field("int", low=1, optional=True), [None, 3], [0]),
    (config_lib.Field("str", choices=("a", "b")), ["a", "b"], ["c", "A", 1]),
    (config_lib.Field("bool"), [True, False], [1, 0, "True"]),
    (config_lib.Field("sizes"), [(64, 64), [1]], [(), (0,), (64, 1.5), [True]]),
])
def test_a_field_accepts_exactly_its_kind_and_range(field, inside, outside):
  assert all(field.accepts(value) for value in inside)
  assert not any(field.accepts(value) for value in outside)


def test_a_field_says_what_it_allows():
  assert config_lib.Field("float", low=0, high=1, open_low=True).allowed() == "a number in (0, 1]"
  assert config_lib.Field("int", low=1, optional=True).allowed() == "an integer >= 1 (or None: the default)"
  assert config_lib.Field("str", choices=("fast", "reference")).allowed() == "one of 'fast', 'reference'"


def test_every_key_of_the_default_config_is_in_the_schema_and_back():
  leaves = dict(config_lib.leaves(config_lib.get_config().to_dict()))
  assert set(leaves) == set(config_lib.SCHEMA)


def test_a_missing_key_and_a_wrong_value_name_the_key():
  tree = config_lib.get_config("smoke").to_dict()
  del tree["replay"]["capacity"]
  with pytest.raises(ConfigError, match=r"config key 'replay.capacity' is missing \(an integer >= 1\)"):
    config_lib.check_schema(tree)
  tree = config_lib.get_config("smoke").to_dict()
  tree["learner"]["gamma"] = 1.5
  with pytest.raises(ConfigError, match=r"^learner.gamma must be a number in \[0, 1\], got 1.5$"):
    config_lib.check_schema(tree)


def test_upgrade_fills_the_keys_an_old_config_predates_with_what_its_run_used():
  old = config_lib.resolve(config_with("task=lbf-10x10-3p-3f,smoke")).to_dict()
  for key in ("env_workers", "env_backend", "diagnostics", "lbf_food_rule"):
    del old[key]
  del old["checkpoint"]["keep_best"]
  upgraded = config_lib.upgrade(old)
  assert (upgraded["env_workers"], upgraded["env_backend"], upgraded["checkpoint"]["keep_best"]) == (
      0, "reference", False)
  assert upgraded["lbf_food_rule"] == "v3"  # a non-coop task's old runs stepped lbforaging 2.0.0's rule
  coop = config_lib.resolve(config_with()).to_dict()
  del coop["lbf_food_rule"]
  assert config_lib.upgrade(coop)["lbf_food_rule"] == "v2"  # coop envs are the same under both rules
  assert "env_workers" not in old and "keep_best" not in old["checkpoint"]  # the input is not changed


def test_estimator_params_hold_the_set_fields_and_the_options():
  config = config_with(**{"estimator.options": 'weight=0.3,mode="hard",flag=True,word=abc'})
  params = config_lib.estimator_params(config)
  assert params["temperature"] == config.estimator.temperature
  assert {k: params[k] for k in ("weight", "mode", "flag", "word")} == {
      "weight": 0.3, "mode": "hard", "flag": True, "word": "abc"}
  with pytest.raises(ConfigError, match=r"estimator.options item 'weight' must be name=value"):
    config_lib.parse_options("weight")


def test_env_settings_are_what_the_env_builder_takes():
  config = config_lib.resolve(config_with())
  assert config_lib.env_settings(config) == {"episode_limit": 25, "lbf_food_rule": "v2",
                                             "backend": config.env_backend}


def test_differences_names_every_leaf_and_treats_json_lists_as_tuples():
  old = {"a": 1, "g": {"x": [64, 64], "y": 2}, "only_old": 3}
  new = {"a": 1, "g": {"x": (64, 64), "y": 5}, "only_new": 4}
  assert config_lib.differences(old, new) == ["g.y: 2 there, 5 here", "only_new: None there, 4 here",
                                               "only_old: 3 there, None here"]
