"""Figures 1-4 of the paper from a `maddpg-reproduce` results directory (matplotlib, Agg backend; PNG + PDF).

Figures 1-3 (`write_learning_curve_figures`): evaluation return against env steps, the mean over seeds with
a band of one standard error over seeds, one panel per task, one curve per estimator. The tasks are grouped
as in the paper:
  Figure 1: the two LBF 10x10 tasks (10x10-3p-3f, 10x10-3p-3f-2s);
  Figure 2: the three LBF 15x15 tasks (15x15-3p-5f, 15x15-4p-3f, 15x15-4p-5f);
  Figure 3: the two RWARE tasks (tiny 2ag, tiny 4ag);
  Figure S1 (ours): the two LBF 8x8 tasks, which the paper shows in Table 1 only (there the estimators
    differ little: no significant difference in either metric).
A figure is drawn when at least one of its tasks has results; a dotted line marks the paper's best maximum
return for the task (Table 1, at the paper's budget).

Figure 4 (`write_figure4`): per-layer policy-gradient variance over training, read from the runs'
TensorBoard logs, in both of the paper's readings: tags `policy_grad_variance/<layer>/<kernel|bias>/agent_<i>`
(the authors' code: variance over the entries of the clipped batch-mean gradient) and
`per_sample_grad_variance/...` (the paper's text: variance over the mini-batch of per-sample gradients). One
row per estimator and definition, weights left and biases right, one curve per layer: for each agent the
values are averaged over seeds (binned to the logging interval), then the line is the mean over agents and
the band spans the minimum to the maximum over agents (the paper's caption).

Every figure states the budget and the fidelity under its title.
"""

import collections
import glob
import math
import os
import re
import struct

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top  (after choosing the backend)
import matplotlib.ticker  # pylint: disable=g-import-not-at-top
import numpy as np
from tensorboard.compat.proto import event_pb2, types_pb2

from maddpg_tf import files
from maddpg_tf.analysis import statistics, tables

FIGURE_GROUPS = (
    ("figure1", "Figure 1: LBF 10x10 tasks", ("lbf-10x10-3p-3f", "lbf-10x10-3p-3f-2s")),
    ("figure2", "Figure 2: LBF 15x15 tasks", ("lbf-15x15-3p-5f", "lbf-15x15-4p-3f", "lbf-15x15-4p-5f")),
    ("figure3", "Figure 3: RWARE tiny tasks", ("rware-tiny-2ag", "rware-tiny-4ag")),
    ("figureS1", "Figure S1 (not in the paper): LBF 8x8 tasks", ("lbf-8x8-2p-2f-coop", "lbf-8x8-2p-2f-2s-coop")),
)
ESTIMATOR_STYLE = {  # the same colour for an estimator in every figure
    "stgs-1": ("STGS-1", "tab:blue"), "stgs-t": ("STGS-T", "tab:orange"), "tags": ("TAGS", "tab:green"),
    "grmck": ("GRMCK", "tab:red"), "gst": ("GST", "tab:purple"), "stgs": ("STGS", "tab:brown"),
    "st": ("ST", "tab:pink"), "gumbel_softmax": ("Gumbel-Softmax", "tab:gray"), "reinmax": ("ReinMax", "tab:olive"),
    "zgr": ("ZGR", "tab:cyan"), "reinmax-rao": ("ReinMax-Rao", "darkolivegreen"),
    "reinmax-cv": ("ReinMax-CV", "goldenrod"),
}
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
           "tab:olive", "tab:cyan")  # matplotlib's tab10, the names ESTIMATOR_STYLE uses
LAYER_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
DPI = 150


def _style(estimator):
  return ESTIMATOR_STYLE.get(estimator, (estimator, None))


def _footer(meta, extra=""):
  seeds = ",".join(str(s) for s in meta.get("seeds", []))
  return (f"maddpg-tf; budget {meta['budget']}; fidelity {meta['fidelity']}; seeds {seeds}"
          + (f"; {extra}" if extra else ""))


def _save(fig, out_dir, stem):
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for ext in ("png", "pdf"):
    path = os.path.join(out_dir, f"{stem}.{ext}")
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    paths.append(path)
  plt.close(fig)
  return paths


