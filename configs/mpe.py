"""Multi-particle tasks (mpe2, discrete actions, 25-step episodes) with MADDPG (a preset: the schema and
defaults are `maddpg_tf/config.py`).

    maddpg-train --config=configs/mpe.py:task=simple_spread,estimator=gst --workdir=runs/spread-gst
    maddpg-train --config=configs/mpe.py:task=simple_speaker_listener,short --workdir=runs/sl-short

Tasks: simple_spread (default), simple_speaker_listener, simple_reference (`maddpg_tf/envs/mpe.py`).
Arguments as in configs/lbf.py.

Where each value comes from. The paper has no MPE runs, so every MPE-specific value is ours:
  learning rates 1e-3 (actor and critic)   ours, untuned: on simple_spread's `short` budget (one seed,
                                           40 evaluation episodes) 1e-3 gave -65.8/-54.1/-51.2 at
                                           10k/30k/50k steps, the LBF rate 3e-4 -60.9/-55.9/-57.8
                                           (random actions: -77.8)
  1 update per episode, batch 512          the authors' LBF settings (their 25-step LBF episodes are
                                           MPE's length)
  2M env steps                             the MARL benchmarks' MPE budget (EPyMARL)
  1M-transition buffer                     Lowe et al.'s MADDPG
  float32 observations in the buffer       MPE's positions are not exact in float16
  gamma 0.95, 64x64 networks, no target networks under fidelity=code, rewards standardised
                                           the authors' settings (LearnerConfig), unchanged
  estimators (stgs-1/stgs-t/tags/grmck/gst) the paper's LBF settings, not tuned for MPE
  episode length 25                        mpe2's default max_cycles, as the benchmarks run
"""

from maddpg_tf import config


def get_config(arg=None):
  return config.get_config(arg, default_task="simple_spread")
