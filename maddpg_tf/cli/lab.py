"""Estimator lab: each estimator's gradient against the exact gradient, over temperatures and action-set sizes.

    python tools/estimator_lab.py --function=quadratic --out=lab/quadratic
    python tools/estimator_lab.py --function=linear --temperatures=0.5,1 --num-actions=6 --out=lab/linear
    python tools/estimator_lab.py --estimators=grmck:num_samples=1,grmck:num_samples=10,stgs --out=lab/k
    python tools/estimator_lab.py --checkpoint=runs/gst-s0 --agent=0 --out=lab/critic
    maddpg-estimator-lab ...                                   # the console script (same thing)

For f a random linear (f(a) = <w, a>) or quadratic (f(a) = a^T M a + <w, a>) function of the one-hot
action, one per row (`--rows` rows, logits ~ N(0, logit_scale^2)), or with `--checkpoint` the critic of a
`maddpg-train` run, f(a) = Q_agent(o, a_-agent, a) on a replay batch (the other agents' replayed actions
fixed, the agent's own logits from its trained actor), the lab measures each estimator's gradient of
f(sample) with respect to the logits against the exact gradient of E_{a ~ softmax(logits)} f(a) (a sum over
the actions): bias, variance (trace), MSE and cosine similarity, each with a Student-t confidence interval
over `--replicates` independent replicates of `--samples` samples (see `estimators/lab.py`).

Estimators: registry names (`estimators.names()`, except `tags`: the lab sweeps temperatures itself) and
`reinforce` (the unbiased score-function reference, independent of the temperature), optionally with
parameters: `grmck:num_samples=1`, `gst:gap=0.5`.

Prints a Markdown table and writes to `--out`: `estimator_lab.csv`, `estimator_lab.md`, and
`bias_vs_temperature.png`, `variance_vs_temperature.png` (one panel per action-set size, one line per
estimator, the confidence interval as error bars; the variance axis is logarithmic and spans at most five
decades, so an exactly zero variance lies below it). Bad arguments give one line and exit status 2, with
nothing written.
"""

import argparse
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

from maddpg_tf import extras  # pylint: disable=g-import-not-at-top
from maddpg_tf.lab import bias_variance as lab  # pylint: disable=g-import-not-at-top
from maddpg_tf.lab.bias_variance import LabError  # pylint: disable=g-import-not-at-top
from maddpg_tf.run import process  # pylint: disable=g-import-not-at-top

PROG = "maddpg-estimator-lab"  # the console script's name (tools/estimator_lab.py runs the same main)


class _Parser(argparse.ArgumentParser):
  def error(self, message):
    raise LabError(message)


def parse_args(argv):
  return make_parser().parse_args(argv)


def make_parser():
  """The lab's argument parser (every flag with its help)."""
  parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--function", choices=("linear", "quadratic"), default=None,
                      help="the random test function family (default quadratic; not with --checkpoint)")
  parser.add_argument("--estimators", default=lab.DEFAULT_ESTIMATORS,
                      help="comma-separated name[:key=value...] (default: %(default)s)")
  parser.add_argument("--temperatures", default="0.25,0.5,1,2", help="comma-separated, each > 0 (default: %(default)s)")
  parser.add_argument("--num-actions", "--num_actions", dest="num_actions", default=None,
                      help="comma-separated action-set sizes, each >= 2 (default 3,6,10; not with --checkpoint)")
  parser.add_argument("--rows", type=int, default=16,
                      help="independent problems (logit rows / replay rows) (default: %(default)s)")
  parser.add_argument("--samples", type=int, default=1000, help="samples per replicate (S) (default: %(default)s)")
  parser.add_argument("--replicates", type=int, default=20,
                      help="independent replicates (R) for the intervals (default: %(default)s)")
  parser.add_argument("--confidence", type=float, default=0.95,
                      help="level of the Student-t intervals, in (0, 1) (default: %(default)s)")
  parser.add_argument("--logit-scale", "--logit_scale", dest="logit_scale", type=float, default=1.0,
                      help="standard deviation of the random logits, > 0 (default: %(default)s; not with "
                           "--checkpoint)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the logits, the test functions and the "
                                                          "samples (default: %(default)s)")
  parser.add_argument("--checkpoint", default=None, metavar="WORKDIR",
                      help="a maddpg-train run directory: f is its critic on a replay batch")
  parser.add_argument("--agent", type=int, default=0,
                      help="with --checkpoint: whose critic and actor (default: %(default)s)")
  parser.add_argument("--out", default="estimator-lab", help="output directory (default: %(default)s)")
  return parser


