"""Figures of the aggregate statistics (matplotlib, Agg backend; PNG + PDF), in the style of the project's plots.py.

  aggregate_intervals         IQM, median, mean and optimality gap per estimator with their 95% stratified
                              bootstrap intervals; one row per score (average, final).
  probability_of_improvement  P(reference > Y) with its interval for every other estimator Y (the
                              reference is GST: the paper's claim in the field's terms); 0.5 = no
                              difference.
  performance_profiles        the fraction of run x task scores above each normalised score tau, with
                              bootstrap bands; one panel per score.
  sample_efficiency           the IQM over run x task of the normalised evaluation return at each env step
                              that every run of the panel has, with bootstrap bands; one panel per
                              environment and one over all tasks when there are several environments.

Every figure states the normalisation and the bootstrap under its title (and the budget, fidelity and
seeds when `meta` gives them).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top  (after choosing the backend)

from maddpg_tf.analysis import aggregate
from maddpg_tf.analysis import plots as project_plots

DPI = project_plots.DPI


def _style(estimator):
  return project_plots.ESTIMATOR_STYLE.get(estimator, (estimator, None))


def footer(meta, over, reps, seed):
  """The line under every title: run facts (when `meta` has them), the normalisation, the bootstrap."""
  parts = ["maddpg-tf"]
  if meta:
    if "budget" in meta:
      parts.append(f"budget {meta['budget']}")
    if "fidelity" in meta:
      parts.append(f"fidelity {meta['fidelity']}")
    if meta.get("seeds"):
      parts.append("seeds " + ",".join(str(s) for s in meta["seeds"]))
  parts.append(f"95% stratified bootstrap ({reps} reps, seed {seed})")
  return "; ".join(parts) + "\n" + aggregate.normalisation_note(over)


def plot_interval_estimates(rows, foot):
  """Rows of `aggregate.aggregate_rows` -> a figure [scores x metrics]; None when there are no rows."""
  scores = [s for s in aggregate.SCORES if any(r["score"] == s for r in rows)]
  if not scores:
    return None
  estimators = list(dict.fromkeys(r["estimator"] for r in rows))
  fig, axes = plt.subplots(len(scores), len(aggregate.METRICS), figsize=(3.2 * len(aggregate.METRICS),
                                                                          0.45 * len(estimators) * len(scores) + 2),
                           squeeze=False)
  for row_axes, score in zip(axes, scores):
    for axis, metric in zip(row_axes, aggregate.METRICS):
      for position, estimator in enumerate(estimators):
        cell = next((r for r in rows if (r["estimator"], r["score"], r["metric"]) == (estimator, score, metric)),
                    None)
        if cell is None:
          continue
        name, colour = _style(estimator)
        axis.barh(position, cell["high"] - cell["low"], left=cell["low"], height=0.6, color=colour, alpha=0.75)
        axis.vlines(cell["point"], position - 0.3, position + 0.3, color="black", linewidth=1.5)
        axis.plot(cell["point"], position, "o", color="black", markersize=3)  # seen when the bar is empty
      axis.set_yticks(range(len(estimators)))
      axis.set_yticklabels([_style(e)[0] for e in estimators] if metric == aggregate.METRICS[0] else [])
      axis.set_title(f"{aggregate.METRIC_LABELS[metric]} ({score})", fontsize=9)
      axis.grid(axis="x", alpha=0.3)
      axis.invert_yaxis()
    row_axes[0].set_ylabel(f"{score} score")
  for axis in axes[-1]:
    axis.set_xlabel("normalised score")
  fig.suptitle(f"Aggregate metrics (bar = 95% interval, line = point estimate)\n{foot}", fontsize=8)
  fig.tight_layout()
  return fig


def plot_improvement(poi_rows, reference, foot):
  """P(reference > Y) for every other Y, one panel per score; None when the reference has no pair."""
  chosen = [r for r in poi_rows if r["x"] == reference]
  if not chosen:
    return None
  scores = [s for s in aggregate.SCORES if any(r["score"] == s for r in chosen)]
  others = list(dict.fromkeys(r["y"] for r in chosen))
  fig, axes = plt.subplots(1, len(scores), figsize=(4.6 * len(scores), 0.5 * len(others) + 1.8), squeeze=False)
  for axis, score in zip(axes[0], scores):
    for position, other in enumerate(others):
      cell = next((r for r in chosen if (r["y"], r["score"]) == (other, score)), None)
      if cell is None:
        continue
      colour = _style(other)[1]
      axis.barh(position, cell["high"] - cell["low"], left=cell["low"], height=0.6, color=colour, alpha=0.75)
      axis.vlines(cell["point"], position - 0.3, position + 0.3, color="black", linewidth=1.5)
      axis.plot(cell["point"], position, "o", color="black", markersize=3)
    axis.axvline(0.5, color="gray", linestyle="--", linewidth=1.0)
    axis.set_xlim(-0.03, 1.03)
    axis.set_yticks(range(len(others)))
    axis.set_yticklabels([f"{_style(reference)[0]} > {_style(o)[0]}" for o in others])
    axis.set_xlabel(f"P(X > Y), {score} score")
    axis.grid(axis="x", alpha=0.3)
    axis.invert_yaxis()
  fig.suptitle(f"Probability of improvement of {_style(reference)[0]} over each estimator (mean over tasks of "
               f"the Mann-Whitney probability, ties one half)\n{foot}", fontsize=8)
  fig.tight_layout()
  return fig


def plot_performance_profiles(table, foot, *, reps, seed):
  """Score distributions with bands, one panel per score; None when the table is empty."""
  scores = [s for s in aggregate.SCORES if table.get(s)]
  if not scores:
    return None
  fig, axes = plt.subplots(1, len(scores), figsize=(4.8 * len(scores), 3.8), squeeze=False)
  for axis, score in zip(axes[0], scores):
    for estimator in aggregate._estimator_order(set(table[score])):  # pylint: disable=protected-access
      by_task = table[score][estimator]
      taus, profile, low, high = aggregate.performance_profile(
          [by_task[t] for t in sorted(by_task)], reps=reps, seed=aggregate.stream(seed, "profile", estimator, score))
      name, colour = _style(estimator)
      runs = sum(v.size for v in by_task.values())
      axis.plot(taus, profile, color=colour, linewidth=1.4, label=f"{name} ({runs} runs)")
      axis.fill_between(taus, low, high, color=colour, alpha=0.2, linewidth=0)
    axis.set_xlabel(f"normalised score tau ({score})")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
  axes[0][0].set_ylabel("fraction of runs with score > tau")
  fig.suptitle(f"Performance profiles (band = 95% interval)\n{foot}", fontsize=8)
  fig.tight_layout()
  return fig


def plot_sample_efficiency(normalised, environment_of, foot, *, reps, seed):
  """(figure or None, notes): IQM of the normalised evaluation return against env steps, with bands."""
  by_environment = {}
  for run in normalised:
    by_environment.setdefault(environment_of(run["task"]), set()).add(run["task"])
  panels = [(env, tasks) for env, tasks in sorted(by_environment.items())]
  if len(panels) > 1:
    panels.append(("all tasks", set().union(*by_environment.values())))
  notes, drawable = [], []
  for title, tasks in panels:
    steps = aggregate.common_steps(normalised, tasks)
    if steps.size < 2:
      notes.append(f"sample_efficiency: no curve for {title}: its runs share {steps.size} evaluation step(s)")
    else:
      drawable.append((title, tasks, steps))
  if not drawable:
    return None, notes
  fig, axes = plt.subplots(1, len(drawable), figsize=(4.8 * len(drawable), 3.8), squeeze=False)
  for axis, (title, tasks, steps) in zip(axes[0], drawable):
    estimators = aggregate._estimator_order({r["estimator"] for r in normalised  # pylint: disable=protected-access
                                             if r["task"] in tasks})
    for estimator in estimators:
      strata = aggregate.curve_strata(normalised, estimator, steps, tasks)
      curve, low, high = aggregate.sample_efficiency_curves(
          list(strata.values()), reps=reps, seed=aggregate.stream(seed, "curve", title, estimator))
      name, colour = _style(estimator)
      axis.plot(steps, curve, color=colour, linewidth=1.4,
                label=f"{name} ({sum(v.shape[0] for v in strata.values())} runs, {len(strata)} tasks)")
      axis.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
    project_plots._steps_formatter(axis, steps[-1])  # pylint: disable=protected-access
    axis.set_title(f"{title} ({len(tasks)} task{'s' if len(tasks) != 1 else ''})", fontsize=9)
    axis.set_xlabel("environment steps")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
  axes[0][0].set_ylabel("IQM of normalised evaluation return")
  fig.suptitle(f"Sample efficiency (band = 95% interval; steps every run of the panel has)\n{foot}", fontsize=8)
  fig.tight_layout()
  return fig, notes


def _save(fig, out_dir, stem):
  paths = []
  for ext in ("png", "pdf"):
    path = f"{out_dir}/{stem}.{ext}"
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    paths.append(path)
  plt.close(fig)
  return paths


def write_figures(rows, poi_rows, table, normalised, out_dir, *, over="episodes", reps=50_000, poi_reps=2_000,
                  seed=0, environment_of=aggregate.environment_of_task, reference="gst", meta=None):
  """All four figures into `out_dir` (which must exist); returns (paths, notes on what was not drawn)."""
  paths, notes = [], []
  figure = plot_interval_estimates(rows, footer(meta, over, reps, seed))
  if figure is not None:
    paths += _save(figure, out_dir, "aggregate_intervals")
  figure = plot_improvement(poi_rows, reference, footer(meta, over, poi_reps, seed))
  if figure is None:
    notes.append(f"probability_of_improvement figure not drawn: no estimator {reference!r} with another to "
                 f"compare")
  else:
    paths += _save(figure, out_dir, "probability_of_improvement")
  figure = plot_performance_profiles(table, footer(meta, over, poi_reps, seed), reps=poi_reps, seed=seed)
  if figure is not None:
    paths += _save(figure, out_dir, "performance_profiles")
  figure, curve_notes = plot_sample_efficiency(normalised, environment_of, footer(meta, over, poi_reps, seed),
                                               reps=poi_reps, seed=seed)
  notes += curve_notes
  if figure is not None:
    paths += _save(figure, out_dir, "sample_efficiency")
  return paths, notes