def _steps_formatter(axis, max_step):
  if max_step >= 1_000_000:
    axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e6:g}M" if x else "0"))
  elif max_step >= 1_000:
    axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e3:g}k" if x else "0"))


def _paper_best_max(task):
  try:
    paper, best = tables.paper_cells()
    return best.get((task, "max")), next((row.train_steps for (t, _), row in paper.items() if t == task), None)
  except Exception:  # pylint: disable=broad-except  (a missing data file must not stop the figures)
    return None, None


def plot_learning_curves(found, tasks, title, meta):
  """A figure with one panel per task of `tasks` that has results in `found`; None when none has."""
  present = [task for task in tasks if task in found]
  if not present:
    return None
  fig, axes = plt.subplots(1, len(present), figsize=(4.6 * len(present), 3.6), squeeze=False)
  for axis, task in zip(axes[0], present):
    max_step = 0
    for estimator, runs in found[task].items():
      length = min(len(run["returns"]) for run in runs)
      curves = np.stack([run["returns"][:length] for run in runs])
      steps = np.asarray(runs[0]["steps"][:length], np.float64)
      mean, sem = statistics.standard_error_band(curves)
      name, colour = _style(estimator)
      axis.plot(steps, mean, color=colour, label=f"{name} ({len(runs)})", linewidth=1.4)
      axis.fill_between(steps, mean - sem, mean + sem, color=colour, alpha=0.2, linewidth=0)
      max_step = max(max_step, steps[-1] if len(steps) else 0)
    best, paper_steps = _paper_best_max(task)
    if best is not None:
      axis.axhline(best, color="black", linestyle=":", linewidth=1.0,
                   label=f"paper best max ({paper_steps / 1e6:g}M steps)" if paper_steps else "paper best max")
    _steps_formatter(axis, max_step)
    axis.set_title(task)
    axis.set_xlabel("environment steps")
    axis.grid(alpha=0.3)
  axes[0][0].set_ylabel("evaluation return")
  handles, labels = [], []
  for axis in axes[0]:
    for handle, text in zip(*axis.get_legend_handles_labels()):
      if text not in labels:
        handles.append(handle)
        labels.append(text)
  fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8,
             bbox_to_anchor=(0.5, -0.08), frameon=False)
  fig.suptitle(f"{title}\n{_footer(meta, 'mean over seeds (count in legend), band = standard error')}",
               fontsize=9)
  fig.tight_layout(rect=(0, 0.02, 1, 1))
  return fig


def write_learning_curve_figures(found, out_dir, meta):
  """Figures 1-3 (and S1) for the tasks in `found` ({task: {estimator: [run dicts]}}); returns paths."""
  paths = []
  for stem, title, tasks in FIGURE_GROUPS:
    fig = plot_learning_curves(found, tasks, title, meta)
    if fig is not None:
      paths += _save(fig, out_dir, stem)
  return paths



def plot_comparison(groups, title, note):
  """One panel: each group's mean evaluation return against env steps with a band `[low, high]`.

  `groups`: [(label, steps [E], mean [E], low [E], high [E], runs)] in legend order (`maddpg-compare`:
  `maddpg_tf.analysis.compare`). A known estimator label keeps its colour of Figures 1-3 unless an earlier
  group holds it (two runs of one estimator with different settings must still be told apart).
  """
  fig, axis = plt.subplots(figsize=(6.4, 4.0))
  used, max_step = set(), 0
  for index, (label, steps, mean, low, high, runs) in enumerate(groups):
    colour = _style(label)[1]
    if colour is None or colour in used:
      colour = next((c for c in PALETTE if c not in used), PALETTE[index % len(PALETTE)])
    used.add(colour)
    steps = np.asarray(steps, np.float64)
    axis.plot(steps, mean, color=colour, label=f"{label} ({runs} run{'s' if runs != 1 else ''})", linewidth=1.4,
              marker="o" if steps.size < 5 else None, markersize=3)
    axis.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
    max_step = max(max_step, steps[-1] if steps.size else 0)
  _steps_formatter(axis, max_step)
  axis.set_xlabel("environment steps")
  axis.set_ylabel("evaluation return")
  axis.grid(alpha=0.3)
  axis.legend(fontsize=8)
  axis.set_title(f"{title}\n{note}", fontsize=9)
  fig.tight_layout()
  return fig


