"""The run config: its schema, every default, the paper's settings and the named budgets (one home).

`get_config("task=...,estimator=...,short")` returns a `ml_collections.ConfigDict` (this file is itself a
config file: `maddpg-train --config=maddpg_tf/config.py:short`; `configs/*.py` are presets that choose a
default task). `maddpg-train` locks it, so a misspelled `--config.x` override fails. Fields left `None` are
filled from `fidelity` by `resolve`:

  fidelity="code": as the authors' code ran (no target networks, evaluation episodes stored in the replay
    buffer, LBF episodes cut at 25 steps with the cut treated as terminal, TAGS period in update calls);
  fidelity="text": standard MADDPG as the paper describes it (Polyak target networks, evaluation kept out
    of the buffer, the env's own episode limit, bootstrapping through time-outs, TAGS period in env steps).
"""

import ast
import dataclasses
import math

import ml_collections
from ml_collections import config_dict

from maddpg_tf import extras
from maddpg_tf.agent.hyperparameters import ConfigError, LearnerConfig  # noqa: F401  (their home: the agent)
from maddpg_tf.envs import mpe as mpe_tasks
from maddpg_tf.envs import tasks as tasks_lib
from maddpg_tf.envs.vector import LBF_FOOD_RULES


# The settings `fidelity` chooses: (value under "code", value under "text").
FIDELITY_DEFAULTS = {
    "learner.use_target_networks": (False, True),
    "loop.truncation_is_terminal": (True, False),
    "loop.eval_into_replay": (True, False),
    "estimator.schedule_unit": ("updates", "env_steps"),
}

MPE_LEARNING_RATE = 1e-3

# What differs between environment families in the authors' code (maddpg_tf/FIDELITY.md: Settings), and ours for the
# families the paper did not run.
# The paper's families also step, by default, on the fast backends (the same numbers, 30-200x the
# packages' speed), in this process: a fast vector step (about 20 us for 16 LBF envs) costs less than a
# message to a worker process.
FAMILY_SETTINGS = {
    "lbf": {"learner.actor_learning_rate": 3e-4, "learner.critic_learning_rate": 3e-4,
            "loop.updates_per_episode": 1, "env_backend": "fast", "env_workers": 0},
    "rware": {"learner.actor_learning_rate": 5e-4, "learner.critic_learning_rate": 5e-4,
              "loop.updates_per_episode": 10, "env_backend": "fast", "env_workers": 0},
    # Ours, not the paper's (it has no MPE runs), untuned (configs/mpe.py has what we measured); every other learner value is LearnerConfig's (the authors' LBF settings, whose
    # 25-step episodes are MPE's length). 2M steps as the MARL benchmarks' MPE runs (EPyMARL); a 1M-step
    # buffer as Lowe et al.'s MADDPG; float32 observations (MPE's positions are not exact in float16).
    # Envs in this process until env workers build their probe with the task's vector class.
    "mpe": {"learner.actor_learning_rate": MPE_LEARNING_RATE, "learner.critic_learning_rate": MPE_LEARNING_RATE,
            "loop.updates_per_episode": 1, "total_steps": 2_000_000, "replay.capacity": 1_000_000,
            "replay.observation_dtype": "float32", "env_workers": 0},
    # A user's PettingZoo env: LearnerConfig's values (the authors' LBF settings) and float32 observations
    # (any Box); override with --config.*.
    "pettingzoo": {"replay.observation_dtype": "float32", "env_workers": 0},
}

# The authors' LBF update rate, one update per 25-step episode: a user's PettingZoo env gets one update per
# this many steps of its episode cut-off (`loop.updates_per_episode` left None; configs/pettingzoo.py).
STEPS_PER_UPDATE = 25

# Paper Table 1 training budgets (env steps).
TOTAL_STEPS = {
    "lbf-8x8-2p-2f-coop": 5_000_000, "lbf-8x8-2p-2f-2s-coop": 5_000_000,
    "lbf-10x10-3p-3f": 6_000_000, "lbf-10x10-3p-3f-2s": 6_000_000,
    "lbf-15x15-3p-5f": 7_500_000, "lbf-15x15-4p-3f": 7_500_000, "lbf-15x15-4p-5f": 7_500_000,
    "rware-tiny-2ag": 7_500_000, "rware-tiny-4ag": 7_500_000,
}

