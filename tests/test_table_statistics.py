"""Table 1 maths (maddpg_tf.statistics) on synthetic curves, checked by hand; the table and figure writers.

(Named test_table_statistics.py: tests/estimators/test_statistics.py already exists, and two test modules
with one basename in package-less test folders break pytest's collection of the whole suite.)

Hand values used below (Student-t 0.975 quantiles from tables): t(2) = 4.302653, t(4) = 2.776445,
t(5) = 2.570582.
"""

import csv
import math

import matplotlib.image
import numpy as np
import pytest
from scipy import stats

from maddpg_tf.analysis import statistics
from maddpg_tf.analysis import plots, tables

T2, T4, T5 = 4.302653, 2.776445, 2.570582

# Estimator "a": seed-means per evaluation [0.2, 0.7] -> the maximum is at index 1: values 0.5, 0.7, 0.9.
A = [[0.1, 0.5], [0.2, 0.7], [0.3, 0.9]]
# Estimator "b": seed-means [0.25, 0.2]: its OWN maximum is at index 0: values 0.1, 0.3, 0.35.
B = [[0.1, 0.3], [0.3, 0.2], [0.35, 0.1]]


def test_t_interval_uses_t_quantile_with_n_minus_1_df():
  interval = statistics.t_interval([0.5, 0.7, 0.9])
  # sd = 0.2 (ddof 1), sem = 0.2 / sqrt(3) = 0.1154701, half = t(2) * sem = 0.4968275
  assert interval.mean == pytest.approx(0.7)
  assert interval.half_width == pytest.approx(T2 * 0.2 / math.sqrt(3), rel=1e-6)
  assert interval.half_width == pytest.approx(0.4968275, rel=1e-6)
  five = statistics.t_interval([1., 2., 3., 4., 5.])  # sd = sqrt(2.5), sem = sqrt(0.5)
  assert five.half_width == pytest.approx(T4 * math.sqrt(0.5), rel=1e-6)
  assert five.half_width != pytest.approx(1.96 * math.sqrt(0.5), rel=1e-3)  # not the normal quantile
  assert math.isnan(statistics.t_interval([0.4]).half_width)
  assert statistics.t_interval([0.3, 0.3, 0.3]).half_width == 0.0


def test_maximum_return_takes_the_best_seed_mean_evaluation():
  index, interval = statistics.maximum_return(np.array(A))
  assert index == 1
  assert interval.values == (0.5, 0.7, 0.9)
  assert interval.half_width == pytest.approx(0.4968275, rel=1e-6)
  index, interval = statistics.maximum_return(np.array(B))
  assert index == 0 and interval.mean == pytest.approx(0.25)
  # The best single seed value (0.9 in A) is not what is reported: the seed-mean decides.
  index, _ = statistics.maximum_return(np.array([[0.0, 1.0], [0.6, 0.0], [0.6, 0.0]]))
  assert index == 0


def test_average_return_pools_all_evaluations_with_n_minus_1_df():
  interval = statistics.average_return(np.array(A))
  # pooled [0.1, 0.5, 0.2, 0.7, 0.3, 0.9]: mean 0.45, sum of squares 0.475, var 0.095, sem sqrt(0.095/6)
  assert interval.n == 6
  assert interval.mean == pytest.approx(0.45)
  assert interval.half_width == pytest.approx(T5 * math.sqrt(0.095 / 6), rel=1e-6)
  assert interval.half_width == pytest.approx(0.3234566, rel=1e-5)


def test_unequal_curve_lengths_are_cut_to_the_common_prefix():
  curves = statistics.as_curves([[0.1, 0.2, 0.9], [0.3, 0.4]])
  assert curves.shape == (2, 2)
  with pytest.raises(ValueError):
    statistics.as_curves([[]])


