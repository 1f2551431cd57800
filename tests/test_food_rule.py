"""LBF's food-level rule (`config.lbf_food_rule`): which rule each task runs by default, that the run's
environments, evaluation environments, identity and records follow it, that old configs read as the rule
they ran, and that both backends agree step for step under both rules on the five non-coop tasks."""

import json
import os

import ml_collections
import numpy as np
import pytest

from maddpg_tf import config as config_lib, files
from maddpg_tf.envs import builder as environments
from maddpg_tf.run import workdir as workdir_lib
from maddpg_tf.envs import tasks as tasks_lib
from tools import check_env_parity

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NON_COOP = ("lbf-10x10-3p-3f", "lbf-10x10-3p-3f-2s", "lbf-15x15-3p-5f", "lbf-15x15-4p-3f", "lbf-15x15-4p-5f")
COOP = ("lbf-8x8-2p-2f-coop", "lbf-8x8-2p-2f-2s-coop")


def resolved(arg, **overrides):
  config = config_lib.get_config(arg)
  for key, value in overrides.items():
    config_lib.set_value(config, key, value)
  return config_lib.resolve(config)


# ---- defaults -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", NON_COOP + COOP)
def test_the_papers_task_names_run_the_papers_rule(task):
  assert resolved(f"task={task}").lbf_food_rule == "v2"


@pytest.mark.parametrize("task", ["Foraging-10x10-3p-3f-v3", "Foraging-15x15-4p-5f-v3", "Foraging-8x8-2p-2f-coop-v3"])
def test_a_gymnasium_id_keeps_meaning_the_installed_package(task):
  assert resolved(f"task={task}").lbf_food_rule == "v3"


@pytest.mark.parametrize("task", ["rware-tiny-4ag", "simple_spread"])
def test_families_without_a_food_rule_have_none(task):
  assert resolved(f"task={task}").lbf_food_rule is None


def test_the_rule_can_be_chosen():
  assert resolved("task=lbf-15x15-4p-5f", lbf_food_rule="v3").lbf_food_rule == "v3"
  assert resolved("task=Foraging-10x10-3p-3f-v3", lbf_food_rule="v2").lbf_food_rule == "v2"


@pytest.mark.parametrize("task, value, expect", [
    ("lbf-10x10-3p-3f", "v1", "lbf_food_rule must be one of 'v2', 'v3'"),
    ("lbf-10x10-3p-3f", "paper", "got 'paper'"),
    ("rware-tiny-2ag", "v2", "applies to LBF tasks only; rware-tiny-2ag (family rware)"),
    ("simple_spread", "v3", "applies to LBF tasks only; simple_spread (family mpe)")])
def test_bad_rules_are_refused_naming_the_value(task, value, expect):
  with pytest.raises(config_lib.ConfigError, match=expect.replace("(", r"\(").replace(")", r"\)")):
    resolved(f"task={task}", lbf_food_rule=value)


def test_which_tasks_the_rule_changes():
  assert all(tasks_lib.food_rule_matters(tasks_lib.resolve_task(t)) for t in NON_COOP)
  assert not any(tasks_lib.food_rule_matters(tasks_lib.resolve_task(t)) for t in COOP + ("rware-tiny-2ag",))


# ---- the environments follow the config ---------------------------------------------------------------

def _food_levels(env, resets):
  """(levels of the foods on the field, the level cap L) after each of `resets` resets of env 0."""
  found = []
  for _ in range(resets):
    env.reset()
    inner = env.envs[0]
    cap = sum(sorted(p.level for p in inner.players)[:3])
    found.append((inner.field[inner.field > 0].tolist(), cap))
  return found


@pytest.mark.parametrize("rule", ["v2", "v3"])
def test_the_runs_environments_and_its_evaluation_environments_follow_the_rule(rule):
  from maddpg_tf.run import experiment, saved_policies  # pylint: disable=g-import-not-at-top
  config = resolved("task=lbf-15x15-4p-5f,smoke", lbf_food_rule=rule)
  train_env = experiment._default_make_env(config)(2, 0, 0)  # pylint: disable=protected-access
  eval_env = saved_policies.make_eval_env(config, num_envs=1)
  try:
    assert train_env.lbf_food_rule == eval_env.lbf_food_rule == rule
    levels = _food_levels(eval_env, 60)
    at_cap = sum(level == cap for foods, cap in levels for level in foods)
    if rule == "v2":
      assert at_cap == 0 and all(level < cap for foods, cap in levels for level in foods)
    else:  # about a quarter of 2.0.0's foods sit at the cap
      assert at_cap > 0.1 * sum(len(foods) for foods, _ in levels)
  finally:
    train_env.close()
    eval_env.close()