# The estimator settings of the paper's final runs (maddpg_tf/FIDELITY.md: Estimator settings), by environment family. Names are
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
# Families the paper did not run take another family's estimator settings (ours, not tuned for them): MPE
# and a user's PettingZoo env take LBF's, whose 25-step episodes are MPE's length.
ESTIMATOR_FAMILY = {"mpe": "lbf", "pettingzoo": "lbf"}
# Estimators beyond the paper, at defaults chosen by us (not tuned).
EXTRA_ESTIMATORS = {
    "stgs": dict(name="stgs", temperature=1.0),
    "st": dict(name="st", temperature=1.0),
    "gumbel_softmax": dict(name="gumbel_softmax", temperature=1.0),
    "reinmax": dict(name="reinmax", temperature=1.0),
    # Not a sampled estimator: the actor loss as the exact expectation over the agent's own action under
    # the critic (estimators/expected.py), the best a pathwise gradient can do; it has no parameters.
    "expected": dict(name="expected"),
    # RLOO (Kool et al. 2019): the unbiased score-function gradient with K = 4 samples and the leave-one-out
    # baseline (K is ours, not tuned). Like `expected` it evaluates the critic at several actions
    # (estimators/rloo.py).
    "rloo": dict(name="rloo", num_samples=4),
    # ZGR (Shekhovtsov 2023): temperature-free, no parameters.
    "zgr": dict(name="zgr"),
    # ReinMax-Rao and ReinMax-CV (Wang and Bui 2026) at their authors' temperature 1 and CV weight eta = 0.7
    # (estimators/reinmax_rao.py, reinmax_cv.py), but K = 10 conditional Gumbels, not their 100: K = 100
    # costs 30 ms per update of three 512 x 6 actors on 2 cores (ReinMax: 0.75 ms, K = 10: 5 ms), and on
    # the lab's quadratic problem K = 10 keeps most of the variance reduction (0.54, K = 100: 0.50,
    # ReinMax 0.94). Ours, not tuned.
    "reinmax-rao": dict(name="reinmax-rao", temperature=1.0, num_samples=10),
    "reinmax-cv": dict(name="reinmax-cv", temperature=1.0, num_samples=10, cv_weight=0.7),
}

ESTIMATOR_FIELDS = ("temperature", "num_samples", "gap", "cv_weight", "start_temperature", "end_temperature",
                    "period")


# LBF_FOOD_RULES (maddpg_tf.envs.vector): "v2", the lbforaging the paper ran (a non-coop food's level below
# L); "v3", lbforaging 2.0.0's (up to L inclusive: about a quarter of the foods then need several agents,
# and fixed policies score 0.57-0.68x the v2 rule). The paper's task names default to "v2"; a gymnasium id
# keeps meaning the installed package ("v3").


def default_food_rule(task):
  """The food rule a task runs by default: "v2" for the paper's LBF task names, "v3" for a gymnasium id of
  the installed lbforaging, None for families without one."""
  if task.family != "lbf":
    return None
  return "v2" if task.name in tasks_lib.TASKS else "v3"


def env_settings(config):
  """The keyword arguments of `maddpg_tf.envs.builder.make` that a resolved config sets (one home)."""
  return {"episode_limit": config.loop.episode_limit, "lbf_food_rule": config.lbf_food_rule or "v3",
          "backend": config.env_backend}


def upgrade(config_dict_):
  """A config dict written by an older version, with the keys it predates set to the values its run
  used (those runs had no other choice): the one place that knows the old formats. Returns a new dict."""
  old = {key: (dict(value) if isinstance(value, dict) else value) for key, value in config_dict_.items()}
  task = None
  try:
    task = tasks_lib.resolve_task(old.get("task"))
  except (ValueError, TypeError):
    pass
  old.setdefault("env_workers", 0)                  # before env workers
  old.setdefault("env_backend", "reference")        # before the fast backends
  if isinstance(old.get("checkpoint"), dict):
    old["checkpoint"].setdefault("keep_best", False)  # before best policies were kept
  if isinstance(old.get("log"), dict):              # before videos
    old["log"].setdefault("video_every_evals", 0)
    old["log"].setdefault("video_max_frames", 100)
    for key, value in logger_config().items():     # before the optional loggers
      old["log"].setdefault(key, value.to_dict() if hasattr(value, "to_dict") else value)
  old.setdefault("diagnostics", diagnostics_config().to_dict())  # before diagnostics
  old.setdefault("device", device_config().to_dict())  # before the device settings (TensorFlow's defaults)
  if isinstance(old.get("estimator"), dict):
    old["estimator"].setdefault("cv_weight", None)  # before reinmax-cv's control-variate weight
  if isinstance(old.get("learner"), dict):
    old["learner"].setdefault("share_parameters", False)  # before parameter sharing
  if task is not None:  # before the rule was chosen: 2.0.0's, which for coop tasks is the same env as v2's
    old.setdefault("lbf_food_rule", "v3" if tasks_lib.food_rule_matters(task) else default_food_rule(task))
  return old