def test_welch_pvalue_by_hand_and_against_scipy():
  a, b = [0.5, 0.7, 0.9], [0.1, 0.2, 0.3]
  # means 0.7 and 0.2; variances 0.04 and 0.01; se^2 = 0.05 / 3; t = 0.5 / sqrt(0.05 / 3) = 3.872983
  # Welch-Satterthwaite df = (0.05/3)^2 / ((0.04/3)^2 / 2 + (0.01/3)^2 / 2) = 2.941176
  t = 0.5 / math.sqrt(0.05 / 3)
  df = (0.05 / 3) ** 2 / ((0.04 / 3) ** 2 / 2 + (0.01 / 3) ** 2 / 2)
  assert t == pytest.approx(3.872983, rel=1e-6) and df == pytest.approx(2.941176, rel=1e-6)
  p = statistics.welch_pvalue(a, b)
  assert p == pytest.approx(2 * stats.t.sf(t, df), rel=1e-9)
  assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
  assert 0.025 < p < 0.035  # significant at 5%
  assert statistics.welch_pvalue([1.0, 1.0], [1.0, 1.0]) == 1.0  # scipy gives NaN for constant samples
  assert statistics.welch_pvalue([1.0, 1.0], [0.5, 0.5]) == 0.0
  assert math.isnan(statistics.welch_pvalue([1.0], [0.5, 0.6]))


def test_bold_and_asterisk_choice():
  curves = {
      "a": np.array(A),                                # max 0.7 at index 1 (the best)
      "b": np.array(B),                                # max 0.25: p against a's [0.5, 0.7, 0.9]
      "c": np.array([[0.4, 0.3], [0.8, 0.2], [0.6, 0.1]]),  # max 0.6 at index 0, close to a
  }
  cells = {cell.estimator: cell for cell in statistics.task_cells("t", curves, steps={"a": [0, 50], "b": [0, 50],
                                                                                        "c": [0, 50]})}
  assert cells["a"].max_bold and not cells["a"].max_asterisk and math.isnan(cells["a"].max_pvalue)
  assert cells["a"].max_step == 50 and cells["c"].max_step == 0
  # b against a at each one's own maximum: [0.1, 0.3, 0.35] vs [0.5, 0.7, 0.9]
  p_b = stats.ttest_ind([0.1, 0.3, 0.35], [0.5, 0.7, 0.9], equal_var=False).pvalue
  assert cells["b"].max_pvalue == pytest.approx(p_b) and p_b < 0.05
  assert not cells["b"].max_bold and not cells["b"].max_asterisk
  # c: [0.4, 0.8, 0.6] vs [0.5, 0.7, 0.9]: p ~ 0.53, not significant -> asterisk
  p_c = stats.ttest_ind([0.4, 0.8, 0.6], [0.5, 0.7, 0.9], equal_var=False).pvalue
  assert cells["c"].max_pvalue == pytest.approx(p_c) and p_c > 0.05
  assert cells["c"].max_asterisk and not cells["c"].max_bold
  # Average: a pooled mean 0.45 is best; c pooled [0.4,0.3,0.8,0.2,0.6,0.1] mean 0.4 -> not significant
  assert cells["a"].average_bold
  assert cells["c"].average_asterisk
  p_avg_b = stats.ttest_ind(np.ravel(B), np.ravel(A), equal_var=False).pvalue
  assert cells["b"].average_pvalue == pytest.approx(p_avg_b)
  assert cells["b"].average_asterisk == (p_avg_b >= 0.05)


def test_ties_are_all_bold():
  ones = np.ones((5, 3))
  cells = statistics.task_cells("t", {"x": ones, "y": ones.copy(), "z": ones * 0.5})
  assert [c.max_bold for c in cells] == [True, True, False]
  assert not cells[2].max_asterisk  # constant 0.5 vs constant 1.0 differ: p = 0


def _meta(budget="smoke"):
  return dict(budget=budget, fidelity="code", seeds=[0, 1, 2], description=f"{budget}: a test",
              generated="2026-01-01T00:00:00")


