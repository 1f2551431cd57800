"""maddpg_tf: MADDPG with discrete gradient estimators in TensorFlow 2."""
