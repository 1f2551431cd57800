"""Reliability of `maddpg-train`: kills at random moments lose nothing, a full disk and NaN losses stop a run
with one line and keep its last good checkpoint, and runs are deterministic.

The runs are the smoke budget on LBF 10x10-3p-3f (random policies score there, so evaluation curves carry
information; on 8x8 they are all zeros) without XLA, which would only cost compile time at every restart.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from configs import lbf
from maddpg_tf import config as common
from maddpg_tf.run import checkpointing, experiment, faults
from tests import faulty

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LBF = os.path.join(REPO, "configs", "lbf.py")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
TASK = "lbf-10x10-3p-3f"
OVERRIDES = {"total_steps": 6000, "jit_compile": False, "checkpoint.every_steps": 250,
             "loop.eval_every_steps": 500, "loop.eval_episodes": 12}
METADATA = {"task": TASK, "estimator": "gst", "seed": 0, "fidelity": "code"}


def config(**more):
  made = lbf.get_config(f"smoke,task={TASK}")
  for key, value in dict(OVERRIDES, **more).items():
    common.set_value(made, key, value)
  return made


def command(workdir, quiet=False, fault=None, **more):
  """The maddpg-train command line of `config(**more)`, with `fault` armed (`tests/faulty.py`) if given."""
  return faulty.command(sys.executable, fault, "maddpg_tf.cli.train",
                        [f"--config={LBF}:smoke,task={TASK}"]
                        + [f"--config.{key}={value}" for key, value in dict(OVERRIDES, **more).items()]
                        + [f"--workdir={workdir}"] + (["--quiet"] if quiet else []))


def read(path):
  with open(path) as handle:
    return handle.read()


def evaluations(workdir):
  return read(os.path.join(workdir, "evaluations.csv"))


def checkpoints(workdir):
  return os.path.join(workdir, "checkpoints")


def assert_same_final_state(workdir, reference):
  """The newest checkpoints hold the same networks, optimiser state, replay buffer, counters, evaluations
  and random generators."""
  (arrays, state, _), (expected_arrays, expected_state, _) = (
      checkpointing.load(checkpointing.latest(checkpoints(w)), METADATA) for w in (workdir, reference))
  assert sorted(arrays) == sorted(expected_arrays)
  for name in arrays:
    np.testing.assert_array_equal(arrays[name], expected_arrays[name], err_msg=name)
  assert state["counters"] == expected_state["counters"]
  assert state["evaluations"] == expected_state["evaluations"]
  for name in ("warmup_rng", "replay_rng", "actor_rng", "eval_actor_rng"):
    assert state[name] == expected_state[name], name  # generator states (bit_generator.state dicts)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted run (seed 0, 6,000 env steps), trained in this process."""
  workdir = str(tmp_path_factory.mktemp("reference") / "run")
  experiment.Experiment(config(), workdir, progress=False).run()
  return workdir


# ---- determinism ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_same_seed_same_curves_other_seed_other_curves(reference, tmp_path):
  """Runs of 2,000 steps: seed 0 repeats the reference's first evaluations exactly; seed 1 differs."""
  curves = {}
  for seed in (0, 1):
    workdir = str(tmp_path / f"seed{seed}")
    experiment.Experiment(config(seed=seed, total_steps=2000), workdir, progress=False).run()
    curves[seed] = evaluations(workdir).splitlines()
  expected = evaluations(reference).splitlines()
  # header, steps 0, 500, 1000, 1500 as the reference's, then the final policy's evaluation at 2000
  assert len(curves[0]) == 6 and curves[0][:5] == expected[:5] and curves[0][5].startswith("2000,")
  assert [line.split(",")[0] for line in curves[1]] == [line.split(",")[0] for line in curves[0]]
  assert all(a != b for a, b in zip(curves[0][1:], curves[1][1:])), (curves[0], curves[1])


# ---- kills ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_signal_while_an_update_block_runs_resumes_exactly(reference, tmp_path):
  """The signal's checkpoint finishes the running update block but keeps acting with the weights from
  before it until the uninterrupted run would refresh them (the next episode's end), and keeps the
  checkpoint schedule: the resumed run equals the uninterrupted one. (Deterministic: a fault point sends
  SIGINT right after the block at env step 1,300 is submitted to the learner thread.)"""
  workdir = str(tmp_path / "run")
  with faults.armed("updates-submitted@1300:INT"), pytest.raises(
      experiment.Interrupted, match=r"SIGINT at env step 1,300: checkpoint \S+ckpt-1300 written"):
    experiment.Experiment(config(), workdir, progress=False).run()
  _, state, _ = checkpointing.load(checkpointing.latest(checkpoints(workdir)), METADATA)
  assert state["stale_acting_weights"] is not None and state["last_checkpoint"] == 1260
  experiment.Experiment(config(), workdir, progress=False).run()
  assert evaluations(workdir) == evaluations(reference)
  assert_same_final_state(workdir, reference)


