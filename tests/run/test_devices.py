"""Device settings (`config.device`, maddpg_tf/run/devices.py) on a machine without a GPU: accepted, doing
nothing and saying so in provenance.json, which lists the devices TensorFlow saw and where the update ran;
bad values refused in one line before anything is written. The GPU paths run against a fake `tf.config`
with two GPUs (what is asked of TensorFlow, in which order); a run that finds no room says so in one line."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from configs import lbf
from maddpg_tf import config as config_lib
from maddpg_tf.run import devices, experiment, workdir as workdir_lib
from tests import fakes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CPU = "/job:localhost/replica:0/task:0/device:CPU:0"


def device(**values):
  settings = config_lib.device_config().to_dict()
  settings.update(values)
  return settings


# ---- the config ------------------------------------------------------------------------------------------

def test_the_defaults_are_memory_growth_on_every_gpu_with_no_limit():
  config = config_lib.resolve(lbf.get_config("smoke"))
  assert config.device.to_dict() == {"memory_growth": True, "memory_limit_mb": None, "memory_fraction": None,
                                     "visible_gpus": "all"}


@pytest.mark.parametrize("key, value, message", [
    ("memory_limit_mb", -512, "device.memory_limit_mb must be an integer >= 1 (or None: the default), got -512"),
    ("memory_limit_mb", 0, "device.memory_limit_mb must be an integer >= 1 (or None: the default), got 0"),
    ("memory_fraction", 1.5, "device.memory_fraction must be a number in (0, 1] (or None: the default), got 1.5"),
    ("memory_fraction", 0.0, "device.memory_fraction must be a number in (0, 1] (or None: the default), got 0.0"),
    ("memory_growth", "yes", "device.memory_growth must be True or False, got 'yes'"),
    ("visible_gpus", "gpu0", "device.visible_gpus must be 'all', 'none' or distinct GPU indices such as '0' or "
                             "'0,1', got 'gpu0'"),
    ("visible_gpus", "0,0", "device.visible_gpus must be 'all', 'none' or distinct GPU indices such as '0' or "
                            "'0,1', got '0,0'"),
])
def test_bad_device_values_are_refused_naming_the_value(key, value, message):
  config = lbf.get_config("smoke")
  with config.device.ignore_type():  # past the ConfigDict's own type check, as a config.json's value would be
    config.device[key] = value
  with pytest.raises(config_lib.ConfigError) as caught:
    config_lib.resolve(config)
  assert str(caught.value) == message


def test_a_limit_and_a_fraction_together_are_refused():
  config = lbf.get_config("smoke")
  config.device.memory_limit_mb, config.device.memory_fraction = 4096, 0.5
  with pytest.raises(config_lib.ConfigError, match=r"^device.memory_limit_mb \(4096\) and device.memory_fraction "
                                                   r"\(0.5\) both bound the GPU memory; give one$"):
    config_lib.resolve(config)


def test_visible_gpus_reads_all_none_and_indices():
  assert config_lib.visible_gpus("all") is None
  assert config_lib.visible_gpus("none") == ()
  assert config_lib.visible_gpus("1, 0") == (1, 0)


def test_a_config_written_before_the_device_settings_reads_as_the_defaults():
  old = config_lib.resolve(lbf.get_config("smoke")).to_dict()
  del old["device"]
  assert config_lib.upgrade(old)["device"] == config_lib.device_config().to_dict()


def test_maddpg_train_refuses_a_negative_limit_in_one_line_and_writes_nothing(tmp_path):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
             TF_CPP_MIN_LOG_LEVEL="2")
  done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.train", f"--config={REPO}/configs/lbf.py:smoke",
                         "--config.device.memory_limit_mb=-1", f"--workdir={tmp_path / 'run'}"],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert (done.returncode, done.stderr.strip().splitlines(), done.stdout) == (2, [
      "maddpg-train: error: device.memory_limit_mb must be an integer >= 1 (or None: the default), got -1"], "")
  assert os.listdir(tmp_path) == []


# ---- configure: with no GPU, and with a fake one ---------------------------------------------------------

def test_with_no_gpu_visible_every_setting_is_accepted_and_does_nothing():
  assert tf.config.list_physical_devices("GPU") == []  # this suite's machines have none
  record = devices.configure(device(memory_limit_mb=2048, visible_gpus="3", memory_growth=False))
  assert record["gpus_found"] == 0 and record["applied"] is False and record["gpus_used"] == []
  assert record["settings"] == {"memory_growth": False, "memory_limit_mb": 2048, "memory_fraction": None,
                                "visible_gpus": "3"}
  assert record["note"].startswith("no GPU visible: the device settings were accepted and do nothing")


class FakeDevice:
  def __init__(self, name, device_type):
    self.name, self.device_type = name, device_type


class FakeConfig:
  """The part of `tf.config` that devices.py uses, with two GPUs; records the calls made of it."""

  class LogicalDeviceConfiguration:
    def __init__(self, memory_limit):
      self.memory_limit = memory_limit

  def __init__(self, gpus=2, initialised=False):
    self.gpus = [FakeDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(gpus)]
    self.calls, self.initialised = [], initialised
    fake = self

    class Experimental:
      @staticmethod
      def set_memory_growth(gpu, enable):
        fake._check()
        fake.calls.append(("growth", gpu.name, enable))

      @staticmethod
      def get_device_details(gpu):
        return {"device_name": "Fake GPU", "compute_capability": (9, 0)}
    self.experimental = Experimental

  def _check(self):
    if self.initialised:
      raise RuntimeError("Physical devices cannot be modified after being initialized")

  def list_physical_devices(self, device_type=None):
    every = [FakeDevice("/physical_device:CPU:0", "CPU")] + self.gpus
    return [d for d in every if device_type in (None, d.device_type)]

  def list_logical_devices(self):
    return [FakeDevice("/device:CPU:0", "CPU"), FakeDevice("/device:GPU:0", "GPU")]

  def set_visible_devices(self, chosen, device_type):
    self._check()
    self.calls.append(("visible", device_type, [gpu.name for gpu in chosen]))

  def set_logical_device_configuration(self, gpu, configurations):
    self._check()
    self.calls.append(("limit", gpu.name, [c.memory_limit for c in configurations]))


@pytest.fixture
def fresh_process(monkeypatch):
  monkeypatch.setattr(devices, "_APPLIED", None)  # as in a new process: nothing applied yet


def test_memory_growth_on_every_gpu_by_default(fresh_process):
  fake = FakeConfig()
  record = devices.configure(device(), api=fake)
  assert fake.calls == [("visible", "GPU", ["/physical_device:GPU:0", "/physical_device:GPU:1"]),
                        ("growth", "/physical_device:GPU:0", True), ("growth", "/physical_device:GPU:1", True)]
  assert (record["applied"], record["memory"], record["memory_limit_mb"]) == (True, "growth", None)
  assert record["note"] == "2 of 2 GPU(s) used, memory taken as needed (growth)"


def test_a_limit_on_the_chosen_gpus_only(fresh_process):
  fake = FakeConfig()
  record = devices.configure(device(memory_limit_mb=4096, visible_gpus="1"), api=fake)
  assert fake.calls == [("visible", "GPU", ["/physical_device:GPU:1"]), ("limit", "/physical_device:GPU:1", [4096])]
  assert record["gpus_used"] == ["/physical_device:GPU:1"] and record["memory_limit_mb"] == 4096


def test_a_fraction_is_that_share_of_the_gpus_memory_less_the_cuda_contexts(fresh_process):
  fake = FakeConfig()
  record = devices.configure(device(memory_fraction=0.25), api=fake, total_memory_mb=lambda: 81920)
  assert record["memory_limit_mb"] == 81920 // 4 - devices.CONTEXT_RESERVE_MB == 19456
  assert ("limit", "/physical_device:GPU:0", [19456]) in fake.calls
  assert devices.share_limit_mb(1.0, 81920) is None and devices.share_limit_mb(0.5, None) is None
  assert devices.share_limit_mb(0.125, 4096) == devices.MIN_LIMIT_MB  # a small GPU's share: the floor


def test_a_fraction_of_a_gpu_of_unknown_size_falls_back_to_growth(fresh_process):
  fake = FakeConfig()
  record = devices.configure(device(memory_fraction=0.5), api=fake, total_memory_mb=lambda: None)
  assert record["memory"] == "growth" and "memory is unknown" in record["note_memory"]


def test_visible_gpus_none_hides_every_gpu(fresh_process):
  fake = FakeConfig()
  record = devices.configure(device(visible_gpus="none"), api=fake)
  assert fake.calls == [("visible", "GPU", [])] and record["memory"] is None
  assert "computes on the CPU" in record["note"]


def test_an_index_beyond_the_gpus_is_refused_in_one_line(fresh_process):
  with pytest.raises(experiment.RunError) as caught:
    devices.configure(device(visible_gpus="0,2"), api=FakeConfig())
  assert str(caught.value) == ("device.visible_gpus=0,2 names GPU 2, but TensorFlow sees 2 GPU(s) (0..1); give "
                               "indices below 2, 'all' or 'none'")


def test_once_per_process_the_same_settings_again_are_in_force_others_are_noted(fresh_process):
  fake = FakeConfig()
  first = devices.configure(device(), api=fake)
  assert devices.configure(device(), api=fake) is first and len(fake.calls) == 3  # nothing asked again
  other = devices.configure(device(memory_limit_mb=1024), api=fake)
  assert other["applied"] is False and other["note"].startswith("not applied: this process applied other")
  assert other["settings"]["memory_limit_mb"] == 1024 and len(fake.calls) == 3


def test_settings_too_late_for_tensorflow_are_noted_not_fatal(fresh_process):
  record = devices.configure(device(), api=FakeConfig(initialised=True))
  assert record["applied"] is False and record["note"].startswith("not applied: TensorFlow had initialised")


def test_describe_lists_the_devices_the_build_and_the_update_device():
  fake = FakeConfig(gpus=1)
  described = devices.describe({"memory": "growth"}, "/job:localhost/replica:0/task:0/device:GPU:0", api=fake)
  assert described["update_device"].endswith("device:GPU:0")
  assert described["physical"] == [{"name": "/physical_device:CPU:0", "type": "CPU"},
                                    {"name": "/physical_device:GPU:0", "type": "GPU", "device_name": "Fake GPU",
                                     "compute_capability": [9, 0]}]
  assert described["gpu_settings"] == {"memory": "growth"}
  assert set(described["build"]) >= {"is_cuda_build"}
  json.dumps(described)  # plain JSON


# ---- no room on the GPU ----------------------------------------------------------------------------------

OOM = tf.errors.ResourceExhaustedError(
    None, None, "OOM when allocating tensor with shape[512,64] and type float on "
                "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc")


def test_out_of_memory_is_recognised_and_other_errors_are_not():
  assert devices.out_of_memory(OOM)
  assert devices.out_of_memory(tf.errors.InternalError(None, None, "CUDA_ERROR_OUT_OF_MEMORY: out of memory"))
  assert not devices.out_of_memory(tf.errors.InvalidArgumentError(None, None, "shapes differ"))
  assert not devices.out_of_memory(ValueError("out of memory"))  # not TensorFlow's


def test_no_room_names_the_device_the_limit_and_what_to_do():
  line = devices.no_room(OOM, {"memory": "limit", "memory_limit_mb": 4096}, "at env step 1,000")
  assert line.startswith("no room on GPU:0 (memory limit 4,096 MB) at env step 1,000: TensorFlow could not "
                         "allocate memory; give each run more of the GPU")
  assert "--gpus_per_run" in line and "--config.device.visible_gpus=none" in line and "\n" not in line
  unnamed = tf.errors.ResourceExhaustedError(None, None, "Out of memory while trying to allocate 1.2GiB")
  assert devices.no_room(unnamed, {"memory": "growth"}, "while building the run", CPU).startswith(
      "no room on CPU:0 (memory growth on, no limit: other processes on the GPU hold the rest) while building")


# ---- a run: provenance.json, and an update that finds no room --------------------------------------------

def fake_config(**device_values):
  config = lbf.get_config("smoke")
  config.update_from_flattened_dict({"total_steps": 60, "jit_compile": False, "env_workers": 0,
                                     "loop.episode_limit": 5, "loop.warmup_episodes": 2, "loop.eval_every_steps": 30,
                                     "loop.eval_episodes": 2, "loop.updates_per_episode": 1,
                                     "checkpoint.every_steps": 30, "replay.batch_size": 8})
  for key, value in device_values.items():
    config.device[key] = value
  return config


def make_fake_env(num_envs, seed, workers):
  del workers
  return fakes.make_fake(num_envs=num_envs, seed=seed)


def test_provenance_records_the_devices_the_settings_and_where_the_update_ran(tmp_path):
  workdir = str(tmp_path / "run")
  with experiment.Experiment(fake_config(memory_limit_mb=512, visible_gpus="0"), workdir, progress=False,
                             make_env=make_fake_env) as run:
    run.run()
    assert run.learner.device == CPU
  with open(os.path.join(workdir, "provenance.json")) as handle:
    recorded = json.load(handle)["devices"]
  assert recorded["update_device"] == CPU
  assert {"name": "/physical_device:CPU:0", "type": "CPU"} in recorded["physical"]
  assert not [d for d in recorded["physical"] if d["type"] == "GPU"]
  assert {"name": "/device:CPU:0", "type": "CPU"} in recorded["logical"]
  assert recorded["gpu_settings"]["settings"]["memory_limit_mb"] == 512
  assert recorded["gpu_settings"]["note"].startswith("no GPU visible")
  assert recorded["build"]["is_cuda_build"] in (True, False)
  assert ("cuda_version" in recorded["build"]) == recorded["build"]["is_cuda_build"]


def test_a_run_resumes_under_other_device_settings(tmp_path):
  workdir = str(tmp_path / "run")
  written = config_lib.resolve(fake_config())
  workdir_lib.Workdir(workdir).check(written)
  os.makedirs(workdir)
  with open(os.path.join(workdir, "config.json"), "w") as handle:
    json.dump(written.to_dict(), handle)
  workdir_lib.Workdir(workdir).check(config_lib.resolve(fake_config(memory_fraction=0.25, visible_gpus="none")))


def test_an_update_that_finds_no_room_stops_the_run_in_one_line(tmp_path):
  workdir = str(tmp_path / "run")
  with experiment.Experiment(fake_config(), workdir, progress=False, make_env=make_fake_env) as run:
    def no_room(jobs):
      raise OOM
    run.updates.run = no_room
    with pytest.raises(experiment.RunError) as caught:
      run.run()
  message = str(caught.value)
  assert message.startswith("no room on GPU:0 (no limit set) at env step ") and "\n" not in message
  assert "(last checkpoint: none)" in message and "--config.device.memory_limit_mb" in message
