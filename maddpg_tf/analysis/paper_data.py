"""The paper's published figures, as shipped with the package (`maddpg_tf/data/paper_table{1,2}.csv`).

Transcribed from "Revisiting the Gumbel-Softmax in MADDPG" (Tilbury, Christianos and Albrecht):

    from maddpg_tf.analysis import paper_data
    paper_data.table2()[0]   # Table2Row(dimension=3, estimator='STGS', microseconds=135.28, ci95=0.19, ...)
    paper_data.table2_lookup()[(5, "STGS")].microseconds   # 135.65

Table 1 (returns): one row per (environment, task, estimator). Table 2 (estimator timing, forward only,
batch-1 logits, PyTorch eager; see maddpg_tf/FIDELITY.md: Timing): one row per (dimension, estimator). The paper's
"GRMC-50" column actually ran K = 100 in the authors' script; `Table2Row.num_samples` says so.

The files are found next to the `maddpg_tf` package without importing it (so this works from a source
checkout, after `pip install -e .`, and after a regular install, which ships them as package data).
"""

import csv
import dataclasses
import importlib.resources
import importlib.util
import io
import pathlib
import re

PACKAGE = "maddpg_tf"
TABLE1_FILE = "paper_table1.csv"
TABLE2_FILE = "paper_table2.csv"


@dataclasses.dataclass(frozen=True)
class Table1Row:
  """One cell group of the paper's Table 1: maximum and average evaluation returns, with 95% CIs."""
  environment: str       # "LBF" or "RWARE"
  task: str              # e.g. "8x8-2p-2f-c", "tiny 2ag"
  train_steps: int       # environment steps of training
  estimator: str         # "STGS-1", "STGS-T", "TAGS", "GRMCK", "GST"
  max_return: float
  max_ci95: float
  max_asterisk: bool     # the paper marks this maximum with an asterisk (not significantly below the best)
  average_return: float
  average_ci95: float


@dataclasses.dataclass(frozen=True)
class Table2Row:
  """One cell of the paper's Table 2: microseconds per relaxation, 95% t half-width, ratio to STGS."""
  dimension: int         # size of the (batch-1) logit vector
  estimator: str         # the paper's label, e.g. "STGS", "GRMC-10", "GRMC-50 (K=100 in the authors' script)"
  microseconds: float
  ci95: float
  ratio_to_stgs: float
  family: str            # "STGS", "GRMC" or "GST"
  num_samples: int | None  # K actually run for GRMC rows (100 for the column labelled "GRMC-50"), else None


def data_path(filename):
  """A readable path (or importlib Traversable) to `maddpg_tf/data/<filename>`."""
  spec = importlib.util.find_spec(PACKAGE)  # finds the package directory without executing its __init__
  if spec is not None and spec.submodule_search_locations:
    for location in spec.submodule_search_locations:
      candidate = pathlib.Path(location) / "data" / filename
      if candidate.is_file():
        return candidate
  return importlib.resources.files(PACKAGE).joinpath("data", filename)


def _read_csv(filename):
  text = data_path(filename).read_text(encoding="utf-8")
  return list(csv.DictReader(io.StringIO(text)))


def _parse_bool(value):
  value = value.strip().lower()
  if value in ("1", "true", "yes"):
    return True
  if value in ("0", "false", "no", ""):
    return False
  raise ValueError(f"not a boolean: {value!r}")


def table1():
  """The paper's Table 1 as a list of `Table1Row` (numbers parsed)."""
  return [Table1Row(environment=row["environment"], task=row["task"], train_steps=int(row["train_steps"]),
                    estimator=row["estimator"], max_return=float(row["max_return"]),
                    max_ci95=float(row["max_ci95"]), max_asterisk=_parse_bool(row["max_asterisk"]),
                    average_return=float(row["average_return"]), average_ci95=float(row["average_ci95"]))
          for row in _read_csv(TABLE1_FILE)]


def _family_and_k(label):
  if label.startswith("GRMC"):
    match = re.search(r"K\s*=\s*(\d+)", label) or re.match(r"GRMC-(\d+)", label)
    return "GRMC", int(match.group(1))
  if label.startswith("STGS"):
    return "STGS", None
  if label.startswith("GST"):
    return "GST", None
  raise ValueError(f"unknown Table 2 estimator label {label!r}")


def table2():
  """The paper's Table 2 as a list of `Table2Row` (numbers parsed; GRMC rows carry the K actually run)."""
  rows = []
  for row in _read_csv(TABLE2_FILE):
    family, num_samples = _family_and_k(row["estimator"])
    rows.append(Table2Row(dimension=int(row["dimension"]), estimator=row["estimator"],
                          microseconds=float(row["microseconds"]), ci95=float(row["ci95"]),
                          ratio_to_stgs=float(row["ratio_to_stgs"]), family=family, num_samples=num_samples))
  return rows


def table2_lookup():
  """Table 2 keyed by (dimension, paper label)."""
  return {(row.dimension, row.estimator): row for row in table2()}


def table2_by_config():
  """Table 2 keyed by (dimension, family, K actually run): e.g. (5, "GRMC", 100) is the "GRMC-50" column."""
  return {(row.dimension, row.family, row.num_samples): row for row in table2()}


__all__ = ["Table1Row", "Table2Row", "data_path", "table1", "table2", "table2_lookup", "table2_by_config"]