ARG_KEYS = ("task", "env", "estimator", "smoke", "short")
DEFAULT_TASK = "lbf-8x8-2p-2f-coop"


def parse_arg(arg):
  """'task=lbf-8x8-2p-2f-coop,estimator=gst,smoke' -> {'task': ..., 'estimator': ..., 'smoke': True}.
  `env=module:factory` names a user's PettingZoo env factory (the task is then its import path)."""
  parsed = {}
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    key = key.strip()
    if key not in ARG_KEYS:
      raise ValueError(f"unknown config argument {key!r} in {arg!r}; allowed: {', '.join(ARG_KEYS)}")
    parsed[key] = value.strip() if sep else True
  if "env" in parsed:
    env = parsed.pop("env")
    if not isinstance(env, str) or env.count(":") != 1:
      raise ValueError(f"config argument env must be an import path module:factory, got {env!r}")
    if "task" in parsed:
      raise ValueError(f"config arguments task={parsed['task']!r} and env={env!r} both name the task; give one")
    parsed["task"] = env
  return parsed


def is_estimator_path(label):
  """Whether estimator `label` names a user's estimator by import path (module.path:ClassName)."""
  return isinstance(label, str) and ":" in label


def estimator_settings(family, label):
  """The paper's settings for estimator `label` (a paper label or a registry name)."""
  if is_estimator_path(label):  # a user's estimator: no preset settings
    return dict(name=label)
  family = ESTIMATOR_FAMILY.get(family, family)
  table = {**EXTRA_ESTIMATORS, **PAPER_ESTIMATORS.get(family, PAPER_ESTIMATORS["lbf"])}
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
  # snapshot lags the learner by one block (min(16, num_envs x updates_per_episode) updates).
  config.num_envs = 16
  # Processes that step them (0: this process). Results are identical for any value; 1 runs the pure-Python
  # envs beside the learner rather than sharing its interpreter lock (maddpg_tf/envs/workers.py).
  config.env_workers = 1
  # Where the env dynamics run: "fast" (numba re-implementations of lbforaging/rware, the same Steps bit for
  # bit; maddpg_tf/envs/fast_*.py) or "reference" (the packages' own envs). Changes no number.
  config.env_backend = "reference"
  config.fidelity = "code"                  # "code" or "text", see the module docstring
  # LBF's food-level rule (LBF_FOOD_RULES; None: the task's default, `default_food_rule`). RWARE, MPE and
  # PettingZoo envs have none: it stays None there.
  config.lbf_food_rule = config_dict.placeholder(str)
  config.jit_compile = True

  settings = estimator_settings(family, estimator_label)
  config.estimator = ml_collections.ConfigDict()
  config.estimator.label = estimator_label  # the paper's column name, for tables
  config.estimator.name = settings["name"]
  config.estimator.temperature = config_dict.placeholder(float)
  config.estimator.num_samples = config_dict.placeholder(int)
  config.estimator.gap = config_dict.placeholder(float)
  config.estimator.cv_weight = config_dict.placeholder(float)  # ReinMax-CV's eta
  config.estimator.start_temperature = config_dict.placeholder(float)
  config.estimator.end_temperature = config_dict.placeholder(float)
  config.estimator.period = config_dict.placeholder(float)
  config.estimator.schedule = "exponential"
  # Parameters of a user's estimator (estimator.name=module.path:ClassName) beyond the fields above, as
  # "name=value,..." (values are Python literals): the locked config has no key for them.
  config.estimator.options = ""
  config.estimator.schedule_unit = config_dict.placeholder(str)  # "updates" or "env_steps"
  for key, value in settings.items():
    if key != "name":
      config.estimator[key] = value

  config.learner = ml_collections.ConfigDict(
      {k: v for k, v in dataclasses.asdict(LearnerConfig()).items() if k != "use_target_networks"})
  config.learner.use_target_networks = config_dict.placeholder(bool)

  config.replay = ml_collections.ConfigDict(dict(capacity=2_000_000, batch_size=512,
                                                 observation_dtype="float16"))

  config.loop = ml_collections.ConfigDict(dict(
      warmup_episodes=400, updates_per_episode=1,
      eval_every_steps=50_000, eval_episodes=100, eval_num_envs=20,
      # Updates run on a second thread while the envs step on, acting with the actors as of the previous
      # update block (a lag of up to 16 updates: one block). False: the strictly sequential order of the code.
      asynchronous_updates=True))
  config.loop.episode_limit = config_dict.placeholder(int)
  if family == "pettingzoo":
    # A user's env may have long episodes: None is filled by `resolve` from the episode cut-off, one update
    # per STEPS_PER_UPDATE steps (LBF's rate), not LBF's one per episode (a 200-step env got 8x fewer).
    del config.loop["updates_per_episode"]
    config.loop.updates_per_episode = config_dict.placeholder(int)
  config.loop.truncation_is_terminal = config_dict.placeholder(bool)
  config.loop.eval_into_replay = config_dict.placeholder(bool)

  # keep_best: the learner at the best evaluation so far in <workdir>/best/ (a few MB; maddpg-evaluate --best,
  # the absolute metric). It changes no number.
  config.checkpoint = ml_collections.ConfigDict(dict(every_steps=500_000, keep=2, keep_best=True))
  # video_every_evals: every N-th evaluation also draws one episode into TensorBoard (`eval/episode`,
  # at most video_max_frames frames; 0: never). It changes no number (maddpg_tf/evaluation_video.py).
  config.log = ml_collections.ConfigDict(dict(every_updates=100, grad_variance_every_steps=1000,
                                              video_every_evals=0, video_max_frames=100))
  config.log.update(logger_config())
  config.diagnostics = diagnostics_config()
  config.device = device_config()

  for key, value in {**FAMILY_SETTINGS.get(family, {}), **overrides}.items():
    set_value(config, key, value)
  return config


