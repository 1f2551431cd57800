"""Deterministic fault points, so tests can stop a run at an exact moment instead of waiting on wall time.

A fault point is a named place in the code (`point("checkpoint-before-marker")`). `MADDPG_TF_FAULT` arms
one: `<name>@<n>:<SIGNAL>` sends SIGNAL (KILL, INT, TERM) to this process the first time the point is
reached with a value >= n. The value is what the code passes (an env step, say) or, if it passes none,
how many times the point has been reached (1 the first time). Examples:

    MADDPG_TF_FAULT=checkpoint-before-marker@2:KILL   # killed after the 2nd checkpoint's data, before its marker
    MADDPG_TF_FAULT=env-step@1300:INT                 # Ctrl-C once the run has stepped 1,300 env steps
    MADDPG_TF_FAULT=importing-tensorflow@1:TERM       # SIGTERM just as TensorFlow starts to load

Unset (the normal case), `point` is a dictionary lookup and returns at once.
"""

import os
import re
import signal

VARIABLE = "MADDPG_TF_FAULT"
POINTS = ("checkpoint-before-marker", "env-step", "updates-submitted", "importing-tensorflow", "evaluation")
_SPEC = re.compile(r"^([a-z-]+)@(\d+):(KILL|INT|TERM)$")
_state = {"spec": None, "armed": None, "hits": {}, "fired": False}


def _armed():
  """(name, threshold, signal) of the armed fault point, or None; parsed once per value of the variable."""
  spec = os.environ.get(VARIABLE)
  if spec != _state["spec"]:
    _state.update(spec=spec, armed=None, hits={}, fired=False)
    if spec:
      match = _SPEC.match(spec)
      if not match or match.group(1) not in POINTS:
        raise ValueError(f"{VARIABLE}={spec!r}: expected <point>@<n>:<KILL|INT|TERM> with point one of "
                         f"{', '.join(POINTS)}")
      _state["armed"] = (match.group(1), int(match.group(2)), getattr(signal, f"SIG{match.group(3)}"))
  return _state["armed"]


def point(name, value=None):
  """Reached fault point `name` (with `value`, e.g. the env step); fires the armed fault if it is due."""
  armed = _armed()
  if armed is None or armed[0] != name or _state["fired"]:
    return
  if value is None:
    value = _state["hits"][name] = _state["hits"].get(name, 0) + 1
  if value >= armed[1]:
    _state["fired"] = True
    os.kill(os.getpid(), armed[2])
