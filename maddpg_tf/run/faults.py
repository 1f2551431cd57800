"""Deterministic fault points, so tests can stop a run at an exact moment instead of waiting on wall time.

A fault point is a named place in the code (`point("checkpoint-before-marker")`). Only a test arms one, by
calling `arm(spec)` in the process it wants to stop (`tests/faulty.py` does it for a program run as a
subprocess); nothing else arms it: no environment variable, no file, no flag of a program, so nothing in a
user's shell can stop a real run. `<name>@<n>:<SIGNAL>` sends SIGNAL (KILL, INT, TERM) to this process the
first time the point is reached with a value >= n. The value is what the code passes (an env step, say)
or, if it passes none, how many times the point has been reached (1 the first time). Examples:

    checkpoint-before-marker@2:KILL   # killed after the 2nd checkpoint's data, before its marker
    env-step@1300:INT                 # Ctrl-C once the run has stepped 1,300 env steps
    importing-tensorflow@1:TERM       # SIGTERM just as TensorFlow starts to load

Unarmed (always, outside tests), `point` is one comparison and returns at once.
"""

import contextlib
import os
import re
import signal

POINTS = ("checkpoint-before-marker", "env-step", "updates-submitted", "importing-tensorflow", "evaluation")
_SPEC = re.compile(r"^([a-z-]+)@(\d+):(KILL|INT|TERM)$")
_state = {"armed": None, "hits": {}, "fired": False}


def parse(spec):
  """(name, threshold, signal) of `spec`; ValueError naming it if it is not <point>@<n>:<KILL|INT|TERM>."""
  match = _SPEC.match(spec) if isinstance(spec, str) else None
  if not match or match.group(1) not in POINTS:
    raise ValueError(f"fault {spec!r}: expected <point>@<n>:<KILL|INT|TERM> with point one of "
                     f"{', '.join(POINTS)}")
  return match.group(1), int(match.group(2)), getattr(signal, f"SIG{match.group(3)}")


def arm(spec):
  """Arms the fault `spec` in this process (tests only); `disarm()` or the context manager `armed` undoes it."""
  _state.update(armed=parse(spec), hits={}, fired=False)


def disarm():
  _state.update(armed=None, hits={}, fired=False)


@contextlib.contextmanager
def armed(spec):
  """`with armed("env-step@1300:INT"): ...`: the fault is armed inside the block only."""
  arm(spec)
  try:
    yield
  finally:
    disarm()


def point(name, value=None):
  """Reached fault point `name` (with `value`, e.g. the env step); fires the armed fault if it is due."""
  fault = _state["armed"]
  if fault is None or fault[0] != name or _state["fired"]:
    return
  if value is None:
    value = _state["hits"][name] = _state["hits"].get(name, 0) + 1
  if value >= fault[1]:
    _state["fired"] = True
    os.kill(os.getpid(), fault[2])
