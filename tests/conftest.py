"""Test set-up shared by every test: quiet TensorFlow, repository root importable, the `slow` tier.

`python -m pytest -q -m "not slow" tests` is the fast tier (every module, a few minutes on 2 cores); the
full suite is what CI runs.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: takes more than a few seconds (left out of the fast tier, "
                                     "-m 'not slow')")
