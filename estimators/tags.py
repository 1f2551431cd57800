"""Temperature-Annealed Gumbel-Softmax (TAGS; paper sec. 3.3): STGS whose temperature follows a schedule."""

from estimators import base, stgs


class TemperatureAnnealedGumbelSoftmax(stgs.StraightThroughGumbelSoftmax):
  """STGS at temperature `schedule(step, start_temperature, end_temperature, period)`.

  The default schedule is `schedules.exponential_decay`. What a step counts (update calls, as in the
  authors' code, or env steps) is the caller's choice: see maddpg_tf/FIDELITY.md (Estimator settings) on why it matters.
  """

  def __init__(self, logits, start_temperature, end_temperature, period, step=0, *,
               schedule="exponential", validate_args=False, allow_nan_stats=True, name=None):
    parameters = base.record_parameters(locals())
    super().__init__(logits, start_temperature=start_temperature, end_temperature=end_temperature,
                     period=period, step=step, schedule=schedule, validate_args=validate_args,
                     allow_nan_stats=allow_nan_stats, name=name,
                     parameters=parameters)