def test_table1_files_beside_the_paper(tmp_path):
  rng = np.random.default_rng(0)
  curves = {"lbf-10x10-3p-3f": {"stgs-1": 0.5 + 0.1 * rng.random((3, 4)), "gst": 0.7 + 0.1 * rng.random((3, 4))},
            "rware-tiny-4ag": {"gst": 2.0 + rng.random((3, 4))}}
  cells = statistics.table1(curves)
  paths = tables.write_table1(cells, str(tmp_path), _meta(), {("lbf-10x10-3p-3f", "gst"): dict(finished=3)})
  assert [p.rsplit(".", 1)[1] for p in paths] == ["md", "tex", "csv"]
  with open(paths[2]) as handle:
    rows = {(r["task"], r["estimator"]): r for r in csv.DictReader(handle)}
  gst = rows[("lbf-10x10-3p-3f", "gst")]
  assert float(gst["paper_max_return"]) == 0.79 and float(gst["paper_average_return"]) == 0.66  # paper Table 1
  assert float(gst["max_difference"]) == pytest.approx(float(gst["max_return"]) - 0.79, abs=1e-5)
  assert gst["max_bold"] == "1" and gst["paper_max_bold"] == "1"
  assert rows[("lbf-10x10-3p-3f", "stgs-1")]["max_bold"] == "0"
  assert gst["budget"] == "smoke" and gst["fidelity"] == "code"
  markdown = open(paths[0]).read()
  assert "Budget smoke" in markdown and "fidelity code" in markdown
  assert f"**{float(gst['max_return']):.2f} ±" in markdown
  assert "0.79 ± 0.04" in markdown  # the paper's GST maximum on 10x10-3p-3f, with its interval
  latex = open(paths[1]).read()
  assert "budget smoke" in latex and "fidelity code" in latex and "\\mathbf{" in latex
  assert latex.count("\\\\") >= 4


def _assert_image(path, min_bytes=10_000):
  import os
  assert os.path.getsize(path) > min_bytes, path
  image = matplotlib.image.imread(path)
  assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
  assert image[..., :3].std() > 0.01  # not a blank canvas


def test_learning_curve_figures_are_written(tmp_path):
  rng = np.random.default_rng(1)
  steps = np.arange(6) * 1000
  found = {task: {est: [dict(seed=s, steps=steps, returns=rng.random(6)) for s in range(3)]
                  for est in ("stgs-1", "gst")}
           for task in ("lbf-10x10-3p-3f", "rware-tiny-2ag", "rware-tiny-4ag")}
  paths = plots.write_learning_curve_figures(found, str(tmp_path), _meta())
  names = sorted(p.rsplit("/", 1)[1] for p in paths)
  assert names == ["figure1.pdf", "figure1.png", "figure3.pdf", "figure3.png"]  # no 15x15 or 8x8 results
  for path in paths:
    if path.endswith(".png"):
      _assert_image(path)


def test_figure4_aggregation_over_seeds_then_agents():
  # two seeds, two agents, logged at slightly different steps inside the same 1000-step bins
  seed0 = {0: {1000: 1.0, 2004: 2.0}, 1: {1000: 3.0, 2004: 6.0}}
  seed1 = {0: {1008: 3.0, 2000: 4.0}, 1: {1008: 5.0, 2000: 8.0}}
  steps, mean, low, high = plots.aggregate_agents([seed0, seed1], 1000)
  # per agent, seed-means: agent 0 -> [2, 3], agent 1 -> [4, 7]; then over agents
  np.testing.assert_allclose(steps, [1004, 2002])  # the mean of the steps logged in each bin
  np.testing.assert_allclose(mean, [3.0, 5.0])
  np.testing.assert_allclose(low, [2.0, 3.0])
  np.testing.assert_allclose(high, [4.0, 7.0])


# ---- the absolute metric and the p-values against STGS-1 -----------------------------------------------

