"""Level-Based Foraging tasks at the authors' settings (a preset: the schema and defaults are
`maddpg_tf/config.py`).

    maddpg-train --config=configs/lbf.py:task=lbf-15x15-4p-5f,estimator=gst --workdir=runs/gst-s0
    maddpg-train --config=configs/lbf.py:estimator=stgs-t,smoke --workdir=/tmp/smoke

Arguments (comma-separated after the colon): task=<short name or gymnasium id> (default
lbf-8x8-2p-2f-coop),
estimator=<stgs-1|stgs-t|tags|grmck|gst|stgs|st|gumbel_softmax|reinmax|reinmax-rao|reinmax-cv|expected>
(default gst; `expected` is the exact expectation over the agent's own action, beyond the paper), and a
budget: `smoke` (2,000 env steps for tests: about half a minute on 2 cores, mostly TensorFlow's start
and the update's compile) or `short` (the default job: about 3 minutes on 2 cores).
"""

from maddpg_tf import config


def get_config(arg=None):
  return config.get_config(arg, default_task="lbf-8x8-2p-2f-coop")
