"""A uniform replay buffer of joint transitions, in preallocated NumPy arrays.

Observations are stored in `observation_dtype` (float16 by default): LBF and RWARE observations are small
integers, exact in float16, which halves the memory of the paper's 2M-transition buffer. Storing a value
that the dtype cannot hold exactly raises instead of silently rounding.
"""

import numpy as np

from maddpg_tf.agent import types


class ReplayBuffer:
  """Circular buffer; `sample` draws uniformly WITHOUT replacement from the filled part (as the code)."""

  def __init__(self, capacity, num_agents, observation_size, observation_dtype="float16"):
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
      raise ValueError(f"replay capacity must be an integer >= 1, got {capacity!r}")
    if observation_dtype not in ("float16", "float32"):
      raise ValueError(f"replay observation_dtype must be float16 or float32, got {observation_dtype!r}")
    self.capacity = int(capacity)
    self.observation_dtype = np.dtype(observation_dtype)
    shape = (self.capacity, num_agents, observation_size)
    self.observation = np.zeros(shape, self.observation_dtype)
    self.next_observation = np.zeros(shape, self.observation_dtype)
    self.action = np.zeros((self.capacity, num_agents), np.int8)
    self.reward = np.zeros((self.capacity, num_agents), np.float32)
    self.terminal = np.zeros((self.capacity,), np.float32)
    self.size = 0
    self.cursor = 0

  def __len__(self):
    return self.size

  @property
  def nbytes(self):
    return sum(array.nbytes for array in self._arrays().values())

  def _arrays(self):
    return {"observation": self.observation, "next_observation": self.next_observation,
            "action": self.action, "reward": self.reward, "terminal": self.terminal}

  def add(self, observation, action, reward, terminal, next_observation):
    """Adds a batch of R transitions (leading axis R on every argument)."""
    rows = len(action)
    if rows > self.capacity:
      raise ValueError(f"cannot add {rows} transitions to a buffer of capacity {self.capacity}")
    index = (self.cursor + np.arange(rows)) % self.capacity
    for name, value in (("observation", observation), ("next_observation", next_observation)):
      stored = value.astype(self.observation_dtype)
      if self.observation_dtype != np.float32 and not np.array_equal(stored, value):
        raise ValueError(f"{name} values are not exact in {self.observation_dtype} (e.g. "
                         f"{value[stored != value].flat[0].item()!r}); set replay.observation_dtype=float32")
      getattr(self, name)[index] = stored
    self.action[index] = action
    self.reward[index] = reward
    self.terminal[index] = terminal
    self.cursor = int((self.cursor + rows) % self.capacity)
    self.size = int(min(self.size + rows, self.capacity))

  def sample(self, batch_size, rng):
    """A `types.Transition` of `batch_size` distinct rows (observations as float32)."""
    if batch_size > self.size:
      raise ValueError(f"cannot sample {batch_size} transitions from a buffer holding {self.size}")
    index = rng.choice(self.size, size=batch_size, replace=False)
    return types.Transition(
        observation=self.observation[index].astype(np.float32), action=self.action[index].astype(np.int32),
        reward=self.reward[index], terminal=self.terminal[index],
        next_observation=self.next_observation[index].astype(np.float32))

  # ---- checkpointing ----------------------------------------------------------------------------------

  def state(self):
    """{name: array} of the filled part and the counters, for checkpoints."""
    state = {f"replay/{k}": v[:self.size] for k, v in self._arrays().items()}
    state["replay/cursor"] = np.array(self.cursor)
    state["replay/size"] = np.array(self.size)
    return state

  def restore(self, state):
    size = int(state["replay/size"])
    if size > self.capacity:
      raise ValueError(f"checkpoint holds {size} transitions, more than the capacity {self.capacity}")
    for name, array in self._arrays().items():
      stored = state[f"replay/{name}"]
      if stored.shape[1:] != array.shape[1:] or len(stored) != size:
        raise ValueError(f"checkpoint replay/{name} has shape {stored.shape}, expected "
                         f"({size},) + {array.shape[1:]}: a checkpoint of another task?")
      array[:size] = stored
    self.size = size
    self.cursor = int(state["replay/cursor"])


class StagedReplay:
  """A `ReplayBuffer` that can hold back one batch of transitions (`stage`) and stores it before anything
  reads or adds.

  The environment loop stages the last step's transitions and stores them while the envs take the next
  step (in a worker process); every reader (update sampling, evaluation episodes stored in the buffer,
  checkpoints) sees the buffer as if each step had been stored at once: same contents, same order.
  """

  def __init__(self, buffer):
    self.buffer = buffer
    self._staged = None

  def stage(self, observation, action, reward, terminal, next_observation):
    """Holds these transitions back (storing any held before)."""
    self.flush()
    self._staged = (observation, action, reward, terminal, next_observation)

  def flush(self):
    """Stores the held transitions, if any."""
    if self._staged is not None:
      staged, self._staged = self._staged, None
      self.buffer.add(*staged)

  def add(self, *transition):
    self.flush()
    self.buffer.add(*transition)

  def sample(self, batch_size, rng):
    self.flush()
    return self.buffer.sample(batch_size, rng)

  def __len__(self):
    self.flush()
    return len(self.buffer)

  def save(self):
    """The buffer's arrays (held transitions stored first), for checkpoints."""
    self.flush()
    return self.buffer.state()

  def restore(self, arrays):
    self._staged = None
    self.buffer.restore(arrays)
