"""The published medium-budget results (`results/medium/`, README: Reproducing) rebuild from the committed
run files: `maddpg-reproduce --budget=medium --what=table1 --norun` on a copy of them gives the committed
`table1.csv`, every number of it. The driver imports no TensorFlow: a few seconds."""

import csv
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "results", "medium")
TASKS = ("lbf-15x15-4p-5f", "rware-tiny-4ag")
ESTIMATORS = ("stgs-1", "gst")


def rows(path):
  with open(path) as handle:
    return list(csv.DictReader(handle))


def test_the_committed_medium_results_rebuild_the_committed_table1(tmp_path):
  copy = str(tmp_path / "medium")
  shutil.copytree(RESULTS, copy, ignore=shutil.ignore_patterns("table1.*", "aggregate", "figures"))
  done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", "--what=table1", "--budget=medium",
                         "--norun", f"--results={copy}", "--bootstrap_reps=1000", "--poi_bootstrap_reps=100"],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr
  published, rebuilt = rows(os.path.join(RESULTS, "table1.csv")), rows(os.path.join(copy, "table1.csv"))
  assert [(r["task"], r["estimator"]) for r in rebuilt] == [(t, e) for t in TASKS for e in ESTIMATORS]
  for row in rebuilt:  # the whole budget: three finished seeds of 7.5M steps, each with its absolute metric
    assert (row["seeds"], row["finished_seeds"], row["absolute_seeds"]) == ("3", "3", "3")
    assert row["last_step"] == row["total_steps"] == "7500000" and row["evaluations"] == "151"
  assert rebuilt == published
