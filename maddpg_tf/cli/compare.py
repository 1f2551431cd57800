"""`maddpg-compare`: the evaluation curves and Table 1's statistics of any groups of run directories.

    maddpg-compare --runs='results/medium/lbf-15x15-4p-5f/*/seed0' --out=compare/seed0
    maddpg-compare --runs='runs/stgs-1-s*' --runs='runs/gst-s*' --out=compare/lbf
    maddpg-compare --runs=runs/a-s0,runs/a-s1 --runs='runs/b-s*' --labels=lr1e-3,lr3e-4 --out=compare/lr

Each `--runs` is one group: a comma list of `maddpg-train` run directories and globs (quote the globs). The
runs must all be of one task. Writes into `--out` (new, or empty): `curves.png` (each group's mean
evaluation return against env steps, with a 95% Student-t band across its runs), `comparison.csv` and
`comparison.md` (per group: max, average, final and absolute returns as Table 1 computes them, and Welch
p-values against the first group), and prints the table. The statistics: `maddpg_tf.analysis.compare`.

Exit status: 0 written; 2 bad input (one line `maddpg-compare: error: ...`, nothing written): a pattern that
matches nothing, a directory that is not a run, runs of different tasks, a --labels count that is not one
per group, an --out that exists and is not empty, matplotlib (the plots extra) not installed.
"""

from absl import flags

from maddpg_tf import extras
from maddpg_tf.analysis import compare
from maddpg_tf.cli import common

PROGRAM = "maddpg-compare"

_RUNS = flags.DEFINE_multi_string(
    "runs", None, "One group of runs: a comma list of run directories and globs (quoted), e.g. "
    "--runs='results/medium/lbf-15x15-4p-5f/gst/seed*'. Give it once per group; the first group is the "
    "reference of the p-values.")
_LABELS = flags.DEFINE_list("labels", None, "One label per group, in --runs order (default: the runs' "
                            "estimator label where a group agrees on one, else group1, group2, ...).")
_OUT = flags.DEFINE_string("out", "compare", "Output directory: new, or empty.")


def _parse_flags(argv):
  return common.parse_flags(PROGRAM, argv, {})


def main(argv):
  if len(argv) > 1:
    return common.error(PROGRAM, f"unexpected arguments {argv[1:]}: give each group as --runs=DIR,GLOB,...")
  try:
    groups = compare.load(_RUNS.value, _LABELS.value)
    compare.check_out(_OUT.value)
  except compare.CompareError as failure:
    return common.error(PROGRAM, failure)
  extras.require("plots")  # the figure; before anything is written (run_main makes it one line, status 2)
  paths, table = compare.write(groups, _OUT.value)
  print(table, end="", flush=True)
  for path in paths:
    print(f"wrote {path}")
  return 0


def run():
  """Console entry point."""
  common.run_main(PROGRAM, main, _parse_flags)


if __name__ == "__main__":
  run()
