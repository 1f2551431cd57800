"""Aggregate statistics (rliable / marl-eval protocol): hand-checked values on small synthetic grids."""

import csv
import json
import math
import os

import numpy as np
import pytest
from scipy import stats

from maddpg_tf.analysis import aggregate, aggregate_outputs
from maddpg_tf.analysis import marl_eval


def _run(task, estimator, seed, means, episodes=2, spread=0.0, start=0, every=10):
  """A run record whose evaluation j has `episodes` returns mean +- spread (so its mean is means[j])."""
  evaluations = []
  for j, mean in enumerate(means):
    returns = [mean + spread * (1 if k % 2 else -1) for k in range(episodes)] if episodes > 1 else [mean]
    evaluations.append((start + j * every, returns))
  return dict(task=task, estimator=estimator, seed=seed, evaluations=evaluations)


def _grid(tasks=("lbf-a", "rware-b"), estimators=("gst", "stgs-1"), seeds=3, evaluations=4, rng=None,
          absolute=False):
  rng = np.random.default_rng(0) if rng is None else rng
  runs = []
  for t, task in enumerate(tasks):
    for e, estimator in enumerate(estimators):
      for seed in range(seeds):
        means = rng.normal(1.0 + e + t, 0.5, evaluations).tolist()
        run = _run(task, estimator, seed, means, episodes=3, spread=0.2)
        if absolute:
          run["absolute_returns"] = rng.normal(1.0 + e, 0.5, 30).tolist()
        runs.append(run)
  return runs


# ---- point statistics -------------------------------------------------------------------------------

def test_iqm_is_the_mean_of_the_middle_half_of_all_run_x_task_scores():
  # 3 runs x 4 tasks = 12 scores; floor(12 / 4) = 3 cut at each end: the middle six are 1..6.
  scores = np.array([[0.0, 100.0, 3.0, 6.0],
                     [1.0, 4.0, 100.0, 0.0],
                     [5.0, 2.0, 0.0, 100.0]])
  assert aggregate.iqm(scores) == pytest.approx(3.5)
  assert aggregate.iqm(scores) == pytest.approx(stats.trim_mean(scores, 0.25, axis=None))
  # ten scores: floor(2.5) = 2 cut at each end, the middle six of 0..9 average 4.5
  assert aggregate.iqm([np.arange(5.0), np.arange(5.0, 10.0)]) == pytest.approx(4.5)
  # seven scores: floor(1.75) = 1 cut at each end (rounding would cut 2 and give 5)
  assert aggregate.iqm([np.array([0.0, 20.0, 2.0]), np.array([3.0, 100.0, 1.0, 10.0])]) == pytest.approx(7.2)
  # the trim pools all tasks: per-task trimming would give a different number here
  assert aggregate.iqm(scores) != pytest.approx(np.mean([stats.trim_mean(c, 0.25) for c in scores.T]))


def test_median_mean_and_optimality_gap_follow_rliable():
  scores = np.array([[0.2, 0.4, 1.5],
                     [0.4, 0.8, 0.5]])  # task means 0.3, 0.6, 1.0
  assert aggregate.aggregate_mean(scores) == pytest.approx((0.3 + 0.6 + 1.0) / 3)
  assert aggregate.aggregate_median(scores) == pytest.approx(0.6)
  # optimality gap clips 1.5 to 1: 1 - (0.2 + 0.4 + 1 + 0.4 + 0.8 + 0.5) / 6
  assert aggregate.optimality_gap(scores) == pytest.approx(1 - 3.3 / 6)
  # unequal runs per task: mean and median weight each task once
  ragged = [np.array([0.0, 1.0]), np.array([0.9]), np.array([0.1, 0.2, 0.3])]
  assert aggregate.aggregate_mean(ragged) == pytest.approx((0.5 + 0.9 + 0.2) / 3)
  assert aggregate.aggregate_median(ragged) == pytest.approx(0.5)


def test_probability_of_improvement_counts_ties_one_half():
  x = [np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0])]
  y = [np.array([2.0, 2.0, 0.0]), np.array([5.0, 5.0])]
  # task 0: 1 beats one of three (1 > 0), 2 ties twice and beats one (2 x 0.5 + 1), 3 beats all three -> 6/9;
  # task 1: every pair ties -> 1/2
  point, low, high = aggregate.probability_of_improvement(x, y, reps=500, seed=1)
  assert point == pytest.approx((6 / 9 + 0.5) / 2)
  back, _, _ = aggregate.probability_of_improvement(y, x, reps=10, seed=1)
  assert point + back == pytest.approx(1.0)
  u = stats.mannwhitneyu(x[0], y[0], alternative="greater").statistic
  assert u / 9 == pytest.approx(6 / 9)
  assert low <= point <= high
  # a task where every replicate ties contributes exactly 1/2 to every replicate: the interval of the
  # second task alone is the point
  assert aggregate.probability_of_improvement([x[1]], [y[1]], reps=100)[1:] == (0.5, 0.5)