# `log.to`: where the run's scalars go besides TensorBoard and evaluations.csv (always written: checkpoints
# rewind TensorBoard, and the tables read the CSV): a comma-separated list of LOGGERS. The optional ones
# import their package only when listed (maddpg_tf/run/loggers.py) and are extras of the install.
LOGGERS = ("tensorboard", "wandb", "mlflow")


def logger_config():
  """`log.to` and the settings of the optional loggers. W&B: `project`, `entity` (None: the account's
  default), `mode` (online, offline: files only, synced later with `wandb sync`; disabled). MLflow:
  `tracking_uri` (None: MLflow's own default, e.g. $MLFLOW_TRACKING_URI) and the `experiment` name."""
  wandb = ml_collections.ConfigDict(dict(project="maddpg-tf", mode="online"))
  wandb.entity = config_dict.placeholder(str)
  mlflow = ml_collections.ConfigDict(dict(experiment="maddpg-tf"))
  mlflow.tracking_uri = config_dict.placeholder(str)
  return dict(to="tensorboard", wandb=wandb, mlflow=mlflow)


def log_targets(config):
  """The loggers `config.log.to` names, in LOGGERS' order (ConfigError naming a bad item)."""
  names = [part.strip() for part in config.log.to.split(",")]
  for name in names:
    _require(name in LOGGERS, f"log.to must be a comma-separated list of {', '.join(LOGGERS)}, got "
                              f"{config.log.to!r} ({name!r} is not one)")
  return tuple(name for name in LOGGERS if name in names)


def diagnostics_config():
  """Every `exact_gradient_every` updates (0: never), TensorBoard gets `exact_gradient/*`: the estimator's
  logit gradient against the exact one under the current critic, over `num_repeats` samples."""
  return ml_collections.ConfigDict(dict(exact_gradient_every=0, num_repeats=16))


def device_config():
  """`device`: where TensorFlow computes, applied once per process before its first op
  (maddpg_tf/run/devices.py). With no GPU visible every value is accepted and does nothing.

  memory_growth: each GPU's memory is taken as the run needs it, not nearly all of it at start (TensorFlow's
    default), so that other processes can share the GPU;
  memory_limit_mb: at most this many MB of each GPU (None: no limit); memory_fraction: at most this share
    of each GPU's memory, less 1 GiB for the process's CUDA context (None: no limit; `maddpg-reproduce
    --gpus_per_run` sets it). Give one of the two; with either, memory_growth does not apply;
  visible_gpus: "all", "none" (train on the CPU), or the indices of the GPUs to use, e.g. "0" or "0,1".
  No number of a run depends on them (they are not part of a run's identity)."""
  device = ml_collections.ConfigDict(dict(memory_growth=True, visible_gpus="all"))
  device.memory_limit_mb = config_dict.placeholder(int)
  device.memory_fraction = config_dict.placeholder(float)
  return device