def save_figure(fig, path):
  """Writes `fig` to `path` whole (the format from its extension) and closes it."""
  with files.replacing(path, suffix=os.path.splitext(path)[1]) as temporary:
    fig.savefig(temporary, dpi=DPI, bbox_inches="tight")
  plt.close(fig)


# ---- Figure 4 -----------------------------------------------------------------------------------------

_TAG = re.compile(r"^(policy_grad_variance|per_sample_grad_variance)/(.+)/(kernel|bias)/agent_(\d+)$")


def _scalar(value):
  """The float in a summary value: a TF2 scalar tensor (float_val / double_val / tensor_content) or simple_value."""
  if value.HasField("tensor"):
    tensor = value.tensor
    if tensor.float_val:
      return float(tensor.float_val[0])
    if tensor.double_val:
      return float(tensor.double_val[0])
    dtype = {types_pb2.DT_FLOAT: "<f4", types_pb2.DT_DOUBLE: "<f8"}.get(tensor.dtype)
    if dtype and tensor.tensor_content:
      return float(np.frombuffer(tensor.tensor_content, dtype=dtype)[0])
    return math.nan
  return float(value.simple_value)


def read_events(tb_dir):
  """(step, tag, value) of every scalar summary in the event files of `tb_dir`, files in name order.

  Reads the TFRecord framing directly (8-byte length, 4-byte CRC, record, 4-byte CRC; CRCs not checked) and
  parses `tensorboard`'s Event protobuf, so no TensorFlow is needed. A record cut short by a kill ends its
  file.
  """
  for path in sorted(glob.glob(os.path.join(tb_dir, "events.out.tfevents.*"))):
    with open(path, "rb") as handle:
      data = handle.read()
    position = 0
    while position + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[position:position + 8])
      end = position + 12 + length
      if end + 4 > len(data):
        break
      try:
        event = event_pb2.Event.FromString(data[position + 12:end])
      except Exception:  # pylint: disable=broad-except  (a damaged record: stop reading this file)
        break
      position = end + 4
      for value in event.summary.value:
        yield int(event.step), value.tag, _scalar(value)


def read_grad_variance(tb_dir):
  """{definition: {(layer, 'kernel'|'bias'): {agent: {step: value}}}} from one run's TensorBoard logs.

  When a resumed run logged a step twice (the events between its last checkpoint and a kill, then again
  after the resume), the value read last (the newer file) wins.
  """
  found = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(dict)))
  for step, tag, value in read_events(tb_dir):
    match = _TAG.match(tag)
    if match:
      definition, layer, parameter, agent = match.group(1), match.group(2), match.group(3), int(match.group(4))
      found[definition][(layer, parameter)][agent][step] = value
  return found


