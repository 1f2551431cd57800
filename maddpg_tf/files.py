"""Result files written whole: a reader (a person, TensorBoard, a resumed run, a grid on another node) finds
the old file or the new one, never a part of one.

`replacing(path)` gives a temporary path beside `path` (the same directory, so the final rename is atomic on
one filesystem) and puts it in place only when the block ends without an error; `write_text` and
`write_json` are the common cases. Every writer of a result, checkpoint record or search file uses these.

Imports nothing of this package: every layer may use it.
"""

import contextlib
import json
import os


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
