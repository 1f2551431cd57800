"""Tables 1 and 2 as Markdown, LaTeX and CSV, each beside the paper's published values.

Table 1 (`write_table1`): per task and estimator, our maximum, absolute (where the runs have one) and average
evaluation returns (95% Student-t intervals; bold = best in the task; * = not significantly different from
the best, two-sided Welch t-test at 5%), the Welch p-values of the maximum and the average against the
reference estimator STGS-1 (Markdown and CSV; the LaTeX table leaves them out for width; the maths is
`maddpg_tf.analysis.statistics`), the paper's value for the same cell and the difference (ours - paper).
Table 2 (`write_table2`): `maddpg_tf.lab.timing.run_benchmark` results in the paper's layout (microseconds
per relaxation and ratio to STGS, by logit dimension) beside the paper's values.

Every file states the budget and the fidelity it was produced with (`meta`, from `maddpg-reproduce`).
"""

import csv
import json
import math
import os

from maddpg_tf import files
from maddpg_tf.analysis import paper_data
from maddpg_tf.analysis import statistics

# Our task names -> the paper's (environment, task) labels in `maddpg_tf/data/paper_table1.csv`.
PAPER_TASKS = {
    "lbf-8x8-2p-2f-coop": ("LBF", "8x8-2p-2f-c"),
    "lbf-8x8-2p-2f-2s-coop": ("LBF", "8x8-2p-2f-2s-c"),
    "lbf-10x10-3p-3f": ("LBF", "10x10-3p-3f"),
    "lbf-10x10-3p-3f-2s": ("LBF", "10x10-3p-3f-2s"),
    "lbf-15x15-3p-5f": ("LBF", "15x15-3p-5f"),
    "lbf-15x15-4p-3f": ("LBF", "15x15-4p-3f"),
    "lbf-15x15-4p-5f": ("LBF", "15x15-4p-5f"),
    "rware-tiny-2ag": ("RWARE", "tiny 2ag"),
    "rware-tiny-4ag": ("RWARE", "tiny 4ag"),
}
PAPER_ESTIMATOR_LABELS = {"stgs-1": "STGS-1", "stgs-t": "STGS-T", "tags": "TAGS", "grmck": "GRMCK", "gst": "GST"}

TABLE1_COLUMNS = [
    "task", "estimator", "budget", "fidelity", "lbf_food_rule", "seeds", "finished_seeds", "evaluations", "last_step",
    "total_steps", "max_step", "max_return", "max_ci95", "max_bold", "max_asterisk", "max_pvalue",
    "reference", "max_pvalue_vs_reference", "absolute_return", "absolute_ci95", "absolute_seeds",
    "absolute_bold", "absolute_asterisk", "absolute_pvalue",
    "average_return", "average_ci95", "average_bold", "average_asterisk", "average_pvalue",
    "average_pvalue_vs_reference",
    "paper_train_steps", "paper_max_return", "paper_max_ci95", "paper_max_asterisk", "paper_max_bold",
    "paper_average_return", "paper_average_ci95", "paper_average_bold", "max_difference",
    "average_difference",
]


def label(estimator):
  """The paper's column name for an estimator label (ours otherwise)."""
  return PAPER_ESTIMATOR_LABELS.get(estimator, estimator)


def paper_cells():
  """{(our task, our estimator): Table1Row} with the paper's bold marks: {(task, metric): best value}."""
  reverse_tasks = {value: key for key, value in PAPER_TASKS.items()}
  reverse_estimators = {value: key for key, value in PAPER_ESTIMATOR_LABELS.items()}
  cells, best = {}, {}
  for row in paper_data.table1():
    key = (reverse_tasks[(row.environment, row.task)], reverse_estimators[row.estimator])
    cells[key] = row
    for metric, value in (("max", row.max_return), ("average", row.average_return)):
      best[(key[0], metric)] = max(best.get((key[0], metric), -math.inf), value)
  return cells, best


def _number(value, digits=3):
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return ""
  return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


REFERENCE_MARK = "ref"  # the reference row's p-value cell (a test against itself)