@pytest.mark.parametrize("task", COOP)
def test_coop_tasks_are_the_same_envs_under_both_rules(task):
  steps = {}
  for rule in ("v2", "v3"):
    env = environments.make(task, num_envs=4, seed=7, lbf_food_rule=rule, backend="fast")
    rng = np.random.default_rng(0)
    first = env.reset()
    steps[rule] = [first] + [np.concatenate([np.ravel(f) for f in env.step(rng.integers(0, 6, (4, 2)))[:4]])
                             for _ in range(300)]
  for a, b in zip(steps["v2"], steps["v3"]):
    np.testing.assert_array_equal(a, b)


# ---- identity and records -----------------------------------------------------------------------------

def test_a_workdir_of_the_other_rule_is_refused_naming_the_rule_first(tmp_path):
  config = resolved("task=lbf-15x15-4p-5f,smoke", lbf_food_rule="v3")
  other = resolved("task=lbf-15x15-4p-5f,smoke", **{"lbf_food_rule": "v2", "seed": 5})
  files.write_json(str(tmp_path / "config.json"), config.to_dict())
  workdir_lib.Workdir(str(tmp_path)).check(config)  # the same run: resumes
  with pytest.raises(workdir_lib.errors.RunError, match=r"holds a different run \(seed: 0 there, 5 here; "
                                                         r"lbf_food_rule: 'v3' there, 'v2' here\)"):
    workdir_lib.Workdir(str(tmp_path)).check(other)


def test_provenance_records_the_rule_and_what_it_means():
  config = resolved("task=lbf-10x10-3p-3f")
  record = workdir_lib.provenance(config, tasks_lib.resolve_task(config.task))
  assert record["lbf_food_rule"] == "v2" and "a409b672" in record["note"]
  rware = resolved("task=rware-tiny-4ag")
  assert "lbf_food_rule" not in workdir_lib.provenance(rware, tasks_lib.resolve_task(rware.task))
  assert config_lib.hparams(config)["lbf_food_rule"] == "v2"


def test_configs_written_before_the_rule_read_as_the_rule_they_ran():
  medium = os.path.join(REPO, "results", "medium")
  for task, expected in (("lbf-15x15-4p-5f", "v3"), ("rware-tiny-4ag", None)):
    path = os.path.join(medium, task, "gst", "seed0", "config.json")
    with open(path) as handle:
      old = json.load(handle)
    if "lbf_food_rule" in old:
      continue  # a run of today's format records its rule itself
    assert config_lib.upgrade(old)["lbf_food_rule"] == expected
    assert config_lib.resolve(ml_collections.ConfigDict(old)).lbf_food_rule == expected
  coop = resolved("task=lbf-8x8-2p-2f-coop").to_dict()
  del coop["lbf_food_rule"]  # an old coop run is the same env under both rules: it resumes under today's default
  assert config_lib.upgrade(coop)["lbf_food_rule"] == "v2"


# ---- both backends, both rules ------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["v2", "v3"])
@pytest.mark.parametrize("task", NON_COOP)
def test_both_backends_agree_under_both_rules(task, rule):
  counts = check_env_parity.check_parity(task, steps=1600, num_envs=8, seed=11, state_every=40,
                                         lbf_food_rule=rule, log=lambda _: None)
  assert counts["lbf_food_rule"] == rule and counts["compared_env_steps"] > 1500


def test_the_parity_tool_checks_both_rules_where_the_rule_matters(capsys):
  assert check_env_parity.main(["--task=lbf-10x10-3p-3f", "--steps=160"]) == 0
  assert check_env_parity.main(["--task=lbf-8x8-2p-2f-coop", "--steps=160"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert [line.split()[:2] for line in lines] == [
      ["task=lbf-10x10-3p-3f", "lbf_food_rule=v2"], ["task=lbf-10x10-3p-3f", "lbf_food_rule=v3"],
      ["task=lbf-8x8-2p-2f-coop", "lbf_food_rule=-"]]
