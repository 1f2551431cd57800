"""Episodes of the policy in TensorBoard while it trains: `--config.log.video_every_evals=N`.

Every N-th evaluation (the 0th, the N-th, ...) one more episode of the current policy is played and drawn
(`maddpg_tf.media.rendering`) into TensorBoard as an animated image, `eval/episode` (the Images tab), at the
evaluation's step. It plays on a one-env vector of the packages' own envs built for it alone, seeded by
the evaluation's index, with an actor generator of its own: evaluations, training and a resume give the
same numbers with it on or off.
"""

import numpy as np

from maddpg_tf.run import saved_policies

TAG = "eval/episode"


class EvaluationVideo:
  """Records an episode at every `every`-th evaluation into `tensorboard` (a `loggers.TensorBoardLogger`);
  `weights()` gives the acting weights of the moment (the evaluation actor's)."""

  def __init__(self, *, config, every, max_frames, tensorboard, weights):
    self.config, self.every, self.max_frames = config, int(every), int(max_frames)
    self.tensorboard, self.weights = tensorboard, weights

  def seed(self, evaluation_index):
    """The episode's seed: distinct per run seed and evaluation, and apart from every training stream."""
    return int(np.random.SeedSequence([int(self.config.seed), 7_349, int(evaluation_index)]).generate_state(1)[0]
               % (2 ** 31))

  def __call__(self, evaluation_index, step):
    """Records the episode if `evaluation_index` is due; returns how many frames were drawn (0 if not)."""
    if self.every <= 0 or evaluation_index % self.every:
      return 0
    frames, _, _ = saved_policies.play(self.config, self.weights(), episodes=1, seed=self.seed(evaluation_index))
    self.tensorboard.write_frames(TAG, frames, step, self.max_frames)
    return len(frames)