def _vs_reference(cell, pvalue):
  """The p-value cell against the reference: "ref" on its own row, "" where the task lacks it."""
  if cell.reference is None:
    return ""
  return REFERENCE_MARK if cell.estimator == cell.reference else pvalue


def _absolute_columns(cell):
  if cell.absolute is None:  # no seed has one: empty, never a number
    return dict(absolute_seeds=0)
  return dict(absolute_return=cell.absolute.mean, absolute_ci95=cell.absolute.half_width,
              absolute_seeds=cell.absolute_seeds, absolute_bold=int(cell.absolute_bold),
              absolute_asterisk=int(cell.absolute_asterisk), absolute_pvalue=cell.absolute_pvalue)


def table1_rows(cells, meta, info=None):
  """One dict per Cell (keys TABLE1_COLUMNS): ours, the paper's, and the differences."""
  paper, paper_best = paper_cells()
  info = info or {}
  rows = []
  for cell in cells:
    extra = info.get((cell.task, cell.estimator), {})
    reference = paper.get((cell.task, cell.estimator))
    row = dict(task=cell.task, estimator=cell.estimator, budget=meta["budget"],
               fidelity=extra.get("fidelity", meta["fidelity"]), lbf_food_rule=extra.get("lbf_food_rule", ""),
               seeds=cell.seeds,
               finished_seeds=extra.get("finished", ""), evaluations=cell.evaluations,
               last_step=extra.get("last_step", ""), total_steps=extra.get("total_steps", ""),
               max_step=cell.max_step if cell.max_step is not None else "",
               max_return=cell.maximum.mean, max_ci95=cell.maximum.half_width, max_bold=int(cell.max_bold),
               max_asterisk=int(cell.max_asterisk), max_pvalue=cell.max_pvalue,
               average_return=cell.average.mean, average_ci95=cell.average.half_width,
               average_bold=int(cell.average_bold), average_asterisk=int(cell.average_asterisk),
               average_pvalue=cell.average_pvalue, reference=cell.reference or "",
               max_pvalue_vs_reference=_vs_reference(cell, cell.max_pvalue_reference),
               average_pvalue_vs_reference=_vs_reference(cell, cell.average_pvalue_reference),
               **_absolute_columns(cell))
    if reference is not None:
      row.update(paper_train_steps=reference.train_steps, paper_max_return=reference.max_return,
                 paper_max_ci95=reference.max_ci95, paper_max_asterisk=int(reference.max_asterisk),
                 paper_max_bold=int(reference.max_return == paper_best[(cell.task, "max")]),
                 paper_average_return=reference.average_return, paper_average_ci95=reference.average_ci95,
                 paper_average_bold=int(reference.average_return == paper_best[(cell.task, "average")]),
                 max_difference=cell.maximum.mean - reference.max_return,
                 average_difference=cell.average.mean - reference.average_return)
    rows.append({column: row.get(column, "") for column in TABLE1_COLUMNS})
  return rows


def half_width_text(half):
  """A 95% half-width to two decimals; "n/a" where there is none (one seed)."""
  return "n/a" if half == "" or math.isnan(half) else f"{half:.2f}"


def mean_ci_text(mean, half):
  """'0.81 ± 0.03' (Markdown), '0.54 ± n/a' for one seed."""
  return f"{mean:.2f} ± {half_width_text(half)}"


def _ours(mean, half, bold, asterisk, style):
  """'0.812 ± 0.031' with bold/asterisk in Markdown or LaTeX."""
  if style == "md":
    text = mean_ci_text(mean, half)
    text = f"**{text}**" if bold else text
    return text + ("\\*" if asterisk else "")
  text = f"{mean:.2f} \\pm {half_width_text(half)}"
  text = f"\\mathbf{{{text}}}" if bold else text
  return f"${text}{'^{*}' if asterisk else ''}$"


def _absolute(row, style):
  """The absolute cell: "n/a" / "--" without one, "(k of n)" when only k of the n seeds have one."""
  if row["absolute_return"] == "":
    return "n/a" if style == "md" else "--"
  text = _ours(row["absolute_return"], row["absolute_ci95"], row["absolute_bold"], row["absolute_asterisk"],
               style)
  if row["absolute_seeds"] != row["seeds"]:
    text += f" ({row['absolute_seeds']} of {row['seeds']})"
  return text


