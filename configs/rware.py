"""Multi-Robot Warehouse tasks at the authors' settings (lr 5e-4, 10 updates per 500-step episode).

    maddpg-train --config=configs/rware.py:task=rware-tiny-4ag,estimator=gst --workdir=runs/rware-gst

Arguments as in configs/lbf.py; the default task is rware-tiny-2ag.
"""

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg)
  task = arg.get("task", "rware-tiny-2ag")
  config = common.base_config(task, "rware", arg.get("estimator", "gst"))
  if arg.get("smoke"):
    common.apply_budget(config, arg)
    config.loop.warmup_episodes = 2
    config.loop.updates_per_episode = 2
    config.loop.episode_limit = 100
    return config
  return common.apply_budget(config, arg)
