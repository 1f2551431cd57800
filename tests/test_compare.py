"""`maddpg-compare` through its command line: hand-computed numbers on small fake runs, every bad input one
line with exit status 2 and nothing written, and the committed medium LBF runs giving Table 1's numbers.

The fake runs are what `maddpg-train` writes: the config.json of a committed run with its task and estimator
changed, and an evaluations.csv written by the training loop's own writer.
"""

import csv
import json
import math
import os
import subprocess
import sys

import pytest
from scipy import stats

from maddpg_tf.analysis import compare
from maddpg_tf.analysis import statistics
from maddpg_tf.run import loggers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
MEDIUM = os.path.join(REPO, "results", "medium")
REAL_RUN = os.path.join(MEDIUM, "lbf-15x15-4p-5f", "gst", "seed0")
STEPS = (0, 100, 200)
# Student-t quantiles t_{0.975, df} (tables): df = 1 for two runs, df = 5 for two runs x three evaluations.
T1, T5 = 12.706204736174698, 2.5705818356363146


def command(*args, cwd=REPO):
  return subprocess.run([sys.executable, "-m", "maddpg_tf.cli.compare", *args], capture_output=True, text=True,
                        env=ENV, cwd=cwd, timeout=300)


def make_run(directory, returns, task="lbf-8x8-2p-2f-coop", estimator="gst", absolute=None, files=("config", "csv")):
  """A run directory: config.json (a committed run's, task and estimator changed) and evaluations.csv with
  one evaluation per value of `returns` at STEPS (two episodes each, both that value)."""
  os.makedirs(directory)
  if "config" in files:
    with open(os.path.join(REAL_RUN, "config.json")) as handle:
      config = json.load(handle)
    config["task"] = task
    config["estimator"].update(name=estimator, label=estimator)
    with open(os.path.join(directory, "config.json"), "w") as handle:
      json.dump(config, handle)
  if "csv" in files:
    loggers.write_evaluations_csv(os.path.join(directory, "evaluations.csv"),
                                  [dict(step=step, returns=[value, value]) for step, value in zip(STEPS, returns)])
  if absolute is not None:
    with open(os.path.join(directory, "absolute.json"), "w") as handle:
      json.dump(dict(mean_return=absolute, returns=[absolute] * 4), handle)
  return str(directory)


@pytest.fixture
def small(tmp_path):
  """Group A (gst): runs [0, 4, 2] and [2, 6, 2], absolute metrics 3 and 5; group B (stgs-1): runs [1, 1, 3]
  and [1, 3, 5], no absolute metric."""
  make_run(tmp_path / "a" / "seed0", [0, 4, 2], absolute=3.0)
  make_run(tmp_path / "a" / "seed1", [2, 6, 2], absolute=5.0)
  make_run(tmp_path / "b" / "seed0", [1, 1, 3], estimator="stgs-1")
  make_run(tmp_path / "b" / "seed1", [1, 3, 5], estimator="stgs-1")
  return tmp_path


def read_rows(path):
  with open(path, newline="") as handle:
    return list(csv.DictReader(handle))


