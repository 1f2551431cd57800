"""tools/publish_results.py: a grid's finished runs' small files and its outputs, with the machine's path
prefixes removed; unfinished runs, checkpoints, TensorBoard files and logs left out; --update adds the runs
finished since and keeps what was published."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(REPO, "tools", "publish_results.py")


def write(path, content):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as handle:
    handle.write(content)


def finished(grid, run, machine):
  write(os.path.join(grid, run, "config.json"), json.dumps({"seed": int(run[-1])}))
  write(os.path.join(grid, run, "provenance.json"),
        json.dumps({"command": [f"{machine}/venv/lib/python3.11/worker.py"], "workdir": f"{machine}/repo/{run}"}))
  write(os.path.join(grid, run, "summary.json"), json.dumps({"env_steps": 100}))
  write(os.path.join(grid, run, "absolute.json"), json.dumps({"mean": 0.5}))
  write(os.path.join(grid, run, "evaluations.csv"), "step,mean_return\n0,0.1\n")
  write(os.path.join(grid, run, "checkpoints", "ckpt-100", "state.npz"), "big")
  write(os.path.join(grid, run, "best", "learner.npz"), "big")
  write(os.path.join(grid, run, "tb", "events.out"), "big")


def publish(*args):
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=120)


def listing(folder):
  return sorted(os.path.relpath(os.path.join(root, name), folder)
                for root, _, names in os.walk(folder) for name in names)


def test_publishes_finished_runs_and_outputs_without_machine_paths_then_adds_later_runs(tmp_path):
  machine = str(tmp_path / "machine")
  grid = os.path.join(machine, "repo", "results", "g")
  finished(grid, "lbf/gst/seed0", machine)
  write(os.path.join(grid, "lbf/gst/seed1/config.json"), "{}")  # still running
  write(os.path.join(grid, "lbf/gst/seed1/checkpoints/ckpt-50/state.npz"), "big")
  write(os.path.join(grid, "grid.json"), json.dumps({"results": f"{machine}/repo/results/g", "runs": {
      "lbf/gst/seed0": {"status": "finished"}, "lbf/gst/seed1": {"status": "running"}}}))
  write(os.path.join(grid, "table1.md"), f"made in {machine}/repo/results/g\n")
  write(os.path.join(grid, "beyond", "beyond.csv"), "task,estimator\n")
  write(os.path.join(grid, "logs", "lbf", "gst", "seed0.log"), "log")
  write(os.path.join(grid, "grid.lock"), "")
  out = str(tmp_path / "published")
  strips = [f"--strip={machine}", f"--strip={machine}/repo"]

  done = publish(f"--results={grid}", f"--to={out}", *strips)
  assert done.returncode == 0, done.stderr
  assert done.stdout.splitlines() == [
      "added lbf/gst/seed0",
      f"publish_results: 1 runs added, 0 published earlier kept, in {out} (paths under {machine}, "
      f"{machine}/repo made relative)"]
  assert listing(out) == ["beyond/beyond.csv", "grid.json", "lbf/gst/seed0/absolute.json",
                          "lbf/gst/seed0/config.json", "lbf/gst/seed0/evaluations.csv",
                          "lbf/gst/seed0/provenance.json", "lbf/gst/seed0/summary.json", "table1.md"]
  with open(os.path.join(out, "lbf/gst/seed0/provenance.json")) as handle:  # the longer prefix first
    assert json.load(handle) == {"command": ["venv/lib/python3.11/worker.py"], "workdir": "lbf/gst/seed0"}
  with open(os.path.join(out, "table1.md")) as handle:
    assert handle.read() == "made in results/g\n"
  with open(os.path.join(out, "grid.json")) as handle:  # only the published runs' entries
    assert json.load(handle) == {"results": "results/g", "runs": {"lbf/gst/seed0": {"status": "finished"}}}
  for name in listing(out):
    with open(os.path.join(out, name)) as handle:
      assert machine not in handle.read(), name

  # Again without --update: refused, nothing changed.
  before = {name: open(os.path.join(out, name)).read() for name in listing(out)}
  again = publish(f"--results={grid}", f"--to={out}", *strips)
  assert again.returncode == 2 and again.stderr.strip().splitlines() == [
      f"publish_results: error: --to {out} exists; give a new folder, or --update to add to an earlier "
      "publication there (see --help)"]
  assert {name: open(os.path.join(out, name)).read() for name in listing(out)} == before

  # Seed 1 finishes; seed 0's source changes (published runs are kept as they were); outputs are replaced.
  finished(grid, "lbf/gst/seed1", machine)
  write(os.path.join(grid, "lbf/gst/seed0/summary.json"), json.dumps({"env_steps": 999}))
  write(os.path.join(grid, "table1.md"), "two seeds\n")
  done = publish(f"--results={grid}", f"--to={out}", "--update", *strips)
  assert done.returncode == 0, done.stderr
  assert done.stdout.splitlines()[0] == "added lbf/gst/seed1"
  assert "1 runs added, 1 published earlier kept" in done.stdout
  with open(os.path.join(out, "lbf/gst/seed0/summary.json")) as handle:
    assert json.load(handle) == {"env_steps": 100}
  with open(os.path.join(out, "table1.md")) as handle:
    assert handle.read() == "two seeds\n"
  assert "lbf/gst/seed1/summary.json" in listing(out)
  with open(os.path.join(out, "grid.json")) as handle:
    assert sorted(json.load(handle)["runs"]) == ["lbf/gst/seed0", "lbf/gst/seed1"]