def test_performance_profile_and_sample_efficiency_curves_by_hand():
  taus, profile, low, high = aggregate.performance_profile([np.array([0.1, 0.5]), np.array([0.9])],
                                                           taus=[0.0, 0.5, 0.95], reps=200)
  np.testing.assert_allclose(profile, [1.0, 1 / 3, 0.0])  # strictly above tau, as rliable
  assert np.all(low <= profile + 1e-12) and np.all(profile <= high + 1e-12)
  curves = [np.array([[0.0, 1.0], [0.2, 0.4], [0.4, 0.0], [0.6, 0.2]])]  # 4 runs x 2 steps; cut 1 each end
  point, low, high = aggregate.sample_efficiency_curves(curves, reps=200)
  np.testing.assert_allclose(point, [0.3, 0.3])
  assert point.shape == low.shape == high.shape == (2,)


# ---- the bootstrap --------------------------------------------------------------------------------------

def test_intervals_cover_their_point_and_shrink_with_more_runs():
  rng = np.random.default_rng(3)
  widths = {}
  for runs in (5, 80):
    scores = rng.uniform(0, 1, size=(runs, 6))
    for metric in aggregate.METRICS:
      point, low, high = aggregate.stratified_bootstrap_ci(scores, metric, reps=2_000, seed=0)
      assert low <= point <= high, (metric, runs)
      widths[(metric, runs)] = high - low
  for metric in aggregate.METRICS:
    assert widths[(metric, 80)] < 0.5 * widths[(metric, 5)], metric


def test_the_interval_is_the_percentile_interval_of_the_stratified_replicates():
  scores = [np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0])]
  reps = 4_000
  indices = aggregate.stratified_indices([3, 2], reps, seed=7)
  replicates = np.array([np.mean([scores[0][indices[0][b]].mean(), scores[1][indices[1][b]].mean()])
                         for b in range(reps)])
  point, low, high = aggregate.stratified_bootstrap_ci(scores, "mean", reps=reps, seed=7)
  assert point == pytest.approx((1.0 + 15.0) / 2)
  assert (low, high) == pytest.approx(tuple(np.percentile(replicates, [2.5, 97.5])))


def test_a_resample_never_moves_a_run_to_another_task():
  sizes = [2, 5, 1, 3]
  indices = aggregate.stratified_indices(sizes, 3_000, seed=5)
  for n, index in zip(sizes, indices):
    assert index.shape == (3_000, n)
    assert index.min() == 0 and index.max() == n - 1  # every run of the task is drawn, none beyond it
    # uniformly: each run's share of the 3,000 n draws is 1/n within 6 standard deviations
    shares = np.bincount(index.reshape(-1), minlength=n) / index.size
    assert np.all(np.abs(shares - 1 / n) <= 6 * math.sqrt((1 / n) * (1 - 1 / n) / index.size) + 1e-12), shares
  # tasks on disjoint ranges: each task's resampled values stay within that task's own values
  strata = [np.array([0.1, 0.2]), np.array([10.0, 11.0, 12.0]), np.array([-5.0])]
  seen = []

  def record(batch):
    seen.append([np.unique(b) for b in batch])
    return np.zeros(batch[0].shape[0])

  aggregate.stratified_bootstrap_ci(strata, record, reps=500, seed=2)
  for task_values in seen[1:]:  # seen[0] is the point estimate
    for values, own in zip(task_values, strata):
      assert set(values.tolist()) <= set(own.tolist())
  # whole runs move together with their steps
  curves = [np.array([[0.0, 0.0], [1.0, 1.0]])]
  trace = []
  aggregate.stratified_bootstrap_ci(curves, lambda b: trace.append(b[0]) or np.zeros(b[0].shape[0]), reps=50)
  assert np.all(trace[1][:, :, 0] == trace[1][:, :, 1])


def test_the_bootstrap_is_reproducible_and_independent_of_chunking(monkeypatch):
  scores = np.random.default_rng(1).uniform(size=(5, 4))
  first = aggregate.stratified_bootstrap_ci(scores, "iqm", reps=3_000, seed=11)
  assert aggregate.stratified_bootstrap_ci(scores, "iqm", reps=3_000, seed=11) == first
  assert aggregate.stratified_bootstrap_ci(scores, "iqm", reps=3_000, seed=12) != first
  monkeypatch.setattr(aggregate, "_CHUNK_ELEMENTS", 37)  # many small chunks
  assert aggregate.stratified_bootstrap_ci(scores, "iqm", reps=3_000, seed=11) == pytest.approx(first, abs=1e-15)
  poi = aggregate.probability_of_improvement(scores, scores[::-1] * 0.9, reps=500, seed=3)
  monkeypatch.setattr(aggregate, "_CHUNK_ELEMENTS", 1 << 23)
  assert aggregate.probability_of_improvement(scores, scores[::-1] * 0.9, reps=500, seed=3) == poi