def test_two_groups_hand_computed(small):
  out = small / "out"
  done = command(f"--runs={small}/a/seed*", f"--runs={small}/b/seed0,{small}/b/seed1", f"--out={out}")
  assert done.returncode == 0, done.stderr
  assert sorted(os.listdir(out)) == ["comparison.csv", "comparison.md", "curves.png"]
  with open(out / "curves.png", "rb") as handle:
    assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
  a, b = read_rows(out / "comparison.csv")
  # Default labels: each group's estimator label from its config.json.
  assert (a["group"], b["group"]) == ("gst", "stgs-1")
  assert a["task"] == b["task"] == "lbf-8x8-2p-2f-coop"
  assert (a["runs"], a["evaluations"], a["last_step"]) == ("2", "3", "200")

  def close(row, key, value):
    assert float(row[key]) == pytest.approx(value, abs=1e-6), key

  # A: run means [1, 5, 2] -> max at step 100, values [4, 6]: mean 5, sd sqrt(2), sem 1 -> half-width T1.
  assert a["max_step"] == "100"
  close(a, "max_return", 5.0)
  close(a, "max_ci95", T1)
  # A pooled [0, 4, 2, 2, 6, 2]: mean 8/3, variance 64/15, sem sqrt(64/90).
  close(a, "average_return", 8 / 3)
  close(a, "average_ci95", T5 * math.sqrt(64 / 90))
  # A final [2, 2]: mean 2, no spread.
  close(a, "final_return", 2.0)
  close(a, "final_ci95", 0.0)
  close(a, "absolute_return", 4.0)
  close(a, "absolute_ci95", T1)  # [3, 5]: sem 1
  assert a["absolute_runs"] == "2"
  for key in ("max_pvalue_vs_first", "average_pvalue_vs_first", "final_pvalue_vs_first", "absolute_pvalue_vs_first"):
    assert a[key] == "ref"

  # B: run means [1, 2, 4] -> max at step 200, values [3, 5]: mean 4, half-width T1; the final is the same.
  assert b["max_step"] == "200"
  close(b, "max_return", 4.0)
  close(b, "max_ci95", T1)
  close(b, "final_return", 4.0)
  close(b, "final_ci95", T1)
  # B pooled [1, 1, 3, 1, 3, 5]: mean 7/3, variance 8/3, sem sqrt(4/9).
  close(b, "average_return", 7 / 3)
  close(b, "average_ci95", T5 * 2 / 3)
  # Welch, max: [4, 6] vs [3, 5]: t = 1/sqrt(2), df = 2, where the t CDF is closed: p = 1 - t / sqrt(2 + t^2).
  close(b, "max_pvalue_vs_first", 1 - math.sqrt(0.5 / 2.5))
  # Welch, final: [2, 2] vs [3, 5]: t = -2, df = 1 (Cauchy): p = 1 - 2 arctan(2) / pi.
  close(b, "final_pvalue_vs_first", 1 - 2 * math.atan(2) / math.pi)
  # Welch, average: se^2 = 64/90 + 40/90 = 52/45, t = (1/3) / sqrt(52/45), df = (52/45)^2 / (((32/45)^2 +
  # (20/45)^2) / 5) = 13520/1424; only the t distribution's tail comes from scipy.
  close(b, "average_pvalue_vs_first", 2 * stats.t.sf((1 / 3) / math.sqrt(52 / 45), 13520 / 1424))
  assert b["absolute_return"] == b["absolute_pvalue_vs_first"] == "" and b["absolute_runs"] == "0"

  # The same table is printed and in comparison.md.
  printed = [line for line in done.stdout.splitlines() if line.startswith("| stgs-1 |")]
  assert printed == ["| stgs-1 | 2 | 3 (200) | 4.000 ± 12.706 | 0.553 | 2.333 ± 1.714 | 0.763 | 4.000 ± 12.706 | "
                     "0.295 | n/a | n/a | 200 |"]
  with open(out / "comparison.md") as handle:
    assert printed[0] in handle.read().splitlines()


def test_labels_and_an_empty_out(small):
  out = small / "out"
  os.makedirs(out)  # an existing empty --out is used
  done = command(f"--runs={small}/b/seed*", f"--runs={small}/a/seed*", "--labels=base,new", f"--out={out}")
  assert done.returncode == 0, done.stderr
  base, new = read_rows(out / "comparison.csv")
  assert (base["group"], new["group"]) == ("base", "new")
  assert base["max_pvalue_vs_first"] == "ref" and float(new["max_pvalue_vs_first"]) == pytest.approx(
      1 - math.sqrt(0.2), abs=1e-6)  # the first group is the reference, whichever it is


def test_groups_of_one_estimator_get_distinct_labels(small):
  make_run(small / "c" / "seed0", [5, 5, 5])
  done = command(f"--runs={small}/a/seed*", f"--runs={small}/c/seed0", f"--out={small}/out")
  assert done.returncode == 0, done.stderr
  assert [row["group"] for row in read_rows(small / "out" / "comparison.csv")] == ["gst", "gst-2"]


def _refused(done, out, *expected):
  assert done.returncode == 2, (done.stdout, done.stderr)
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("maddpg-compare: error: "), done.stderr
  for text in expected:
    assert text in lines[0], lines[0]
  assert not os.path.exists(out)


def test_no_match_is_named(small):
  out = small / "out"
  _refused(command(f"--runs={small}/a/seed*", f"--runs={small}/nothing/seed*", f"--out={out}"), out,
           f"no runs match '{small}/nothing/seed*'")
  _refused(command(f"--runs={small}/a/seed0,{small}/a/seed9", f"--out={out}"), out, f"'{small}/a/seed9'")