def visible_gpus(text):
  """`device.visible_gpus` read: None for "all", () for "none", else the GPU indices as a tuple of ints
  (ConfigError naming the value otherwise)."""
  words = [part.strip() for part in str(text).split(",")]
  if words in (["all"], ["none"]):
    return None if words == ["all"] else ()
  if not all(word.isdigit() for word in words) or len(set(words)) != len(words):
    raise ConfigError(f"device.visible_gpus must be 'all', 'none' or distinct GPU indices such as '0' or "
                      f"'0,1', got {text!r}")
  return tuple(int(word) for word in words)


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


# Named budgets. `smoke`: for tests, about half a minute on 2 cores (measured 25 CPU seconds, mostly TensorFlow's
# start and the update's compile). `short`: the default job, about 3 minutes on 2 cores (README).
BUDGETS = {
    "smoke": {"total_steps": 2_000, "num_envs": 4, "replay.capacity": 20_000, "replay.batch_size": 64,
              "loop.warmup_episodes": 8, "loop.eval_every_steps": 1_000, "loop.eval_episodes": 4,
              "loop.eval_num_envs": 4, "checkpoint.every_steps": 1_000, "log.every_updates": 10},
    "short": {"total_steps": 150_000, "loop.warmup_episodes": 100, "loop.updates_per_episode": 4,
              "loop.eval_every_steps": 10_000, "loop.eval_episodes": 40, "checkpoint.every_steps": 50_000},
}
# Where a family needs other values: RWARE's 500-step episodes (smoke: cut at 100 steps; short: 300k steps,
# 20 warm-up episodes, the paper's 10 updates per episode, 20 evaluation episodes).
FAMILY_BUDGETS = {
    ("rware", "smoke"): {"loop.warmup_episodes": 2, "loop.updates_per_episode": 2, "loop.episode_limit": 100},
    ("rware", "short"): {"total_steps": 300_000, "loop.warmup_episodes": 20, "loop.updates_per_episode": 10,
                         "loop.eval_every_steps": 25_000, "loop.eval_episodes": 20},
}


def apply_budget(config, arg, family=None):
  """Applies the budget named in `arg` (`smoke` or `short`), if any, for the task's family."""
  family = family or tasks_lib.resolve_task(config.task).family
  for budget in ("smoke", "short"):
    if arg.get(budget):
      for key, value in {**BUDGETS[budget], **FAMILY_BUDGETS.get((family, budget), {})}.items():
        set_value(config, key, value)
  return config


def get_config(arg=None, default_task=DEFAULT_TASK):
  """The config of 'task=<name>,estimator=<label>[,smoke|,short]' (the paper's settings for the task's
  family, then the budget). An unknown task or estimator raises ConfigError naming it."""
  arg = parse_arg(arg)
  task = arg.get("task", default_task)
  try:
    family = tasks_lib.resolve_task(task).family
  except ValueError as error:
    raise ConfigError(str(error)) from None
  config = base_config(task, family, arg.get("estimator", "gst"))
  return apply_budget(config, arg, family)


# ---- the schema: every key's type and allowed values, in one table ---------------------------------------