def _complete_checkpoints_load(workdir):
  """Every checkpoint marked complete loads (none is half-written); returns the newest's path or None."""
  for _, path in checkpointing.complete_checkpoints(checkpoints(workdir)):
    checkpointing.load(path, METADATA)
  return checkpointing.latest(checkpoints(workdir))


def _leftovers(workdir):
  directory = checkpoints(workdir)
  return [n for n in os.listdir(directory) if n.startswith(".tmp-ckpt-")] if os.path.isdir(directory) else []


@pytest.mark.slow
def test_kills_at_random_moments_lose_nothing(reference, tmp_path):
  """SIGKILL at seeded random env steps, twice between a checkpoint's data and its completion marker, and
  a SIGINT: every restart resumes from the newest complete checkpoint, and the run ends as the
  uninterrupted one. The moments are fault points (`maddpg_tf.run.faults`), so nothing waits on wall time."""
  rng = random.Random(10)
  workdir = str(tmp_path / "run")
  # (how, argument): ("checkpoint", k) kills after the k-th checkpoint's data since the start is written,
  # before its marker; ("kill" | "sigint", None) signals at a random env step past the resume point.
  plan = [("checkpoint", 2), ("kill", None), ("sigint", None), ("checkpoint", 1), ("kill", None)]
  survived, mid_write = [], 0
  for attempt, (how, argument) in enumerate(plan + [("finish", None)]):
    expected = _complete_checkpoints_load(workdir)
    before = set(_leftovers(workdir))
    start = int(re.search(r"ckpt-(\d+)$", expected).group(1)) if expected else 0
    if how == "checkpoint":
      fault = f"checkpoint-before-marker@{argument}:KILL"
    elif how in ("kill", "sigint"):
      fault = f"env-step@{rng.randrange(start + 100, OVERRIDES['total_steps'] - 100)}:" \
              f"{'KILL' if how == 'kill' else 'INT'}"
    else:
      fault = ""
    result = subprocess.run(command(workdir, fault=fault), cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=600)
    if expected is not None:  # resumed from the newest complete checkpoint, not an older one or scratch
      assert f"resuming from {expected} (env step {start:,})" in result.stdout, result.stdout[-2000:]
    if how == "checkpoint":
      new = [n for n in _leftovers(workdir) if n not in before]  # this process's half-written checkpoint
      mid_write += len(new) == 1 and not os.path.exists(os.path.join(checkpoints(workdir), new[0],
                                                                     checkpointing.MARKER))
    if how == "sigint":
      assert result.returncode == 128 + signal.SIGINT, result.stderr[-2000:]
      line = result.stderr.splitlines()[-1]
      match = re.fullmatch(r"maddpg-train: interrupted: SIGINT at env step ([\d,]+): checkpoint (\S+) written; "
                           r"run the same command to resume", line)
      assert match, line
      assert match.group(2) == checkpointing.latest(checkpoints(workdir))
      assert match.group(2).endswith(f"ckpt-{int(match.group(1).replace(',', ''))}")
    elif how == "finish":
      assert result.returncode == 0, result.stderr[-2000:]
    else:
      assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    if how != "finish":
      survived.append(how)
  assert evaluations(workdir) == evaluations(reference)
  assert_same_final_state(workdir, reference)
  print(f"interruptions survived with nothing lost: {survived}; SIGKILLs between a checkpoint's data and "
        f"its marker: {mid_write}")
  assert survived.count("checkpoint") + survived.count("kill") == 4 and mid_write == 2, (survived, mid_write)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_starting_exits_with_one_line(signum, tmp_path):
  """Before training starts (here: as TensorFlow starts to load, a fault point) there is nothing to
  checkpoint: the program stops at once with one line and status 128 + the signal, not a traceback, and
  writes nothing."""
  workdir = tmp_path / "run"
  fault = f"importing-tensorflow@1:{signal.Signals(signum).name[3:]}"
  result = subprocess.run(command(workdir, quiet=True, fault=fault), cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 128 + signum, result.stderr
  assert result.stderr.splitlines() == [f"maddpg-train: interrupted ({signal.Signals(signum).name}) while nothing "
                                        f"was being written; run the same command to start or resume"]
  assert not workdir.exists()


# ---- a full disk ----------------------------------------------------------------------------------------

def _can_mount():
  """Root with CAP_SYS_ADMIN (bit 21 of the effective capabilities) and a `mount` command."""
  if os.geteuid() != 0 or shutil.which("mount") is None:
    return False
  with open("/proc/self/status") as handle:
    effective = next((line.split()[1] for line in handle if line.startswith("CapEff:")), "0")
  return bool(int(effective, 16) >> 21 & 1)


def _mount_tmpfs(path, size):
  os.makedirs(path)
  done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True,
                        text=True)
  assert done.returncode == 0, f"mount -t tmpfs failed with CAP_SYS_ADMIN: {done.stderr}"


