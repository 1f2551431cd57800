"""Every aggregate output of a grid at once (`write_aggregates`): the tables (aggregate.csv, aggregate.md,
probability_of_improvement.csv) of `maddpg_tf.analysis.aggregate`, `marl_eval.json` (`marl_eval`) and the
figures (`aggregate_plots`)."""

import csv
import os

from maddpg_tf.analysis import marl_eval
from maddpg_tf.analysis.aggregate import (AGGREGATE_COLUMNS, CONFIDENCE, METRIC_LABELS, METRICS, POI_COLUMNS, SCORES,
                                          _check_bootstrap, _check_over, aggregate_rows, check_runs,
                                          environment_of_task, improvement_rows, normalisation_note, normalise,
                                          run_scores)


def _write_csv(path, columns, rows):
  temporary = path + ".tmp"
  with open(temporary, "w", newline="") as handle:
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    for row in rows:
      writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
  os.replace(temporary, path)
  return path


def _interval(row):
  return f"{row['point']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def aggregate_markdown(rows, poi_rows, bounds, common, *, over, reps, poi_reps, seed, notes=()):
  """The text of aggregate.md: the tables, the definitions, the normalisation and its bounds."""
  lines = ["# Aggregate statistics (rliable / marl-eval protocol)", "",
           f"Scores: {normalisation_note(over)}. Per run, `average` = the mean of its normalised evaluation "
           f"returns (Table 1's average, per seed) and `final` = its last one, over the evaluations every run "
           f"of the task has; `absolute` = its absolute metric (the best policy over 10x the evaluation "
           f"episodes, absolute.json), where every run of an estimator on a task has one. Intervals: 95% "
           f"stratified bootstrap (runs resampled within each task), percentile method, {reps} replicates "
           f"for the aggregates and {poi_reps} for the probabilities of improvement, seed {seed}.", "",
           "IQM = 25% trimmed mean of all run x task scores; median and mean = of the per-task mean scores; "
           "optimality gap = 1 - mean(min(score, 1)) over all run x task scores (rliable's definitions).", ""]
  for score in SCORES:
    chosen = [r for r in rows if r["score"] == score]
    if not chosen:
      continue
    lines += [f"## {score} score", "",
              "| estimator | runs | tasks | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |",
              "|---|---|---|" + "---|" * len(METRICS)]
    for estimator in dict.fromkeys(r["estimator"] for r in chosen):
      cells = {r["metric"]: r for r in chosen if r["estimator"] == estimator}
      first = next(iter(cells.values()))
      lines.append(f"| {estimator} | {first['runs']} | {first['tasks']} | "
                   + " | ".join(_interval(cells[m]) if m in cells else "" for m in METRICS) + " |")
    lines.append("")
  if poi_rows:
    lines += ["## Probability of improvement P(x > y)", "",
              "The mean over the shared tasks of the Mann-Whitney probability that a run of x scores above a "
              "run of y (ties count one half).", "", "| x | y | " + " | ".join(SCORES) + " |", "|---|---|"
              + "---|" * len(SCORES)]
    pairs = dict.fromkeys((r["x"], r["y"]) for r in poi_rows)
    for x, y in pairs:
      cells = {r["score"]: r for r in poi_rows if (r["x"], r["y"]) == (x, y)}
      lines.append(f"| {x} | {y} | " + " | ".join(_interval(cells[s]) if s in cells else "" for s in SCORES)
                   + " |")
    lines.append("")
  lines += ["## Normalisation bounds", "", "| task | min | max | evaluations scored |", "|---|---|---|---|"]
  for task in sorted(bounds):
    lo, hi = bounds[task]
    lines.append(f"| {task} | {lo:.6g} | {hi:.6g} | {common.get(task, '')} |")
  degenerate = [t for t, (lo, hi) in sorted(bounds.items()) if lo == hi]
  if degenerate:
    lines += ["", f"Tasks whose returns are all equal (every score 0): {', '.join(degenerate)}."]
  if notes:
    lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
  return "\n".join(lines) + "\n"


def write_aggregates(runs, out_dir, *, reps=50_000, poi_reps=2_000, seed=0, environment_of=environment_of_task,
                     over="episodes", reference="gst", meta=None, figures=True):
  """Writes every aggregate output of a grid to `out_dir`; returns the written paths.

  aggregate.csv / aggregate.md, probability_of_improvement.csv, marl_eval.json, and (figures=True) the
  figures of `aggregate_plots` as PNG and PDF. reps: bootstrap replicates of the aggregates; poi_reps: of
  the probabilities of improvement, performance profiles and sample-efficiency bands. environment_of:
  task -> environment name for the marl-eval export. reference: the estimator whose probability of
  improvement over each other one is drawn. meta: optional {budget, fidelity, seeds} for figure footers.
  """
  _check_over(over)
  _check_bootstrap(reps, seed, CONFIDENCE)
  _check_bootstrap(poi_reps, seed, CONFIDENCE)
  if not callable(environment_of):
    raise ValueError(f"environment_of must be a function task -> environment name, got {environment_of!r}")
  if not isinstance(out_dir, (str, os.PathLike)) or (os.path.exists(out_dir) and not os.path.isdir(out_dir)):
    raise ValueError(f"out_dir={out_dir!r} must be a directory path")
  checked = check_runs(runs)
  normalised, bounds = normalise(checked, over)
  table, common = run_scores(normalised)
  rows = aggregate_rows(table, reps=reps, seed=seed)
  poi_rows = improvement_rows(table, reps=poi_reps, seed=seed)
  exported = marl_eval.to_marl_eval_json(checked, environment_of)
  notes = [f"marl_eval.json: {problem}" for problem in marl_eval.validate_marl_eval_json(exported, strict=True)]
  notes += marl_eval.interval_notes(exported)
  os.makedirs(out_dir, exist_ok=True)
  paths = [_write_csv(os.path.join(out_dir, "aggregate.csv"), AGGREGATE_COLUMNS, rows),
           _write_csv(os.path.join(out_dir, "probability_of_improvement.csv"), POI_COLUMNS, poi_rows)]
  paths.append(marl_eval.write_marl_eval_json(exported, os.path.join(out_dir, "marl_eval.json")))
  if figures:
    from maddpg_tf.analysis import aggregate_plots  # pylint: disable=g-import-not-at-top  (matplotlib)
    written, figure_notes = aggregate_plots.write_figures(
        rows, poi_rows, table, normalised, out_dir, over=over, reps=reps, poi_reps=poi_reps, seed=seed,
        environment_of=environment_of, reference=reference, meta=meta)
    paths += written
    notes += figure_notes
  markdown = aggregate_markdown(rows, poi_rows, bounds, common, over=over, reps=reps, poi_reps=poi_reps,
                                seed=seed, notes=notes)
  path = os.path.join(out_dir, "aggregate.md")
  with open(path + ".tmp", "w") as handle:
    handle.write(markdown)
  os.replace(path + ".tmp", path)
  paths.insert(1, path)
  return paths
