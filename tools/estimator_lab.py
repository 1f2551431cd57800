"""Estimator bias and variance against the exact gradient (see `maddpg_tf.estimator_lab`):

    python tools/estimator_lab.py --function=quadratic --temperatures=0.5,1 --num-actions=6 --out=lab/quadratic
"""

import sys

from maddpg_tf import estimator_lab

if __name__ == "__main__":
  sys.exit(estimator_lab.run())
