"""GPU shares in a grid (`maddpg-reproduce --gpus_per_run`, maddpg_tf/grid/runs.py), on a machine without a
GPU: the share is checked (a 1/k of one GPU), each run's Ray task asks for it (the options built and passed
as Ray takes them), the run's process takes at most that share of its GPU's memory (its config's
`device.memory_fraction`), and a cluster with no GPUs is refused in one line before any run starts."""

import os
import subprocess
import sys

import pytest

from maddpg_tf import config as config_lib
from maddpg_tf.grid import runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "lbf-8x8-2p-2f-coop"


def _cli(*args, timeout=300):
  return subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", *args], cwd=REPO, capture_output=True,
                        text=True, timeout=timeout, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


@pytest.mark.parametrize("value", [0, 1, 0.5, 0.25, 0.2, 0.125, 0.333, 1 / 3])
def test_a_share_of_one_gpu_in_whole_runs_is_accepted(value):
  assert runs.check_gpus_per_run(value) == float(value)


@pytest.mark.parametrize("value, message", [
    (-0.25, "--gpus_per_run must be 0 (no GPU) or a share of one GPU in (0, 1], e.g. 0.25 for four runs per GPU, "
            "got -0.25"),
    (2, "--gpus_per_run must be 0 (no GPU) or a share of one GPU in (0, 1], e.g. 0.25 for four runs per GPU, got 2"),
    (0.3, "--gpus_per_run 0.3 does not divide a GPU into whole runs (3 fit, leaving 0.10 of each GPU unused); give "
          "1/k, e.g. 1, 0.5, 0.25, 0.2"),
    (0.7, "--gpus_per_run 0.7 does not divide a GPU into whole runs (1 fit, leaving 0.30 of each GPU unused); give "
          "1/k, e.g. 1, 0.5, 0.25, 0.2"),
])
def test_a_share_outside_one_gpu_or_wasting_one_is_refused_in_one_line(value, message):
  with pytest.raises(runs.UsageError) as caught:
    runs.check_gpus_per_run(value)
  assert str(caught.value) == message


def test_the_ray_options_ask_for_the_share_only_when_given():
  assert runs.ray_options("t/gst/seed0", 2) == {"num_cpus": 2, "max_retries": 0, "name": "t/gst/seed0"}
  assert runs.ray_options("t/gst/seed0", 1, 0.25) == {"num_cpus": 1, "max_retries": 0, "name": "t/gst/seed0",
                                                      "num_gpus": 0.25}
  assert runs.ray_options("r", 1, 1 / 3)["num_gpus"] == 0.3333  # Ray keeps four decimal places


def test_a_runs_config_takes_its_share_of_the_gpus_memory():
  config = runs.make_config(TASK, "gst", 0, "smoke").to_dict()
  shared = runs.with_gpu_share(config, 0.25)
  assert shared["device"]["memory_fraction"] == 0.25 and config["device"]["memory_fraction"] is None
  assert config_lib.resolve(shared).device.memory_fraction == 0.25  # a config the run accepts
  assert runs.with_gpu_share(config, 0) is config and runs.with_gpu_share(config, 1) is config  # whole or none
  limited = dict(config, device=dict(config["device"], memory_limit_mb=2048))
  assert runs.with_gpu_share(limited, 0.25) is limited  # a limit of the run's own stays


def test_each_submitted_run_carries_its_share_to_ray(tmp_path):
  spec = runs.plan(str(tmp_path), (TASK,), ("gst",), (0,), "smoke")[0]
  grid = runs._GridRun([spec], str(tmp_path), None, cpus_per_run=1, retries=0, gpus_per_run=0.5)  # pylint: disable=protected-access
  submitted = []

  class Remote:
    def options(self, **options):
      submitted.append(options)
      return self

    def remote(self, config, *rest):
      submitted.append(config)
      return "ref"

  grid.remote = Remote()
  grid.submit((spec,))
  assert submitted[0] == {"num_cpus": 1, "max_retries": 0, "name": spec.name, "num_gpus": 0.5}
  assert submitted[1]["device"]["memory_fraction"] == 0.5 and grid.pending == {"ref": (spec,)}


def test_a_packed_cell_asks_for_one_share_and_each_seed_takes_it(tmp_path):
  specs = runs.plan(str(tmp_path), (TASK,), ("gst",), (0, 1), "smoke")
  grid = runs._GridRun(specs, str(tmp_path), None, cpus_per_run=2, retries=0, gpus_per_run=0.5,  # pylint: disable=protected-access
                       seeds_per_process=2)
  assert grid.units == [tuple(specs)]
  submitted = []

  class Remote:
    def options(self, **options):
      submitted.append(options)
      return self

    def remote(self, configs, workdirs, *rest):
      submitted.append((configs, workdirs))
      return "ref"

  grid.remote_group = Remote()
  grid.submit(grid.units[0])
  assert submitted[0] == {"num_cpus": 2, "max_retries": 0, "name": f"{TASK}/gst/seeds0-1", "num_gpus": 0.5}
  configs, workdirs = submitted[1]
  assert [c["device"]["memory_fraction"] for c in configs] == [0.5, 0.5] and [c["seed"] for c in configs] == [0, 1]
  assert workdirs == [os.path.abspath(spec.workdir) for spec in specs] and grid.pending == {"ref": tuple(specs)}


def test_a_cluster_without_gpus_is_refused_for_a_share_not_for_none():
  with pytest.raises(runs.UsageError) as caught:
    runs.check_cluster_gpus({"CPU": 2.0, "memory": 1e9}, 0.25, "local")
  assert str(caught.value) == ("--gpus_per_run 0.25 asks each run for a share of a GPU, but the Ray cluster (local) "
                               "has no GPUs; give --gpus_per_run=0 to train on CPUs, or a cluster with GPUs")
  runs.check_cluster_gpus({"CPU": 2.0}, 0, "local")
  runs.check_cluster_gpus({"CPU": 16.0, "GPU": 1.0}, 0.25, "auto")


def test_reproduce_refuses_a_bad_share_in_one_line_and_writes_nothing(tmp_path):
  done = _cli("--what=table1", "--budget=smoke", "--gpus_per_run=0.4", f"--results={tmp_path / 'results'}")
  assert (done.returncode, done.stderr.strip().splitlines(), done.stdout) == (2, [
      "maddpg-reproduce: error: --gpus_per_run 0.4 does not divide a GPU into whole runs (2 fit, leaving 0.20 of "
      "each GPU unused); give 1/k, e.g. 1, 0.5, 0.25, 0.2"], "")
  assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_reproduce_on_a_cluster_without_gpus_refuses_a_share_before_any_run_starts(tmp_path):
  """This machine's local Ray has no GPU: the grid stops with one line, no run directory or log made."""
  results = tmp_path / "results"
  done = _cli("--what=table1", "--budget=smoke", f"--tasks={TASK}", "--estimators=gst", "--seeds=0",
              "--gpus_per_run=0.25", "--num_cpus=1", "--quiet", f"--results={results}")
  assert (done.returncode, done.stderr.strip().splitlines()[-1:]) == (2, [
      "maddpg-reproduce: error: --gpus_per_run 0.25 asks each run for a share of a GPU, but the Ray cluster "
      "(local) has no GPUs; give --gpus_per_run=0 to train on CPUs, or a cluster with GPUs"]), done.stderr
  assert not (results / TASK).exists() and not (results / "logs").exists()