def test_50000_replicates_of_a_paper_sized_grid_are_vectorised():
  # 5 estimators x 9 tasks x 5 runs, three scores: 15 bootstrap calls of 50,000 replicates (about 1.5 s here)
  rng = np.random.default_rng(0)
  table = {score: {f"e{k}": {f"t{m}": rng.uniform(size=5) for m in range(9)} for k in range(5)}
           for score in aggregate.SCORES}
  rows = aggregate.aggregate_rows(table, reps=50_000, seed=0)
  assert len(rows) == 5 * 3 * 4
  assert all(r["runs"] == 45 and r["tasks"] == 9 and r["reps"] == 50_000 for r in rows)
  assert all(r["low"] <= r["high"] for r in rows)


# ---- normalisation and scores ----------------------------------------------------------------------------

def test_the_absolute_score_is_the_normalised_absolute_metric_of_groups_whose_every_run_has_one():
  # Task lbf-a: returns 0..4 over evaluations and absolute episodes, so z = r / 4.
  runs = [dict(_run("lbf-a", "gst", 0, [0.0, 2.0]), absolute_returns=[3.0, 4.0]),
          dict(_run("lbf-a", "gst", 1, [1.0, 1.0]), absolute_returns=[1.0, 2.0]),
          dict(_run("lbf-a", "stgs-1", 0, [1.0, 1.0]), absolute_returns=[2.0, 2.0]),
          _run("lbf-a", "stgs-1", 1, [1.0, 1.0])]  # no absolute.json: stgs-1 gets no absolute score
  normalised, bounds = aggregate.normalise(runs)
  assert bounds == {"lbf-a": (0.0, 4.0)}
  assert [r["absolute"] for r in normalised] == [0.875, 0.375, 0.5, None]
  table, _ = aggregate.run_scores(normalised)
  assert list(table["absolute"]) == ["gst"]
  np.testing.assert_array_equal(table["absolute"]["gst"]["lbf-a"], [0.875, 0.375])
  rows = aggregate.aggregate_rows(table, reps=200, seed=0)
  absolute = {r["metric"]: r for r in rows if r["score"] == "absolute"}
  assert {r["estimator"] for r in absolute.values()} == {"gst"}
  assert absolute["mean"]["point"] == pytest.approx(0.625) and absolute["median"]["point"] == pytest.approx(0.625)
  assert absolute["optimality_gap"]["point"] == pytest.approx(0.375) and absolute["mean"]["runs"] == 2


def test_normalisation_uses_the_task_minimum_and_maximum_over_the_grid():
  runs = [_run("lbf-a", "gst", 0, [1.0, 3.0], episodes=2, spread=1.0),     # episodes 0,2 and 2,4
          _run("lbf-a", "stgs-1", 0, [2.0, 2.0], episodes=2, spread=0.0),
          _run("rware-b", "gst", 0, [10.0, 30.0], episodes=1)]
  bounds = aggregate.normalisation_bounds(runs)  # marl-eval's: over every episode return
  assert bounds == {"lbf-a": (0.0, 4.0), "rware-b": (10.0, 30.0)}
  assert aggregate.normalisation_bounds(runs, over="evaluations") == {"lbf-a": (1.0, 3.0), "rware-b": (10.0, 30.0)}
  normalised, _ = aggregate.normalise(runs)
  np.testing.assert_allclose(normalised[0]["scores"], [0.25, 0.75])
  np.testing.assert_allclose(normalised[1]["scores"], [0.5, 0.5])
  np.testing.assert_allclose(normalised[2]["scores"], [0.0, 1.0])
  normalised, _ = aggregate.normalise(runs, over="evaluations")
  np.testing.assert_allclose(normalised[0]["scores"], [0.0, 1.0])
  # a task whose returns are all equal scores 0 (marl-eval's (r - lo) / (hi - lo + 1e-6))
  flat, bounds = aggregate.normalise([_run("lbf-c", "gst", 0, [2.0, 2.0])])
  assert bounds == {"lbf-c": (2.0, 2.0)} and flat[0]["scores"].tolist() == [0.0, 0.0]
  # the absolute metric's episodes count in the bounds, as in marl-eval
  with_absolute = dict(_run("lbf-a", "gst", 0, [1.0]), absolute_returns=[-1.0, 9.0])
  assert aggregate.normalisation_bounds([with_absolute]) == {"lbf-a": (-1.0, 9.0)}


