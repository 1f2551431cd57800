"""Times the discrete gradient estimators: the paper's Table 2 protocol and a training-like workload.

`maddpg-bench-estimators`; what each part measures: `maddpg_tf.lab.timing`.

    python tools/bench_estimators.py [--quick] [--json] [--threads N]
    maddpg-bench-estimators --quick --json          # the console script (same thing)

Prints the Markdown tables (the paper's protocol, the training workload, the issue's targets with PASS or
FAIL, or "not judged" where the calls are too short to tell); `--json` adds the headline figures as one
JSON object on the last line of stdout.
"""

import argparse
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

from maddpg_tf.cli import common  # pylint: disable=g-import-not-at-top
from maddpg_tf.lab import timing  # pylint: disable=g-import-not-at-top
from maddpg_tf.run import process  # pylint: disable=g-import-not-at-top


def parse_args(argv=None):
  parser = common.ArgumentParser(prog="maddpg-bench-estimators", description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="a short run (well under a minute)")
  parser.add_argument("--json", action="store_true",
                      help="print the headline figures as one JSON object on the last line of stdout")
  parser.add_argument("--threads", type=int, default=None, metavar="N",
                      help="TF intra- and inter-op threads (default: TF's default)")
  parser.add_argument("--number", type=int, default=None, help="calls per repeat, paper protocol")
  parser.add_argument("--call-seconds", type=float, default=None,
                      help="training workload: fill each compiled call with about this many seconds of work")
  parser.add_argument("--only", choices=("paper", "training"), default=None, help="run one section only")
  parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests: seconds, not minutes
  args = parser.parse_args(argv)
  for name, value, least in (("--threads", args.threads, 1), ("--number", args.number, 1)):
    if value is not None and value < least:
      parser.error(f"{name} must be an integer >= {least}, got {value}")
  if args.call_seconds is not None and not 0 <= args.call_seconds < math.inf:
    parser.error(f"--call-seconds must be a finite number >= 0, got {args.call_seconds}")
  return args


def run(argv=None):
  """Console-script entry point (`maddpg-bench-estimators`). Returns 0."""
  args = parse_args(sys.argv[1:] if argv is None else argv)
  tf = process.import_tensorflow()  # without its import-time log lines
  timing.configure_threads(tf, args.threads)
  sections = (args.only,) if args.only else ("paper", "training")
  results = timing.run_benchmark(quick=args.quick, tiny=args.tiny, number=args.number,
                                 call_seconds=args.call_seconds, sections=sections)
  print(timing.format_report(results), flush=True)
  if args.json:
    print(json.dumps(timing.headline(results), sort_keys=True), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(run())
