"""A `VectorEnvironment` stepped in worker processes, beside the learner instead of inside its interpreter.

Why: LBF and RWARE are pure Python. Stepped in the training process, their code and the learner's thread
take turns holding the interpreter lock, and each slows the other (an LBF 8x8 update measured 1.8 ms alone,
3.6-4.8 ms with the env loop in the same process, 1.9 ms with it in another). In a worker process the
environments run on a core of their own while the training process acts, stores and learns.

`ProcessVectorEnvironment` has `VectorEnvironment`'s interface (`spec`, `task`, `num_envs`, `reset`,
`step`, `random_actions`, `close`, `get_state`/`set_state`) and gives the same numbers: worker w holds the
consecutive slice of envs it would have in one process (`vector.split_state`, seeded by global
index), so a run is identical whatever `workers` is, and checkpoints hold one whole vector's state
either way (plain data; the pickles below only carry it between this process and its workers).

Mechanics (Unix): each worker is `python -m maddpg_tf.envs.workers` started with `subprocess` (not
multiprocessing: its spawn start method would re-import the training script, and with it TensorFlow, in
every worker). The arrays of a step live in one shared memory map (a memfd, or an unlinked temporary
file); a socket pair carries one-byte commands and replies. Workers leave the terminal's process group, so
Ctrl-C reaches only the training process, which checkpoints (asking the workers for their state) and then
closes them; a worker whose parent is gone sees its socket close and exits.
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import struct
import time
import traceback
from multiprocessing import connection as mp_connection

import numpy as np

from maddpg_tf.envs import vector

# Commands (training process -> worker) and replies (worker -> training process).
_STEP, _RESET, _GET_STATE, _SET_STATE, _CLOSE = b"s", b"r", b"g", b"p", b"c"
_OK, _ERROR = b"k", b"e"

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class WorkerError(RuntimeError):
  """A worker process failed or died; the message carries its traceback or exit status."""


def _array_layout(num_envs, num_agents, observation_size):
  """[(name, dtype, shape)] of the shared step arrays, all with the env axis first."""
  observations = (num_envs, num_agents, observation_size)
  return [("actions", np.int64, (num_envs, num_agents)),
          ("observation", np.float32, observations),
          ("reward", np.float32, (num_envs, num_agents)),
          ("terminated", np.bool_, (num_envs,)),
          ("truncated", np.bool_, (num_envs,)),
          ("next_observation", np.float32, observations),
          ("episode_return", np.float32, (num_envs,)),
          ("episode_length", np.int64, (num_envs,))]


def _padded_bytes(dtype, shape):
  """Bytes of one array rounded up to 64, so that every array starts on its own cache line."""
  return -(-int(np.prod(shape)) * np.dtype(dtype).itemsize // 64) * 64


def _layout_bytes(layout):
  return sum(_padded_bytes(dtype, shape) for _, dtype, shape in layout)


def _map_arrays(buffer, layout):
  """NumPy views of `layout` on `buffer`."""
  arrays, offset = {}, 0
  for name, dtype, shape in layout:
    arrays[name] = np.frombuffer(buffer, dtype, int(np.prod(shape)), offset).reshape(shape)
    offset += _padded_bytes(dtype, shape)
  return arrays


def _shared_file(size):
  """A file descriptor of `size` zero bytes that only this process and its workers can reach."""
  if hasattr(os, "memfd_create"):
    descriptor = os.memfd_create("maddpg-tf-env", 0)
  else:  # macOS: an unlinked temporary file
    handle = tempfile.TemporaryFile()
    descriptor = os.dup(handle.fileno())
    handle.close()
  os.ftruncate(descriptor, max(size, 1))
  return descriptor


def _split_sizes(num_envs, workers):
  base, extra = divmod(num_envs, workers)
  return [base + (1 if w < extra else 0) for w in range(workers)]


class ProcessVectorEnvironment:
  """`num_envs` copies of one task stepped by `workers` processes (see the module docstring).

  Build it with `maddpg_tf.envs.builder.make(..., workers=N)`. Arguments as `VectorEnvironment`'s.
  """

  def __init__(self, task, num_envs, seed, episode_limit, lbf_food_rule="v3", workers=1,
               vector_class=vector.VectorEnvironment):
    if not 1 <= workers <= num_envs:
      raise ValueError(f"env workers must be in 1..num_envs ({num_envs}), got {workers!r}")
    self.task = task
    self.num_envs = num_envs
    self.seed = seed
    self.lbf_food_rule = lbf_food_rule
    self.workers = workers
    # One env here for the spec (cheap), so the shared arrays can be laid out before the workers start.
    self.vector_class = vector_class  # what each worker steps: the reference vector or a fast backend's
    probe = vector_class(task, 1, seed, episode_limit, lbf_food_rule)
    self.spec = probe.spec
    probe.close()
    self._layout = _array_layout(num_envs, self.spec.num_agents, self.spec.observation_size)
    size = _layout_bytes(self._layout)
    self._sizes = _split_sizes(num_envs, workers)
    starts = np.cumsum([0] + self._sizes)
    self._connections, self._processes = [], []
    # Seconds the slowest worker spent stepping, summed over `step` calls (the rest of a step's wall time is
    # messaging and waiting to be scheduled).
    self.worker_step_seconds = 0.0
    self._closed = False
    self._ready = False
    self._stepping = False
    descriptor = _shared_file(size)
    try:
      self._map = mmap.mmap(descriptor, max(size, 1))
      self._arrays = _map_arrays(self._map, self._layout)
      for start, stop in zip(starts[:-1], starts[1:]):
        arguments = dict(vector_class=vector_class, task=task, num_envs=int(stop - start), seed=seed,
                         episode_limit=episode_limit,
                         lbf_food_rule=lbf_food_rule, first_index=int(start))
        self._start_worker(descriptor, size, (int(start), int(stop)), arguments)
      self._receive_all()  # each worker reports its envs built (or why not)
    except BaseException:
      self.close()
      raise
    finally:
      os.close(descriptor)

  def _start_worker(self, descriptor, size, envs, arguments):
    ours, theirs = socket.socketpair()
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT,
                                                              environment.get("PYTHONPATH")]))
    try:
      process = subprocess.Popen(
          [sys.executable, "-m", "maddpg_tf.envs.workers", str(theirs.fileno()), str(descriptor)],
          pass_fds=(theirs.fileno(), descriptor), env=environment, start_new_session=True)
    finally:
      theirs.close()
    self._processes.append(process)
    self._connections.append(mp_connection.Connection(ours.detach()))
    self._connections[-1].send_bytes(pickle.dumps(
        dict(size=size, layout=self._layout, envs=envs, arguments=arguments)))

  # ---- messages --------------------------------------------------------------------------------------

  def _died(self, index):
    process = self._processes[index]
    try:
      code = process.wait(timeout=1)
    except subprocess.TimeoutExpired:
      code = None
    return WorkerError(f"environment worker {index} (pid {process.pid}) died"
                       f"{'' if code is None else f' with exit status {code}'}")

  def _send(self, index, message):
    try:
      self._connections[index].send_bytes(message)
    except OSError:
      raise self._died(index) from None

  def _receive(self, index):
    try:
      reply = self._connections[index].recv_bytes()
    except (EOFError, OSError):
      raise self._died(index) from None
    if reply[:1] == _ERROR:
      raise WorkerError(f"environment worker {index} failed:\n{reply[1:].decode(errors='replace')}")
    return reply[1:]

  def _receive_all(self):
    """Every worker's reply, in order; all are read before an error is raised, so the next command and
    its replies stay paired."""
    replies, failure = [], None
    for index in range(self.workers):
      try:
        replies.append(self._receive(index))
      except WorkerError as error:
        failure = failure or error
    if failure is not None:
      raise failure
    return replies

  def _check_idle(self):
    self._check_open()
    if self._stepping:
      raise RuntimeError("a step is in flight: call step_wait first")

  def _broadcast(self, command):
    self._check_idle()
    for index in range(self.workers):
      self._send(index, command)
    return self._receive_all()

  # ---- the VectorEnvironment interface ----------------------------------------------------------------

  def reset(self):
    """Start a new episode in every env; float32 [num_envs, num_agents, observation_size]."""
    self._broadcast(_RESET)
    self._ready = True
    return self._arrays["next_observation"].copy()

  def step(self, actions):
    """Apply one joint action per env (int [num_envs, num_agents]); see `vector.Step`."""
    self.step_async(actions)
    return self.step_wait()

  def step_async(self, actions):
    """Starts `step(actions)` in the workers and returns at once; `step_wait()` collects the result. In
    between, this process is free (the training loop stores the previous transition meanwhile)."""
    if not self._ready:
      self._check_open()
      raise RuntimeError("ProcessVectorEnvironment.step called before reset()")
    if self._stepping:
      raise RuntimeError("step_async called twice without step_wait")
    actions = np.asarray(actions)
    if actions.shape != self._arrays["actions"].shape:
      raise ValueError(f"actions must have shape {self._arrays['actions'].shape}, got {actions.shape}")
    self._arrays["actions"][...] = actions
    for index in range(self.workers):
      self._send(index, _STEP)
    self._stepping = True

  def step_wait(self):
    if not self._stepping:
      raise RuntimeError("step_wait called without step_async")
    self._stepping = False
    replies = self._receive_all()
    self.worker_step_seconds += max(struct.unpack("d", reply)[0] for reply in replies)
    a = self._arrays
    return vector.Step(a["observation"].copy(), a["reward"].copy(), a["terminated"].copy(),
                             a["truncated"].copy(), a["next_observation"].copy(), a["episode_return"].copy(),
                             a["episode_length"].copy())

  def random_actions(self, rng):
    """Uniform random joint actions, int64 [num_envs, num_agents] (drawn here, as `VectorEnvironment`)."""
    return rng.integers(0, self.spec.num_actions, size=(self.num_envs, self.spec.num_agents))

  def get_state(self):
    """The whole state as plain data: the state a one-process vector of `vector_class` would give."""
    parts = [pickle.loads(state) for state in self._broadcast(_GET_STATE)]
    return vector.concatenate_states(parts)

  def set_state(self, state):
    """Continues from `state` (`get_state` of a vector of the same task and size, e.g. from a checkpoint;
    each worker's env checks the backend and converts)."""
    self._check_idle()
    vector.check_same_vector(self, state)
    for index, part in enumerate(vector.split_state(state, self._sizes)):
      self._send(index, _SET_STATE + pickle.dumps(part))
    self._receive_all()
    self._ready = state["ready"]

  def close(self):
    """Stops the workers (politely, then by force); safe to call twice."""
    if self._closed:
      return
    self._closed = True
    self._ready = False
    for conn in self._connections:
      try:
        conn.send_bytes(_CLOSE)
      except OSError:
        pass
    for process in self._processes:
      try:
        process.wait(timeout=5)
      except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for conn in self._connections:
      conn.close()
    if getattr(self, "_map", None) is not None:
      self._arrays = None
      try:
        self._map.close()
      except BufferError:  # a view is still referenced somewhere: the map goes when it does
        pass

  def _check_open(self):
    if self._closed:
      raise RuntimeError("ProcessVectorEnvironment is closed")

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def __del__(self):
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass

  def __getstate__(self):
    raise TypeError("a ProcessVectorEnvironment is not picklable; pickle its get_state()")

  def __repr__(self):
    return (f"ProcessVectorEnvironment({self.task.name!r}, num_envs={self.num_envs}, seed={self.seed}, "
            f"workers={self.workers})")


# ------------------------------------------------------------------------------------------------------
# The worker side.

def _serve(conn, descriptor):
  setup = pickle.loads(conn.recv_bytes())
  memory = mmap.mmap(descriptor, max(setup["size"], 1))
  os.close(descriptor)
  start, stop = setup["envs"]
  mine = {name: array[start:stop] for name, array in _map_arrays(memory, setup["layout"]).items()}
  try:
    arguments = dict(setup["arguments"])
    env = arguments.pop("vector_class")(**arguments)
  except Exception:  # pylint: disable=broad-except
    conn.send_bytes(_ERROR + traceback.format_exc().encode())
    return
  conn.send_bytes(_OK)
  while True:
    try:
      command = conn.recv_bytes()
    except (EOFError, OSError):  # the training process is gone
      return
    reply = _OK
    try:
      kind = command[:1]
      if kind == _STEP:
        started = time.perf_counter()
        for name, value in zip(vector.Step._fields, env.step(mine["actions"])):
          mine[name][...] = value
        reply = _OK + struct.pack("d", time.perf_counter() - started)
      elif kind == _RESET:
        mine["next_observation"][...] = env.reset()
      elif kind == _GET_STATE:
        reply = _OK + pickle.dumps(env.get_state())
      elif kind == _SET_STATE:
        env.set_state(pickle.loads(command[1:]))
      elif kind == _CLOSE:
        env.close()
        conn.send_bytes(_OK)
        return
      else:
        raise ValueError(f"unknown command {kind!r}")
    except Exception:  # pylint: disable=broad-except
      reply = _ERROR + traceback.format_exc().encode()
    try:
      conn.send_bytes(reply)
    except OSError:
      return


def main(argv):
  # Ctrl-C is the training process's to handle (it checkpoints first, then closes us).
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  conn = mp_connection.Connection(int(argv[1]))
  _serve(conn, int(argv[2]))


if __name__ == "__main__":
  main(sys.argv)