def test_scores_use_the_evaluations_every_run_of_the_task_has():
  runs = [_run("lbf-a", "gst", 1, [0.0, 1.0, 4.0], episodes=1),
          _run("lbf-a", "gst", 0, [0.0, 2.0], episodes=1),      # shorter: the task keeps two evaluations
          _run("lbf-a", "stgs-1", 0, [4.0, 3.0, 2.0, 1.0], episodes=1)]
  normalised, bounds = aggregate.normalise(runs)
  assert bounds == {"lbf-a": (0.0, 4.0)}
  table, common = aggregate.run_scores(normalised)
  assert common == {"lbf-a": 2}
  np.testing.assert_allclose(table["average"]["gst"]["lbf-a"], [0.25, 0.125])  # seed order 0, 1
  np.testing.assert_allclose(table["final"]["gst"]["lbf-a"], [0.5, 0.25])
  np.testing.assert_allclose(table["average"]["stgs-1"]["lbf-a"], [0.875])
  np.testing.assert_allclose(table["final"]["stgs-1"]["lbf-a"], [0.75])


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("seed"), "lacks seed"),
    (lambda r: r.update(task=""), "task must be a non-empty string"),
    (lambda r: r.update(seed=1.5), "seed must be an int"),
    (lambda r: r.update(evaluations=[]), "has no evaluations"),
    (lambda r: r.update(evaluations=[(10, [1.0]), (10, [2.0])]), "steps must increase"),
    (lambda r: r.update(evaluations=[(-1, [1.0])]), "step must be an int >= 0"),
    (lambda r: r.update(evaluations=[(0, [math.nan])]), "non-finite"),
    (lambda r: r.update(evaluations=[(0, [])]), "is empty"),
    (lambda r: r.update(evaluations=[(0,)]), "must be (step, returns)"),
])
def test_bad_run_records_name_the_value(change, message):
  run = _run("lbf-a", "gst", 0, [1.0])
  change(run)
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    aggregate.check_runs([run])


def test_bad_arguments_name_the_value(tmp_path):
  runs = [_run("lbf-a", "gst", 0, [1.0])]
  with pytest.raises(ValueError, match="a second record"):
    aggregate.check_runs(runs + runs)
  with pytest.raises(ValueError, match="runs is empty"):
    aggregate.check_runs([])
  with pytest.raises(ValueError, match="reps=0"):
    aggregate.stratified_bootstrap_ci(np.ones((2, 2)), "iqm", reps=0)
  with pytest.raises(ValueError, match="seed=-1"):
    aggregate.stratified_bootstrap_ci(np.ones((2, 2)), "iqm", seed=-1)
  with pytest.raises(ValueError, match="statistic='trimmed'"):
    aggregate.stratified_bootstrap_ci(np.ones((2, 2)), "trimmed")
  with pytest.raises(ValueError, match="over='runs'"):
    aggregate.normalisation_bounds(runs, over="runs")
  with pytest.raises(ValueError, match="same tasks"):
    aggregate.probability_of_improvement(np.ones((2, 2)), np.ones((2, 3)))
  with pytest.raises(ValueError, match="non-finite"):
    aggregate.iqm(np.array([[1.0, math.inf]]))
  a_file = tmp_path / "file"
  a_file.write_text("x")
  with pytest.raises(ValueError, match="must be a directory path"):
    aggregate_outputs.write_aggregates(runs, str(a_file))
  assert a_file.read_text() == "x"


# ---- marl-eval's raw data format --------------------------------------------------------------------

def _load_like_marl_eval(data, metric="return"):
  """What marl-eval's data_process_pipeline and create_matrices_for_rliable read, done the same way:
  lower-cased keys, per-task min/max over every list, means of lists, [runs, tasks(, steps)] arrays."""
  data = json.loads(json.dumps(data).lower())
  out = {}
  for env, tasks in data.items():
    task_names = list(tasks)
    algorithms = list(tasks[task_names[0]])
    runs = list(tasks[task_names[0]][algorithms[0]])
    steps = [s for s in tasks[task_names[0]][algorithms[0]][runs[0]] if "absolute" not in s]
    for task in task_names:
      values = [v for a in tasks[task].values() for r in a.values() for s in r.values() for v in s[metric]]
      lo, hi = min(values), max(values)
      for algorithm in algorithms:
        for run in runs:
          for step in steps:
            entry = tasks[task][algorithm][run][step]
            assert isinstance(entry["step_count"], int)
            entry["mean_norm"] = (np.mean(entry[metric]) - lo) / (hi - lo)
    out[env] = {a: np.stack([[[tasks[t][a][r][s]["mean_norm"] for s in steps] for t in task_names]
                             for r in runs]) for a in algorithms}
  return out


