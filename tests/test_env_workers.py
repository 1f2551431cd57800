"""Environments stepped in worker processes (`maddpg_tf.envs.workers`) give the numbers of one process."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from maddpg_tf.envs import builder as environments
from maddpg_tf.envs import workers as env_workers


def _assert_same_step(expected, got, where):
  for name, a, b in zip(environments.Step._fields, expected, got):
    assert a.dtype == b.dtype and a.shape == b.shape, (where, name)
    np.testing.assert_array_equal(a, b, err_msg=f"{where}: {name}")


@pytest.mark.parametrize("task,workers", [("lbf-8x8-2p-2f-coop", 1), ("lbf-10x10-3p-3f", 3),
                                          ("rware-tiny-2ag", 2)])
def test_workers_step_exactly_as_one_process_through_episode_ends_and_a_state_handover(task, workers):
  """5 envs, 80 steps (LBF: several auto-resets at the 25-step cut-off); at step 40 the state moves from
  the workers to a fresh one-process vector and on to a new set of workers, and nothing changes."""
  local = environments.make(task, num_envs=5, seed=3)
  remote = environments.make(task, num_envs=5, seed=3, workers=workers)
  assert isinstance(remote, env_workers.ProcessVectorEnvironment) and remote.spec == local.spec
  try:
    np.testing.assert_array_equal(local.reset(), remote.reset())
    rng = np.random.default_rng(0)
    ended = 0
    for t in range(80):
      actions = local.random_actions(rng)
      expected, got = local.step(actions), remote.step(actions)
      _assert_same_step(expected, got, f"step {t}")
      ended += int(np.sum(~np.isnan(got.episode_return)))
      if t == 40:
        state = pickle.loads(pickle.dumps(remote.get_state()))  # as a checkpoint holds it
        assert state["backend"] == "reference" and state["num_envs"] == 5
        remote.close()
        handover = environments.make(task, num_envs=5, seed=99)  # another seed: the state must win
        handover.set_state(state)
        remote = environments.make(task, num_envs=5, seed=98, workers=max(1, workers - 1))
        remote.set_state(handover.get_state())
    assert ended >= (10 if task.startswith("lbf") else 0)
  finally:
    remote.close()
    local.close()


def test_a_state_of_another_task_or_size_is_refused_by_name():
  with environments.make("lbf-8x8-2p-2f-coop", num_envs=2, workers=1) as remote:
    other = environments.make("lbf-8x8-2p-2f-coop", num_envs=3)
    with pytest.raises(ValueError, match=r"state is for \(task, num_envs, cut-off\) .*3.*this run has .*2"):
      remote.set_state(other.get_state())


def test_a_failing_env_reports_the_workers_traceback_and_bad_shapes_fail_here():
  with environments.make("lbf-8x8-2p-2f-coop", num_envs=2, workers=2) as remote:
    remote.reset()
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 2\), got \(2, 3\)"):
      remote.step(np.zeros((2, 3), np.int64))
    with pytest.raises(env_workers.WorkerError, match=r"(?s)worker 1 failed.*Traceback.*99"):
      remote.step(np.array([[0, 0], [99, 0]]))  # not an LBF action
    with pytest.raises(env_workers.WorkerError, match=r"(?s)worker 0 failed.*Traceback.*99"):
      remote.step(np.array([[99, 0], [0, 0]]))
    # Every worker's reply was read: the next step's replies are its own (worker 0's reset state is fresh).
    remote.reset()
    step = remote.step(np.zeros((2, 2), np.int64))
    assert step.observation.shape == (2, 2, remote.spec.observation_size)
    assert remote.worker_step_seconds > 0


def test_a_dead_worker_is_named_and_close_still_works():
  remote = environments.make("lbf-8x8-2p-2f-coop", num_envs=2, workers=2)
  remote.reset()
  victim = remote._processes[1]
  os.kill(victim.pid, signal.SIGKILL)
  victim.wait(timeout=10)
  with pytest.raises(env_workers.WorkerError, match=rf"worker 1 \(pid {victim.pid}\) died"):
    remote.step(np.zeros((2, 2), np.int64))
  remote.close()
  remote.close()
  with pytest.raises(RuntimeError, match="closed"):
    remote.reset()


def test_ctrl_c_is_left_to_the_training_process():
  """SIGINT (what Ctrl-C sends to the terminal's process group) does not stop a worker: the training
  process needs it to checkpoint. Workers also run in their own session, out of that group."""
  with environments.make("lbf-8x8-2p-2f-coop", num_envs=1, workers=1) as remote:
    remote.reset()
    worker = remote._processes[0]
    assert os.getsid(worker.pid) == worker.pid != os.getsid(0)
    os.kill(worker.pid, signal.SIGINT)
    # A worker that SIGINT killed would be dead before it could answer this step (the kernel delivers the
    # signal before the worker returns to its receive loop), and the step would raise WorkerError.
    remote.step(np.zeros((1, 2), np.int64))
    assert worker.poll() is None


def test_workers_exit_when_the_training_process_is_killed(tmp_path):
  script = textwrap.dedent("""
      import os, signal, sys
      from maddpg_tf.envs import builder as environments
      env = environments.make("lbf-8x8-2p-2f-coop", num_envs=2, workers=2)
      env.reset()
      print(" ".join(str(p.pid) for p in env._processes), flush=True)
      os.kill(os.getpid(), signal.SIGKILL)
  """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert result.returncode == -signal.SIGKILL, result.stderr
  pids = [int(p) for p in result.stdout.split()]
  assert len(pids) == 2
  deadline = time.time() + 20
  while time.time() < deadline and any(_alive(pid) for pid in pids):
    time.sleep(0.1)
  assert not any(_alive(pid) for pid in pids)


def _alive(pid):
  try:
    with open(f"/proc/{pid}/stat") as handle:
      return handle.read().split(")")[-1].split()[0] != "Z"
  except FileNotFoundError:
    return False


def test_worker_counts_are_checked():
  with pytest.raises(ValueError, match=r"env workers must be in 0\.\.3, got 4"):
    environments.make("lbf-8x8-2p-2f-coop", num_envs=3, workers=4)
  with pytest.raises(ValueError, match=r"env workers must be an integer in 0\.\.3, got 1\.5"):
    environments.make("lbf-8x8-2p-2f-coop", num_envs=3, workers=1.5)
  with pytest.raises(TypeError, match="not picklable"):
    with environments.make("lbf-8x8-2p-2f-coop", num_envs=1, workers=1) as remote:
      pickle.dumps(remote)