def pvalue_text(value):
  """A p-value as the Markdown table prints it ("ref", "-" where the task has no reference, "n/a")."""
  if value == REFERENCE_MARK:
    return value
  if value == "":
    return "-"
  if math.isnan(value):
    return "n/a"
  return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _reference_label(rows):
  return label(next((row["reference"] for row in rows if row["reference"]), statistics.REFERENCE))


def _steps(value):
  if value in ("", None):
    return "?"
  value = int(value)
  if value >= 1_000_000:
    return f"{value / 1e6:g}M"
  if value >= 1_000:
    return f"{value / 1e3:g}k"
  return str(value)


def _header_lines(meta, what):
  seeds = ", ".join(str(s) for s in meta.get("seeds", []))
  if what == "table2":  # a micro-benchmark: no training runs, so no fidelity and no seeds
    return [f"Budget {meta['budget']}; fidelity: not applicable (no training); generated "
            f"{meta.get('generated', '')} by maddpg-reproduce --what={what}."]
  return [f"Budget {meta['budget']} ({meta['description']}); fidelity {meta['fidelity']}; seeds {seeds}; "
          f"generated {meta.get('generated', '')} by maddpg-reproduce --what={what}."]


def _table1_notes(reference):
  return [
      "[food v2]: LBF run with the food-level rule of the lbforaging the paper ran (a409b672: a non-coop "
      "food's level below the sum L of the three lowest player levels); [food v3]: lbforaging 2.0.0's rule "
      "(up to L inclusive; about a quarter of the foods need several agents). Coop tasks are the same under "
      "both; RWARE has no such rule. README: Fidelity.",
      "",
      "Maximum: the evaluation with the highest mean over seeds, mean ± 95% Student-t half-width over seeds "
      "(df = seeds - 1). Average: every evaluation of every seed pooled, mean ± 95% t half-width (df = N - 1). "
      "**Bold**: best in the task; \\*: not significantly different from the best (two-sided Welch t-test, 5%; "
      "maximum: per-seed values at each estimator's own best evaluation; average: the pooled values). "
      "Paper: Table 1 of the paper (5 seeds; its bold recomputed as the largest value, its asterisks "
      "transcribed for the maximum only). Δ = ours - paper.",
      "",
      "Absolute (ours): the absolute metric of Gorsane et al. 2022, each seed's policy of its best evaluation "
      "evaluated after training with 10x the run's evaluation episodes, mean over seeds ± 95% t half-width "
      "(df = seeds - 1), bold and \\* as for the maximum; \"(k of n)\": only k of the n seeds have one, "
      "\"n/a\": none has.",
      "",
      f"p vs {reference}: the two-sided Welch t-test p-value of the estimator against the reference {reference} "
      f"on the samples the asterisks use (maximum: per-seed values at each one's own best evaluation; average: "
      f"the pooled values); \"ref\": the reference itself, \"n/a\": fewer than two values on a side, "
      f"\"-\": the task has no {reference} row.",
  ]


def _table1_markdown_row(row):
  ours_max = _ours(row["max_return"], row["max_ci95"], row["max_bold"], row["max_asterisk"], "md")
  ours_avg = _ours(row["average_return"], row["average_ci95"], row["average_bold"], row["average_asterisk"], "md")
  if row["paper_max_return"] != "":
    paper_max = _ours(row["paper_max_return"], row["paper_max_ci95"], row["paper_max_bold"],
                      row["paper_max_asterisk"], "md")
    paper_avg = _ours(row["paper_average_return"], row["paper_average_ci95"], row["paper_average_bold"], 0, "md")
    dmax, davg = f"{row['max_difference']:+.2f}", f"{row['average_difference']:+.2f}"
  else:
    paper_max = paper_avg = dmax = davg = "-"
  seeds = f"{row['seeds']}" + (f" ({row['finished_seeds']} done)" if row["finished_seeds"] != row["seeds"]
                               and row["finished_seeds"] != "" else "")
  task = f"{row['task']} ({_steps(row['total_steps'])} / {_steps(row['paper_train_steps'] or None)})"
  if row.get("lbf_food_rule"):
    task += f" [food {row['lbf_food_rule']}]"
  return (f"| {task} | {label(row['estimator'])} | {seeds} | {ours_max} | {_absolute(row, 'md')} | {paper_max} | "
          f"{dmax} | {pvalue_text(row['max_pvalue_vs_reference'])} | {ours_avg} | {paper_avg} | {davg} | "
          f"{pvalue_text(row['average_pvalue_vs_reference'])} | {_steps(row['max_step'])} |")