T1 = 12.706205  # Student-t 0.975 quantile, 1 df

# Absolute mean returns per seed: gst clearly best, tags close to it (not significant), stgs-1 far below.
ABSOLUTE = {"stgs-1": [0.2, 0.3, 0.4], "gst": [0.9, 1.0, 1.1], "tags": [0.6, 1.0, 1.1]}


def _table(tmp_path, curves, absolute=None):
  """(cells, CSV rows by (task, estimator), Markdown rows by (task, estimator label), markdown text)."""
  cells = statistics.table1(curves, absolute=absolute)
  paths = tables.write_table1(cells, str(tmp_path), _meta())
  with open(paths[2]) as handle:
    rows = {(r["task"], r["estimator"]): r for r in csv.DictReader(handle)}
  text = open(paths[0]).read()
  lines = [line for line in text.splitlines() if line.startswith("| ")]
  header = [h.strip() for h in lines[0].strip("|").split("|")]
  markdown = {}
  for line in lines[1:]:
    row = dict(zip(header, (v.strip() for v in line.strip("|").split("|"))))
    markdown[(row["task (steps: ours / paper)"].split(" (")[0], row["estimator"])] = row
  return {(c.task, c.estimator): c for c in cells}, rows, markdown, text


def test_absolute_column_is_the_seed_mean_with_a_t_interval_and_marks(tmp_path):
  curves = {"t": {"stgs-1": np.array(A), "gst": np.array(B), "tags": np.array(A) * 0.5}}
  cells, rows, markdown, text = _table(tmp_path, curves, {"t": ABSOLUTE})
  gst = cells[("t", "gst")]
  # gst: mean 1.0, sd 0.1 -> half t(2) * 0.1 / sqrt(3) = 0.2484
  assert gst.absolute.mean == pytest.approx(1.0)
  assert gst.absolute.half_width == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3), rel=1e-9)
  assert gst.absolute.half_width == pytest.approx(T2 * 0.1 / math.sqrt(3), rel=1e-6)
  # tags: mean 0.9, squared deviations 0.09 + 0.01 + 0.04 -> variance 0.07
  tags = cells[("t", "tags")]
  assert tags.absolute.half_width == pytest.approx(T2 * math.sqrt(0.07 / 3), rel=1e-6)
  assert gst.absolute_bold and not gst.absolute_asterisk and gst.absolute_seeds == 3
  p_tags = stats.ttest_ind(ABSOLUTE["tags"], ABSOLUTE["gst"], equal_var=False).pvalue
  p_stgs = stats.ttest_ind(ABSOLUTE["stgs-1"], ABSOLUTE["gst"], equal_var=False).pvalue
  assert p_tags > 0.05 and p_stgs < 0.05
  assert tags.absolute_pvalue == pytest.approx(p_tags) and tags.absolute_asterisk and not tags.absolute_bold
  assert not cells[("t", "stgs-1")].absolute_asterisk and not cells[("t", "stgs-1")].absolute_bold
  # the maximum's marks are unaffected: stgs-1 (A) is best there
  assert cells[("t", "stgs-1")].max_bold and not gst.max_bold
  assert float(rows[("t", "gst")]["absolute_return"]) == pytest.approx(1.0, abs=1e-6)
  assert float(rows[("t", "gst")]["absolute_ci95"]) == pytest.approx(T2 * 0.1 / math.sqrt(3), abs=1e-5)
  assert (rows[("t", "gst")]["absolute_bold"], rows[("t", "tags")]["absolute_asterisk"]) == ("1", "1")
  assert rows[("t", "gst")]["absolute_seeds"] == "3"
  assert markdown[("t", "GST")]["absolute (ours)"] == f"**1.00 ± {T2 * 0.1 / math.sqrt(3):.2f}**"
  assert markdown[("t", "TAGS")]["absolute (ours)"] == f"0.90 ± {T2 * math.sqrt(0.07 / 3):.2f}\\*"
  assert markdown[("t", "STGS-1")]["absolute (ours)"].startswith("0.30 ± ")
  assert "absolute metric of Gorsane et al. 2022" in text and "10x the run's evaluation episodes" in text
  latex = open(tmp_path / "table1.tex").read()
  assert f"\\mathbf{{1.00 \\pm {T2 * 0.1 / math.sqrt(3):.2f}}}" in latex and "Absolute (ours)" in latex


