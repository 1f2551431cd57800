"""`maddpg-reproduce --what=beyond`: the beyond budget's table of returns beside the estimator lab, on fake
runs with hand-computed statistics, and the lab's row of real estimators at their training settings."""

import json
import os

import numpy as np
import pytest
from scipy import stats

from maddpg_tf.grid import outputs, runs

TASK = "lbf-15x15-4p-5f"
# Per estimator, two seeds' evaluation curves (three evaluations each).
CURVES = {"stgs-1": [[0.0, 0.2, 0.1], [0.0, 0.4, 0.2]],
          "gst": [[0.1, 0.5, 0.3], [0.1, 0.7, 0.9]],
          "zgr": [[0.2, 0.6, 0.6], [0.0, 0.8, 0.4]]}
# A lab stand-in: each estimator's bias and variance, to check how rows and correlations use them.
LAB = {"stgs-1": 0.3, "gst": 0.2, "zgr": 0.1}


def fake_lab(config, num_actions):
  assert num_actions == 6  # LBF's action set
  bias = LAB[config["estimator"]["label"]]
  return {"bias": bias, "bias_low": bias - 0.01, "bias_high": bias + 0.01, "variance": 2 * bias,
          "mse": bias ** 2 + 2 * bias}


@pytest.fixture
def results(tmp_path):
  for estimator, curves in CURVES.items():
    for seed, returns in enumerate(curves):
      workdir = runs.workdir_of(str(tmp_path), TASK, estimator, seed)
      os.makedirs(workdir)
      with open(os.path.join(workdir, "evaluations.csv"), "w") as handle:
        handle.write("step,mean_return,episodes,return_0\n" + "".join(
            f"{1000 * i},{value},1,{value}\n" for i, value in enumerate(returns)))
      with open(os.path.join(workdir, "config.json"), "w") as handle:
        json.dump({"total_steps": 2000, "estimator": {"label": estimator}}, handle)
      if (estimator, seed) != ("gst", 1):  # gst's seed 1 is still running
        with open(os.path.join(workdir, "summary.json"), "w") as handle:
          json.dump({"env_steps": 2000}, handle)
  return str(tmp_path)


