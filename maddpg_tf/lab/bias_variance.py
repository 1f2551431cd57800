"""The estimator lab: each estimator's gradient against the exact gradient (`estimators.lab`), over
temperatures and action-set sizes, on random linear or quadratic functions of the one-hot action
(`random_problems`) or a trained critic (`critic_problem`); `run_lab` sweeps them into rows, `write_outputs`
writes the CSV, the Markdown table and the figures. `maddpg-estimator-lab` (`maddpg_tf.cli.lab`) is its
command line, which describes the measures.
"""

import csv
import io
import json
import os

import ml_collections
import numpy as np

from maddpg_tf import files
from maddpg_tf.run import checkpointing

DEFAULT_ESTIMATORS = "st,stgs,gst,grmck,reinmax,gumbel_softmax,reinforce"
CSV_NAME, MARKDOWN_NAME = "estimator_lab.csv", "estimator_lab.md"
PLOTS = (("bias", "bias_vs_temperature.png", "bias ||E g_hat - g||", False),
         ("variance", "variance_vs_temperature.png", "variance tr Cov(g_hat)", True))


class LabError(Exception):
  """A problem with the arguments; the message is one line."""


# ----------------------------------------------------------------------------------------------------------
# Estimators.

def _value(text):
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text


def parse_estimators(text):
  """'grmck:num_samples=1,stgs,my_module:MyEstimator:weight=0.3' -> [(label, name, params)]."""
  from estimators import lab  # pylint: disable=g-import-not-at-top
  specs = []
  for item in filter(None, (part.strip() for part in text.split(","))):
    name, *assignments = item.split(":")
    if assignments and "=" not in assignments[0]:  # module.path:ClassName, then its assignments
      name += ":" + assignments.pop(0)
    params = {}
    for assignment in assignments:
      key, sep, value = assignment.partition("=")
      if not sep:
        raise LabError(f"--estimators: {assignment!r} in {item!r} is not key=value")
      params[key.strip()] = _value(value.strip())
    if name == "tags":
      raise LabError("--estimators: tags is stgs with an annealed temperature; the lab sweeps "
                     "--temperatures itself: use stgs")
    if "temperature" in params:
      raise LabError(f"--estimators: {item!r}: give temperatures with --temperatures")
    try:
      lab.check_estimator(name, params)  # builds it once: bad values (K < 1, gap <= 0, ...) fail now
    except (ValueError, TypeError) as error:
      raise LabError(f"--estimators: {error}") from None
    specs.append((item, name, params))
  if not specs:
    raise LabError("--estimators is empty")
  return specs


# ----------------------------------------------------------------------------------------------------------
# The problems: (description, num_actions, logits, f).

def random_problems(family, sizes, rows, logit_scale, seed):
  from estimators import lab  # pylint: disable=g-import-not-at-top
  for k, size in enumerate(sizes):
    logits = lab.random_logits(rows, size, seed=[seed, k, 0], scale=logit_scale)
    yield family, size, logits, lab.random_function(family, rows, size, seed=[seed, k, 1])


def critic_problem(workdir, agent, rows, seed):
  """The trained critic of run `workdir` as f, on `rows` replay transitions; the agent's actor's logits."""
  from maddpg_tf.agent import diagnostics  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  from maddpg_tf.run import experiment  # pylint: disable=g-import-not-at-top
  config_path = os.path.join(workdir, "config.json")
  if not os.path.isfile(config_path):
    raise LabError(f"--checkpoint {workdir} holds no maddpg-tf run (no config.json)")
  try:
    with open(config_path) as handle:
      config = ml_collections.ConfigDict(json.load(handle))
    config.env_workers = 0  # only the learner and buffer are needed: no env processes
    with experiment.Experiment(config, workdir, progress=False) as run:
      path = run.restore_latest()
  except (OSError, ValueError, experiment.RunError, checkpointing.CheckpointError) as error:
    raise LabError(f"--checkpoint {workdir}: {error}") from None
  if path is None:
    raise LabError(f"--checkpoint {workdir} has no complete checkpoint yet")
  learner = run.learner
  if not 0 <= agent < learner.num_agents:
    raise LabError(f"--agent must be in 0..{learner.num_agents - 1}, got {agent}")
  batch = run.replay.sample(min(rows, len(run.replay)), np.random.default_rng(seed))
  logits = learner.policy_logits(batch.observation).numpy()[:, agent].astype(np.float64)
  description = (f"critic Q_{agent} of {os.path.basename(os.path.normpath(workdir))} "
                 f"({os.path.basename(path)}, {len(batch.action)} replay rows)")
  yield description, learner.num_actions, logits, diagnostics.own_action_function(learner, batch, agent)


# ----------------------------------------------------------------------------------------------------------
# The sweep.

