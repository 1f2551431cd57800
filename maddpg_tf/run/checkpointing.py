"""Checkpoints that are either complete or ignored, holding plain data only.

`Checkpointer` saves and restores a run's parts (anything with `save() -> dict` and `restore(dict)`, the
`Saveable` protocol). A part's dict holds only arrays, numbers, strings, booleans, None, and lists and
string-keyed dicts of them (a generator as its state dict: `maddpg_tf.envs.snapshots`); anything else is
refused when it is saved. Arrays go to `arrays.npz` (a nested one under `state:<path>`, referred to from
`state.json` as {"__array__": name}), the rest to `state.json`. Nothing is pickled, so loading runs no
code of the files.

A checkpoint is a directory `ckpt-<env steps>` holding `arrays.npz` (network, optimiser and reward
statistics variables, the replay buffer, the envs' arrays), `state.json` (environment clocks, random
generators, counters, evaluation history) and `COMPLETE` (metadata with the format, `FORMAT`, and the data
files' SHA-256, written last). Checkpoints of the first format (no format in `COMPLETE`: `state.pkl`, a
pickle of live objects) are read once through `migrate`. It is written under a temporary name,
flushed to disk, and renamed into place, so a kill at any moment leaves either the new checkpoint or
none of it; directories without `COMPLETE` are never restored. The newest `keep` complete checkpoints
are kept.

`BestPolicy` keeps one more, small checkpoint: the learner at the run's best evaluation so far (the policy
of the absolute metric, Gorsane et al. 2022), in `<workdir>/best/ckpt-<env steps>`.
"""

import hashlib
import json
import math
import os
import pickle
import re
import shutil
import types

import numpy as np

from maddpg_tf.envs import snapshots
from maddpg_tf.run import faults

_NAME = re.compile(r"^ckpt-(\d+)$")
MARKER = "COMPLETE"
FORMAT = 1  # what `save` writes; `load` reads it and the first format (0: no "format" in the marker)
DATA_FILES = ("arrays.npz", "state.json")
FIRST_FORMAT_FILES = ("arrays.npz", "state.pkl")
_ARRAY = "__array__"


class CheckpointError(Exception):
  """A checkpoint that cannot be written or used; the message is one line for the user."""


def _fsync_file(path):
  with open(path, "rb") as handle:
    os.fsync(handle.fileno())


def _fsync_dir(path):
  descriptor = os.open(path, os.O_RDONLY)
  try:
    os.fsync(descriptor)
  finally:
    os.close(descriptor)


def complete_checkpoints(directory):
  """[(step, path)] of complete checkpoints, oldest first."""
  if not os.path.isdir(directory):
    return []
  found = []
  for name in os.listdir(directory):
    match = _NAME.match(name)
    path = os.path.join(directory, name)
    if match and os.path.isfile(os.path.join(path, MARKER)):
      found.append((int(match.group(1)), path))
  return sorted(found)


