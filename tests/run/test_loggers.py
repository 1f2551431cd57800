"""`maddpg_tf.run.loggers`' optional loggers: W&B (offline) and MLflow (a file store under tmp_path) on a
real training run of the fake game, read back with each library's own format and client; a resumed run
continues the same W&B / MLflow run without logging a step twice; a missing package is one line. Nothing
here touches the network."""

import glob
import json
import os
import struct
import subprocess
import sys

import pytest

from maddpg_tf import config as config_lib
from maddpg_tf.run import errors, experiment, loggers
from tests.test_loop_on_fake import CHEAP, StopAt, fake_config, make_fake_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_scalars_expand_a_per_agent_vector_into_its_mean_and_one_value_per_agent():
  assert loggers.scalars({"a": 2, "q": [1.0, 3.0, 8.0]}) == {
      "a": 2.0, "q": 4.0, "q/agent_0": 1.0, "q/agent_1": 3.0, "q/agent_2": 8.0}
  assert loggers.scalars({"q": [1.0, 3.0]}, agent_separator="_") == {"q": 2.0, "q_agent_0": 1.0, "q_agent_1": 3.0}


def test_log_to_is_checked_against_the_loggers():
  config = config_lib.get_config("smoke")
  config.log.to = "tensorboard, mlflow,wandb"
  assert config_lib.log_targets(config_lib.resolve(config)) == ("tensorboard", "wandb", "mlflow")
  config.log.to = "tensorboard,wnadb"
  with pytest.raises(config_lib.ConfigError, match=r"^log.to must be a comma-separated list of tensorboard, "
                                                   r"wandb, mlflow, got 'tensorboard,wnadb' \('wnadb' is not one\)$"):
    config_lib.resolve(config)
  config.log.to = "wandb"
  config.log.wandb.mode = "offlin"
  with pytest.raises(config_lib.ConfigError, match=r"^log.wandb.mode must be one of 'online', 'offline', "):
    config_lib.resolve(config)


def test_a_missing_package_names_the_extra(monkeypatch):
  config = config_lib.get_config("smoke")
  config.log.to = "tensorboard,mlflow"
  monkeypatch.setitem(sys.modules, "mlflow", None)  # what find_spec reports for a package not installed
  with pytest.raises(errors.RunError, match=r'^log.to names mlflow, but MLflow is not installed; '
                                           r'pip install "maddpg-tf\[mlflow\]"$'):
    loggers.check_packages(config_lib.resolve(config))


def test_maddpg_train_refuses_a_missing_logger_package_in_one_line_before_writing(tmp_path):
  # The program as installed, with the wandb package made unimportable in its process.
  code = ("import sys; sys.modules['wandb'] = None; "
          "sys.argv = ['maddpg-train', '--config.log.to=tensorboard,wandb', '--workdir=run']; "
          "from maddpg_tf.cli import train; train.run()")
  result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 2
  assert result.stderr.splitlines() == ['maddpg-train: error: log.to names wandb, but wandb is not installed; '
                                        'pip install "maddpg-tf[wandb]"']
  assert os.listdir(tmp_path) == []


# ---- real offline runs -------------------------------------------------------------------------------------

def wandb_records(workdir):
  """The records of every W&B offline run under `workdir`, oldest first, decoded with wandb's own protobuf
  definitions from its transaction log (`run-<id>.wandb`: a 7-byte header, then LevelDB-log blocks of 32 KiB
  whose chunks carry a CRC, a length and a type: full, first, middle or last)."""
  from wandb.proto import wandb_internal_pb2  # pylint: disable=g-import-not-at-top
  runs = []
  for path in sorted(glob.glob(os.path.join(workdir, "wandb", "offline-run-*", "run-*.wandb"))):
    with open(path, "rb") as handle:
      data = handle.read()
    assert data[:4] == b":W&B"
    records, pending, position, block = [], b"", 7, 32768
    while position + 7 <= len(data):
      left = block - position % block
      if left < 7:  # a block's tail too short for a chunk header is padding
        position += left
        continue
      _, length, kind = struct.unpack("<IHB", data[position:position + 7])
      if kind == 0:
        position += left
        continue
      pending += data[position + 7:position + 7 + length]
      position += 7 + length
      if kind in (1, 4):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        records.append(record)
        pending = b""
    runs.append(records)
  return runs


def read_csv_rows(workdir):
  return [(step, round(mean, 6)) for step, mean in loggers.read_evaluations_csv(os.path.join(workdir,
                                                                                             "evaluations.csv"))]


@pytest.fixture
def mlflow_file_store(tmp_path, monkeypatch):
  pytest.importorskip("mlflow")
  # MLflow 3.x keeps its file store only on request; a server or a database needs more than a test has.
  monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
  return (tmp_path / "mlruns").as_uri()


