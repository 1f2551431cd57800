"""Environments: the tasks (`tasks`: names, gymnasium ids, PettingZoo factories, as `TaskSpec`s), the vector
protocol and the reference backend (`vector`: the packages' own envs stepped as a batch), the fast numba
re-implementations (`fast`, over `fast_common`, `fast_lbf`, `fast_rware`; `joint`: several of them stepped
in one call), PettingZoo and the multi-particle tasks (`pettingzoo`, `mpe`), worker processes (`workers`),
and `builder.make`, the one way to build them.

May import: nothing of this package outside `maddpg_tf.envs` (and no TensorFlow): environments know no
learner, no config and no run.
"""