def run_lab(problems, specs, temperatures, samples, replicates, confidence, seed, progress=None):
  """[row dict] for every problem x estimator x temperature (once for estimators without one)."""
  from estimators import lab  # pylint: disable=g-import-not-at-top
  rows = []
  for description, size, logits, f in problems:
    exact = lab.exact_gradient(f, logits)
    for label, name, params in specs:
      sampler = lab.GradientSampler(name, f, params)
      for temperature in (temperatures if lab.takes_temperature(name) else [None]):
        if progress:
          progress(f"{description}, A={size}: {label}" + (f" at T={temperature:g}" if temperature else ""))
        stats = lab.gradient_statistics(name, f, logits, params, temperature=temperature,
                                        num_samples=samples, num_replicates=replicates, seed=seed,
                                        confidence=confidence, exact=exact, sampler=sampler)
        rows.append(dict(function=description, num_actions=size, label=label, **stats.as_row()))
  return rows


# ----------------------------------------------------------------------------------------------------------
# Outputs.

def _interval(row, name):
  return f"{row[name]:.4g} [{row[name + '_low']:.3g}, {row[name + '_high']:.3g}]"


def markdown_table(rows, confidence):
  lines = [f"| f | A | estimator | T | bias [{confidence:.0%} CI] | bias / norm | variance [CI] | MSE [CI] "
           f"| cosine [CI] |", "|---|---|---|---|---|---|---|---|---|"]
  for row in rows:
    temperature = "-" if row["temperature"] == "" else f"{row['temperature']:g}"
    lines.append(f"| {row['function']} | {row['num_actions']} | {row['label']} | {temperature} | "
                 f"{_interval(row, 'bias')} | {row['relative_bias']:.3f} | {_interval(row, 'variance')} | "
                 f"{_interval(row, 'mse')} | {_interval(row, 'cosine')} |")
  return "\n".join(lines)


def csv_text(rows):
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  return buffer.getvalue()


def plot(rows, metric, ylabel, log_scale, path):
  """One panel per (function, action-set size), one line per estimator against the temperature."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  panels = list(dict.fromkeys((row["function"], row["num_actions"]) for row in rows))
  labels = list(dict.fromkeys(row["label"] for row in rows))
  colours = dict(zip(labels, plt.get_cmap("tab10").colors * 3))
  figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
  temperatures = sorted({row["temperature"] for row in rows if row["temperature"] != ""}) or [1.0]
  for axis, (function, size) in zip(axes[0], panels):
    for label in labels:
      mine = [r for r in rows if r["label"] == label and (r["function"], r["num_actions"]) == (function, size)]
      if not mine:
        continue
      value = np.array([r[metric] for r in mine])
      error = np.array([[r[metric] - r[f"{metric}_low"] for r in mine], [r[f"{metric}_high"] - r[metric]
                                                                         for r in mine]])
      if mine[0]["temperature"] == "":  # no temperature: a horizontal line with its interval as a band
        axis.axhline(value[0], color=colours[label], linestyle="--", label=label)
        axis.axhspan(mine[0][f"{metric}_low"], mine[0][f"{metric}_high"], color=colours[label], alpha=0.15)
        continue
      axis.errorbar([r["temperature"] for r in mine], value, yerr=np.maximum(error, 0), marker="o",
                    capsize=3, color=colours[label], label=label)
    axis.set_xscale("log")
    if log_scale:  # exact zeros (e.g. straight-through on linear f) would squash the axis: keep 5 decades
      axis.set_yscale("log")
      largest = max(r[f"{metric}_high"] for r in rows if (r["function"], r["num_actions"]) == (function, size))
      axis.set_ylim(bottom=max(axis.get_ylim()[0], largest * 1e-5))
    axis.set_xticks(temperatures, [f"{t:g}" for t in temperatures])
    axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axis.set_xlabel("temperature")
    axis.set_ylabel(ylabel)
    axis.set_title(f"{function}, A = {size}", fontsize=9)
    axis.grid(alpha=0.3)
  axes[0][-1].legend(fontsize=7, loc="best")
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def write_outputs(rows, out, confidence):
  """Writes the CSV, the Markdown table and the plots into `out` (each file replaced atomically)."""
  os.makedirs(out, exist_ok=True)
  paths = []
  for name, text in ((CSV_NAME, csv_text(rows)), (MARKDOWN_NAME, markdown_table(rows, confidence) + "\n")):
    path = os.path.join(out, name)
    files.write_text(path, text)
    paths.append(path)
  for metric, name, ylabel, log_scale in PLOTS:
    path = os.path.join(out, name)
    with files.replacing(path, suffix=".png") as temporary:
      plot(rows, metric, ylabel, log_scale, temporary)
    paths.append(path)
  return paths


