"""`maddpg-reproduce` on a cluster, on this machine and on 127.0.0.1 only: a local grid's Ray listens on
loopback alone; a grid across a head and a worker node (Ray's `cluster_utils.Cluster`, token authentication
on) lands runs on both nodes, and a worker node killed while its run trains costs nothing but time (the run
resumes on the head from its last complete checkpoint): the local grid's numbers; two grids on one
--results, an unwritable --results and the per-run lock.

The grids: lbf-8x8-2p-2f-coop, STGS-1, seeds 0 and 1, the smoke preset extended to 3,000 env steps (three
checkpoints, so a run can be caught between its first checkpoint and its end), one CPU per node. About
1.5-3 min per grid on a shared 2-core machine.
"""

import contextlib
import csv
import ipaddress
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time

import pytest

from maddpg_tf.grid import runs
from maddpg_tf.run import checkpointing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "lbf-8x8-2p-2f-coop"
SEEDS = (0, 1)
TOTAL_STEPS = 3_000
GRID_FLAGS = ["--what=table1", "--budget=smoke", "--estimators=stgs-1", "--seeds=0,1",
              f"--total_steps={TOTAL_STEPS}", "--quiet", "--bootstrap_reps=200", "--poi_bootstrap_reps=100"]
GRID_TIMEOUT = 480

# Every Ray process of these tests, the test's own included: loopback addresses, token authentication with
# a token of this test session (never ~/.ray's), no usage reports.
TOKEN = secrets.token_hex(32)
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN,
           "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
# A lost node is declared dead after 10 missed 1-second health checks (Ray's default: 5 of 3 s): soon enough
# for the test, and enough missed checks that a live node on a machine busy with other work (a test suite on
# every core beside a grid) is not declared dead, which would add a second retry.
FAST_HEALTH_CHECKS = {"health_check_period_ms": 1000, "health_check_failure_threshold": 10,
                      "health_check_timeout_ms": 3000}


def _names():
  return [f"{TASK}/stgs-1/seed{seed}" for seed in SEEDS]


def _spec(results, seed):
  workdir = runs.workdir_of(results, TASK, "stgs-1", seed)
  return runs.RunSpec(TASK, "stgs-1", seed, workdir, {"total_steps": TOTAL_STEPS})


def _start_grid(results, *extra):
  """The grid's driver as its own process group (so that cleanup reaches every child)."""
  os.makedirs(results, exist_ok=True)
  out = open(os.path.join(os.path.dirname(results), os.path.basename(results) + ".driver.log"), "w")
  return subprocess.Popen([sys.executable, "-m", "maddpg_tf.cli.reproduce", *GRID_FLAGS, f"--results={results}",
                           *extra], cwd=REPO, env=dict(os.environ, **RAY_ENV), stdout=out,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True), out.name


def _stop(process):
  if process.poll() is None:
    with contextlib.suppress(ProcessLookupError):
      os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _wait(condition, timeout, what, process=None):
  """Polls `condition()` (a file appearing and the like) every 0.1 s until it is true; fails after `timeout`."""
  deadline = time.monotonic() + timeout
  while True:
    value = condition()
    if value:
      return value
    assert process is None or process.poll() is None, f"the grid ended before {what}"
    assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
    time.sleep(0.1)


def _attempts(results, seed):
  return runs.read_attempts(runs._attempts_file(results, _spec(results, seed)))


def _evaluations(results, seed):
  with open(os.path.join(_spec(results, seed).workdir, "evaluations.csv")) as handle:
    return handle.read()


def _table1_rows(results):
  with open(os.path.join(results, "table1.csv")) as handle:
    return [{k: v for k, v in row.items() if k != "generated"} for row in csv.DictReader(handle)]


# ---- sockets and logs ------------------------------------------------------------------------------------

def _process_tree(root):
  """`root` and every process below it (from /proc's parent links)."""
  children = {}
  for name in os.listdir("/proc"):
    if name.isdigit():
      try:
        with open(f"/proc/{name}/stat") as handle:
          parent = int(handle.read().rsplit(")", 1)[1].split()[1])
      except (OSError, ValueError, IndexError):
        continue
      children.setdefault(parent, []).append(int(name))
  tree, todo = set(), [root]
  while todo:
    pid = todo.pop()
    if pid not in tree:
      tree.add(pid)
      todo += children.get(pid, [])
  return tree


