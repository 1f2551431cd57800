"""Where a run's TensorFlow computes: the GPU settings of `config.device`, applied once per process before
TensorFlow's first op (`configure`); what the run saw and where its update ran, for provenance.json
(`describe`); and one line for a run that finds no room on its GPU (`no_room`).

TensorFlow maps nearly all of a GPU's memory per process unless told otherwise, so a second run on the same
GPU could not allocate: memory growth (the default here) takes memory as the run needs it, a limit
(`device.memory_limit_mb`, or `device.memory_fraction` of the GPU's memory, as `maddpg-reproduce
--gpus_per_run` sets it) bounds each run's share. TensorFlow takes these settings only before it has
initialised its devices; the first run of a process applies them, later runs with the same settings find
them in force, and a later run with other settings is told (in its provenance) that they were not applied.
With no GPU visible every setting is accepted and does nothing: provenance.json says so.
"""

import dataclasses
import re
import subprocess

import tensorflow as tf

from maddpg_tf import config as config_lib
from maddpg_tf.run.errors import RunError

# A process's CUDA context, cuBLAS and cuDNN workspaces live outside TensorFlow's allocator (a few hundred
# MB): a share of the GPU's memory leaves this much of it for them, so that k runs of 1/k fit.
CONTEXT_RESERVE_MB = 1024
# The smallest limit a share may come to (a GPU too small for its share gets this much and says so).
MIN_LIMIT_MB = 256


@dataclasses.dataclass(frozen=True)
class Settings:
  """`config.device`, read: `visible` is None (all GPUs), () (none) or the GPU indices to use."""
  memory_growth: bool = True
  memory_limit_mb: int | None = None
  memory_fraction: float | None = None
  visible: tuple | None = None

  @classmethod
  def of(cls, device):
    """The settings of a resolved config's `device` group (a ConfigDict or a dict)."""
    return cls(bool(device["memory_growth"]), device["memory_limit_mb"], device["memory_fraction"],
               config_lib.visible_gpus(device["visible_gpus"]))

  def asdict(self):
    return {"memory_growth": self.memory_growth, "memory_limit_mb": self.memory_limit_mb,
            "memory_fraction": self.memory_fraction,
            "visible_gpus": "all" if self.visible is None else ",".join(map(str, self.visible)) or "none"}


def gpu_memory_mb():
  """The memory of the smallest GPU `nvidia-smi` lists, in MB; None where it cannot say (no driver, no
  GPU). Read without TensorFlow, which would initialise the GPUs (and then take no settings)."""
  try:
    done = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True, timeout=30)
    sizes = [int(float(line)) for line in done.stdout.split() if line.strip()]
  except (OSError, subprocess.SubprocessError, ValueError):
    return None
  return min(sizes) if done.returncode == 0 and sizes else None


def share_limit_mb(fraction, total_mb):
  """The memory limit of a `fraction` of a GPU of `total_mb` MB: fraction x total, less the CUDA context's
  reserve, at least MIN_LIMIT_MB; None for the whole GPU (fraction 1) or an unknown size."""
  if fraction is None or fraction >= 1 or total_mb is None:
    return None
  return max(MIN_LIMIT_MB, int(fraction * total_mb) - CONTEXT_RESERVE_MB)


# What this process applied: (Settings, the record configure returned), or None before the first run.
_APPLIED = None