@dataclasses.dataclass(frozen=True)
class Field:
  """One config key: its kind ("int", "float", "bool", "str", "sizes": a tuple of integers >= 1), its
  bounds (`low`/`high`, inclusive unless `open_low`), its `choices`, and whether None ("the default of the
  task or the fidelity") is allowed. `allowed()` says it in words, for messages."""
  kind: str
  low: float | None = None
  high: float | None = None
  open_low: bool = False
  choices: tuple | None = None
  optional: bool = False

  def allowed(self):
    if self.choices is not None:
      text = "one of " + ", ".join(repr(c) for c in self.choices)
    elif self.kind == "bool":
      text = "True or False"
    elif self.kind == "sizes":
      text = "a list of integers >= 1, e.g. [64, 64]"
    else:
      noun = {"int": "an integer", "float": "a number", "str": "a string"}[self.kind]
      if self.low is not None and self.high is not None:
        text = f"{noun} in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}]"
      elif self.low is not None:
        text = f"{noun} {'>' if self.open_low else '>='} {self.low:g}"
      else:
        text = noun
    return text + (" (or None: the default)" if self.optional else "")

  def accepts(self, value):
    """Whether `value` is of this kind and within bounds (None only where optional)."""
    if value is None:
      return self.optional
    if self.kind == "bool":
      ok = isinstance(value, bool)
    elif self.kind == "int":
      ok = isinstance(value, int) and not isinstance(value, bool)
    elif self.kind == "float":
      ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif self.kind == "str":
      ok = isinstance(value, str)
    else:  # sizes
      return (isinstance(value, (list, tuple)) and len(value) > 0
              and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))
    if not ok:
      return False
    if self.choices is not None:
      return value in self.choices
    if self.low is not None and (value <= self.low if self.open_low else value < self.low):
      return False
    return self.high is None or value <= self.high


def _positive(kind="float", **more):
  return Field(kind, low=0, open_low=True, **more)


SCHEMA = {
    "task": Field("str"),
    "seed": Field("int", low=0, high=2**31 - 1),
    "total_steps": Field("int", low=0),
    "num_envs": Field("int", low=1),
    "env_workers": Field("int", low=0),              # and <= num_envs
    "env_backend": Field("str", choices=("fast", "reference")),
    "fidelity": Field("str", choices=("code", "text")),
    "jit_compile": Field("bool"),
    "lbf_food_rule": Field("str", choices=tuple(LBF_FOOD_RULES), optional=True),  # LBF tasks only
    "estimator.label": Field("str"),
    "estimator.name": Field("str"),                  # the registry checks it and its parameters
    "estimator.temperature": _positive(optional=True),
    "estimator.num_samples": Field("int", low=1, optional=True),
    "estimator.gap": _positive(optional=True),
    "estimator.cv_weight": Field("float", low=0, optional=True),
    "estimator.start_temperature": _positive(optional=True),
    "estimator.end_temperature": _positive(optional=True),
    "estimator.period": _positive(optional=True),
    "estimator.schedule": Field("str"),              # the schedule's name: the estimator checks it
    "estimator.options": Field("str"),
    "estimator.schedule_unit": Field("str", choices=("updates", "env_steps"), optional=True),
    "learner.hidden_sizes": Field("sizes"),
    "learner.actor_learning_rate": _positive(),
    "learner.critic_learning_rate": _positive(),
    "learner.adam_epsilon": _positive(),
    "learner.max_grad_norm": _positive(),
    "learner.logit_l2": Field("float", low=0),
    "learner.gamma": Field("float", low=0, high=1),
    "learner.tau": Field("float", low=0, high=1, open_low=True),
    "learner.use_target_networks": Field("bool", optional=True),
    "learner.standardise_rewards": Field("bool"),
    "learner.share_parameters": Field("bool"),       # part of the run's identity and its checkpoints'
    "replay.capacity": Field("int", low=1),          # and >= replay.batch_size
    "replay.batch_size": Field("int", low=1),
    "replay.observation_dtype": Field("str", choices=("float16", "float32")),
    "loop.warmup_episodes": Field("int", low=0),
    "loop.updates_per_episode": Field("int", low=1, optional=True),  # None: from the cut-off (PettingZoo)
    "loop.eval_every_steps": Field("int", low=1),
    "loop.eval_episodes": Field("int", low=1),
    "loop.eval_num_envs": Field("int", low=1),
    "loop.asynchronous_updates": Field("bool"),
    "loop.episode_limit": Field("int", low=1, optional=True),  # and <= the env's own limit
    "loop.truncation_is_terminal": Field("bool", optional=True),
    "loop.eval_into_replay": Field("bool", optional=True),
    "checkpoint.every_steps": Field("int", low=1),
    "checkpoint.keep": Field("int", low=1),
    "checkpoint.keep_best": Field("bool"),
    "log.every_updates": Field("int", low=1),
    "log.grad_variance_every_steps": Field("int", low=1),
    "log.video_every_evals": Field("int", low=0),
    "log.video_max_frames": Field("int", low=1),
    "log.to": Field("str"),                          # a list of LOGGERS: log_targets checks it
    "log.wandb.project": Field("str"),
    "log.wandb.entity": Field("str", optional=True),
    "log.wandb.mode": Field("str", choices=("online", "offline", "disabled")),
    "log.mlflow.tracking_uri": Field("str", optional=True),
    "log.mlflow.experiment": Field("str"),
    "diagnostics.exact_gradient_every": Field("int", low=0),
    "diagnostics.num_repeats": Field("int", low=2),
    "device.memory_growth": Field("bool"),
    "device.memory_limit_mb": Field("int", low=1, optional=True),
    "device.memory_fraction": Field("float", low=0, high=1, open_low=True, optional=True),
    "device.visible_gpus": Field("str"),             # "all", "none" or indices: visible_gpus checks it
}


