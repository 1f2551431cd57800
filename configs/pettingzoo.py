"""Your own PettingZoo environment (a preset: the schema and defaults are `maddpg_tf/config.py`).

    maddpg-train --config=configs/pettingzoo.py:env=my_pkg.my_envs:make_parallel_env,estimator=gst \
        --workdir=runs/mine

`env=module:factory` names a function (or class) returning a `pettingzoo.ParallelEnv` with `Discrete`
actions, `Box` observations and one agent set for the whole episode; `factory(render_mode="rgb_array")`
is called only to draw frames. The env's episode limit is read from its `max_cycles` (or
`max_episode_steps`, `max_steps`) attribute, or the factory's `episode_limit`. Observation sizes may
differ between agents (zero-padded to the largest) and so may action counts (an agent with n actions
takes the largest count's actions mod n). See `maddpg_tf/envs/pettingzoo.py`. The module must be
importable where the run starts (and by env workers: from the working directory or PYTHONPATH); its file's
SHA-256 is recorded in provenance.json. An env that ends its own episodes and declares no limit runs with
--config.loop.episode_limit=N. Learner settings are the authors' LBF ones, observations are kept in float32,
and updates follow LBF's rate per env step: one per 25 steps of the episode cut-off (a 200-step env gets 8
per episode; --config.loop.updates_per_episode sets it). Override any with --config.*. Other arguments as in
configs/lbf.py; every program checks the env first with a short probe (maddpg_tf/envs/pettingzoo.py).
"""

from maddpg_tf import config


def get_config(arg=None):
  parsed = config.parse_arg(arg)
  if "task" not in parsed:
    raise config.ConfigError(f"configs/pettingzoo.py needs env=module:factory (got {arg or 'no arguments'!r})")
  return config.get_config(arg)
