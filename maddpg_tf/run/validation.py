"""A run config checked against what it names: the estimator (built once on dummy logits) and the task's
environments (built once), on top of `maddpg_tf.config.resolve`'s schema checks; its device settings applied
before TensorFlow's first op (`maddpg_tf.run.devices`)."""

import estimators

from maddpg_tf import config as config_lib
from maddpg_tf.envs import builder as environments
from maddpg_tf.run import devices
from maddpg_tf.run.errors import RunError


def resolve_config(config):
  """`config_lib.resolve`, plus the estimator's parameters and the task's env checked by building them.
  The device settings are applied first (`devices.configure`): TensorFlow takes them only before it
  computes anything, and the estimator's check is the first computation."""
  try:
    config = config_lib.resolve(config)
    devices.configure(config.device)
    _drop_preset_parameters(config)
    estimators.check(config.estimator.name, config_lib.estimator_params(config))
    environments.make(config.task, num_envs=1, seed=0,
                      **{**config_lib.env_settings(config), "backend": "reference"}).close()
    environments.vector_class(environments.resolve_task(config.task), config.env_backend)
  except ValueError as error:
    raise RunError(_every_estimator(str(error))) from None
  return config


def _every_estimator(message):
  """`message` with the estimator registry's list of names (the package's own estimators) widened to every
  name a run accepts: the paper's labels (stgs-1, ...) and the estimators that need the critic (expected,
  reinforce, rloo) too."""
  names = sorted({*config_lib.PAPER_ESTIMATORS["lbf"], *config_lib.EXTRA_ESTIMATORS,
                  *estimators.names(pathwise_only=False)})
  return message.replace(estimators.allowed_text(), estimators.allowed_text(names))


def _drop_preset_parameters(config):
  """With `estimator.name` overridden by an import path, the preset's settings for `estimator.label`
  (GST's gap, say) that the user's estimator does not take are unset; values set to anything else stay,
  and are refused by the estimator's own check."""
  name = config.estimator.name
  if not config_lib.is_estimator_path(name):
    return
  try:
    preset = config_lib.estimator_settings(environments.resolve_task(config.task).family, config.estimator.label)
  except ValueError:
    return
  config.estimator.label = name  # tables and summaries name the user's estimator, not the preset's
  accepted = set(estimators.parameter_names(name))
  for key, value in preset.items():
    if key != "name" and key not in accepted and config.estimator[key] == value:
      config.estimator[key] = None