def test_the_export_has_marl_evals_nesting_and_key_names():
  runs = [_run("lbf-a", "gst", 0, [1.0, 2.0], episodes=3, spread=0.5),
          dict(_run("rware-b", "stgs-1", 4, [0.0]), absolute_returns=[1.0, 2.0])]
  data = marl_eval.to_marl_eval_json(runs)
  assert data == {
      "lbf": {"lbf-a": {"gst": {"seed_0": {
          "step_0": {"step_count": 0, "return": [0.5, 1.5, 0.5]},
          "step_1": {"step_count": 10, "return": [1.5, 2.5, 1.5]}}}}},
      "rware": {"rware-b": {"stgs-1": {"seed_4": {
          "step_0": {"step_count": 0, "return": [0.0, 0.0]},
          "absolute_metrics": {"return": [1.0, 2.0]}}}}},
  }
  assert marl_eval.validate_marl_eval_json(data) == []
  assert list(data["rware"]["rware-b"]["stgs-1"]["seed_4"])[-1] == "absolute_metrics"  # the final entry
  strict = marl_eval.validate_marl_eval_json(data, strict=True)
  assert len(strict) == 1 and "without 'absolute_metrics'" in strict[0] and strict[0].startswith("lbf:")
  other = marl_eval.to_marl_eval_json(runs, environment_of=lambda task: "suite")
  assert list(other) == ["suite"] and list(other["suite"]) == ["lbf-a", "rware-b"]


def test_the_evaluation_interval_marl_eval_infers_and_the_true_one():
  # Steps 0, 10, 20, 25 (a final evaluation off the grid) and 0, 10, 20, 30: marl-eval's differences from 0
  # are 0, 10, 10, 5 and 0, 10, 10, 10 (mean 55 / 8 = 6.875 -> 7); the runs evaluated every 10.
  runs = [_run("lbf-a", "gst", 0, [1.0, 1.0, 1.0, 1.0]), _run("lbf-a", "gst", 1, [1.0, 1.0, 1.0, 1.0])]
  runs[0]["evaluations"][-1] = (25, runs[0]["evaluations"][-1][1])
  data = marl_eval.to_marl_eval_json(runs)
  assert marl_eval.evaluation_intervals(data) == {"lbf": (7, 10)}
  (note,) = marl_eval.interval_notes(data)
  assert note.startswith("marl_eval.json: marl-eval 0.0.4 infers lbf's evaluation interval as 7 ")
  assert "`matrices['extra']['evaluation_interval'] = 10`" in note
  # Without the step-0 evaluation marl-eval reads the interval right: no note.
  shifted = marl_eval.to_marl_eval_json([_run("lbf-a", "gst", 0, [1.0, 1.0], start=10)])
  assert marl_eval.evaluation_intervals(shifted) == {"lbf": (10, 10)} and marl_eval.interval_notes(shifted) == []


def test_a_complete_grid_passes_the_strict_check_and_loads_as_marl_eval_reads_it(tmp_path):
  runs = _grid(absolute=True)
  data = marl_eval.to_marl_eval_json(runs)
  assert marl_eval.validate_marl_eval_json(data, strict=True) == []
  path = marl_eval.write_marl_eval_json(data, str(tmp_path / "marl_eval.json"))
  assert marl_eval.read_marl_eval_json(path) == data
  arrays = _load_like_marl_eval(marl_eval.read_marl_eval_json(path))
  assert set(arrays) == {"lbf", "rware"} and arrays["lbf"]["gst"].shape == (3, 1, 4)
  # marl-eval's normalised evaluation means equal ours (both include the absolute episodes in the bounds)
  normalised, _ = aggregate.normalise(runs)
  ours = {(r["task"], r["estimator"], r["seed"]): r["scores"] for r in normalised}
  np.testing.assert_allclose(arrays["lbf"]["stgs-1"][2, 0], ours[("lbf-a", "stgs-1", 2)])


@pytest.mark.parametrize("damage, message", [
    (lambda d: d["lbf"]["lbf-a"]["gst"]["seed_0"]["step_1"].pop("step_count"), "step_count must be an int"),
    (lambda d: d["lbf"]["lbf-a"]["gst"]["seed_0"]["step_1"].update(step_count=0), "does not follow"),
    (lambda d: d["lbf"]["lbf-a"]["gst"]["seed_0"]["step_1"].update({"return": 1.0}), "non-empty list of finite"),
    (lambda d: d["lbf"]["lbf-a"]["gst"]["seed_0"]["step_1"].update({"return": [math.nan]}), "finite numbers"),
    (lambda d: d["lbf"]["lbf-a"].update({"g,st": d["lbf"]["lbf-a"]["gst"]}), "must not contain commas"),
    (lambda d: d["lbf"]["lbf-a"].update({"GST": d["lbf"]["lbf-a"]["gst"]}), "same once lower-cased"),
    (lambda d: d.update(extra={}), "'extra' is reserved"),
    (lambda d: d["lbf"]["lbf-a"]["gst"]["seed_0"]["step_1"].update(win_rate=[1.0]), "different metrics"),
    (lambda d: d["lbf"]["lbf-a"]["gst"]["seed_0"].update(absolute={"return": [1.0]}), "one absolute entry"),
    (lambda d: d["lbf"]["lbf-a"]["gst"].update(seed_0=[]), "non-empty dict of steps"),
])
def test_the_checker_finds_what_marl_evals_loader_cannot_read(damage, message):
  data = marl_eval.to_marl_eval_json(_grid(tasks=("lbf-a",), estimators=("gst",), seeds=1))
  assert marl_eval.validate_marl_eval_json(data) == []
  damage(data)
  problems = marl_eval.validate_marl_eval_json(data)
  assert any(message in p for p in problems), problems
  with pytest.raises(ValueError, match="not marl-eval's raw data format"):
    marl_eval.check_marl_eval_json(data)