def leaves(tree, prefix=""):
  """(dotted key, value) of every leaf of a nested dict, e.g. ("learner.gamma", 0.95)."""
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def _names_under(parent):
  """The keys and groups directly under `parent` ('' for the top), groups as 'name.*'."""
  names = set()
  for key in SCHEMA:
    if parent and not key.startswith(parent + "."):
      continue
    head, _, rest = key[len(parent) + 1 if parent else 0:].partition(".")
    names.add(f"{head}.*" if rest else head)
  return sorted(names)


def check_schema(config_dict_):
  """ConfigError for the first key of a plain config dict that the schema does not know, lacks, or whose
  value it does not allow; the message names the key, the value and what is allowed."""
  given = dict(leaves(config_dict_))
  for key in given:
    if key not in SCHEMA:
      parent = key.rpartition(".")[0]
      while parent and not any(k.startswith(parent + ".") for k in SCHEMA):  # a misspelled group
        parent = parent.rpartition(".")[0]
      raise ConfigError(f"unknown config key {key!r}; allowed{' under ' + parent if parent else ''}: "
                        f"{', '.join(_names_under(parent))}")
  for key, field in SCHEMA.items():
    if key not in given:
      raise ConfigError(f"config key {key!r} is missing ({field.allowed()})")
    if not field.accepts(given[key]):
      raise ConfigError(f"{key} must be {field.allowed()}, got {given[key]!r}")


def resolve(config):
  """A concrete, validated copy of `config`: `None` fields filled from `fidelity`, every value checked
  against `SCHEMA` and the task (ConfigError naming the first bad one). The estimator's parameters are
  checked by the estimator registry, which `maddpg_tf.run.validation.resolve_config` adds."""
  tree = upgrade(config.to_dict() if hasattr(config, "to_dict") else dict(config))
  learner = tree.get("learner")
  if isinstance(learner, dict) and isinstance(learner.get("hidden_sizes"), list):
    learner["hidden_sizes"] = tuple(learner["hidden_sizes"])  # JSON has no tuples
  check_schema(tree)
  config = ml_collections.ConfigDict(tree)
  try:
    task = tasks_lib.resolve_task(config.task)
  except ValueError as error:
    raise ConfigError(str(error)) from None
  column = 0 if config.fidelity == "code" else 1
  for key, values in FIDELITY_DEFAULTS.items():
    if get_value(config, key) is None:
      set_value(config, key, values[column])
  if config.loop.episode_limit is None:
    config.loop.episode_limit = task.code_cutoff if config.fidelity == "code" else task.env_episode_limit
  # A user env that ends its own episodes and declares no limit: the run's cut-off must be given.
  _require(config.loop.episode_limit is not None,
           f"env {task.name!r} declares no episode limit: give --config.loop.episode_limit=N (episodes are cut "
           f"after N steps), or give the env an integer attribute max_cycles, max_episode_steps or max_steps")
  if config.loop.updates_per_episode is None:
    config.loop.updates_per_episode = max(1, math.ceil(config.loop.episode_limit / STEPS_PER_UPDATE))
  _require(config.env_workers <= config.num_envs,
           f"env_workers must be an integer in 0..num_envs ({config.num_envs}), got {config.env_workers!r}")
  _require(task.env_episode_limit is None or config.loop.episode_limit <= task.env_episode_limit,
           f"loop.episode_limit must be an integer in 1..{task.env_episode_limit} (the env's own limit for "
           f"{task.name}), got {config.loop.episode_limit!r}")
  if task.family == mpe_tasks.FAMILY:
    extras.require("mpe")  # before any program writes a thing or loads TensorFlow (MissingExtra: one line)
  if task.family == "lbf":
    if config.lbf_food_rule is None:
      config.lbf_food_rule = default_food_rule(task)
  else:
    _require(config.lbf_food_rule is None, f"lbf_food_rule applies to LBF tasks only; {task.name} (family "
                                           f"{task.family}) has none, got {config.lbf_food_rule!r}")
  if config.log.video_every_evals:
    _require(task.family in ("lbf", "rware"), f"log.video_every_evals needs a task the renderer draws (LBF or "
                                              f"RWARE), got {task.name} (family {task.family})")
  log_targets(config)
  visible_gpus(config.device.visible_gpus)
  _require(config.device.memory_limit_mb is None or config.device.memory_fraction is None,
           f"device.memory_limit_mb ({config.device.memory_limit_mb}) and device.memory_fraction "
           f"({config.device.memory_fraction}) both bound the GPU memory; give one")
  _require(config.replay.capacity >= config.replay.batch_size,
           f"replay.capacity ({config.replay.capacity}) must be >= replay.batch_size "
           f"({config.replay.batch_size})")
  learner_config(config)
  return config