def _listening_sockets(pids):
  """{(address, port, command)} of the TCP sockets in LISTEN state held by `pids` (/proc/net/tcp, tcp6)."""
  listening = {}
  for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
    with open(table) as handle:
      for line in handle.read().splitlines()[1:]:
        fields = line.split()
        if fields[3] != "0A":  # LISTEN
          continue
        raw, port = fields[1].split(":")
        packed = bytes.fromhex(raw)
        # /proc prints each 32-bit word of the address in host (little-endian) order.
        packed = b"".join(packed[i:i + 4][::-1] for i in range(0, len(packed), 4))
        address = ipaddress.ip_address(packed)
        if address.version == 6 and address.ipv4_mapped:
          address = address.ipv4_mapped
        listening[fields[9]] = (str(address), int(port, 16))
  found = set()
  for pid in pids:
    try:
      links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
      continue
    for link in links:
      inode = link[len("socket:["):-1] if link.startswith("socket:[") else None
      if inode in listening:
        found.add((*listening[inode], _command(pid)))
  return found


def _command(pid):
  try:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
      return handle.read().replace(b"\0", b" ").decode(errors="replace")[:120]
  except OSError:
    return "?"


def _is_loopback(address):
  return ipaddress.ip_address(address).is_loopback


_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d.])")


def _addresses_in_logs(session_dir):
  """{IPv4 address: a log file naming it} over every log of a Ray session."""
  found = {}
  for root, _, files in os.walk(os.path.join(session_dir, "logs")):
    for name in files:
      try:
        with open(os.path.join(root, name), errors="replace") as handle:
          text = handle.read()
      except OSError:
        continue
      for address in _IPV4.findall(text):
        with contextlib.suppress(ValueError):
          ipaddress.ip_address(address)
          found.setdefault(address, name)
  return found


# ---- the grids -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_grid(tmp_path_factory):
  """The undisturbed grid on a local Ray (no --ray_address), with the sockets its Ray listened on."""
  results = str(tmp_path_factory.mktemp("local") / "results")
  process, log = _start_grid(results, "--num_cpus=2")
  try:
    # Ray is up once a run has announced its pid; by then every Ray process of this grid has started.
    _wait(lambda: any(os.path.isfile(runs._pid_file(results, _spec(results, s))) for s in SEEDS), 300,
          "a run to start", process)
    sockets = _listening_sockets(_process_tree(process.pid))
    process.wait(timeout=GRID_TIMEOUT)
  finally:
    _stop(process)
  with open(log) as handle:
    output = handle.read()
  assert process.returncode == 0, output[-3000:]
  with open(os.path.join(results, "grid.json")) as handle:
    manifest = json.load(handle)
  return dict(results=results, sockets=sockets, output=output, manifest=manifest)


@contextlib.contextmanager
def two_node_cluster():
  """A head and one worker node (one CPU each) on 127.0.0.1 with token authentication; shut down always."""
  saved = {name: os.environ.get(name) for name in RAY_ENV}
  os.environ.update(RAY_ENV)
  runs.loopback_only()  # the variable is read when Ray is imported: this process may have imported it
  _reread_ray_auth()
  from ray import cluster_utils
  cluster = None
  try:
    cluster = cluster_utils.Cluster(initialize_head=True, connect=False, head_node_args=dict(
        num_cpus=1, include_dashboard=False, _system_config=FAST_HEALTH_CHECKS))
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster, cluster.head_node, worker
  finally:
    if cluster is not None:
      cluster.shutdown()
    for name, value in saved.items():
      if value is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = value
    _reread_ray_auth()


def _reread_ray_auth():
  """Ray keeps the auth mode it read in this process (its config and a token cache): re-read both from the
  environment, so this process's Ray follows the test's settings (and a later local Ray runs without)."""
  from ray._raylet import AuthenticationTokenLoader, Config  # pylint: disable=g-import-not-at-top
  Config.initialize("")
  AuthenticationTokenLoader.instance().reset_cache()


@pytest.mark.slow
def test_local_grid_listens_on_loopback_only(local_grid):
  sockets = local_grid["sockets"]
  commands = {command for _, _, command in sockets}
  assert any("gcs_server" in c for c in commands) and any("raylet" in c for c in commands), commands
  outside = [(address, port, command) for address, port, command in sockets if not _is_loopback(address)]
  assert outside == [], f"Ray listens beyond loopback: {outside}"
  session = local_grid["manifest"]["ray"]["session_dir"]
  assert os.path.isdir(os.path.join(session, "logs"))
  addresses = _addresses_in_logs(session)
  assert "127.0.0.1" in addresses
  named = {address: name for address, name in addresses.items() if not _is_loopback(address)
           and not address.startswith("0.0.0.")}  # versions like 2.60.0.0 are not addresses of anything
  assert named == {}, f"the session's logs name other addresses: {named}"
  assert local_grid["manifest"]["ray"]["address"].startswith("127.0.0.1:")