def test_the_strict_check_names_marl_evals_equal_shape_requirements():
  runs = _grid(tasks=("lbf-a", "lbf-b"), seeds=2)
  runs = [r for r in runs if not (r["task"] == "lbf-b" and r["estimator"] == "stgs-1" and r["seed"] == 1)]
  runs.append(_run("lbf-b", "tags", 0, [1.0, 2.0, 3.0, 4.0]))
  runs.append(_run("lbf-a", "gst", 9, [1.0]))
  problems = " | ".join(marl_eval.validate_marl_eval_json(marl_eval.to_marl_eval_json(runs), strict=True))
  for part in ("different algorithms", "different numbers of runs", "different numbers of entries",
               "without 'absolute_metrics'"):
    assert part in problems


# ---- the files -------------------------------------------------------------------------------------

def _read_csv(path):
  with open(path, newline="") as handle:
    reader = csv.DictReader(handle)
    return reader.fieldnames, list(reader)


def test_write_aggregates_tables_and_json(tmp_path):
  runs = _grid(seeds=3)
  paths = aggregate_outputs.write_aggregates(runs, str(tmp_path), reps=300, poi_reps=200, seed=4, figures=False)
  names = sorted(os.path.basename(p) for p in paths)
  assert names == ["aggregate.csv", "aggregate.md", "marl_eval.json", "probability_of_improvement.csv"]
  columns, rows = _read_csv(tmp_path / "aggregate.csv")
  assert columns == ["estimator", "score", "metric", "point", "low", "high", "runs", "tasks", "reps"]
  assert len(rows) == 2 * 2 * 4
  # no run has an absolute metric: no absolute rows
  assert {(r["score"], r["metric"]) for r in rows} == {(s, m) for s in ("average", "final") for m in aggregate.METRICS}
  assert all(r["runs"] == "6" and r["tasks"] == "2" and r["reps"] == "300" for r in rows)
  normalised, _ = aggregate.normalise(runs)
  table, _ = aggregate.run_scores(normalised)
  gst_final_iqm = next(r for r in rows if (r["estimator"], r["score"], r["metric"]) == ("gst", "final", "iqm"))
  assert float(gst_final_iqm["point"]) == pytest.approx(aggregate.iqm(list(table["final"]["gst"].values())), abs=1e-6)
  columns, poi = _read_csv(tmp_path / "probability_of_improvement.csv")
  assert columns == ["x", "y", "score", "point", "low", "high"]
  assert {(r["x"], r["y"], r["score"]) for r in poi} == {(x, y, s) for x, y in (("gst", "stgs-1"), ("stgs-1", "gst"))
                                                         for s in ("average", "final")}
  for score in ("average", "final"):
    pair = [float(r["point"]) for r in poi if r["score"] == score]
    assert sum(pair) == pytest.approx(1.0, abs=2e-6)
  markdown = (tmp_path / "aggregate.md").read_text()
  assert aggregate.normalisation_note("episodes") in markdown and "| lbf-a |" in markdown
  assert "without 'absolute_metrics'" in markdown  # the strict check's notes are stated
  data = marl_eval.read_marl_eval_json(tmp_path / "marl_eval.json")
  assert marl_eval.validate_marl_eval_json(data) == []
  # the same seed writes the same numbers
  again = tmp_path / "again"
  aggregate_outputs.write_aggregates(runs, str(again), reps=300, poi_reps=200, seed=4, figures=False)
  assert (again / "aggregate.csv").read_text() == (tmp_path / "aggregate.csv").read_text()
  assert (again / "probability_of_improvement.csv").read_text() == (tmp_path / "probability_of_improvement.csv").read_text()


