"""The learner's hyperparameters as one checked dataclass (`LearnerConfig`): the agent's own settings, so the
learner needs no config module. `maddpg_tf.config` builds the run config's `learner` group from its fields
and defaults."""

import dataclasses


class ConfigError(ValueError):
  """A config value the user must fix; the message is one line naming the value and what is allowed."""


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
  """MADDPG hyperparameters; defaults are the authors' LBF settings (maddpg_tf/FIDELITY.md: Settings). `config.learner` is
  built from these fields, so this is their one home (RWARE's learning rates: `maddpg_tf.config.FAMILY_SETTINGS`)."""
  hidden_sizes: tuple = (64, 64)
  actor_learning_rate: float = 3e-4
  critic_learning_rate: float = 3e-4
  adam_epsilon: float = 1e-3
  max_grad_norm: float = 1.0
  logit_l2: float = 1e-3
  gamma: float = 0.95
  tau: float = 0.01
  use_target_networks: bool = False
  standardise_rewards: bool = True
  # One actor and one critic for every agent, with the agent's one-hot index as an input (not the paper's
  # runs; maddpg_tf/agent/learner.py and networks.py say what each network sees and how losses combine).
  share_parameters: bool = False

  def __post_init__(self):
    for name in ("actor_learning_rate", "critic_learning_rate", "adam_epsilon", "max_grad_norm"):
      if not getattr(self, name) > 0:
        raise ConfigError(f"learner.{name} must be > 0, got {getattr(self, name)!r}")
    if not 0 <= self.gamma <= 1:
      raise ConfigError(f"learner.gamma must be in [0, 1], got {self.gamma!r}")
    if not 0 < self.tau <= 1:
      raise ConfigError(f"learner.tau must be in (0, 1], got {self.tau!r}")
    if self.logit_l2 < 0:
      raise ConfigError(f"learner.logit_l2 must be >= 0, got {self.logit_l2!r}")
    if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
      raise ConfigError(f"learner.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