@pytest.mark.slow
def test_a_grid_across_two_nodes_survives_losing_one_with_the_local_grids_numbers(local_grid, tmp_path):
  """A grid on a head and a worker node: runs land on both (the worker's first), the worker node is killed
  while its run trains, the run resumes on the head from its last complete checkpoint, and every run's
  numbers and Table 1 equal the local grid's; each run records the nodes it ran on. Fails on a grid that does
  not retry lost runs by default (the run would be reported failed)."""
  results = str(tmp_path / "results")
  with two_node_cluster() as (cluster, head, worker):
    process, log = _start_grid(results, f"--ray_address={cluster.address}")
    try:
      def worker_run_checkpointed():
        for seed in SEEDS:
          attempts = _attempts(results, seed)
          if attempts and attempts[0]["node_id"] == worker.node_id and checkpointing.complete_checkpoints(
              os.path.join(_spec(results, seed).workdir, "checkpoints")):
            return seed, attempts[0]["pid"]
        return None
      seed, pid = _wait(worker_run_checkpointed, 300, "the worker node's run to write a checkpoint", process)
      os.kill(pid, signal.SIGSTOP)  # frozen at once: it cannot finish while the node goes down
      step = runs.checkpoint_step(_spec(results, seed).workdir)
      assert step < TOTAL_STEPS, "the run finished before its node could be killed"
      os.kill(pid, signal.SIGKILL)
      cluster.remove_node(worker, allow_graceful=False)  # its raylet and every other process of the node
      process.wait(timeout=GRID_TIMEOUT)
    finally:
      _stop(process)
  with open(log) as handle:
    output = handle.read()
  assert process.returncode == 0, output[-3000:]
  name = f"{TASK}/stgs-1/seed{seed}"
  retried = [line for line in output.splitlines() if line.startswith("maddpg-reproduce: retried:")]
  assert len(retried) == 1 and name in retried[0], output[-3000:]
  attempts = _attempts(results, seed)
  assert [a["node_id"] for a in attempts] == [worker.node_id, head.node_id]
  workdir = _spec(results, seed).workdir
  assert any(n.startswith("provenance-resume-") for n in os.listdir(workdir)), "started over, not resumed"
  with open(os.path.join(results, "grid.json")) as handle:
    manifest = json.load(handle)["runs"]
  assert manifest[name]["status"] == "finished" and len(manifest[name]["lost"]) == 1
  assert all(manifest[n]["status"] == "finished" for n in _names())
  for other in SEEDS:
    assert _evaluations(results, other) == _evaluations(local_grid["results"], other)
    recorded = [a["node_id"] for a in _attempts(results, other)]
    assert all(a["node_ip"] == "127.0.0.1" for a in _attempts(results, other))
    # The run's own record, and what produced its last start (a resumed run's newest provenance-resume file).
    workdir = _spec(results, other).workdir
    resumes = sorted(n for n in os.listdir(workdir) if n.startswith("provenance-resume-"))
    for name in ("summary.json", (resumes or ["provenance.json"])[-1]):
      with open(os.path.join(workdir, name)) as handle:
        assert [a["node_id"] for a in json.load(handle)["attempts"]] == recorded, name
  assert _table1_rows(results) == _table1_rows(local_grid["results"])


# ---- locks, storage, retry rules (no Ray processes) ------------------------------------------------------

def test_a_second_grid_on_the_same_results_is_refused_with_one_line(tmp_path):
  results = str(tmp_path / "results")
  with runs.grid_lock(results):
    done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", *GRID_FLAGS, f"--results={results}"],
                          cwd=REPO, env=dict(os.environ, **RAY_ENV), capture_output=True, text=True, timeout=120)
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 2 and len(lines) == 1, done.stderr
  assert lines[0].startswith(f"maddpg-reproduce: error: --results {results} is in use by pid {os.getpid()} on ")
  assert "wait for it to end or use another --results" in lines[0]
  assert sorted(os.listdir(results)) == ["grid.lock"]  # no grid.json, no run started


def test_grid_lock_is_reentrant_in_its_process_and_released_after(tmp_path):
  results = str(tmp_path / "r")
  with runs.grid_lock(results):
    with runs.grid_lock(results):  # main() holds it around run_grid
      pass
  with runs.grid_lock(results):  # free again
    pass


