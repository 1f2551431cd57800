"""One process at a time on a run, a search directory and an evaluation's results (`maddpg_tf.run.locking`):
a live holder is named and refused in one line, exit 2, nothing touched; a SIGKILLed holder's lock is taken
over without a word; two maddpg-train commands on one --workdir, as from two terminals."""

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from maddpg_tf.run import locking

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
LBF = os.path.join(REPO, "configs", "lbf.py")
SMOKE = [f"--config={LBF}:smoke", "--config.jit_compile=False"]
HOLD_SCRIPT = ("import sys; from maddpg_tf.run import locking\n"
               "with locking.hold(sys.argv[1], 'the thing'):\n"
               "  print('held', flush=True)\n"
               "  sys.stdin.read()\n")


class Holder:
  """A process that holds the lock `path` until it is told to let go (or killed)."""

  def __init__(self, path):
    self.process = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, path], cwd=REPO, env=ENV,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert self.process.stdout.readline().strip() == "held"

  def let_go(self):
    self.process.stdin.close()
    assert self.process.wait(timeout=60) == 0

  def kill(self):
    self.process.send_signal(signal.SIGKILL)
    self.process.wait(timeout=60)


def tree(directory):
  """{relative path: sha256} of every file under `directory` (and its empty directories)."""
  found = {}
  for root, dirs, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as handle:
        found[os.path.relpath(path, directory)] = hashlib.sha256(handle.read()).hexdigest()
    for name in dirs:
      found.setdefault(os.path.relpath(os.path.join(root, name), directory) + "/", "dir")
  return found


def program(name, *args, timeout=300):
  module = {"maddpg-train": "maddpg_tf.cli.train", "maddpg-evaluate": "maddpg_tf.cli.evaluate",
            "maddpg-search": "maddpg_tf.cli.search"}[name]
  return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                        timeout=timeout)


def one_error_line(result, program_name):
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
  assert lines[0].startswith(f"{program_name}: error: ")
  return lines[0]


# ---- the lock itself ----------------------------------------------------------------------------------

def test_a_live_holder_is_named_and_a_dead_ones_lock_taken_over(tmp_path):
  path = str(tmp_path / "run.lock")
  holder = Holder(path)
  try:
    with pytest.raises(locking.Busy) as busy:
      with locking.hold(path, "--workdir w", "wait for it to end"):
        pass
    message = str(busy.value)
    assert message.startswith(f"--workdir w is in use by pid {holder.process.pid} on {socket.gethostname()}, since ")
    assert message.endswith(f"; wait for it to end; to stop it: kill {holder.process.pid}")
    assert busy.value.holder["pid"] == holder.process.pid
  finally:
    holder.kill()
  assert locking.holder(path)["pid"] == holder.process.pid  # the dead holder's record is still there
  with locking.hold(path, "--workdir w"):  # ... and its lock is free
    assert locking.holder(path)["pid"] == os.getpid()
  with open(path) as handle:
    assert handle.read() == ""  # emptied on release


def test_a_holder_that_ends_releases_and_empties_the_lock(tmp_path):
  path = str(tmp_path / "grid.lock")
  holder = Holder(path)
  holder.let_go()
  assert locking.holder(path) is None
  with locking.hold(path, "x", wait_seconds=0):
    pass


def test_waiting_takes_the_lock_when_the_holder_goes(tmp_path):
  path = str(tmp_path / "run.lock")
  holder = Holder(path)
  threading.Thread(target=holder.let_go).start()
  with locking.hold(path, "x", wait_seconds=60, poll_seconds=0.05):
    assert locking.holder(path)["pid"] == os.getpid()


def test_nesting_is_only_for_reentrant_holds_of_one_thread(tmp_path):
  path = str(tmp_path / "run.lock")
  with locking.hold(path, "x", reentrant=True):
    with locking.hold(path, "x", reentrant=True):
      pass
    with pytest.raises(locking.Busy, match=f"x is in use by pid {os.getpid()}"):
      with locking.hold(path, "x"):  # not re-entrant: refused even in the holding thread
        pass
    assert locking.holder(path)["pid"] == os.getpid()  # the outer hold is still held
  assert locking.holder(path) is None


