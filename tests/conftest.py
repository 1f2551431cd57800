"""Test set-up shared by every test: quiet TensorFlow, repository root importable, the `slow` tier.

`python -m pytest -q -m "not slow" tests` is the fast tier (every module, a few minutes on 2 cores); the
full suite is what CI runs. `pytest.ini` spreads the modules over workers with pytest-xdist, each module
whole on one worker (its module-scoped fixtures, trained runs and grids, are built once); `-n 0` runs
everything in this one process, as for a debugger.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_xdist_auto_num_workers(config):
  """`--numprocesses=auto`: one worker more than the cores (at most `--maxprocesses`). Many slow tests wait on
  programs, Ray nodes and files for part of their time; a third worker on 2 cores keeps the cores busy then
  (the full suite on 2 cores: 1,431 s with two workers, 1,310 s with three, 2026-12-04)."""
  del config
  return (os.cpu_count() or 1) + 1


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: takes more than a few seconds (left out of the fast tier, "
                                     "-m 'not slow')")


# Module order: xdist's own (modules with the most tests first). Slowest-first was tried, with xdist's
# --no-loadscope-reorder so that it held: 1,303 s against 1,164 s for the full suite on 2 quiet cores
# (2026-12-05). The three slowest modules (grids on Ray, the learning checks) then run side by side, each
# with programs and Ray workers of its own, and every worker slows down; xdist's order mixes them with
# the many small modules instead.
