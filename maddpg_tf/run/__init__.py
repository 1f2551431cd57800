"""One training run and its parts: the experiment that wires them, the timeline (warm-up, steps,
evaluations, checkpoints), the environment loop and its observers, update scheduling, evaluation episodes,
checkpoints, loggers, the run directory, stop requests, fault points, errors, and a finished run's saved
policies (evaluated, played); several seeds' runs packed in one process over one learner (`packing`).

May import: `estimators`, `maddpg_tf.agent`, `maddpg_tf.envs`, `maddpg_tf.config`, `maddpg_tf.media`,
`maddpg_tf.analysis.statistics` (a saved policy's evaluation reports the tables' interval).
"""
