"""Level-Based Foraging tasks at the authors' settings.

    maddpg-train --config=configs/lbf.py:task=lbf-15x15-4p-5f,estimator=gst --workdir=runs/gst-s0
    maddpg-train --config=configs/lbf.py:estimator=stgs-t,smoke --workdir=/tmp/smoke

Arguments (comma-separated after the colon): task=<short name or gymnasium id> (default
lbf-8x8-2p-2f-coop), estimator=<stgs-1|stgs-t|tags|grmck|gst|stgs|st|gumbel_softmax|reinmax|expected>
(default gst; `expected` is the exact expectation over the agent's own action, beyond the paper), and a
budget: `smoke` (seconds) or `short` (the default job: a few minutes on 2 cores).
"""

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg)
  task = arg.get("task", "lbf-8x8-2p-2f-coop")
  config = common.base_config(task, "lbf", arg.get("estimator", "gst"))
  if arg.get("short"):
    config.total_steps = 150_000
    config.loop.warmup_episodes = 100
    config.loop.updates_per_episode = 4
    config.loop.eval_every_steps = 10_000
    config.loop.eval_episodes = 40
    config.checkpoint.every_steps = 50_000
  return common.apply_budget(config, arg)
