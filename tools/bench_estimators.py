"""Times the discrete gradient estimators (see `maddpg_tf.lab.timing` for what it measures):

    python tools/bench_estimators.py [--quick] [--json] [--threads N]
"""

import sys

from maddpg_tf.cli import bench_estimators

if __name__ == "__main__":
  sys.exit(bench_estimators.run())
