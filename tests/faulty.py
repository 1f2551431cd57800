"""Runs a program's module with a fault armed (`maddpg_tf.run.faults`), for tests that stop a subprocess:

    python -m tests.faulty <fault spec> <module> [args...]

e.g. `python -m tests.faulty env-step@1300:INT maddpg_tf.cli.train --config=... --workdir=...` runs as
`python -m maddpg_tf.cli.train ...` would, with the fault armed before the program starts. This is the one
way a fault reaches a program: the library reads no variable for it.
"""

import runpy
import sys

from maddpg_tf.run import faults


def command(python, fault, module, args):
  """The argv that runs `python -m module *args` with `fault` armed (none: the plain command)."""
  if not fault:
    return [python, "-m", module, *args]
  return [python, "-m", "tests.faulty", fault, module, *args]


def main(argv):
  if len(argv) < 3:
    raise SystemExit(f"usage: python -m tests.faulty <fault spec> <module> [args...], got {argv[1:]}")
  faults.arm(argv[1])
  sys.argv = [argv[2], *argv[3:]]
  runpy.run_module(argv[2], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
  main(sys.argv)
