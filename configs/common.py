"""The shared config schema and the paper's settings (NOTES sections 1 and 2).

`get_config(arg)` in `configs/lbf.py` and `configs/rware.py` returns a `ml_collections.ConfigDict`;
`maddpg-train` locks it, so a misspelled `--config.x` override fails. Fields left `None` are filled from
`fidelity` by `maddpg_tf.experiment.resolve_config`:

  fidelity="code": as the authors' code ran (no target networks, evaluation episodes stored in the replay
    buffer, LBF episodes cut at 25 steps with the cut treated as terminal, TAGS period in update calls);
  fidelity="text": standard MADDPG as the paper describes it (Polyak target networks, evaluation kept out
    of the buffer, the env's own episode limit, bootstrapping through time-outs, TAGS period in env steps).
"""

import ml_collections
from ml_collections import config_dict

# Paper Table 1 training budgets (env steps).
TOTAL_STEPS = {
    "lbf-8x8-2p-2f-coop": 5_000_000, "lbf-8x8-2p-2f-2s-coop": 5_000_000,
    "lbf-10x10-3p-3f": 6_000_000, "lbf-10x10-3p-3f-2s": 6_000_000,
    "lbf-15x15-3p-5f": 7_500_000, "lbf-15x15-4p-3f": 7_500_000, "lbf-15x15-4p-5f": 7_500_000,
    "rware-tiny-2ag": 7_500_000, "rware-tiny-4ag": 7_500_000,
}

# The estimator settings of the paper's final runs (NOTES section 2), by environment family. Names are
# the paper's labels; `estimator.name` accepts them and the registry's own names.
PAPER_ESTIMATORS = {
    "lbf": {
        "stgs-1": dict(name="stgs", temperature=1.0),
        "stgs-t": dict(name="stgs", temperature=0.5),
        "tags": dict(name="tags", start_temperature=4.0, end_temperature=0.1, period=3_000_000),
        "grmck": dict(name="grmck", temperature=0.5, num_samples=10),
        "gst": dict(name="gst", temperature=0.7, gap=1.0),
    },
    "rware": {
        "stgs-1": dict(name="stgs", temperature=1.0),
        "stgs-t": dict(name="stgs", temperature=0.6),
        "tags": dict(name="tags", start_temperature=1.0, end_temperature=0.3, period=4_000_000),
        "grmck": dict(name="grmck", temperature=0.7, num_samples=5),
        "gst": dict(name="gst", temperature=0.7, gap=1.0),
    },
}
# Estimators beyond the paper, at defaults chosen by us (not tuned).
EXTRA_ESTIMATORS = {
    "stgs": dict(name="stgs", temperature=1.0),
    "st": dict(name="st", temperature=1.0),
    "gumbel_softmax": dict(name="gumbel_softmax", temperature=1.0),
    "reinmax": dict(name="reinmax", temperature=1.0),
    # Not a sampled estimator: the actor loss as the exact expectation over the agent's own action under
    # the critic (maddpg_tf.learner), the best a pathwise gradient can do; it has no parameters.
    "expected": dict(name="expected"),
}

ESTIMATOR_FIELDS = ("temperature", "num_samples", "gap", "start_temperature", "end_temperature", "period")


ARG_KEYS = ("task", "estimator", "smoke", "short")


def parse_arg(arg):
  """'task=lbf-8x8-2p-2f-coop,estimator=gst,smoke' -> {'task': ..., 'estimator': ..., 'smoke': True}."""
  parsed = {}
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    key = key.strip()
    if key not in ARG_KEYS:
      raise ValueError(f"unknown config argument {key!r} in {arg!r}; allowed: {', '.join(ARG_KEYS)}")
    parsed[key] = value.strip() if sep else True
  return parsed


def estimator_settings(family, label):
  """The paper's settings for estimator `label` (a paper label or a registry name)."""
  table = {**EXTRA_ESTIMATORS, **PAPER_ESTIMATORS[family]}
  if label not in table:
    raise ValueError(f"unknown estimator {label!r}; allowed: {', '.join(sorted(table))}")
  return table[label]