def test_partial_and_missing_absolute_are_labelled(tmp_path):
  curves = {"t": {"stgs-1": np.array(A), "gst": np.array(B)}}
  cells, rows, markdown, _ = _table(tmp_path, curves, {"t": {"stgs-1": [0.5, None, 0.7]}})
  partial = cells[("t", "stgs-1")]
  # the two seeds that have one: mean 0.6, sd sqrt(0.02), half t(1) * sqrt(0.02) / sqrt(2)
  assert partial.absolute.n == 2 and partial.absolute_seeds == 2 and partial.seeds == 3
  assert partial.absolute.half_width == pytest.approx(T1 * math.sqrt(0.02) / math.sqrt(2), rel=1e-6)
  assert markdown[("t", "STGS-1")]["absolute (ours)"] == f"**0.60 ± {T1 * 0.1:.2f}** (2 of 3)"
  assert rows[("t", "stgs-1")]["absolute_seeds"] == "2"
  # gst: no seed has one -> n/a, and the CSV cell is empty (not 0)
  assert cells[("t", "gst")].absolute is None
  assert markdown[("t", "GST")]["absolute (ours)"] == "n/a"
  assert rows[("t", "gst")]["absolute_return"] == "" and rows[("t", "gst")]["absolute_ci95"] == ""
  assert rows[("t", "gst")]["absolute_seeds"] == "0"
  # no absolute at all: every cell n/a
  _, rows, markdown, _ = _table(tmp_path / "none", curves)
  assert {r["absolute (ours)"] for r in markdown.values()} == {"n/a"}
  assert {r["absolute_return"] for r in rows.values()} == {""}


def test_absolute_values_must_match_the_seeds():
  with pytest.raises(ValueError, match="holds 2 values for 3 seeds"):
    statistics.table1({"t": {"gst": np.array(A)}}, absolute={"t": {"gst": [0.1, 0.2]}})
  with pytest.raises(ValueError, match="names estimator 'tags'"):
    statistics.table1({"t": {"gst": np.array(A)}}, absolute={"t": {"tags": [0.1, 0.2, 0.3]}})


