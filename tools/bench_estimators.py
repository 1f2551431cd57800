"""Times the discrete gradient estimators (see `maddpg_tf.estimator_timing` for what it measures):

    python tools/bench_estimators.py [--quick] [--json] [--threads N]
"""

import sys

from maddpg_tf import estimator_timing

if __name__ == "__main__":
  sys.exit(estimator_timing.run())