def _numbers(text, kind, name):
  values = []
  for item in filter(None, (part.strip() for part in text.split(","))):
    try:
      values.append(kind(item))
    except ValueError:
      raise LabError(f"--{name}: {item!r} is not a{'n integer' if kind is int else ' number'}") from None
  if not values:
    raise LabError(f"--{name} is empty")
  return values


def check_args(args):
  """Validates everything that can be checked before any work; returns the parsed lists."""
  specs = lab.parse_estimators(args.estimators)
  temperatures = _numbers(args.temperatures, float, "temperatures")
  for temperature in temperatures:
    if not (math.isfinite(temperature) and temperature > 0):
      raise LabError(f"--temperatures: temperature must be > 0 and finite, got {temperature!r}")
  if args.checkpoint is not None:
    if args.function is not None or args.num_actions is not None:
      raise LabError("--checkpoint uses the run's critic as f and its action set: drop --function and "
                     "--num-actions")
    if not os.path.isdir(args.checkpoint):
      raise LabError(f"--checkpoint {args.checkpoint} is not a directory")
    sizes = None
  else:
    sizes = _numbers(args.num_actions or "3,6,10", int, "num-actions")
    if min(sizes) < 2:
      raise LabError(f"--num-actions: every size must be >= 2, got {min(sizes)}")
  for name, minimum in (("rows", 1), ("samples", 2), ("replicates", 2)):
    if getattr(args, name) < minimum:
      raise LabError(f"--{name} must be >= {minimum}, got {getattr(args, name)}")
  if not 0 < args.confidence < 1:
    raise LabError(f"--confidence must be in (0, 1), got {args.confidence}")
  if not (math.isfinite(args.logit_scale) and args.logit_scale > 0):
    raise LabError(f"--logit-scale must be > 0, got {args.logit_scale}")
  if os.path.exists(args.out) and not os.path.isdir(args.out):
    raise LabError(f"--out {args.out} is a file, not a directory")
  return specs, temperatures, sizes


# ----------------------------------------------------------------------------------------------------------
# Command line.

def main(argv):
  """Returns the exit status: 0, or 2 after one line on stderr for bad arguments."""
  try:
    args = parse_args(argv)
    specs, temperatures, sizes = check_args(args)
    extras.require("plots")  # the figures it writes; before the lab's minutes of sampling
    if args.checkpoint is not None:
      problems = list(lab.critic_problem(args.checkpoint, args.agent, args.rows, args.seed))
    else:
      problems = lab.random_problems(args.function or "quadratic", sizes, args.rows, args.logit_scale, args.seed)
  except (LabError, extras.MissingExtra) as error:
    print(f"{PROG}: error: {error}", file=sys.stderr)
    return 2
  tf = process.import_tensorflow()  # without its import-time log lines
  tf.get_logger().setLevel("ERROR")  # one trace per estimator and action-set size
  rows = lab.run_lab(problems, specs, temperatures, args.samples, args.replicates, args.confidence, args.seed,
                     progress=lambda message: print(message, file=sys.stderr, flush=True))
  print(f"Estimator gradients against the exact gradient: {args.replicates} replicates x {args.samples} "
        f"samples, {args.rows} rows, seed {args.seed}; {args.confidence:.0%} Student-t intervals over "
        f"replicates; bias = sqrt of the noise-corrected squared bias; variance = trace of the covariance "
        f"(per row, averaged over rows)\n")
  print(lab.markdown_table(rows, args.confidence), flush=True)
  paths = lab.write_outputs(rows, args.out, args.confidence)
  print(f"\nwrote {', '.join(paths)}")
  return 0


def run(argv=None):
  """Console-script entry point (`maddpg-estimator-lab`)."""
  return main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
  sys.exit(run())
