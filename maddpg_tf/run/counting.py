"""A run's counts (`Counter`): one object owns them; the parts that count add to them with `increment`, and
everything else reads them. Checkpointed as plain numbers."""

# What a run counts: env_steps, training env steps (warm-up excluded); warmup_episodes and episodes,
# finished episodes of each phase; updates, learner updates scheduled.
NAMES = ("env_steps", "warmup_episodes", "episodes", "updates")
# Numbers that checkpoints written before their owners kept them kept among the counters: the update
# scheduler's owed updates and last Figure 4 window, the training loop's last checkpoint step.
OWNED_ELSEWHERE = ("owed_updates", "variance_window", "last_checkpoint")


class Counter:
  """The counts of `NAMES`, each starting at 0 and only ever increased, by `increment`.

  As Acme's `counting.Counter`: `increment(**counts)` adds and returns the counts, `get_counts()` reads
  them; each count is also a read-only attribute (`counter.env_steps`).
  """

  def __init__(self):
    self._counts = dict.fromkeys(NAMES, 0)

  def increment(self, **counts):
    """Adds `counts` (name=non-negative integer, names of `NAMES`); returns the counts after."""
    for name, value in counts.items():
      if name not in self._counts:
        raise ValueError(f"unknown count {name!r}; allowed: {', '.join(NAMES)}")
      if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"count {name} must grow by a non-negative integer, got {value!r}")
    for name, value in counts.items():
      self._counts[name] += int(value)
    return self.get_counts()

  def get_counts(self):
    """{name: int} of every count (a copy)."""
    return dict(self._counts)

  # Read-only: a count changes only through `increment`.
  env_steps = property(lambda self: self._counts["env_steps"])
  warmup_episodes = property(lambda self: self._counts["warmup_episodes"])
  episodes = property(lambda self: self._counts["episodes"])
  updates = property(lambda self: self._counts["updates"])

  def save(self):
    return {"counters": self.get_counts()}

  def restore(self, state):
    """Sets the counts of `save()`'s state (a checkpoint's numbers; those of `OWNED_ELSEWHERE` that older
    checkpoints hold here are their owners' to read, see `saved_elsewhere`)."""
    values = state["counters"]
    unknown = sorted(set(values) - set(NAMES) - set(OWNED_ELSEWHERE))
    if unknown:
      raise ValueError(f"unknown counters {unknown}: not this version's checkpoint")
    missing = sorted(set(NAMES) - set(values))
    if missing:
      raise ValueError(f"the checkpoint's counters lack {missing}: not this version's checkpoint")
    self._counts = {name: int(values[name]) for name in NAMES}


def saved_elsewhere(state, name):
  """Number `name` (of `OWNED_ELSEWHERE`) from a checkpoint's `state`: its owner's entry, or, in a checkpoint
  written before the owner kept it, the counters' entry."""
  return int(state[name]) if name in state else int(state["counters"][name])
