"""What every process of ours shares, programs and the grid's workers alike: errors as one line, SIGINT and
SIGTERM as KeyboardInterrupt, a quiet TensorFlow import, and a Python file loaded as a module (config files,
a search's best_config.py). Imports neither TensorFlow (until asked) nor anything that does."""

import importlib.util
import os
import re
import signal
import sys
import tempfile

from maddpg_tf.run import faults


def one_line(message):
  """An error as one readable line: the last line of an embedded traceback, whitespace collapsed."""
  text = str(message)
  if "Traceback (most recent call last)" in text:
    head = text.split("Error whilst parsing config file")[0].rstrip(": ")
    last = [line for line in text.splitlines() if line.strip()][-1].strip()
    text = f"{head}: {last.split(': ', 1)[-1]}" if head else last
  return " ".join(text.split())


def load_module(path, name="_maddpg_cli_config"):
  """The Python file at `path`, executed as a module (config files, a search's best_config.py)."""
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


# ---- signals ------------------------------------------------------------------------------------------

class Terminated(KeyboardInterrupt):
  """SIGTERM, raised like Ctrl-C's KeyboardInterrupt where no handler of a run's own is installed."""


_RECEIVED = []


def raise_interrupt(signum, frame):
  """A handler for SIGINT and SIGTERM: KeyboardInterrupt (Terminated for SIGTERM), remembered."""
  _RECEIVED.append(signum)
  raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def raise_if_interrupted():
  """Raises again the interrupt of a signal that code with a bare `except:` swallowed (imports have some:
  Ctrl-C while TensorFlow loads could otherwise be lost and the run go on)."""
  if _RECEIVED:
    raise Terminated() if _RECEIVED[-1] == signal.SIGTERM else KeyboardInterrupt()


# ---- TensorFlow ----------------------------------------------------------------------------------------

_TF_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# What TensorFlow's CUDA probe logs when a machine has no usable GPU: expected, not an error of the run.
_NO_GPU_PROBE = re.compile(r"\] failed call to cuInit: |Could not find cuda drivers on your machine")


def _below_level(line, level):
  if line.strip() == _ABSL_PREAMBLE:
    return level >= 1
  match = _TF_LOG_LINE.match(line)
  return bool(match) and _SEVERITY[match.group(1)] < min(level, 3)


def import_tensorflow():
  """`import tensorflow`, with the C++ log lines it prints while loading held to TF_CPP_MIN_LOG_LEVEL.

  TensorFlow 2.21 logs INFO lines (oneDNN, CUDA drivers) while its libraries load, before absl logging
  is initialised, so TF_CPP_MIN_LOG_LEVEL does not reach them and a one-line error would arrive with six
  lines of noise. File descriptor 2 goes to a temporary file during the import; lines in TensorFlow's
  log format below the level (and absl's preamble about them) are dropped, and so is the CUDA probe's
  "failed call to cuInit" error when no GPU is found; everything else is written back. Returns the module.
  """
  if "tensorflow" in sys.modules:
    return sys.modules["tensorflow"]
  gpus = None
  try:
    level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
  except ValueError:
    level = 0
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as capture:
    os.dup2(capture.fileno(), 2)
    try:
      faults.point("importing-tensorflow")  # tests: a signal while it loads
      import tensorflow  # pylint: disable=g-import-not-at-top
      raise_if_interrupted()
      # The device probe logs "failed call to cuInit" at level E on every machine without a GPU; run it
      # here, captured, so that line can go when no GPU was found (GPUs are still used where they exist).
      gpus = tensorflow.config.list_physical_devices("GPU")
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      lines = capture.read().decode(errors="replace").splitlines(keepends=True)
      sys.stderr.write("".join(line for line in lines if not _below_level(line, level)
                               and not (not gpus and _NO_GPU_PROBE.search(line))))
      sys.stderr.flush()
  return tensorflow