def save(directory, step, arrays, state, metadata, keep=2):
  """Writes checkpoint `step` atomically: `arrays` ({name: array}) and `state` (JSON data, see `encode`);
  returns its path. Raises CheckpointError (e.g. disk full), leaving earlier checkpoints untouched."""
  os.makedirs(directory, exist_ok=True)
  final = os.path.join(directory, f"ckpt-{step}")
  temporary = os.path.join(directory, f".tmp-ckpt-{step}-{os.getpid()}")
  shutil.rmtree(temporary, ignore_errors=True)
  try:
    os.makedirs(temporary)
    arrays_path = os.path.join(temporary, "arrays.npz")
    with open(arrays_path, "wb") as handle:
      np.savez(handle, **arrays)
    state_path = os.path.join(temporary, "state.json")
    with open(state_path, "w") as handle:
      json.dump(state, handle)
    faults.point("checkpoint-before-marker")  # tests: a kill between the data and the marker
    marker_path = os.path.join(temporary, MARKER)
    with open(marker_path, "w") as handle:  # with the data files' hashes: any later damage is caught on load
      json.dump(dict(metadata, step=step, format=FORMAT,
                     sha256={name: _sha256(os.path.join(temporary, name)) for name in DATA_FILES}), handle)
    for path in (arrays_path, state_path, marker_path):
      _fsync_file(path)
    _fsync_dir(temporary)
    if os.path.exists(final):  # same step written again (e.g. after a resume): replace it
      shutil.rmtree(final)
    os.rename(temporary, final)
    _fsync_dir(directory)
  except OSError as error:
    shutil.rmtree(temporary, ignore_errors=True)
    raise CheckpointError(f"could not write checkpoint {final}: {error.strerror or error}; "
                          f"the previous checkpoint is kept") from error
  for _, old in complete_checkpoints(directory)[:-keep]:
    delete(old)
  for name in os.listdir(directory):  # leftovers of writers that were killed
    if name.startswith(".tmp-ckpt-") and not name.endswith(f"-{os.getpid()}"):
      shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
  return final


def delete(path):
  """Removes checkpoint `path`, its marker first: a kill while deleting leaves nothing that looks complete."""
  try:
    os.remove(os.path.join(path, MARKER))
  except OSError:
    pass
  shutil.rmtree(path, ignore_errors=True)


