"""A run's counts (`Counters`): one object shared by its parts and checkpointed whole."""

import dataclasses


@dataclasses.dataclass
class Counters:
  """A run's counts, shared by its parts and checkpointed whole (fixed fields: a checkpoint's counters
  are exactly these).

  env_steps: training env steps (warm-up excluded); warmup_episodes, episodes: finished episodes of each
  phase; updates: learner updates scheduled; owed_updates: updates earned by finished episodes but not
  yet scheduled (asynchronous updates wait for a full block); variance_window: the last Figure 4 logging
  window (`env_steps // log.grad_variance_every_steps`) that logged; last_checkpoint: env step of the last
  scheduled checkpoint.
  """
  env_steps: int = 0
  warmup_episodes: int = 0
  episodes: int = 0
  updates: int = 0
  owed_updates: int = 0
  variance_window: int = -1
  last_checkpoint: int = 0

  def save(self):
    return {"counters": dataclasses.asdict(self)}

  def restore(self, state):
    values = state["counters"]
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(self)})
    if unknown:
      raise ValueError(f"unknown counters {unknown}: not this version's checkpoint")
    for name, value in values.items():
      setattr(self, name, value)
