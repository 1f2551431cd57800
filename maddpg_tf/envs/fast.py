"""The fast backends of every family, loaded: `FastVectorEnvironment(task, ...)` builds the task family's
class and `FastVectorEnvironment.from_reference(vector)` converts a reference vector (see `fast_common`).

Importing this module loads numba and the kernels of both families (`fast_lbf`, `fast_rware`); a program
that may not step a fast env imports it only when it does (`maddpg_tf.envs.builder.vector_class`).
"""

from maddpg_tf.envs.fast_common import FastVectorEnvironment, check_actions_dtype
from maddpg_tf.envs.fast_lbf import FastLBFVectorEnvironment
from maddpg_tf.envs.fast_rware import FastRWAREVectorEnvironment

__all__ = ["FastVectorEnvironment", "FastLBFVectorEnvironment", "FastRWAREVectorEnvironment",
           "check_actions_dtype"]