def test_rows_hold_table1s_statistics_welch_pvalues_and_the_lab(results):
  found = outputs.collect_curves(results, (TASK,), tuple(CURVES), (0, 1))
  rows = {row["estimator"]: row for row in outputs.beyond_rows(found, fake_lab)}
  gst = rows["gst"]
  # Maximum: the second and third evaluations tie at a seed mean of 0.6; the first is taken: per-seed values
  # 0.5 and 0.7.
  assert gst["max_return"] == pytest.approx(0.6)
  assert gst["max_ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * np.std([0.5, 0.7], ddof=1) / np.sqrt(2))
  assert gst["average_return"] == pytest.approx(np.mean(CURVES["gst"]))
  # STGS-1's best evaluation is the second (0.3): per-seed 0.2 and 0.4.
  assert gst["max_p_vs_stgs-1"] == pytest.approx(stats.ttest_ind([0.5, 0.7], [0.2, 0.4], equal_var=False).pvalue)
  assert gst["average_p_vs_stgs-1"] == pytest.approx(stats.ttest_ind(
      np.ravel(CURVES["gst"]), np.ravel(CURVES["stgs-1"]), equal_var=False).pvalue)
  # The stricter test on the average: one value per run, each seed's mean evaluation return.
  assert gst["average_seeds_p_vs_stgs-1"] == pytest.approx(stats.ttest_ind(
      np.mean(CURVES["gst"], axis=1), np.mean(CURVES["stgs-1"], axis=1), equal_var=False).pvalue)
  assert gst["average_seeds_p_vs_stgs-1"] > gst["average_p_vs_stgs-1"]
  assert gst["max_p_vs_gst"] == "" and rows["stgs-1"]["max_p_vs_stgs-1"] == ""
  assert gst["average_seeds_p_vs_gst"] == ""
  assert rows["zgr"]["average_p_vs_gst"] == pytest.approx(stats.ttest_ind(
      np.ravel(CURVES["zgr"]), np.ravel(CURVES["gst"]), equal_var=False).pvalue)
  assert (gst["lab_bias"], gst["lab_variance"]) == (0.2, 0.4)
  assert (gst["seeds"], gst["finished_seeds"], gst["last_step"]) == (2, 1, 2000)
  assert (rows["zgr"]["seeds"], rows["zgr"]["finished_seeds"]) == (2, 2)
  # Lower bias goes with higher average return here: rank correlation -1.
  correlations = outputs.beyond_correlations(list(rows.values()))
  rho, _, n = correlations[TASK]["bias"]
  assert (rho, n) == (pytest.approx(-1.0), 3)


def test_write_beyond_writes_the_table_and_csv(results):
  meta = outputs.describe("beyond", "code", (0, 1))
  paths = outputs.write_beyond(results, (TASK,), tuple(CURVES), (0, 1), meta, lab_row=fake_lab)
  assert [os.path.basename(p) for p in paths] == ["beyond.csv", "beyond.md"]
  with open(paths[1]) as handle:
    text = handle.read()
  assert f"## {TASK}" in text and "| gst | 2 (1) | 2,000 | 0.60 ± " in text
  assert "| p avg vs STGS-1 | p avg (seeds) vs STGS-1 | p max vs GST |" in text
  assert "Spearman rank correlation of the average return with the lab's bias over 3 estimators: rho = -1.00" in text
  with pytest.raises(runs.UsageError, match="run the grid first"):
    outputs.write_beyond(results, ("rware-tiny-4ag",), tuple(CURVES), (0, 1), meta, lab_row=fake_lab)


def test_a_task_with_fewer_than_three_estimators_says_why_it_has_no_correlation(results):
  """A grid still running on its second task: the table shows what has finished, and the correlation line
  says why there is no rho rather than printing nan."""
  meta = outputs.describe("beyond", "code", (0, 1))
  paths = outputs.write_beyond(results, (TASK,), ("stgs-1", "gst"), (0, 1), meta, lab_row=fake_lab)
  with open(paths[1]) as handle:
    text = handle.read()
  assert ("Spearman rank correlation of the average return with the lab's bias over 2 estimators: not computed "
          "(it needs three estimators or more)") in text
  assert "nan" not in text


def test_a_single_seeds_half_width_is_written_n_a(results):
  meta = outputs.describe("beyond", "code", (0,))
  paths = outputs.write_beyond(results, (TASK,), tuple(CURVES), (0,), meta, lab_row=fake_lab)
  with open(paths[1]) as handle:
    text = handle.read()
  # Seed 0 alone: its best evaluation 0.5; the average of 0.1, 0.5, 0.3 with t(0.975, 2) * sd / sqrt(3) = 0.50.
  assert "| gst | 1 (1) | 2,000 | 0.50 ± n/a | 0.30 ± 0.50 |" in text and "nan" not in text


def test_the_lab_row_of_a_runs_estimator_at_its_training_settings():
  gst = runs.make_config(TASK, "gst", 0, "smoke").to_dict()
  row = outputs.beyond_lab_rows(gst, 6)
  assert row["estimator"] == "gst" and row["temperature"] == gst["estimator"]["temperature"]
  assert row["bias_low"] <= row["bias"] <= row["bias_high"] and row["bias"] > 0 and row["variance"] > 0
  expected = outputs.beyond_lab_rows(runs.make_config(TASK, "expected", 0, "smoke").to_dict(), 6)
  assert (expected["bias"], expected["variance"], expected["mse"]) == (0.0, 0.0, 0.0)


def test_all_skips_figure4_with_a_line_where_the_runs_kept_no_tensorboard_logs(results, monkeypatch, capsys):
  """A publication (tools/publish_results.py) has no TensorBoard logs: `--what=all --norun` builds the rest
  and says why Figure 4 is missing; `--what=figure4` alone still refuses with one line."""
  monkeypatch.setattr(outputs, "write_table2", lambda *args: [])  # a benchmark of this machine, not of the runs
  monkeypatch.setattr(outputs, "write_beyond", lambda *args: ["beyond.md"])
  meta = outputs.describe("beyond", "code", (0, 1))
  args = (results, (TASK,), tuple(CURVES), (0, 1), meta, TASK, (0, 1), meta, "beyond")
  written = outputs.write("all", *args, reps=100, poi_reps=20)
  assert os.path.join(results, "table1.csv") in written and written[-1] == "beyond.md"
  assert f"maddpg-reproduce: figure4 skipped: no TensorBoard logs under {results}/{TASK}/{{stgs-1,gst}}" in (
      capsys.readouterr().out)
  with pytest.raises(runs.UsageError, match="no TensorBoard logs"):
    outputs.write("figure4", *args)
