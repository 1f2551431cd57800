"""The estimator lab: estimators' gradients against the exact gradient (`bias_variance`, over the maths of
`estimators.lab`) and their timing, the paper's Table 2 (`timing`).

May import: `maddpg_tf.analysis`, `maddpg_tf.run` and the layers below them.
"""