def test_a_runs_lock_is_the_workdir_lock_of_maddpg_train(tmp_path):
  from maddpg_tf.run import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "lbf" / "gst" / "seed0")
  with runs.run_lock(workdir):
    with workdir_lib.Workdir(workdir).hold():  # the run's Experiment, in the grid's task: nested
      pass
    assert workdir_lib.locking.holder(os.path.join(workdir, "run.lock"))["pid"] == os.getpid()
  assert workdir_lib.locking.holder(os.path.join(workdir, "run.lock")) is None  # released and emptied


def test_run_lock_refuses_another_thread_naming_the_holder(tmp_path):
  workdir = str(tmp_path / "seed0")
  holding, release = threading.Event(), threading.Event()

  def hold():
    with runs.run_lock(workdir):
      holding.set()
      release.wait(10)

  thread = threading.Thread(target=hold)
  thread.start()
  holding.wait(10)
  with pytest.raises(runs.RunBusy, match=rf"run .*seed0 is in use by pid {os.getpid()} on "):
    with runs.run_lock(workdir, wait_seconds=0):
      pass
  release.set()
  thread.join()
  with runs.run_lock(workdir, wait_seconds=0):  # released with its holder
    pass


def test_run_lock_waits_for_a_holder_that_goes_away(tmp_path):
  workdir = str(tmp_path / "seed0")
  holding, release = threading.Event(), threading.Event()

  def hold():
    with runs.run_lock(workdir):
      holding.set()
      release.wait(10)

  thread = threading.Thread(target=hold)
  thread.start()
  holding.wait(10)
  release.set()  # the lock is free within the waiter's first retry
  with runs.run_lock(workdir, wait_seconds=30):
    pass
  thread.join()


def test_unwritable_results_is_one_line_exit_2():
  with pytest.raises(runs.UsageError, match=r"^--results /proc is not writable from this machine"):
    runs.check_writable("/proc")
  done = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.reproduce", *GRID_FLAGS, "--results=/proc"], cwd=REPO,
                        env=dict(os.environ, **RAY_ENV), capture_output=True, text=True, timeout=120)
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 2 and len(lines) == 1 and "--results /proc is not writable" in lines[0], done.stderr


def test_only_lost_processes_and_nodes_are_retried():
  from ray import exceptions
  assert runs.lost_not_failed(exceptions.WorkerCrashedError())
  assert runs.lost_not_failed(exceptions.NodeDiedError("node 1234 died"))
  assert runs.lost_not_failed(exceptions.LocalRayletDiedError())
  assert not runs.lost_not_failed(exceptions.RayTaskError("train", "Traceback ...", ValueError("bad")))
  assert not runs.lost_not_failed(exceptions.TaskCancelledError())
  assert not runs.lost_not_failed(ValueError("not Ray's"))
  assert runs.DEFAULT_RETRIES == 3


def test_a_local_grid_starts_a_ray_of_its_own_beside_a_started_cluster(monkeypatch):
  """Without --ray_address the grid asks Ray for a new local instance (address="local"): a bare ray.init()
  joins a cluster that `ray start` left on the machine (and refuses num_cpus), as a test's cluster beside
  another test's grid showed."""
  import ray  # pylint: disable=g-import-not-at-top
  calls = []
  monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
  runs._init_ray(None, 2, quiet=True)
  assert calls and calls[0]["address"] == "local" and calls[0]["num_cpus"] == 2
  assert calls[0]["_node_ip_address"] == "127.0.0.1"


@pytest.mark.slow  # a Ray node started and stopped (about 10 s)
def test_a_local_grid_starts_in_a_process_that_imported_ray_before_it(tmp_path):
  """Ray reads RAY_AUTH_MODE once, at import: a process that imported Ray before the grid set the mode kept
  'disabled' while the GCS it started read 'token', so the driver sent no token and was refused (as in a
  pytest worker whose earlier tests imported Ray, or a notebook)."""
  script = ("import ray, ray._raylet\n"
            "assert ray._raylet.get_authentication_mode() == ray._raylet.AuthenticationMode.DISABLED\n"
            "from maddpg_tf.grid import runs\n"
            "ray, where = runs._init_ray(None, 1, quiet=True)\n"
            "print('cpus', ray.cluster_resources()['CPU'])\n"
            "ray.shutdown()\n")
  env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
  env.update(HOME=str(tmp_path), RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=REPO)
  done = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), env=env, capture_output=True,
                        text=True, timeout=180)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.strip() == "cpus 1.0"