# The refusals below are maddpg-compare's own (its main turns a CompareError into the one line, as
# test_no_match_is_named checks through the program); in-process, as each program start costs 2 s.
def _load_refused(groups, *expected, labels=None):
  with pytest.raises(compare.CompareError) as failure:
    compare.load(groups, labels)
  message = str(failure.value)
  assert "\n" not in message, message
  for text in expected:
    assert text in message, message


@pytest.mark.parametrize("missing", ["evaluations.csv", "config.json"])
def test_not_a_run_directory(small, missing):
  files = ("config",) if missing == "evaluations.csv" else ("csv",)
  make_run(small / "broken", [1, 2, 3], files=files)
  _load_refused([f"{small}/a/seed*", f"{small}/broken"], f"{small}/broken is not a maddpg-train run directory",
                f"no {missing}")


def test_runs_of_different_tasks(small):
  make_run(small / "rware", [1, 2, 3], task="rware-tiny-4ag")
  _load_refused([f"{small}/a/seed*", f"{small}/rware"], "runs of different tasks", "lbf-8x8-2p-2f-coop",
                "rware-tiny-4ag")


def test_labels_count_mismatch(small):
  _load_refused([f"{small}/a/seed*", f"{small}/b/seed*"], "--labels has 1 labels for 2 groups", labels=["only"])


def test_out_not_empty_is_left_alone(small):
  out = small / "out"
  os.makedirs(out)
  (out / "notes.txt").write_text("mine")
  done = command(f"--runs={small}/a/seed*", f"--out={out}")
  assert done.returncode == 2 and done.stderr.strip().splitlines() == [
      f"maddpg-compare: error: --out={out} exists and is not empty: choose a new directory"]
  assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


def test_without_matplotlib_one_line(small):
  out = small / "out"
  # matplotlib hidden as an uninstalled package is (None in sys.modules: find_spec and import both fail).
  script = ("import sys; sys.modules['matplotlib'] = None; from maddpg_tf.cli import compare; "
            f"sys.argv = ['maddpg-compare', '--runs={small}/a/seed*', '--out={out}']; compare.run()")
  done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, cwd=REPO,
                        timeout=300)
  _refused(done, out, 'matplotlib is not installed; pip install "maddpg-tf[plots]"')


def test_committed_medium_runs_match_table1(tmp_path):
  """The README's command on the committed LBF runs: the max, average and absolute columns and their
  p-values against STGS-1 equal results/medium/table1.csv's (both written by the same CSV writer)."""
  out = tmp_path / "compare"
  task = "lbf-15x15-4p-5f"
  done = command(f"--runs=results/medium/{task}/stgs-1/seed*", f"--runs=results/medium/{task}/gst/seed*",
                 f"--out={out}")
  assert done.returncode == 0, done.stderr
  ours = {row["group"]: row for row in read_rows(out / "comparison.csv")}
  table1 = {row["estimator"]: row for row in read_rows(os.path.join(MEDIUM, "table1.csv")) if row["task"] == task}
  assert list(ours) == ["stgs-1", "gst"]
  for estimator in ("stgs-1", "gst"):
    row, reference = ours[estimator], table1[estimator]
    assert row["runs"] == reference["seeds"] and row["evaluations"] == reference["evaluations"]
    for column in ("max_step", "max_return", "max_ci95", "average_return", "average_ci95", "absolute_return",
                   "absolute_ci95"):
      assert row[column] == reference[column], (estimator, column)
    assert row["absolute_runs"] == reference["absolute_seeds"]
    assert row["max_pvalue_vs_first"] == reference["max_pvalue_vs_reference"]
    assert row["average_pvalue_vs_first"] == reference["average_pvalue_vs_reference"]


def test_curve_band_is_the_t_interval_per_evaluation():
  """curves.png's band: at each evaluation the runs' mean ± t half-width; none for a single run."""
  mean, half = statistics.t_band([[0, 4, 2], [2, 6, 2]])
  assert mean.tolist() == [1, 5, 2]
  assert half == pytest.approx([T1 * 1, T1 * 1, 0])  # sd sqrt(2) over two runs: sem 1; equal values: 0
  mean, half = statistics.t_band([[3, 1]])
  assert mean.tolist() == [3, 1] and half.tolist() == [0, 0]
