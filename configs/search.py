"""Search spaces for `maddpg-search` (the default `--search` file; the spaces and their ranges are
`maddpg_tf/search/spaces.py`):

    maddpg-search --config=configs/lbf.py:task=lbf-15x15-3p-5f,estimator=grmck --dir=searches/grmck \\
        --search.temperature.max=0.9 --search.num_samples.choices="(5,10)"
"""

from maddpg_tf.search.spaces import get_config  # noqa: F401  (a config file defines get_config)