def _limit_file_size(limit):
  """A preexec_fn: writes past `limit` bytes fail with EFBIG (and SIGXFSZ does not kill the process)."""
  import resource

  def limit_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
  return limit_files


@pytest.mark.slow
@pytest.mark.parametrize("how", ["file-size-limit"] + (["tmpfs"] if _can_mount() else []))
def test_full_disk_while_checkpointing_is_one_line_and_keeps_the_previous_checkpoint(how, tmp_path):
  """A run trained to 1,000 steps is resumed to 2,000 with too little room for its next checkpoint:
  RLIMIT_FSIZE below the checkpoint's size (anyone), and where the tests may mount one, a small tmpfs
  filled up."""
  disk = str(tmp_path / "disk")
  mounted = how == "tmpfs"
  if mounted:
    _mount_tmpfs(disk, "8m")
  os.makedirs(disk, exist_ok=True)
  try:
    workdir = os.path.join(disk, "run")
    experiment.Experiment(config(total_steps=1000), workdir, progress=False).run()
    kept = checkpointing.latest(checkpoints(workdir))
    preexec = None
    if mounted:  # room for the small files a resumed run writes, not for its next checkpoint
      stat = os.statvfs(disk)
      with open(os.path.join(disk, "filler"), "wb") as handle:
        handle.write(b"\0" * (stat.f_bavail * stat.f_frsize - 128 * 1024))
    else:  # the next checkpoint's arrays (a bigger replay buffer) are over the limit; everything else under it
      preexec = _limit_file_size(os.path.getsize(os.path.join(kept, "arrays.npz")) + 1024)
    result = subprocess.run(command(workdir, quiet=True, total_steps=2000), cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=300, preexec_fn=preexec)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    reason = "No space left on device" if mounted else "File too large"
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.fullmatch(rf"maddpg-train: error: could not write checkpoint {re.escape(workdir)}/checkpoints/"
                        rf"ckpt-\d+: {reason}; the previous checkpoint is kept", lines[0]), lines[0]
    # Nothing half-written is left, and the previous checkpoint resumes this run.
    assert checkpointing.latest(checkpoints(workdir)) == kept
    assert [name for name in os.listdir(checkpoints(workdir)) if not name.startswith("ckpt-")] == []
    with open(os.path.join(workdir, "config.json")) as handle:  # rewritten (atomically) for the new budget
      assert json.load(handle)["total_steps"] == 2000
    resumed = experiment.Experiment(config(total_steps=2000), workdir, progress=False)
    assert resumed.restore_latest() == kept and resumed.counters.env_steps == 1000
  finally:
    if mounted:
      subprocess.run(["umount", "-l", disk], check=False)


# ---- NaN and infinite losses ----------------------------------------------------------------------------

@pytest.mark.slow
def test_diverging_losses_stop_at_once_naming_step_and_loss_and_keep_the_last_good_checkpoint(tmp_path):
  """An actor learning rate of 1e30 makes the actor's logits overflow after its first update: the second
  update's actor loss is infinite. One environment and a checkpoint every 25 steps (one episode, one
  update) put a checkpoint between the two updates."""
  workdir = str(tmp_path / "run")
  result = subprocess.run(
      [sys.executable, "-m", "maddpg_tf.cli.train", f"--config={LBF}:smoke", "--config.jit_compile=False",
       "--config.num_envs=1", "--config.checkpoint.every_steps=25", "--config.learner.actor_learning_rate=1e30",
       f"--workdir={workdir}", "--quiet"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  kept = os.path.join(workdir, "checkpoints", "ckpt-25")
  assert result.stderr.splitlines() == [
      f"maddpg-train: error: training stopped in updates 2-2 (env step 50): the actor loss is NaN or infinite; "
      f"last good checkpoint: {kept}"]
  assert checkpointing.latest(checkpoints(workdir)) == kept
  assert [step for step, _ in checkpointing.complete_checkpoints(checkpoints(workdir))] == [25]
  arrays, state, _ = checkpointing.load(kept, {"task": "lbf-8x8-2p-2f-coop", "estimator": "gst"})
  assert state["counters"]["updates"] == 1
  assert all(np.all(np.isfinite(value)) for name, value in arrays.items() if value.dtype.kind == "f")
