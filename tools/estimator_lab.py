"""Estimator bias and variance against the exact gradient (see `maddpg_tf.cli.lab`):

    python tools/estimator_lab.py --function=quadratic --temperatures=0.5,1 --num-actions=6 --out=lab/quadratic
"""

import sys

from maddpg_tf.cli import lab

if __name__ == "__main__":
  sys.exit(lab.run())