def _require(condition, message):
  if not condition:
    raise ConfigError(message)


def estimator_params(config):
  """The estimator's keyword arguments: the config fields that are set."""
  params = {k: config.estimator[k] for k in ESTIMATOR_FIELDS if config.estimator[k] is not None}
  if "period" in params:
    params["schedule"] = config.estimator.schedule
  if params.get("num_samples") is not None:
    params["num_samples"] = int(params["num_samples"])
  params.update(parse_options(config.estimator.get("options", "")))
  return params


def parse_options(text):
  """'weight=0.3,mode="hard"' -> {"weight": 0.3, "mode": "hard"} (ConfigError naming a bad item)."""
  options = {}
  for item in filter(None, (part.strip() for part in (text or "").split(","))):
    key, sep, value = item.partition("=")
    if not sep or not key.strip().isidentifier():
      raise ConfigError(f"estimator.options item {item!r} must be name=value (e.g. weight=0.3)")
    try:
      options[key.strip()] = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      options[key.strip()] = value.strip()  # a bare word is a string
  return options


def differences(old, new, prefix=""):
  """["key: old there, new here"] for every leaf where two config dicts differ (a JSON list equals the
  tuple it was written from); the one comparison of configs, for workdirs and search directories."""
  found = []
  for key in sorted(set(old) | set(new)):
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      found += differences(a, b, f"{prefix}{key}.")
    elif a != b and not (isinstance(a, list) and isinstance(b, (list, tuple)) and list(a) == list(b)):
      found.append(f"{prefix}{key}: {a!r} there, {b!r} here")
  return found


def checkpoint_metadata(config):
  """What a run's checkpoints are tagged with, so that another run's are refused. `share_parameters` only
  when set (checkpoints written before it, all unshared, stay readable; a shared run refuses them)."""
  metadata = {"task": tasks_lib.resolve_task(config.task).name, "estimator": config.estimator.name,
              "seed": config.seed, "fidelity": config.fidelity}
  if config.learner.get("share_parameters"):
    metadata["share_parameters"] = True
  return metadata


def hparams(config):
  """The run's settings for TensorBoard's hparams view: task, estimator, fidelity, seed, numeric
  estimator parameters."""
  values = {"task": config.task, "estimator": config.estimator.name, "estimator_label": config.estimator.label,
            "fidelity": config.fidelity, "seed": config.seed, "lbf_food_rule": str(config.lbf_food_rule),
            "share_parameters": bool(config.learner.get("share_parameters"))}
  values.update({f"estimator.{k}": float(v) for k, v in estimator_params(config).items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)})
  return values


def learner_config(config):
  """`config.learner` as a checked `LearnerConfig`."""
  fields = {f.name for f in dataclasses.fields(LearnerConfig)}
  values = {k: v for k, v in config.learner.items() if k in fields}
  values["hidden_sizes"] = tuple(values["hidden_sizes"])
  return LearnerConfig(**values)


def check_seeds(seeds):
  """Seeds packed in one process (`maddpg-train --seeds`) as a tuple of ints; ValueError (one line) unless
  one or more distinct integers >= 0."""
  try:
    values = tuple(int(str(s).strip()) for s in seeds)
  except (TypeError, ValueError):
    raise ValueError(f"seeds must be integers >= 0, got {list(seeds)!r}") from None
  if not values or len(set(values)) != len(values) or min(values) < 0:
    raise ValueError(f"seeds must be one or more distinct integers >= 0, got {list(values)!r}")
  return values