# ---- the programs -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("runs") / "run")
  result = program("maddpg-train", *SMOKE, "--config.total_steps=200", f"--workdir={workdir}", "--quiet")
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def copy_of(run, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  target = str(tmp_path / "run")
  shutil.copytree(run, target)
  return target


@pytest.mark.slow
def test_train_refuses_a_workdir_in_use_and_resumes_once_its_holder_is_killed(finished_run, tmp_path):
  workdir = copy_of(finished_run, tmp_path)
  assert locking.holder(os.path.join(workdir, "run.lock")) is None  # a finished run's lock is empty
  holder = Holder(os.path.join(workdir, "run.lock"))
  before = tree(workdir)
  try:
    line = one_error_line(program("maddpg-train", *SMOKE, "--config.total_steps=200", f"--workdir={workdir}"),
                          "maddpg-train")
  finally:
    holder.kill()
  assert f"--workdir {workdir} is in use by pid {holder.process.pid} on {socket.gethostname()}" in line
  assert line.endswith(f"wait for it to end, or give another --workdir; to stop it: kill {holder.process.pid}")
  assert tree(workdir) == before
  resumed = program("maddpg-train", *SMOKE, "--config.total_steps=400", f"--workdir={workdir}", "--quiet")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resuming from" in resumed.stdout


@pytest.mark.slow
def test_two_terminals_on_one_workdir(tmp_path):
  """The same maddpg-train command twice, the second while the first trains: the second is refused naming
  the first; the first trains on undisturbed (it is far from done when the second ends: Ctrl-C stops it)."""
  workdir = str(tmp_path / "run")
  command = [sys.executable, "-m", "maddpg_tf.cli.train", *SMOKE, "--config.total_steps=50000000",
             f"--workdir={workdir}", "--quiet"]
  first = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.monotonic() + 240  # a bound only to fail a hang: the holder appears after its imports
    while (locking.holder(os.path.join(workdir, "run.lock")) or {}).get("pid") != first.pid:
      assert first.poll() is None, first.communicate()[1][-3000:]
      assert time.monotonic() < deadline, "the first maddpg-train never took its workdir"
      time.sleep(0.1)
    second = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    line = one_error_line(second, "maddpg-train")
    assert f"is in use by pid {first.pid} on {socket.gethostname()}" in line
    assert first.poll() is None  # still training
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=600)
  finally:
    if first.poll() is None:
      first.kill()
  assert first.returncode == 130, err[-3000:]  # interrupted: a checkpoint written, exit 128 + SIGINT
  assert not [name for name in os.listdir(workdir) if name.startswith("provenance-resume-")]
  events = [name for name in os.listdir(os.path.join(workdir, "tb")) if name.startswith("events.")]
  assert len(events) == 1, events  # one writer: no point twice
  with open(os.path.join(workdir, "evaluations.csv")) as handle:
    steps = [int(line.split(",")[0]) for line in handle.read().splitlines()[1:]]
  assert steps == sorted(set(steps))
  assert locking.holder(os.path.join(workdir, "run.lock")) is None


@pytest.mark.slow
def test_two_evaluations_writing_the_same_result(finished_run, tmp_path):
  workdir = copy_of(finished_run, tmp_path)
  os.makedirs(os.path.join(workdir, "evaluations"))
  ckpt = sorted(os.listdir(os.path.join(workdir, "checkpoints")))[-1]
  lock = os.path.join(workdir, "evaluations", f"{ckpt}-sampled-3.lock")
  holder = Holder(lock)
  before = tree(workdir)
  try:
    line = one_error_line(program("maddpg-evaluate", f"--workdir={workdir}", "--episodes=3"), "maddpg-evaluate")
  finally:
    holder.kill()
  assert f"the evaluation {workdir}/evaluations/{ckpt}-sampled-3.json is in use by pid {holder.process.pid}" in line
  assert tree(workdir) == before
  done = program("maddpg-evaluate", f"--workdir={workdir}", "--episodes=3")
  assert done.returncode == 0, done.stderr[-3000:]
  assert sorted(os.listdir(os.path.join(workdir, "evaluations"))) == [f"{ckpt}-sampled-3.csv",
                                                                      f"{ckpt}-sampled-3.json"]
  with open(os.path.join(workdir, "evaluations", f"{ckpt}-sampled-3.json")) as handle:
    assert json.load(handle)["lbf_food_rule"] == "v2"


@pytest.mark.slow
def test_a_search_directory_in_use_is_refused(tmp_path):
  directory = str(tmp_path / "search")
  os.makedirs(directory)
  holder = Holder(os.path.join(directory, "search.lock"))
  before = tree(directory)
  try:
    line = one_error_line(program("maddpg-search", f"--config={LBF}:smoke,estimator=grmck", f"--dir={directory}",
                                  "--max_trials=1"), "maddpg-search")
  finally:
    holder.kill()
  assert f"--dir {directory} is in use by pid {holder.process.pid}" in line
  assert line.endswith(f"wait for it to end, or give another --dir; to stop it: kill {holder.process.pid}")
  assert tree(directory) == before