def _sha256(path):
  digest = hashlib.sha256()
  with open(path, "rb") as handle:
    for block in iter(lambda: handle.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def load(path, expected_metadata):
  """(arrays, state, metadata) of checkpoint `path`, in this format (a first-format checkpoint is migrated);
  CheckpointError if unreadable, damaged since it was written (its files' hashes, checked before anything
  is read), of an unknown format, or of another run."""
  try:
    with open(os.path.join(path, MARKER)) as handle:
      metadata = json.load(handle)
    if not isinstance(metadata, dict):
      raise ValueError(f"{MARKER} holds {type(metadata).__name__}, not the checkpoint's metadata")
  except Exception as error:  # pylint: disable=broad-except
    raise _corrupt(path, error) from error
  version = metadata.get("format", 0)
  if version not in (0, FORMAT):
    raise CheckpointError(f"checkpoint {path} has format {version!r}; this maddpg-tf reads formats 0 and "
                          f"{FORMAT}: resume it with the maddpg-tf that wrote it, or move it out of the workdir")
  files = FIRST_FORMAT_FILES if version == 0 else DATA_FILES
  try:
    for name, expected in (metadata.get("sha256") or {}).items():  # checkpoints written before hashes: none
      if name not in files or _sha256(os.path.join(path, name)) != expected:
        raise ValueError(f"{name} is not the file that was written (its SHA-256 differs)")
    with np.load(os.path.join(path, "arrays.npz"), allow_pickle=False) as data:
      arrays = {key: data[key] for key in data.files}
    if version == 0:
      with open(os.path.join(path, "state.pkl"), "rb") as handle:
        arrays, state = migrate(arrays, _FirstFormatUnpickler(handle).load())
    else:
      with open(os.path.join(path, "state.json")) as handle:
        state = json.load(handle)
      state = decode(state, arrays)
      arrays = {key: value for key, value in arrays.items() if not key.startswith("state:")}
  except Exception as error:  # corrupt or truncated files surface as many exception types
    raise _corrupt(path, error) from error
  for key, value in expected_metadata.items():
    if metadata.get(key) != value:
      raise CheckpointError(f"checkpoint {path} is of another run: its {key} is {metadata.get(key)!r}, "
                            f"this run's is {value!r}; move it out of the workdir to resume from this run's "
                            f"own checkpoints")
  return arrays, state, metadata


def _corrupt(path, error):
  return CheckpointError(f"checkpoint {path} is corrupt or incomplete ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else 'no detail'}); delete it to "
                         f"resume from an earlier one")


# ---- plain data <-> JSON + arrays ----------------------------------------------------------------------------

def encode(value, path, arrays):
  """`value` as JSON data; each array in it (NumPy scalars too, keeping their dtype) is put in `arrays` as
  `state:<path>` and referred to by name. TypeError naming the path for anything that is not plain data."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  if isinstance(value, (np.ndarray, np.generic)):
    if np.asarray(value).dtype == object:
      raise TypeError(f"checkpoint state {path}: an array of Python objects is not plain data")
    name = f"state:{path}"
    arrays[name] = np.asarray(value)
    return {_ARRAY: name, "scalar": True} if isinstance(value, np.generic) else {_ARRAY: name}
  if isinstance(value, (list, tuple)):
    return [encode(item, f"{path}/{index}", arrays) for index, item in enumerate(value)]
  if isinstance(value, dict):
    if not all(isinstance(key, str) for key in value) or _ARRAY in value:
      raise TypeError(f"checkpoint state {path}: dict keys must be strings other than {_ARRAY!r}, got "
                      f"{sorted(map(repr, value))}")
    return {key: encode(item, f"{path}/{key}", arrays) for key, item in value.items()}
  raise TypeError(f"checkpoint state {path}: a {type(value).__name__} is not plain data (arrays, numbers, "
                  f"strings, lists, dicts)")


def decode(value, arrays):
  """The inverse of `encode`."""
  if isinstance(value, list):
    return [decode(item, arrays) for item in value]
  if isinstance(value, dict):
    if _ARRAY in value:
      array = arrays[value[_ARRAY]]
      return array[()] if value.get("scalar") else array
    return {key: decode(item, arrays) for key, item in value.items()}
  return value


# ---- the first format: a pickle of live objects, read once --------------------------------------------------

# Where the classes of a first-format pickle come from (`_FirstFormatUnpickler`): NumPy, our envs and the
# packages' envs they held; anything else in the file is refused rather than built.
_FIRST_FORMAT_MODULES = ("numpy", "maddpg_tf", "gymnasium", "lbforaging", "rware", "pettingzoo", "mpe2",
                         "collections", "copyreg", "_codecs", "enum", "networkx")
_FIRST_FORMAT_BUILTINS = ("set", "frozenset", "slice", "range", "complex", "bytearray", "object", "tuple",
                          "list", "dict", "int", "float", "bool", "str", "bytes")


class _FirstFormatUnpickler(pickle.Unpickler):
  """Unpickles only what a first-format checkpoint holds (its hashes were checked first): classes and
  functions defined in `_FIRST_FORMAT_MODULES`, a few builtins, never a module."""

  def find_class(self, module, name):
    if module == "builtins" and name == "getattr":  # bound methods (the reference vector's step functions)
      return _attribute
    if module == "logging" and name == "getLogger":  # lbforaging envs keep a logger
      return super().find_class(module, name)
    if module == "builtins" and name in _FIRST_FORMAT_BUILTINS:
      return super().find_class(module, name)
    if module.split(".", 1)[0] in _FIRST_FORMAT_MODULES:
      found = super().find_class(module, name)
      defined_in = getattr(found, "__module__", None) or ""
      if not isinstance(found, types.ModuleType) and defined_in.split(".", 1)[0] in _FIRST_FORMAT_MODULES:
        return found
    raise pickle.UnpicklingError(f"a first-format checkpoint may not hold {module}.{name}")


def _attribute(owner, name):
  """`getattr` for first-format pickles: public attributes of objects they hold, never of a module."""
  if isinstance(owner, types.ModuleType) or name.startswith("__"):
    raise pickle.UnpicklingError(f"a first-format checkpoint may not hold the attribute {name!r} of "
                                 f"{type(owner).__name__}")
  return getattr(owner, name)


def migrate(arrays, state):
  """(arrays, state) of the first format (`state`: the unpickled dict of live objects) in this format's
  plain data: generators become their state dicts, environments their `get_state()`, lists of arrays stay
  arrays. The only reader of old checkpoints: later formats migrate from this one's output."""

  def plain(value, path):
    if isinstance(value, np.random.Generator):
      return snapshots.generator_state(value)
    if hasattr(value, "get_state") and hasattr(value, "num_envs"):  # a vector environment (or its record)
      return value.get_state()
    if isinstance(value, (list, tuple)):
      return [plain(item, f"{path}/{index}") for index, item in enumerate(value)]
    if isinstance(value, dict):
      return {key: plain(item, f"{path}/{key}") for key, item in value.items()}
    return value

  state = {key: plain(value, key) for key, value in state.items()}
  encode(state, "", {})  # anything else left in it is not plain data: refused here, naming it
  return dict(arrays), state


def latest(directory):
  """Path of the newest complete checkpoint, or None."""
  found = complete_checkpoints(directory)
  return found[-1][1] if found else None


class Checkpointer:
  """Checkpoints of a run's parts in `directory` (`keep` newest complete ones), tagged with `metadata`
  (task, estimator, ...) so that another run's checkpoints are refused.

  `parts`: {name: Saveable}, restored in their order (the learner before what reads its weights). The
  keys of the parts' dicts must differ: top-level arrays go to `arrays.npz` under their key, other values
  (plain data, `encode`) to `state.json`.
  """

  def __init__(self, directory, metadata, keep=2):
    self.directory, self.metadata, self.keep = directory, dict(metadata), keep

  def latest(self):
    return latest(self.directory)

  def save(self, step, parts):
    """Writes checkpoint `step` of `parts`; returns its path (CheckpointError: nothing is lost)."""
    arrays, state = {}, {}
    for part in parts.values():
      for key, value in part.save().items():
        if isinstance(value, np.ndarray):
          arrays[key] = value
        else:
          state[key] = encode(value, key, arrays)
    return save(self.directory, step, arrays, state, self.metadata, keep=self.keep)

  def restore_latest(self, parts):
    """Restores `parts` from the newest complete checkpoint; returns its path, or None if there is none.
    CheckpointError (one line) for a checkpoint that is corrupt, of another run, or does not fit."""
    path = self.latest()
    if path is None:
      return None
    arrays, state, _ = load(path, self.metadata)
    merged = {**state, **arrays}
    for part in parts.values():
      try:
        part.restore(merged)
      except (ValueError, KeyError) as error:
        detail = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise CheckpointError(f"checkpoint {path}: {detail}"
                              + (" is missing: not this run's" if isinstance(error, KeyError) else "")) from None
    return path


class BestPolicy:
  """After each evaluation whose mean return beats every earlier one (ties keep the earlier), writes the
  learner's arrays (`learner.save()`: actors, critics, optimisers; no replay buffer, a few MB) as
  `directory/ckpt-<step>`, replacing the previous best. Evaluations run after the update blocks are
  drained, so these are the weights that were evaluated. It changes no number of the run.

  A resumed run repeats the steps after its last checkpoint, so a best written beyond that point by the
  interrupted process is removed before the next one is written (the resumed run writes it again when it
  gets there: the same evaluation, the same weights)."""

  def __init__(self, directory, metadata, learner):
    self.directory, self.metadata, self.learner = directory, dict(metadata), learner

  def latest(self):
    return latest(self.directory)

  def offer(self, step, mean_return, earlier_means):
    """Saves the learner if `mean_return` beats `earlier_means`; returns the path written or None."""
    earlier = [m for m in earlier_means if math.isfinite(m)]
    if not math.isfinite(mean_return) or (earlier and mean_return <= max(earlier)):
      return None
    for written, path in complete_checkpoints(self.directory):
      if written >= step:
        delete(path)
    return save(self.directory, step, self.learner.save(), {}, dict(self.metadata, mean_return=mean_return),
                keep=1)