@pytest.mark.slow  # 12 s: two trainings read back through each package; the protocol's own tests stay fast
def test_wandb_offline_and_mlflow_log_the_scalars_config_and_provenance_and_a_resume_continues_each_run(
    tmp_path, mlflow_file_store):
  pytest.importorskip("wandb")
  from mlflow.tracking import MlflowClient  # pylint: disable=g-import-not-at-top
  overrides = {**CHEAP, "log.to": "tensorboard,wandb,mlflow", "log.wandb.mode": "offline",
               "log.wandb.project": "test-project", "log.mlflow.tracking_uri": mlflow_file_store,
               "log.mlflow.experiment": "fake-game"}
  workdir = str(tmp_path / "seed0")
  holder = {}
  with pytest.raises(StopAt.Died):  # dies at env step 350, after its checkpoint at 300
    with experiment.Experiment(fake_config(**overrides), workdir, progress=False, make_env=make_fake_env,
                               observers=[StopAt(lambda: holder["exp"].counters, 350)]) as exp:
      holder["exp"] = exp
      exp.run()
  with open(os.path.join(workdir, "mlflow_run.json")) as handle:
    died = json.load(handle)
  assert 300 <= died["last_step"] <= 360
  with experiment.Experiment(fake_config(**overrides), workdir, progress=False, make_env=make_fake_env) as exp:
    exp.run()
  rows = read_csv_rows(workdir)
  assert [step for step, _ in rows] == [0, 100, 200, 300, 400, 500, 600]

  # MLflow, read with its client: one run, every evaluation once at its step, the config as params.
  client = MlflowClient(tracking_uri=mlflow_file_store)
  (run,) = client.search_runs([client.get_experiment_by_name("fake-game").experiment_id])
  assert run.info.run_id == died["run_id"] and run.info.status == "FINISHED" and run.info.run_name == "seed0"
  history = sorted((m.step, round(m.value, 6)) for m in client.get_metric_history(run.info.run_id,
                                                                                  "eval/mean_return"))
  assert history == rows
  train_steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/critic_loss")]
  assert len(train_steps) == len(set(train_steps)) > 0  # nothing twice across the resume
  per_agent = client.get_metric_history(run.info.run_id, "train/critic_loss_agent_1")
  assert sorted(m.step for m in per_agent) == sorted(train_steps)
  assert run.data.params["seed"] == "0" and run.data.params["log.mlflow.experiment"] == "fake-game"
  assert run.data.params["learner.hidden_sizes"] == "[64, 64]"
  artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
  assert artifacts == {"config.json", "provenance.json", "provenance-resume-1.json", "evaluations.csv"}
  provenance = json.loads(open(client.download_artifacts(run.info.run_id, "provenance.json",
                                                         str(tmp_path / "dl"))).read())
  assert provenance["task"] == exp.task.name and provenance["seed"] == 0

  # W&B offline: two offline runs of one run id (`wandb sync` makes them one), the evaluations once each.
  runs = wandb_records(workdir)
  assert len(runs) == 2
  with open(os.path.join(workdir, "wandb_run.json")) as handle:
    run_id = json.load(handle)["id"]
  evaluations, config = [], {}
  for records in runs:
    for record in records:
      kind = record.WhichOneof("record_type")
      if kind == "run":
        assert (record.run.run_id, record.run.project, record.run.display_name) == (run_id, "test-project",
                                                                                    "seed0")
        config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
      elif kind == "history":
        # wandb writes a key as `key` or, split at dots, as `nested_key`
        values = {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
        if "eval/mean_return" in values:
          evaluations.append((values["env_step"], round(values["eval/mean_return"], 6)))
  assert evaluations == rows
  assert config["seed"] == 0 and config["log"]["wandb"]["mode"] == "offline"
  assert config["provenance"]["task"] == exp.task.name
  saved = {os.path.basename(p) for p in glob.glob(os.path.join(workdir, "wandb", "offline-run-*", "files", "*"))}
  assert {"provenance.json", "evaluations.csv"} <= saved


def test_a_logger_that_cannot_start_is_one_line(tmp_path, monkeypatch):
  pytest.importorskip("mlflow")
  monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # MLflow 3 then refuses a file store
  overrides = {**CHEAP, "log.to": "mlflow", "log.mlflow.tracking_uri": (tmp_path / "mlruns").as_uri()}
  with experiment.Experiment(fake_config(**overrides), str(tmp_path / "run"), progress=False,
                             make_env=make_fake_env) as exp:
    with pytest.raises(errors.RunError, match=r"^log.to mlflow: could not start its run: .*filesystem") as info:
      exp.run()
  assert "\n" not in str(info.value)
