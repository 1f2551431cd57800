"""Pictures and files of a policy: headless frames of LBF and RWARE states, videos and PNG frames (and
TensorBoard's animated images), and trained actors exported as a TensorFlow SavedModel.

May import: nothing of this package but `maddpg_tf.agent`, `maddpg_tf.envs` and `maddpg_tf.extras` (it sits
below `run`, which writes videos into TensorBoard while a run trains).
"""
