#!/usr/bin/env python
"""A grid's results made small enough to commit and share, with no path of the machine that ran it.

    python tools/publish_results.py --results=/scratch/results/beyond --to=results/beyond
    python tools/publish_results.py --results=/scratch/results/beyond --to=results/beyond --update

Copied: what `maddpg-reproduce --norun` reads to rebuild every table and figure, and what records how each
run was made. Per finished run (one with its summary.json): config.json, provenance.json, summary.json,
absolute.json and evaluations.csv, in the same <task>/<estimator>/seed<k> folders; the grid's grid.json (its
published runs' entries) and its outputs (table1.*, table2.*, aggregate/, figures/, beyond/). Left out: checkpoints, best/, TensorBoard
files, logs, locks, and runs still unfinished (without their checkpoints they would start again from zero:
publish again when they finish, with --update).

Machine paths: in the copied text files every prefix given by --strip (default: the git top-level of
--results, and the folder holding this Python's environment) is removed, so the files name paths relative
to the repository or the environment's folder ("venv/lib/...").

--to must not exist, or with --update must be an earlier publication (its grid.json): runs published
before are kept as they are, runs finished since are added, and the grid's outputs are replaced by the
current ones. Prints one line per run added and a summary.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

RUN_FILES = ("config.json", "provenance.json", "summary.json", "absolute.json", "evaluations.csv")
GRID_FILES = ("table1.md", "table1.csv", "table1.tex", "table2.md", "table2.csv", "table2.tex")
GRID_FOLDERS = ("aggregate", "figures", "beyond")
TEXT_SUFFIXES = (".json", ".csv", ".md", ".tex")


def default_strips(results):
  """The git top-level of `results` (when it is in a repository) and the folder holding sys.prefix."""
  strips = [os.path.dirname(os.path.abspath(sys.prefix))]
  try:
    top = subprocess.run(["git", "-C", results, "rev-parse", "--show-toplevel"], capture_output=True,
                         text=True, check=True, timeout=30).stdout.strip()
    if top:
      strips.append(top)
  except (OSError, subprocess.SubprocessError):
    pass
  return strips


def finished_runs(results):
  """Relative paths <task>/<estimator>/seed<k> of the runs under `results` that have a summary.json."""
  return sorted(os.path.relpath(os.path.dirname(path), results)
                for path in glob.glob(os.path.join(glob.escape(results), "*", "*", "seed*", "summary.json")))


def strip_paths(text, strips):
  """`text` with each prefix of `strips` (longest first) removed where it starts a path."""
  for prefix in sorted({os.path.abspath(s).rstrip(os.sep) for s in strips if s}, key=len, reverse=True):
    if prefix:
      text = text.replace(prefix + os.sep, "")
  return text


def copy_file(source, target, strips):
  os.makedirs(os.path.dirname(target), exist_ok=True)
  if source.endswith(TEXT_SUFFIXES):
    with open(source, encoding="utf-8") as handle:
      text = handle.read()
    with open(target, "w", encoding="utf-8") as handle:
      handle.write(strip_paths(text, strips))
  else:
    shutil.copyfile(source, target)


def check(results, to, update):
  """The one-line refusal for bad arguments, or None."""
  if not os.path.isdir(results):
    return f"--results {results} is not a directory"
  if not os.path.isfile(os.path.join(results, "grid.json")):
    return f"--results {results} holds no grid.json: not the --results of a maddpg-reproduce grid"
  source, target = os.path.realpath(results), os.path.realpath(to)
  if target == source or target.startswith(source + os.sep) or source.startswith(target + os.sep):
    return f"--to {to} and --results {results} must not contain each other"
  if os.path.exists(to):
    if not update:
      return f"--to {to} exists; give a new folder, or --update to add to an earlier publication there"
    if not os.path.isfile(os.path.join(to, "grid.json")):
      return f"--to {to} is not an earlier publication (no grid.json); --update adds only to one"
  return None


def write_grid_record(source, target, published, strips):
  """grid.json with its `runs` cut to the published ones: the grid's record of runs still queued or training
  would say "running" in a publication that holds none of them."""
  with open(source, encoding="utf-8") as handle:
    text = strip_paths(handle.read(), strips)
  try:
    grid = json.loads(text)
  except ValueError:
    grid = None
  if isinstance(grid, dict) and isinstance(grid.get("runs"), dict):
    grid["runs"] = {name: run for name, run in grid["runs"].items() if name in published}
    text = json.dumps(grid, indent=2, sort_keys=True) + "\n"
  with open(target, "w", encoding="utf-8") as handle:
    handle.write(text)


def publish(results, to, strips, log=print):
  """Copies `results`'s shareable files to `to` (see the module docstring). Returns (added, kept) runs."""
  os.makedirs(to, exist_ok=True)
  added, kept = [], []
  for run in finished_runs(results):
    if os.path.isfile(os.path.join(to, run, "summary.json")):
      kept.append(run)
      continue
    for name in RUN_FILES:
      if os.path.isfile(os.path.join(results, run, name)):
        copy_file(os.path.join(results, run, name), os.path.join(to, run, name), strips)
    added.append(run)
    log(f"added {run}")
  write_grid_record(os.path.join(results, "grid.json"), os.path.join(to, "grid.json"), set(added) | set(kept), strips)
  for name in GRID_FILES:
    if os.path.isfile(os.path.join(results, name)):
      copy_file(os.path.join(results, name), os.path.join(to, name), strips)
  for folder in GRID_FOLDERS:
    if os.path.isdir(os.path.join(results, folder)):
      shutil.rmtree(os.path.join(to, folder), ignore_errors=True)
      for root, _, names in os.walk(os.path.join(results, folder)):
        for name in names:
          source = os.path.join(root, name)
          copy_file(source, os.path.join(to, os.path.relpath(source, results)), strips)
  return added, kept


def main(argv=None):
  from maddpg_tf.cli import common
  parser = common.ArgumentParser(prog="publish_results", description=__doc__.split("\n\n")[0])
  parser.add_argument("--results", required=True, help="a maddpg-reproduce grid's --results")
  parser.add_argument("--to", required=True, help="the folder to write (new, or an earlier publication with --update)")
  parser.add_argument("--update", action="store_true", help="add the runs finished since to an earlier publication")
  parser.add_argument("--strip", action="append", default=None, metavar="PREFIX",
                      help="a path prefix to remove from the copied files (repeatable; default: the git "
                           "top-level of --results and the folder holding this Python's environment)")
  args = parser.parse_args(argv)
  problem = check(args.results, args.to, args.update)
  if problem:
    parser.error(problem)
  strips = args.strip if args.strip is not None else default_strips(args.results)
  added, kept = publish(args.results, args.to, strips)
  print(f"publish_results: {len(added)} runs added, {len(kept)} published earlier kept, in {args.to} "
        f"(paths under {', '.join(sorted(strips))} made relative)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
