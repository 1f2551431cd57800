"""Result files written whole: a reader (a person, TensorBoard, a resumed run, a grid on another node) finds
the old file or the new one, never a part of one.

`replacing(path)` gives a temporary path beside `path` (the same directory, so the final rename is atomic on
one filesystem) and puts it in place only when the block ends without an error; `write_text` and
`write_json` are the common cases. Every writer of a result, checkpoint record or search file uses these.

Imports nothing of this package: every layer may use it. So it also names the run-directory files that layers
on both sides of `maddpg_tf.run` read or write.
"""

import contextlib
import json
import os

# <workdir>/absolute.json: a finished run's absolute metric, written by the grid (`run.saved_policies`) and
# read by the tables (`analysis.statistics`, which sits below `run`: a run's evaluation uses its intervals).
ABSOLUTE_FILE = "absolute.json"


@contextlib.contextmanager
def replacing(path, suffix=""):
  """Yields a temporary path beside `path` (ending in `suffix`, for writers that read the format from the
  extension, e.g. ".png"); on success it replaces `path`, on an error it is removed and `path` is left as
  it was. The process id in its name keeps two processes' temporaries apart."""
  temporary = f"{path}.tmp{os.getpid()}{suffix}"
  try:
    yield temporary
    os.replace(temporary, path)
  finally:
    if os.path.lexists(temporary):
      os.remove(temporary)


def write_text(path, text, newline=None):
  """Writes `text` to `path` whole (`newline` as `open`'s: "" keeps the csv module's line ends)."""
  with replacing(path) as temporary:
    with open(temporary, "w", newline=newline) as handle:
      handle.write(text)


def write_json(path, content, indent=2):
  """Writes `content` as JSON to `path` whole: sorted keys, values JSON lacks (paths, numpy scalars) as
  their str()."""
  write_text(path, json.dumps(content, indent=indent, sort_keys=True, default=str))


def check_parent_creatable(path, what):
  """ValueError, one line naming `what` (e.g. "video path") and `path`, unless the directory `path` goes in
  exists as a writable directory or can be made: its nearest existing ancestor is a writable directory.
  Creates nothing (`make_parent` does, when the file is written), so a refused command writes nothing."""
  parent = os.path.dirname(os.path.normpath(path)) or "."
  ancestor = parent
  while not os.path.lexists(ancestor):
    # A relative path runs out at the working directory ("" from dirname), an absolute one at "/".
    ancestor = os.path.dirname(ancestor) or "."
  if not os.path.isdir(ancestor):
    if ancestor == parent:
      raise ValueError(f"{what} {path!r}: {parent!r} is not a directory")
    raise ValueError(f"{what} {path!r}: {ancestor!r} is not a directory, so {parent!r} cannot be created")
  if not os.access(ancestor, os.W_OK | os.X_OK):
    if ancestor == parent:
      raise ValueError(f"{what} {path!r}: directory {parent!r} is not writable")
    raise ValueError(f"{what} {path!r}: {parent!r} cannot be created ({ancestor!r} is not writable)")


def make_parent(path):
  """Creates the directory `path` goes in (and any missing above it), as `check_parent_creatable` allowed."""
  os.makedirs(os.path.dirname(os.path.normpath(path)) or ".", exist_ok=True)