def table1_markdown(rows, meta):
  reference = _reference_label(rows)
  lines = [
      "# Table 1: maximum and average evaluation returns (maddpg-tf beside the paper)",
      "",
      *_header_lines(meta, "table1"),
      "",
      *_table1_notes(reference),
      "",
      f"| task (steps: ours / paper) | estimator | seeds | max (ours) | absolute (ours) | max (paper) | Δ max | "
      f"p max vs {reference} | average (ours) | average (paper) | Δ average | p average vs {reference} | "
      f"best eval step |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  lines += [_table1_markdown_row(row) for row in rows]
  unfinished = [f"{r['task']}/{r['estimator']}" for r in rows
                if r["finished_seeds"] != "" and r["finished_seeds"] != r["seeds"]]
  if unfinished:
    lines += ["", f"Not every run of these cells had finished (values use the evaluations so far): "
                  f"{', '.join(unfinished)}."]
  return "\n".join(lines) + "\n"


def _tex_escape(text):
  return str(text).replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")


def table1_latex(rows, meta):
  seeds = ", ".join(str(s) for s in meta.get("seeds", []))
  lines = [
      f"% maddpg-tf Table 1; budget {meta['budget']}; fidelity {meta['fidelity']}; seeds {seeds}",
      f"% {meta['description']}",
      "% The Welch p-values against the reference estimator are in table1.md and table1.csv (too wide here).",
      "\\begin{table}[t]",
      "\\centering",
      "\\small",
      "\\begin{tabular}{llrlllrllr}",
      "\\toprule",
      "Task & Estimator & Seeds & Max (ours) & Absolute (ours) & Max (paper) & $\\Delta$ & Average (ours) & "
      "Average (paper) & $\\Delta$ \\\\",
      "\\midrule",
  ]
  previous = None
  for row in rows:
    ours_max = _ours(row["max_return"], row["max_ci95"], row["max_bold"], row["max_asterisk"], "tex")
    ours_avg = _ours(row["average_return"], row["average_ci95"], row["average_bold"], row["average_asterisk"],
                     "tex")
    if row["paper_max_return"] != "":
      paper_max = _ours(row["paper_max_return"], row["paper_max_ci95"], row["paper_max_bold"],
                        row["paper_max_asterisk"], "tex")
      paper_avg = _ours(row["paper_average_return"], row["paper_average_ci95"], row["paper_average_bold"], 0,
                        "tex")
      dmax, davg = f"${row['max_difference']:+.2f}$", f"${row['average_difference']:+.2f}$"
    else:
      paper_max = paper_avg = dmax = davg = "--"
    if previous is not None and previous != row["task"]:
      lines.append("\\midrule")
    task = (f"{_tex_escape(row['task'])} ({_steps(row['total_steps'])})" if previous != row["task"] else "")
    previous = row["task"]
    lines.append(f"{task} & {_tex_escape(label(row['estimator']))} & {row['seeds']} & {ours_max} & "
                 f"{_absolute(row, 'tex')} & {paper_max} & {dmax} & {ours_avg} & {paper_avg} & {davg} \\\\")
  lines += [
      "\\bottomrule",
      "\\end{tabular}",
      f"\\caption{{Maximum and average evaluation returns, 95\\% Student-t intervals over seeds (maximum) and "
      f"over all evaluations pooled (average); absolute: the absolute metric (each seed's best policy evaluated "
      f"with 10$\\times$ the evaluation episodes), intervals over seeds, ``($k$ of $n$)'' where only $k$ seeds "
      f"have it; bold: best; $^{{*}}$: not significantly different from the best "
      f"(two-sided Welch t-test, 5\\%). Budget {meta['budget']}, fidelity {meta['fidelity']}; the paper's "
      f"values beside ours, $\\Delta$ = ours $-$ paper.}}",
      "\\label{tab:maddpg-tf-table1}",
      "\\end{table}",
  ]
  return "\n".join(lines) + "\n"


def write_csv(path, rows, columns):
  with open(path, "w", newline="") as handle:
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    for row in rows:
      writer.writerow({k: (_number(v, 6) if isinstance(v, float) else v) for k, v in row.items()})




def write_table1(cells, out_dir, meta, info=None):
  """Writes table1.md, table1.tex, table1.csv under out_dir; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  rows = table1_rows(cells, meta, info)
  paths = [os.path.join(out_dir, f"table1.{ext}") for ext in ("md", "tex", "csv")]
  files.write_text(paths[0], table1_markdown(rows, meta))
  files.write_text(paths[1], table1_latex(rows, meta))
  write_csv(paths[2], rows, TABLE1_COLUMNS)
  return paths


# ---- Table 2 ------------------------------------------------------------------------------------------

# The paper's Table 2 columns and the bench_estimators row that matches each (GRMC-50 ran K = 100).
TABLE2_COLUMNS = (("STGS", "stgs"), ("GRMC-1", "grmck1"), ("GRMC-10", "grmck10"),
                  ("GRMC-50 (K=100)", "grmck100"), ("GST", "gst"))
TABLE2_CSV_COLUMNS = ["dimension", "estimator", "bench_key", "us", "ci95", "ratio_to_stgs", "paper_us",
                      "paper_ci95", "paper_ratio_to_stgs", "ratio_difference", "budget", "fidelity", "mode",
                      "device"]


def table2_rows(bench, meta):
  rows = []
  for row in bench.get("paper", []):
    column = next((name for name, key in TABLE2_COLUMNS if key == row["key"]), None)
    if column is None:
      continue
    ratio_difference = (row["ratio"] - row["paper_ratio"]
                        if row.get("ratio") is not None and row.get("paper_ratio") is not None else "")
    rows.append(dict(dimension=row["dim"], estimator=column, bench_key=row["key"], us=row["us"], ci95=row["ci95"],
                     ratio_to_stgs=row["ratio"], paper_us=row["paper_us"], paper_ci95=row["paper_ci95"],
                     paper_ratio_to_stgs=row["paper_ratio"], ratio_difference=ratio_difference,
                     budget=meta["budget"], fidelity="n/a (no training)", mode=bench.get("mode", ""),
                     device=bench.get("environment", {}).get("device", "")))
  return rows


def _cell(us, ci95, ratio):
  if us is None or us == "":
    return "-"
  ci = "" if ci95 is None or (isinstance(ci95, float) and math.isnan(ci95)) else f" ± {ci95:.2f}"
  return f"{us:.2f}{ci} ({ratio:.2f}x)" if ratio is not None else f"{us:.2f}{ci}"


def table2_markdown(rows, bench, meta, full_report=""):
  env = bench.get("environment", {})
  settings = bench.get("settings", {})
  dims = sorted({row["dimension"] for row in rows})
  lines = [
      "# Table 2: time per relaxation, forward only, batch-1 logits (maddpg-tf beside the paper)",
      "",
      *_header_lines(meta, "table2"),
      f"Benchmark mode {bench.get('mode', '?')} ({settings.get('repeats', '?')} repeats x "
      f"{settings.get('number', '?')} calls); device {env.get('device', '?')}; TensorFlow "
      f"{env.get('tf_version', '?')}.",
      "",
      "Microseconds per call, mean ± 95% Student-t half-width over the repeats, (ratio to STGS at the same "
      "dimension). The paper's column \"GRMC-50\" ran K = 100 in the authors' script, so it is compared with our "
      "K = 100. Absolute times are not comparable (PyTorch eager on the authors' laptop against a TF "
      "`tf.function` call here); the ratios are.",
      "",
      "| dimension | source | " + " | ".join(name for name, _ in TABLE2_COLUMNS) + " |",
      "|---:|---|" + "---:|" * len(TABLE2_COLUMNS),
  ]
  by_key = {(row["dimension"], row["estimator"]): row for row in rows}
  for dim in dims:
    ours, paper = [], []
    for name, _ in TABLE2_COLUMNS:
      row = by_key.get((dim, name))
      ours.append(_cell(row["us"], row["ci95"], row["ratio_to_stgs"]) if row else "-")
      paper.append(_cell(row["paper_us"], row["paper_ci95"], row["paper_ratio_to_stgs"])
                   if row and row["paper_us"] is not None else "-")
    lines.append(f"| {dim} | ours | " + " | ".join(ours) + " |")
    lines.append(f"| {dim} | paper | " + " | ".join(paper) + " |")
  if full_report:
    lines += ["", "## The full benchmark report (tools/bench_estimators.py)", "", full_report.replace(
        "# Estimator timing (maddpg-tf)", "").strip()]
  return "\n".join(lines) + "\n"


def table2_latex(rows, bench, meta):
  dims = sorted({row["dimension"] for row in rows})
  by_key = {(row["dimension"], row["estimator"]): row for row in rows}
  lines = [
      f"% maddpg-tf Table 2; budget {meta['budget']} (benchmark mode {bench.get('mode', '?')}); fidelity: not "
      f"applicable (no training); device "
      f"{_tex_escape(bench.get('environment', {}).get('device', '?'))}",
      "\\begin{table}[t]",
      "\\centering",
      "\\small",
      "\\begin{tabular}{rl" + "r" * len(TABLE2_COLUMNS) + "}",
      "\\toprule",
      "Dim & Source & " + " & ".join(_tex_escape(name) for name, _ in TABLE2_COLUMNS) + " \\\\",
      "\\midrule",
  ]

  def cell(us, ci95, ratio):
    if us is None or us == "":
      return "--"
    ci = "" if ci95 is None or (isinstance(ci95, float) and math.isnan(ci95)) else f" \\pm {ci95:.2f}"
    return f"${us:.1f}{ci}$ ({ratio:.2f})" if ratio is not None else f"${us:.1f}{ci}$"

  for dim in dims:
    ours = [cell(by_key[(dim, n)]["us"], by_key[(dim, n)]["ci95"], by_key[(dim, n)]["ratio_to_stgs"])
            if (dim, n) in by_key else "--" for n, _ in TABLE2_COLUMNS]
    paper = [cell(by_key[(dim, n)]["paper_us"], by_key[(dim, n)]["paper_ci95"], by_key[(dim, n)]["paper_ratio_to_stgs"])
             if (dim, n) in by_key else "--" for n, _ in TABLE2_COLUMNS]
    lines.append(f"{dim} & ours & " + " & ".join(ours) + " \\\\")
    lines.append(" & paper & " + " & ".join(paper) + " \\\\")
  lines += [
      "\\bottomrule",
      "\\end{tabular}",
      "\\caption{Microseconds per relaxation (forward only, batch-1 logits), mean $\\pm$ 95\\% Student-t "
      "half-width, ratio to STGS in parentheses; the paper's GRMC-50 column ran $K=100$.}",
      "\\label{tab:maddpg-tf-table2}",
      "\\end{table}",
  ]
  return "\n".join(lines) + "\n"


def write_table2(bench, out_dir, meta, report):
  """Writes table2.md, table2.tex, table2.csv, table2.json under out_dir; returns their paths. `report`: the
  benchmark's own report of `bench` (`maddpg_tf.lab.timing.format_report`), quoted in table2.md."""
  os.makedirs(out_dir, exist_ok=True)
  rows = table2_rows(bench, meta)
  paths = [os.path.join(out_dir, f"table2.{ext}") for ext in ("md", "tex", "csv", "json")]
  files.write_text(paths[0], table2_markdown(rows, bench, meta, report))
  files.write_text(paths[1], table2_latex(rows, bench, meta))
  write_csv(paths[2], rows, TABLE2_CSV_COLUMNS)
  files.write_text(paths[3], json.dumps(dict(meta=meta, results=bench), indent=2, default=str))
  return paths