def test_welch_pvalues_against_stgs1_for_both_returns(tmp_path):
  c = [[0.4, 0.3], [0.8, 0.2], [0.6, 0.1]]
  curves = {"t": {"stgs-1": np.array(A), "gst": np.array(B), "tags": np.array(c)},
            "u": {"gst": np.array(B), "tags": np.array(c)}}  # no STGS-1 row
  cells, rows, markdown, text = _table(tmp_path, curves)
  # maximum: each estimator's own best evaluation (A: index 1, B: index 0, c: index 0)
  p_max = stats.ttest_ind([0.1, 0.3, 0.35], [0.5, 0.7, 0.9], equal_var=False).pvalue
  p_avg = stats.ttest_ind(np.ravel(B), np.ravel(A), equal_var=False).pvalue
  p_max_c = stats.ttest_ind([0.4, 0.8, 0.6], [0.5, 0.7, 0.9], equal_var=False).pvalue
  assert p_max != pytest.approx(p_avg, rel=1e-3)  # the two returns use different samples
  gst = cells[("t", "gst")]
  assert gst.reference == "stgs-1"
  assert gst.max_pvalue_reference == pytest.approx(p_max, rel=1e-12)
  assert gst.average_pvalue_reference == pytest.approx(p_avg, rel=1e-12)
  assert cells[("t", "tags")].max_pvalue_reference == pytest.approx(p_max_c, rel=1e-12)
  assert float(rows[("t", "gst")]["max_pvalue_vs_reference"]) == pytest.approx(p_max, abs=1e-6)
  assert float(rows[("t", "gst")]["average_pvalue_vs_reference"]) == pytest.approx(p_avg, abs=1e-6)
  assert markdown[("t", "GST")]["p max vs STGS-1"] == tables.pvalue_text(p_max)
  assert markdown[("t", "GST")]["p average vs STGS-1"] == tables.pvalue_text(p_avg)
  assert markdown[("t", "TAGS")]["p max vs STGS-1"] == f"{p_max_c:.3f}"
  # the reference row
  assert rows[("t", "stgs-1")]["max_pvalue_vs_reference"] == "ref"
  assert rows[("t", "stgs-1")]["average_pvalue_vs_reference"] == "ref"
  assert markdown[("t", "STGS-1")]["p max vs STGS-1"] == "ref"
  assert markdown[("t", "STGS-1")]["p average vs STGS-1"] == "ref"
  # a task without STGS-1: no reference, no p-value
  assert cells[("u", "gst")].reference is None and math.isnan(cells[("u", "gst")].max_pvalue_reference)
  assert markdown[("u", "GST")]["p max vs STGS-1"] == "-" and rows[("u", "gst")]["reference"] == ""
  assert "against the reference STGS-1" in text


def test_pvalue_against_stgs1_with_one_seed_is_na(tmp_path):
  curves = {"t": {"stgs-1": np.array([[0.1, 0.5]]), "gst": np.array([[0.3, 0.2]])}}
  cells, rows, markdown, _ = _table(tmp_path, curves)
  assert math.isnan(cells[("t", "gst")].max_pvalue_reference)
  assert markdown[("t", "GST")]["p max vs STGS-1"] == "n/a"
  assert rows[("t", "gst")]["max_pvalue_vs_reference"] == ""
  # the average pools two evaluations per side: a p-value exists
  p_avg = stats.ttest_ind([0.3, 0.2], [0.1, 0.5], equal_var=False).pvalue
  assert markdown[("t", "GST")]["p average vs STGS-1"] == tables.pvalue_text(p_avg)


def test_pvalue_text_formats():
  assert tables.pvalue_text(0.0312) == "0.031"
  assert tables.pvalue_text(0.00042) == "4.2e-04"
  assert tables.pvalue_text(math.nan) == "n/a"
  assert tables.pvalue_text("ref") == "ref" and tables.pvalue_text("") == "-"


def test_read_absolute_takes_only_a_well_formed_file(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  good = dict(best_step=5000, best_mean_return=0.8, step=5000, source="best", distance=0,
              checkpoint="best-ckpt-5000", episodes=2, mode="sampled", stream="seed 0", mean_return=0.75,
              ci95=[0.5, 1.0], returns=[0.5, 1.0])
  cases = {"good": json.dumps(good), "torn": json.dumps(good)[:40], "list": "[1, 2]",
           "nan": json.dumps(dict(good, mean_return=math.nan)), "no_returns": json.dumps(dict(good, returns=[])),
           "text_returns": json.dumps(dict(good, returns=["a"])), "bool": json.dumps(dict(good, mean_return=True))}
  for name, text in cases.items():
    (tmp_path / name).mkdir()
    (tmp_path / name / "absolute.json").write_text(text)
  (tmp_path / "missing").mkdir()
  assert statistics.read_absolute(str(tmp_path / "good")) == good
  for name in ("torn", "list", "nan", "no_returns", "text_returns", "bool", "missing"):
    assert statistics.read_absolute(str(tmp_path / name)) is None, name
  assert statistics.absolute_values([str(tmp_path / "good"), str(tmp_path / "torn")]) == [0.75, None]
