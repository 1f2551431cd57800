"""Ray grids of training runs, the library behind `maddpg-reproduce`: the budgets (`budgets`), the runs, their
locks, state and retries on Ray (`runs`), and the tables and figures written from them (`outputs`).

May import: `maddpg_tf.lab`, `maddpg_tf.analysis`, `maddpg_tf.run` and the layers below them; not `search`.
"""
