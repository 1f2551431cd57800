"""One process at a time on a directory: a run's workdir, a grid's `--results`, a search directory, an
evaluation's output.

`hold(path, what)` takes an exclusive `flock` on the file `path` and writes who holds it (pid, host, start,
command line) into it; a second process is refused with `Busy`, whose message names the holder and what to
do. The kernel drops the lock when its process ends in any way (exit, an exception, SIGKILL), so a lock
left by a dead process is taken over without a word: resuming after a crash needs only the same command.
On release the file is emptied again, so a directory that was only looked at ends as it began.

In one process, `reentrant=True` holds may nest (a grid's run lock, then the run's own); other holds of a
path this process holds wait or are refused as if another process held it, so threads exclude each other.

Shared filesystems: Linux emulates `flock` on NFS with whole-file POSIX locks, so a lock taken on one node
holds against the others (NFSv4, or v3 with a lock manager). A node that is lost keeps its locks until its
lease ends (NFSv4: about 90 s; `wait_seconds` covers that). A filesystem without working locks (some FUSE
mounts, NFS mounted with `nolock`) cannot exclude anything: there, start one process per directory yourself.

Imports nothing of this package: any layer may use it.
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys
import threading
import time

__all__ = ["Busy", "hold", "holder", "describe"]


class Busy(Exception):
  """Another process (or another thread of this one) holds the lock; the message is one line."""

  def __init__(self, message, record):
    super().__init__(message)
    self.holder = record


_held = {}  # real path -> [open file, depth, owning thread id]
_registry = threading.Lock()


def holder(path):
  """The record of whoever holds (or last held, if it died) the lock `path`: a dict, or None."""
  try:
    with open(path) as handle:
      text = handle.read().strip()
  except OSError:
    return None
  if not text:
    return None
  try:
    record = json.loads(text)
  except ValueError:
    return {"text": text[:200]}
  return record if isinstance(record, dict) else {"text": text[:200]}


def describe(record):
  """'pid 123 on host, since 2026-12-04T09:00:00 (maddpg-train --workdir=...)' for a holder record."""
  if not record:
    return "a process that did not say who it is"
  if "pid" not in record:
    return record.get("text", "a process that did not say who it is")
  text = f"pid {record['pid']} on {record.get('host', '?')}"
  if record.get("started"):
    text += f", since {record['started']}"
  if record.get("command"):
    text += f" ({record['command'][:200]})"
  return text


def _record():
  return {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.datetime.now().isoformat(timespec="seconds"),
          "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))}


def _busy(path, what, advice):
  record = holder(path)
  pid = record.get("pid") if record else None
  stop = f"; to stop it: kill {pid}" + (f" on {record['host']}" if record.get("host") != socket.gethostname()
                                         else "") if pid else ""
  return Busy(f"{what} is in use by {describe(record)}; {advice}{stop}", record)


@contextlib.contextmanager
def hold(path, what, advice="wait for it to end", wait_seconds=0.0, poll_seconds=0.5, reentrant=False):
  """Holds the lock file `path` (its directory must exist) for the `with` block.

  what: the thing locked, for the message ("--workdir runs/a"); advice: what the refused person can do.
  wait_seconds: how long to keep trying before `Busy` (a lost node's lock outlives it by its lease).
  """
  key = os.path.realpath(path)
  deadline = time.monotonic() + wait_seconds
  while True:
    with _registry:
      entry = _held.get(key)
      if entry is not None and reentrant and entry[2] == threading.get_ident():
        entry[1] += 1
        nested = True
      else:
        nested = False
    if nested:
      try:
        yield
      finally:
        with _registry:
          entry[1] -= 1
      return
    if entry is None:
      handle = open(path, "a+")  # pylint: disable=consider-using-with  (held past this block)
      try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        handle.close()
      else:
        with _registry:
          if key not in _held:
            _held[key] = [handle, 1, threading.get_ident()]
            break
        fcntl.flock(handle, fcntl.LOCK_UN)  # another thread of ours registered first
        handle.close()
    if time.monotonic() >= deadline:
      raise _busy(path, what, advice)
    time.sleep(poll_seconds)
  try:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(_record(), sort_keys=True))
    handle.flush()
    yield
  finally:
    with _registry:
      del _held[key]
    try:
      handle.truncate(0)
      handle.flush()
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)
      handle.close()