def configure(device, api=None, total_memory_mb=gpu_memory_mb):
  """Applies `device` (a resolved config's `device` group) to TensorFlow before its first op, once per
  process; returns the record for provenance.json:

    {"settings": {...as given}, "gpus_found": n, "gpus_used": [names], "memory": "growth" | "limit" | "all"
     | None, "memory_limit_mb": MB or None, "applied": bool, "note": what happened, in words}

  `api`: TensorFlow's `tf.config` (tests give a fake with GPUs); `total_memory_mb`: a function returning the
  GPU's memory in MB (for `memory_fraction`). RunError naming the index if `visible_gpus` names a GPU that
  is not there."""
  global _APPLIED
  api = api or tf.config
  settings = Settings.of(device)
  gpus = api.list_physical_devices("GPU")
  record = {"settings": settings.asdict(), "gpus_found": len(gpus), "gpus_used": [], "memory": None,
            "memory_limit_mb": None, "applied": False}
  if not gpus:
    record["note"] = "no GPU visible: the device settings were accepted and do nothing; the run computes on the CPU"
    return record
  if _APPLIED is not None:
    if _APPLIED[0] == settings:
      return _APPLIED[1]
    return {**_APPLIED[1], "settings": settings.asdict(), "applied": False,
            "note": f"not applied: this process applied other device settings first ({_APPLIED[0].asdict()}), "
                    f"and TensorFlow takes them once per process; those are in force"}
  if settings.visible is not None:
    missing = [index for index in settings.visible if index >= len(gpus)]
    if missing:
      raise RunError(f"device.visible_gpus={','.join(map(str, settings.visible))} names GPU {missing[0]}, but "
                     f"TensorFlow sees {len(gpus)} GPU(s) (0..{len(gpus) - 1}); give indices below {len(gpus)}, "
                     f"'all' or 'none'")
  used = gpus if settings.visible is None else [gpus[index] for index in settings.visible]
  limit = settings.memory_limit_mb
  if limit is None and settings.memory_fraction is not None and settings.memory_fraction < 1:
    total = total_memory_mb()
    limit = share_limit_mb(settings.memory_fraction, total)
    if limit is None:
      record["note_memory"] = (f"memory_fraction {settings.memory_fraction:g}: the GPU's memory is unknown "
                               f"(nvidia-smi did not say); memory growth instead, not a bounded share")
  try:
    api.set_visible_devices(used, "GPU")
    for gpu in used:
      if limit is not None:
        api.set_logical_device_configuration(gpu, [api.LogicalDeviceConfiguration(memory_limit=limit)])
      elif settings.memory_growth or settings.memory_fraction is not None:
        api.experimental.set_memory_growth(gpu, True)
  except RuntimeError:  # TensorFlow computed something before the run was built
    record["note"] = ("not applied: TensorFlow had initialised its devices in this process before the run "
                      "was built; its defaults are in force (nearly all of each GPU's memory)")
    return record
  record.update(gpus_used=[gpu.name for gpu in used], applied=True)
  if not used:
    record["note"] = f"0 of {len(gpus)} GPU(s) used (visible_gpus=none): the run computes on the CPU"
  elif limit is not None:
    record.update(memory="limit", memory_limit_mb=limit,
                  note=f"{len(used)} of {len(gpus)} GPU(s) used, each limited to {limit:,} MB")
  elif settings.memory_growth or settings.memory_fraction is not None:
    record.update(memory="growth", note=f"{len(used)} of {len(gpus)} GPU(s) used, memory taken as needed (growth)")
  else:
    record.update(memory="all", note=f"{len(used)} of {len(gpus)} GPU(s) used, each GPU's memory taken whole at "
                                     f"start (TensorFlow's default)")
  _APPLIED = (settings, record)
  return record


def describe(record, update_device=None, api=None):
  """What provenance.json says of the devices: the ones TensorFlow saw (physical and logical, with each
  GPU's name), TensorFlow's CUDA build, the settings `configure` returned (`record`), and `update_device`,
  where the learner's update ran (e.g. '/job:localhost/replica:0/task:0/device:GPU:0')."""
  api = api or tf.config
  physical = []
  for device in api.list_physical_devices():
    entry = {"name": device.name, "type": device.device_type}
    if device.device_type == "GPU":
      try:
        details = api.experimental.get_device_details(device)
      except (ValueError, RuntimeError):
        details = {}
      entry.update({key: (list(value) if isinstance(value, tuple) else value) for key, value in details.items()})
    physical.append(entry)
  build = dict(tf.sysconfig.get_build_info())
  return {"update_device": update_device,
          "physical": physical,
          "logical": [{"name": device.name, "type": device.device_type} for device in api.list_logical_devices()],
          "gpu_settings": record,
          "build": {key: (list(value) if isinstance(value, tuple) else value) for key, value in build.items()
                    if key in ("is_cuda_build", "cuda_version", "cudnn_version", "cuda_compute_capabilities")}}


def short_device(name):
  """'/job:localhost/replica:0/task:0/device:GPU:0' -> 'GPU:0' (the name a person reads)."""
  match = re.search(r"device:([A-Za-z_]+:\d+)", name or "")
  return match.group(1) if match else (name or "unknown device")


def out_of_memory(error):
  """Whether a TensorFlow error means an allocation found no room (ResourceExhaustedError, or CUDA's own
  out-of-memory while TensorFlow set up a GPU)."""
  if isinstance(error, tf.errors.ResourceExhaustedError):
    return True
  return isinstance(error, tf.errors.OpError) and bool(re.search(r"out of memory|CUDA_ERROR_OUT_OF_MEMORY",
                                                                 str(error), re.I))


def no_room(error, record, where, update_device=None):
  """The one line of a run that found no room on its device: which device (from the error, else where the
  update runs), its limit, `where` it happened, and what to do."""
  found = re.search(r"device:[A-Za-z_]+:\d+", str(error))
  device = short_device(found.group(0) if found else update_device)
  limit = (record or {}).get("memory_limit_mb")
  bound = (f"memory limit {limit:,} MB" if limit else
           {"growth": "memory growth on, no limit: other processes on the GPU hold the rest",
            "all": "no limit"}.get((record or {}).get("memory"), "no limit set"))
  return (f"no room on {device} ({bound}) {where}: TensorFlow could not allocate memory; give each run more "
          f"of the GPU (a larger --config.device.memory_limit_mb or memory_fraction; in a grid a larger "
          f"--gpus_per_run, fewer runs per GPU), a smaller replay.batch_size, or train on the CPU "
          f"(--config.device.visible_gpus=none)")
