"""Helpers shared by the command-line programs (and the tools): one-line errors, flag parsing, a quiet
TensorFlow import. Imports neither TensorFlow nor anything that does."""

import argparse
import ast
import importlib.util
import os
import re
import sys
import tempfile

from absl import flags


def one_line(message):
  """An error as one readable line: the last line of an embedded traceback, whitespace collapsed."""
  text = str(message)
  if "Traceback (most recent call last)" in text:
    head = text.split("Error whilst parsing config file")[0].rstrip(": ")
    last = [line for line in text.splitlines() if line.strip()][-1].strip()
    text = f"{head}: {last.split(': ', 1)[-1]}" if head else last
  return " ".join(text.split())


def error(program, message, status=2):
  """Prints `<program>: error: <message as one line>` on stderr; returns `status`."""
  print(f"{program}: error: {one_line(message)}", file=sys.stderr, flush=True)
  return status


# ---- absl flags with ml_collections config files -------------------------------------------------------

def _load_config_file(spec):
  """The ConfigDict of 'path/to/file.py[:arg]' (as ml_collections' config flags load it)."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_maddpg_cli_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def _missing_key(argv, config_files):
  """For the first `--<flag>.<dotted>` override of `argv` whose key its config lacks: "no such config key
  ...; allowed ..." naming the keys there are at that level. None if none can be found."""
  for arg in argv[1:]:
    match = re.match(r"^--?(\w+)\.([\w.]+)(=|$)", arg)
    if not match or match.group(1) not in config_files:
      continue
    name, dotted = match.group(1), match.group(2)
    given = [a.split("=", 1)[1] for a in argv[1:] if re.match(rf"^--?{name}=", a)]
    spec = given[-1] if given else config_files[name]
    try:
      node = _load_config_file(spec) if spec else None
    except Exception:  # pylint: disable=broad-except  (the file's own error is reported elsewhere)
      return None
    if node is None:
      return None
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
      keys = list(node.keys()) if hasattr(node, "keys") else []
      if part not in keys:
        where = f" under {name}.{'.'.join(parts[:depth])}" if depth else f" in --{name}"
        return (f"no such config key {part!r} in --{name}.{dotted}; allowed{where}: "
                f"{', '.join(sorted(keys)) or 'none (it is a value, not a group)'}")
      node = node[part]
  return None


def parse_flags(program, argv, config_files, define_error=None):
  """absl's parsing, with any flag or config-file error as one line and exit status 2.

  `config_files`: {config flag name: its default file spec} (to name the keys an unknown override could
  have been). `define_error`: an error ml_collections raised while defining a config flag (it applies
  `--<flag>.*` overrides to the default file then), reported as if parsing had raised it.
  """
  try:
    if define_error is not None:
      raise ValueError("config override") from define_error
    return flags.FLAGS(argv)
  except Exception as failure:  # flags.Error, and whatever a config file or override raises
    cause = failure.__cause__ or failure.__context__
    if isinstance(cause, (AttributeError, KeyError)):
      detail = _missing_key(argv, config_files)
      if detail is None:
        key_message = str(cause.args[0]) if cause.args else str(cause)
        if len(key_message) > 1 and key_message[0] in "'\"" and key_message[-1] == key_message[0]:
          try:  # ml_collections wraps some messages in a second repr
            key_message = str(ast.literal_eval(key_message))
          except (ValueError, SyntaxError):
            pass
        detail = "no such config key " + key_message.replace("\n", "; ")
    else:
      detail = str(failure)
    sys.exit(error(program, detail))


# ---- argparse (the tools) -----------------------------------------------------------------------------

class ArgumentParser(argparse.ArgumentParser):
  """argparse whose errors are one line, `<prog>: error: <message>` (no usage block), exit status 2."""

  def error(self, message):
    self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")


# ---- TensorFlow ----------------------------------------------------------------------------------------

_TF_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


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
  log format below the level (and absl's preamble about them) are dropped, everything else is written
  back. Returns the module.
  """
  if "tensorflow" in sys.modules:
    return sys.modules["tensorflow"]
  try:
    level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
  except ValueError:
    level = 0
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as capture:
    os.dup2(capture.fileno(), 2)
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      lines = capture.read().decode(errors="replace").splitlines(keepends=True)
      sys.stderr.write("".join(line for line in lines if not _below_level(line, level)))
      sys.stderr.flush()
  return tensorflow
