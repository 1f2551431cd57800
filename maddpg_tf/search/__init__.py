"""Bayesian search over an estimator's settings, the library behind `maddpg-search`: the spaces searched
(`spaces`), what a process settles before TensorFlow loads (`launch`: its chief/worker role, the directory),
and the keras-tuner oracle and tuner whose trials are training runs (`tuner`).

May import: `maddpg_tf.lab`, `maddpg_tf.analysis`, `maddpg_tf.run` and the layers below them; not `grid`.
"""
