"""`maddpg-reproduce --seeds_per_process`: a grid cell's seeds packed in one Ray task write the run
directories the grid writes with one run per task (the numbers of each seed's run alone: how equal,
tests/run/test_packing.py), with their logs, attempts, summaries and absolute metrics."""

import json
import os
import subprocess
import sys

import pytest

from maddpg_tf.grid import runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "lbf-8x8-2p-2f-coop"


def test_units_are_a_cells_seeds_in_groups_of_at_most_seeds_per_process(tmp_path):
  specs = runs.plan(str(tmp_path), (TASK,), ("stgs-1", "gst"), (0, 1, 2), "smoke")
  units = runs.group_specs(specs, 2)
  assert [[(s.estimator, s.seed) for s in unit] for unit in units] == [
      [("stgs-1", 0), ("stgs-1", 1)], [("stgs-1", 2)], [("gst", 0), ("gst", 1)], [("gst", 2)]]
  assert runs.group_specs(specs, 1) == [(spec,) for spec in specs]
  assert [len(unit) for unit in runs.group_specs(specs, 5)] == [3, 3]
  # A run of the cell with another setting is not packed with the others.
  other = runs.RunSpec(TASK, "gst", 3, runs.workdir_of(str(tmp_path), TASK, "gst", 3),
                       dict(specs[-1].config, seed=3, total_steps=4_000))
  assert [len(unit) for unit in runs.group_specs(specs + [other], 5)] == [3, 3, 1]
  with pytest.raises(runs.UsageError, match="--seeds_per_process must be >= 1, got 0"):
    runs.group_specs(specs, 0)


def test_maddpg_reproduce_refuses_seeds_per_process_below_one(tmp_path):
  done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", "--budget=smoke", "--seeds_per_process=0",
                         f"--results={tmp_path / 'r'}"], cwd=REPO, capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert done.returncode == 2
  assert done.stderr.strip().splitlines() == ["maddpg-reproduce: error: --seeds_per_process must be >= 1, got 0"]
  assert not os.path.exists(tmp_path / "r")


@pytest.mark.slow  # a local Ray, one packed task of two seeds, and each seed trained alone
def test_a_packed_cell_writes_the_runs_of_its_seeds_alone(tmp_path):
  results = str(tmp_path / "results")
  specs = runs.plan(results, (TASK,), ("gst",), (0, 1), "smoke")
  report = runs.run_grid(specs, results, num_cpus=2, progress=False, quiet=True, seeds_per_process=2)
  assert report.ok and sorted(report.finished) == sorted(spec.name for spec in specs)
  # Seed 1 trained alone (the equality of every packed seed: tests/run/test_packing.py).
  alone = str(tmp_path / "alone1")
  assert runs.train_one(specs[1].config, alone)["status"] == "finished"
  for name in ("evaluations.csv", "config.json"):
    with open(os.path.join(specs[1].workdir, name)) as a, open(os.path.join(alone, name)) as b:
      assert a.read() == b.read(), name
  for spec in specs:
    with open(os.path.join(spec.workdir, "provenance.json")) as handle:
      provenance = json.load(handle)
    assert provenance["packed"] == {"seeds": [0, 1], "directory": os.path.dirname(os.path.abspath(spec.workdir))}
    assert len(provenance["attempts"]) == 1
    with open(os.path.join(spec.workdir, "summary.json")) as handle:
      assert json.load(handle)["env_steps"] == 2_000
    assert os.path.isfile(os.path.join(spec.workdir, "absolute.json"))
    assert len(runs.read_attempts(runs._attempts_file(results, spec))) == 1
  # The first seed's log holds the process's output; the other's says where it is.
  first, second = (runs._log_stem(results, spec) + ".log" for spec in specs)
  with open(first) as handle:
    assert "gst/seed0: finished" in handle.read()
  with open(second) as handle:
    assert f"packed with {os.path.abspath(specs[0].workdir)}, output in {os.path.abspath(first)}" in handle.read()
  # Run again: every run is finished and skipped.
  again = runs.run_grid(specs, results, num_cpus=2, progress=False, quiet=True, seeds_per_process=2)
  assert sorted(again.skipped) == sorted(spec.name for spec in specs) and not again.finished
