"""What a run reports to its user instead of a traceback."""


class RunError(Exception):
  """A problem the user must fix; its message is one line naming the value and what is allowed."""


class Interrupted(Exception):
  """SIGINT or SIGTERM arrived; a checkpoint was written. `signum` says which."""

  def __init__(self, signum, message):
    super().__init__(message)
    self.signum = signum


class NonFiniteLoss(Exception):
  """An update's loss was NaN or infinite: `first_update`..`last_update` (1-based) are the updates of the
  call that saw it, `loss` is "critic loss" or "actor loss"."""

  def __init__(self, first_update, last_update, loss):
    super().__init__(f"the {loss} is NaN or infinite in updates {first_update:,}-{last_update:,}")
    self.first_update, self.last_update, self.loss = first_update, last_update, loss
