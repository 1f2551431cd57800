"""Multi-Robot Warehouse tasks at the authors' settings (lr 5e-4, 10 updates per 500-step episode; a
preset: the schema and defaults are `maddpg_tf/config.py`).

    maddpg-train --config=configs/rware.py:task=rware-tiny-4ag,estimator=gst --workdir=runs/rware-gst
    maddpg-train --config=configs/rware.py:short     # 300k steps, a few minutes

Arguments as in configs/lbf.py; the default task is rware-tiny-2ag.
"""

from maddpg_tf import config


def get_config(arg=None):
  return config.get_config(arg, default_task="rware-tiny-2ag")