def base_config(task, family, estimator_label, **overrides):
  """The full schema with the authors' settings for `family` ('lbf' or 'rware')."""
  config = ml_collections.ConfigDict()
  config.task = task
  config.seed = 0
  config.total_steps = TOTAL_STEPS.get(task, 5_000_000)
  # Environments stepped together: acting is one batched call and their episodes' updates one compiled
  # block, so per-call costs are shared (LBF 8x8 on 2 cores: 0.48 of the bare env rate with 8, 0.6 with 16,
  # tools/bench_train.py). The ratio of updates to env steps is the paper's for any value; the acting
  # snapshot lags the learner by one block (num_envs x updates_per_episode updates).
  config.num_envs = 16
  # Processes that step them (0: this process). Results are identical for any value; 1 runs the pure-Python
  # envs beside the learner rather than sharing its interpreter lock (maddpg_tf/env_workers.py).
  config.env_workers = 1
  config.fidelity = "code"                  # "code" or "text", see the module docstring
  config.jit_compile = True

  settings = estimator_settings(family, estimator_label)
  config.estimator = ml_collections.ConfigDict()
  config.estimator.label = estimator_label  # the paper's column name, for tables
  config.estimator.name = settings["name"]
  config.estimator.temperature = config_dict.placeholder(float)
  config.estimator.num_samples = config_dict.placeholder(int)
  config.estimator.gap = config_dict.placeholder(float)
  config.estimator.start_temperature = config_dict.placeholder(float)
  config.estimator.end_temperature = config_dict.placeholder(float)
  config.estimator.period = config_dict.placeholder(float)
  config.estimator.schedule = "exponential"
  config.estimator.schedule_unit = config_dict.placeholder(str)  # "updates" or "env_steps"
  for key, value in settings.items():
    if key != "name":
      config.estimator[key] = value

  lr = 3e-4 if family == "lbf" else 5e-4
  config.learner = ml_collections.ConfigDict(dict(
      hidden_sizes=(64, 64), actor_learning_rate=lr, critic_learning_rate=lr, adam_epsilon=1e-3,
      max_grad_norm=1.0, logit_l2=1e-3, gamma=0.95, tau=0.01, standardise_rewards=True))
  config.learner.use_target_networks = config_dict.placeholder(bool)

  config.replay = ml_collections.ConfigDict(dict(capacity=2_000_000, batch_size=512,
                                                 observation_dtype="float16"))

  config.loop = ml_collections.ConfigDict(dict(
      warmup_episodes=400, updates_per_episode=1 if family == "lbf" else 10,
      eval_every_steps=50_000, eval_episodes=100, eval_num_envs=20,
      # Updates run on a second thread while the envs step on, acting with the actors as of the previous
      # update block (a lag of one episode's updates). False: the strictly sequential order of the code.
      asynchronous_updates=True))
  config.loop.episode_limit = config_dict.placeholder(int)
  config.loop.truncation_is_terminal = config_dict.placeholder(bool)
  config.loop.eval_into_replay = config_dict.placeholder(bool)

  config.checkpoint = ml_collections.ConfigDict(dict(every_steps=500_000, keep=2))
  config.log = ml_collections.ConfigDict(dict(every_updates=100, grad_variance_every_steps=1000))
  config.diagnostics = diagnostics_config()

  for key, value in overrides.items():
    set_value(config, key, value)
  return config


def diagnostics_config():
  """Every `exact_gradient_every` updates (0: never), TensorBoard gets `exact_gradient/*`: the estimator's
  logit gradient against the exact one under the current critic, over `num_repeats` samples."""
  return ml_collections.ConfigDict(dict(exact_gradient_every=0, num_repeats=16))


def get_value(config, dotted):
  """config["a"]["b"] for dotted = "a.b"."""
  for part in dotted.split("."):
    config = config[part]
  return config


def set_value(config, dotted, value):
  """config["a"]["b"] = value for dotted = "a.b"."""
  *parents, leaf = dotted.split(".")
  target = get_value(config, ".".join(parents)) if parents else config
  target[leaf] = value


def apply_budget(config, arg):
  """Presets shared by every task: 'smoke' (seconds, for tests) and 'short' (a few minutes)."""
  if arg.get("smoke"):
    config.total_steps = 2_000
    config.num_envs = 4
    config.replay.capacity = 20_000
    config.replay.batch_size = 64
    config.loop.warmup_episodes = 8
    config.loop.eval_every_steps = 1_000
    config.loop.eval_episodes = 4
    config.loop.eval_num_envs = 4
    config.checkpoint.every_steps = 1_000
    config.log.every_updates = 10
  return config
