"""The published beyond-budget results (`results/beyond/`, README: Beyond the paper) rebuild from the
committed run files: `maddpg-reproduce --budget=beyond --norun` on a copy of them gives the committed
`table1.csv` (every number) and `beyond/beyond.csv` (the returns and p-values exactly; the lab's bias and
variance, which TensorFlow computes on this machine's CPU, to 1e-6 relative)."""

import csv
import glob
import math
import os
import shutil
import subprocess
import sys

import pytest

from maddpg_tf.grid import budgets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "results", "beyond")
LAB = ("lab_bias", "lab_bias_low", "lab_bias_high", "lab_variance", "lab_mse")


def rows(path):
  with open(path) as handle:
    return list(csv.DictReader(handle))


def published_runs():
  """{(task, estimator): number of runs published}, for the budget's tasks and estimators."""
  counts = {(task, estimator): len(glob.glob(os.path.join(RESULTS, task, estimator, "seed*")))
            for task in budgets.BEYOND_TASKS for estimator in budgets.BEYOND_ESTIMATORS}
  return {cell: count for cell, count in counts.items() if count}


@pytest.mark.slow  # two program starts, the second computing the lab's row of 14 estimator-task pairs
def test_the_committed_beyond_results_rebuild_the_committed_tables(tmp_path):
  copy = str(tmp_path / "beyond")
  shutil.copytree(RESULTS, copy, ignore=shutil.ignore_patterns("table1.*", "aggregate", "figures", "beyond"))
  for what in ("table1", "beyond"):
    done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", f"--what={what}", "--budget=beyond",
                           "--norun", f"--results={copy}", "--bootstrap_reps=1000", "--poi_bootstrap_reps=100"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
  published = published_runs()
  rebuilt = rows(os.path.join(copy, "table1.csv"))
  assert {(r["task"], r["estimator"]): int(r["finished_seeds"]) for r in rebuilt} == published
  for row in rebuilt:  # only finished runs are published: each read to its task's end
    assert row["last_step"] == row["total_steps"] == str(2_500_000 if row["task"].startswith("lbf") else 3_500_000)
  assert rebuilt == rows(os.path.join(RESULTS, "table1.csv"))

  mine, theirs = rows(os.path.join(copy, "beyond", "beyond.csv")), rows(os.path.join(RESULTS, "beyond", "beyond.csv"))
  assert [(r["task"], r["estimator"]) for r in mine] == [(r["task"], r["estimator"]) for r in theirs]
  assert {(r["task"], r["estimator"]): int(r["finished_seeds"]) for r in mine} == published
  for a, b in zip(mine, theirs):
    assert {k: v for k, v in a.items() if k not in LAB} == {k: v for k, v in b.items() if k not in LAB}
    for key in LAB:
      assert math.isclose(float(a[key]), float(b[key]), rel_tol=1e-6, abs_tol=1e-12), (a["estimator"], key)
