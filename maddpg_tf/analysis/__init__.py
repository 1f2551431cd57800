"""Results analysis: the paper's statistics and tables (`statistics`, `tables`, `paper_data`), figures
(`plots`), the field's aggregate metrics (`aggregate`, `aggregate_plots`, `marl_eval`, written together by
`aggregate_outputs`), and comparisons of any groups of run directories (`compare`, for maddpg-compare).
It reads run directories' files; no TensorFlow.

May import: `maddpg_tf.run` (the names of a run directory's files) and the layers below it; nothing of the
programs, the grid, the search or the lab. `statistics` is the exception, below `maddpg_tf.run` (which reports
its intervals): it imports only `maddpg_tf.files`.
"""
