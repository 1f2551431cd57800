"""SIGINT and SIGTERM as a request to stop at the next safe point (a run checkpoints, then stops)."""

import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
  """While entered, SIGINT and SIGTERM only record themselves: `signum` is the last one (None: none).
  The previous handlers come back on exit."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    self.signum = signum

  @property
  def name(self):
    return signal.Signals(self.signum).name if self.signum is not None else None

  def __enter__(self):
    self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
    return self

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