def aggregate_agents(per_seed, bin_size):
  """Per-seed {agent: {step: value}} -> (steps, mean, min, max) over agents of the seed-mean per agent.

  Steps are binned to `bin_size` (the logging interval) so that seeds logged at slightly different steps
  line up (the last value of a bin counts); a bin is kept when every seed and agent has a value in it, and
  is drawn at the mean of the steps logged in it.
  """
  per_agent = collections.defaultdict(lambda: collections.defaultdict(list))
  logged_steps = collections.defaultdict(list)
  for series in per_seed:
    for agent, values in series.items():
      binned = {}
      for step in sorted(values):
        binned[step // bin_size] = (step, values[step])
      for key, (step, value) in binned.items():
        per_agent[agent][key].append(value)
        logged_steps[key].append(step)
  if not per_agent:
    return (np.zeros(0),) * 4
  agents = sorted(per_agent)
  bins = sorted(set.intersection(*(set(k for k, v in per_agent[a].items() if len(v) == len(per_seed))
                                   for a in agents)))
  if not bins:
    return (np.zeros(0),) * 4
  matrix = np.array([[np.mean(per_agent[a][b]) for b in bins] for a in agents])  # [agents, bins]
  steps = np.array([np.mean(logged_steps[b]) for b in bins], np.float64)
  return steps, matrix.mean(axis=0), matrix.min(axis=0), matrix.max(axis=0)


def _layer_label(layer, index):
  match = re.search(r"(\d+)$", layer)
  return f"layer {int(match.group(1)) + 1}" if match else f"{layer}"


SHORT_DEFINITIONS = {"policy_grad_variance": "code's variance", "per_sample_grad_variance": "per-sample variance"}
DEFINITION_LABELS = {
    "policy_grad_variance": "variance over the entries of the clipped batch-mean gradient (the authors' code)",
    "per_sample_grad_variance": "variance over the mini-batch of the per-sample gradients, averaged over the "
                                "layer's entries (the paper's text)",
}


def figure4(runs, task, meta, bin_size=1000):
  """The Figure 4 figure from {estimator: [tb dirs, one per seed]}; None when no run logged the tags."""
  data = {}  # (estimator, definition) -> {(layer, parameter): [per-seed {agent: {step: value}}]}
  for estimator, tb_dirs in runs.items():
    for tb_dir in tb_dirs:
      for definition, by_layer in read_grad_variance(tb_dir).items():
        for key, series in by_layer.items():
          data.setdefault((estimator, definition), {}).setdefault(key, []).append(series)
  if not data:
    return None
  order = list(DEFINITION_LABELS)
  rows = sorted(data, key=lambda k: (list(runs).index(k[0]), order.index(k[1]) if k[1] in order else len(order), k[1]))
  fig, axes = plt.subplots(len(rows), 2, figsize=(10, 3.3 * len(rows)), squeeze=False, sharey="col")
  for row, (estimator, definition) in zip(axes, rows):
    layers = sorted({layer for layer, _ in data[(estimator, definition)]})
    seeds = max(len(v) for v in data[(estimator, definition)].values())
    for axis, parameter, name in ((row[0], "kernel", "weights"), (row[1], "bias", "biases")):
      max_step = 0
      for index, layer in enumerate(layers):
        series = data[(estimator, definition)].get((layer, parameter))
        if not series:
          continue
        steps, mean, low, high = aggregate_agents(series, bin_size)
        if steps.size == 0:
          continue
        colour = LAYER_COLOURS[index % len(LAYER_COLOURS)]
        axis.plot(steps, mean, color=colour, linewidth=1.0, label=_layer_label(layer, index),
                  marker="o" if steps.size < 5 else None, markersize=3)
        axis.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
        max_step = max(max_step, steps[-1])
      if np.any([line.get_ydata().size and np.all(np.asarray(line.get_ydata()) > 0) for line in axis.lines]):
        axis.set_yscale("log")
      _steps_formatter(axis, max_step)
      axis.set_title(f"{_style(estimator)[0]}, {SHORT_DEFINITIONS.get(definition, definition)}: {name} "
                     f"({seeds} seed{'s' if seeds != 1 else ''})", fontsize=9)
      axis.set_xlabel("environment steps")
      axis.grid(alpha=0.3)
      if axis.lines:
        axis.legend(fontsize=7)
    row[0].set_ylabel(f"gradient variance\n[{definition}]", fontsize=8)
  definitions = sorted({d for _, d in rows})
  notes = "\n".join(f"{d}: {DEFINITION_LABELS.get(d, 'as logged')}" for d in definitions)
  missing = [d for d in DEFINITION_LABELS if d not in definitions]
  if missing:
    notes += f"; not logged by these runs: {', '.join(missing)}"
  fig.suptitle(f"Figure 4: policy gradient variance per layer, {task}; line = mean over agents, band = "
               f"min-max over agents\n{_footer(meta)}\n{notes}", fontsize=8)
  fig.tight_layout()
  return fig


def write_figure4(runs, task, out_dir, meta, bin_size=1000):
  fig = figure4(runs, task, meta, bin_size)
  if fig is None:
    return []
  return _save(fig, out_dir, "figure4")