def test_write_aggregates_draws_every_figure(tmp_path):
  runs = _grid(estimators=("gst", "stgs-1", "grmck"), seeds=3, evaluations=5)
  paths = aggregate_outputs.write_aggregates(runs, str(tmp_path), reps=200, poi_reps=100,
                                     meta=dict(budget="smoke", fidelity="code", seeds=[0, 1, 2]))
  for stem in ("aggregate_intervals", "probability_of_improvement", "performance_profiles", "sample_efficiency"):
    for ext in ("png", "pdf"):
      path = tmp_path / f"{stem}.{ext}"
      assert str(path) in paths and path.stat().st_size > 1000
  # without GST there is no reference for the improvement figure: said in aggregate.md
  no_gst = [r for r in runs if r["estimator"] != "gst"]
  other = tmp_path / "no_gst"
  paths = aggregate_outputs.write_aggregates(no_gst, str(other), reps=100, poi_reps=50)
  assert not (other / "probability_of_improvement.png").exists()
  assert "probability_of_improvement figure not drawn" in (other / "aggregate.md").read_text()


# ---- parity with rliable 1.2.0 (installed with the test extras) ----------------------------------------

@pytest.mark.slow
def test_parity_with_rliable():
  from rliable import library as rly  # pylint: disable=g-import-not-at-top
  from rliable import metrics as rly_metrics  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(8)
  scores = rng.beta(2, 3, size=(5, 9)) * 1.2  # some above 1, for the optimality gap
  other = rng.beta(3, 2, size=(5, 9))
  other[:, 0] = scores[:, 0]  # an all-tied task
  other[0, 1] = scores[2, 1]  # a tie within a task
  assert aggregate.iqm(scores) == pytest.approx(rly_metrics.aggregate_iqm(scores), abs=1e-12)
  assert aggregate.aggregate_median(scores) == pytest.approx(rly_metrics.aggregate_median(scores), abs=1e-12)
  assert aggregate.aggregate_mean(scores) == pytest.approx(rly_metrics.aggregate_mean(scores), abs=1e-12)
  assert aggregate.optimality_gap(scores) == pytest.approx(rly_metrics.aggregate_optimality_gap(scores), abs=1e-12)
  assert aggregate.probability_of_improvement(scores, other, reps=10)[0] == pytest.approx(
      rly_metrics.probability_of_improvement(scores, other), abs=1e-12)
  taus = np.linspace(0, 1, 11)
  assert aggregate.performance_profile(scores, taus, reps=10)[1] == pytest.approx(
      rly.score_distributions(scores, taus), abs=1e-12)
  # intervals: two independent bootstraps of 20,000 replicates agree to Monte-Carlo error
  np.random.seed(0)  # rliable's resampling draws from NumPy's global state
  funcs = {"iqm": rly_metrics.aggregate_iqm, "median": rly_metrics.aggregate_median,
           "mean": rly_metrics.aggregate_mean, "optimality_gap": rly_metrics.aggregate_optimality_gap}
  for metric, func in funcs.items():
    _, theirs = rly.get_interval_estimates({"x": scores}, lambda x, f=func: np.array([f(x)]), reps=20_000)
    _, low, high = aggregate.stratified_bootstrap_ci(scores, metric, reps=20_000, seed=0)
    assert (low, high) == pytest.approx((theirs["x"][0, 0], theirs["x"][1, 0]), abs=0.01), metric
  _, theirs = rly.get_interval_estimates(
      {"x,y": [scores, other]}, lambda x, y: np.array([rly_metrics.probability_of_improvement(x, y)]), reps=2_000)
  _, low, high = aggregate.probability_of_improvement(scores, other, reps=2_000, seed=0)
  assert (low, high) == pytest.approx((theirs["x,y"][0, 0], theirs["x,y"][1, 0]), abs=0.03)


# ---- reading a results directory ----------------------------------------------------------------------

def test_runs_are_read_back_from_the_files_maddpg_train_writes(tmp_path):
  from maddpg_tf.run import loggers  # pylint: disable=g-import-not-at-top
  written = {("lbf-a", "gst", 0): [dict(step=0, returns=[0.5, 0.25]), dict(step=50, returns=[1.0])],
             ("lbf-a", "gst", 1): [dict(step=0, returns=[0.125, 0.75, 2.0])],
             ("rware-b", "stgs-1", 3): []}  # not evaluated yet: left out
  for (task, estimator, seed), evaluations in written.items():
    workdir = tmp_path / task / estimator / f"seed{seed}"
    workdir.mkdir(parents=True)
    loggers.write_evaluations_csv(str(workdir / "evaluations.csv"), evaluations)
  (tmp_path / "logs").mkdir()
  runs = aggregate.runs_from_results(str(tmp_path))
  assert runs == [dict(task="lbf-a", estimator="gst", seed=0, evaluations=[(0, [0.5, 0.25]), (50, [1.0])]),
                  dict(task="lbf-a", estimator="gst", seed=1, evaluations=[(0, [0.125, 0.75, 2.0])])]
  bad = tmp_path / "bad.csv"
  bad.write_text("step,mean_return\n0,1.0\n")
  with pytest.raises(ValueError, match="not an evaluations CSV"):
    aggregate.read_evaluations(str(bad))
  bad.write_text("step,mean_return,episodes,return_0\n0,1.0,2,1.0\n")
  with pytest.raises(ValueError, match="line 2"):
    aggregate.read_evaluations(str(bad))
  with pytest.raises(ValueError, match="is not a directory"):
    aggregate.runs_from_results(str(bad))


