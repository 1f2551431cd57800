"""The MADDPG agent: stacked networks, the learner (public losses, one compiled update of every agent), its
optimiser, the acting snapshot, the replay buffer, the learner's hyperparameters and its diagnostics.

May import: `estimators` only. It knows no environment, no run and no config file: a learner is built from
sizes (agents, observation size, actions), a `LearnerConfig` and an estimator name.
"""
