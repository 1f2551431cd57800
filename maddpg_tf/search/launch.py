"""What a search process settles before it loads TensorFlow (keras-tuner imports it): its part in
keras-tuner's chief/worker mode (`role`, from keras-tuner's environment variables) and whether `--dir` can
hold the search (`check_directory`). Bad input fails here, in well under a second.

Several processes or machines: keras-tuner's chief/worker mode, switched on by KERASTUNER_ORACLE_IP,
KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID (a "chief" id serves the oracle and trains nothing;
"tuner0", "tuner1", ... train). Every process runs the same command. A worker that dies mid-trial (its
machine lost, the process killed) is noticed by its missing heartbeats: after `--trial_timeout` seconds
(default 600) the chief hands its trial to the next worker that asks, which resumes its training runs from
their checkpoints; a trial whose worker is lost three times ends as FAILED. Idle workers wait for the last
trials to end (so that a lost one finds a worker), then leave. A killed chief restarted with the same
command continues the search.
"""

import os


def role():
  """'single', 'chief' or 'worker', from keras-tuner's environment variables; ValueError if incomplete."""
  if "KERASTUNER_ORACLE_IP" not in os.environ:
    return "single"
  for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
    if not os.environ.get(name):
      raise ValueError(f"KERASTUNER_ORACLE_IP is set but {name} is not; set all three for a distributed "
                       f"search (chief: KERASTUNER_TUNER_ID=chief, workers: tuner0, tuner1, ...)")
  port = os.environ["KERASTUNER_ORACLE_PORT"]
  if not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"KERASTUNER_ORACLE_PORT must be a port number 1-65535, got {port!r}")
  return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def check_directory(directory):
  """ValueError unless `directory` can hold a search: new, empty, or one with its search.json."""
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise ValueError(f"--dir {directory} is a file, not a directory")
  if os.path.isdir(directory) and set(os.listdir(directory)) - {"search.lock"} and not os.path.isfile(
      os.path.join(directory, "search.json")):
    raise ValueError(f"--dir {directory} exists and holds no maddpg-search search (no search.json); "
                     f"choose a new or empty directory")