def test_the_aggregate_modules_import_no_tensorflow():
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = ("import sys\nfrom maddpg_tf.analysis import aggregate, aggregate_outputs, marl_eval, aggregate_plots\n"
          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert out.stdout.strip() == "[]"


def _results_tree(tmp_path, absolute):
  """A results tree of lbf-a x (gst, stgs-1) x seeds 0, 1 with two evaluations each; `absolute`:
  {(estimator, seed): text of that run's absolute.json}."""
  from maddpg_tf.run import loggers  # pylint: disable=g-import-not-at-top
  for estimator in ("gst", "stgs-1"):
    for seed in (0, 1):
      workdir = tmp_path / "lbf-a" / estimator / f"seed{seed}"
      workdir.mkdir(parents=True)
      loggers.write_evaluations_csv(str(workdir / "evaluations.csv"),
                                    [dict(step=0, returns=[0.25, 0.5]), dict(step=50, returns=[seed + 1.0, 0.75])])
      if (estimator, seed) in absolute:
        (workdir / "absolute.json").write_text(absolute[(estimator, seed)])
  return str(tmp_path)


def _absolute_json(returns):
  return json.dumps(dict(best_step=50, best_mean_return=1.0, step=50, source="best", distance=0,
                         checkpoint="best-ckpt-50", episodes=len(returns), mode="sampled", stream="seed 0",
                         mean_return=float(np.mean(returns)), ci95=[0.0, 2.0], returns=returns))


def test_runs_from_results_carry_the_absolute_metric_into_marl_eval(tmp_path):
  returns = {("gst", 0): [1.5, 2.5, 0.5], ("gst", 1): [0.125, 3.0, 1.0], ("stgs-1", 0): [0.0, 0.25, 4.0],
             ("stgs-1", 1): [2.0, 2.0, 1.0]}
  results = _results_tree(tmp_path / "all", {key: _absolute_json(r) for key, r in returns.items()})
  runs = aggregate.runs_from_results(results)
  assert {(r["estimator"], r["seed"]): r["absolute_returns"] for r in runs} == returns
  data = marl_eval.to_marl_eval_json(runs)
  assert data["lbf"]["lbf-a"]["gst"]["seed_1"]["absolute_metrics"] == {"return": [0.125, 3.0, 1.0]}
  assert marl_eval.validate_marl_eval_json(data, strict=True) == []
  out = tmp_path / "all-out"
  aggregate_outputs.write_aggregates(runs, str(out), reps=50, poi_reps=20, figures=False)
  written = marl_eval.read_marl_eval_json(out / "marl_eval.json")
  assert written["lbf"]["lbf-a"]["stgs-1"]["seed_0"]["absolute_metrics"] == {"return": [0.0, 0.25, 4.0]}
  assert "absolute_metrics" not in (out / "aggregate.md").read_text()  # nothing marl-eval would refuse
  # the absolute episodes widen the task's normalisation bounds (4.0 is above every evaluation's return)
  assert aggregate.normalisation_bounds(runs)["lbf-a"] == (0.0, 4.0)


def test_runs_without_a_usable_absolute_metric_are_named_in_aggregate_md(tmp_path):
  results = _results_tree(tmp_path, {("gst", 0): _absolute_json([1.0, 2.0]), ("gst", 1): '{"mean_return": 1.',
                                     ("stgs-1", 0): _absolute_json([0.5, 0.5])})
  runs = aggregate.runs_from_results(results)
  assert [("absolute_returns" in r) for r in runs] == [True, False, True, False]  # the torn file counts as none
  out = tmp_path / "out"
  aggregate_outputs.write_aggregates(runs, str(out), reps=50, poi_reps=20, figures=False)
  markdown = (out / "aggregate.md").read_text()
  assert "2 run(s) without 'absolute_metrics'" in markdown
  data = marl_eval.read_marl_eval_json(out / "marl_eval.json")
  assert marl_eval.validate_marl_eval_json(data) == []
  assert "absolute_metrics" in data["lbf"]["lbf-a"]["gst"]["seed_0"]
  assert "absolute_metrics" not in data["lbf"]["lbf-a"]["gst"]["seed_1"]
