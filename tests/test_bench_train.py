"""tools/bench_train.py end to end on one task in its test-only mode: structure, not speed."""

import json
import math

from tools import bench_train

TASK = "lbf-8x8-2p-2f-coop"


def test_tiny_run_prints_one_json_object_with_positive_finite_figures(capsys):
  # jit_compile=false: XLA's compile of the update takes 5-15 s here; the structure is the same without it.
  assert bench_train.main(["--tiny", "--json", "--tasks", TASK, "--set", "jit_compile=false"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert "train/bare" in "\n".join(lines[:-1])
  result = json.loads(lines[-1])
  prefix = bench_train.key_prefix(TASK)
  assert prefix == "lbf_8x8"
  for key in (f"{prefix}_train_over_bare", f"{prefix}_train_steps_per_s", f"{prefix}_bare_steps_per_s",
              f"{prefix}_update_ms", f"{prefix}_sample_ms", f"{prefix}_act_us", f"{prefix}_env_vector_step_us",
              f"{prefix}_updates_per_env_step", "buffer_2m_lbf_15x15_4p_5f_gb",
              "lbf_8x8_speedup_vs_paper_gst", "lbf_8x8_speedup_vs_paper_stgs1"):
    value = result[key]
    assert isinstance(value, (int, float)) and not isinstance(value, bool), key
    assert math.isfinite(value) and value > 0, (key, value)
  assert result[f"{prefix}_target"] == 0.5 and isinstance(result[f"{prefix}_pass"], bool)
  # Two [2M, 4, 27] observation arrays are at least 0.864 GB in float16 (nbytes, not RSS).
  assert result["buffer_2m_lbf_15x15_4p_5f_gb"] >= 2 * 2_000_000 * 4 * 27 * 2 / 1e9
  assert result["estimator"] == "gst" and result["tf_version"] and result["git_revision"]
  assert result["overrides"] == {"jit_compile": False}
  for absent in ("lbf_15x15_train_over_bare", "rware_tiny_4ag_train_over_bare"):
    assert absent not in result


def test_overrides_parse_as_json_values():
  assert bench_train.parse_override("loop.asynchronous_updates=false") == ("loop.asynchronous_updates", False)
  assert bench_train.parse_override("num_envs=16") == ("num_envs", 16)
  assert bench_train.parse_override("replay.observation_dtype=float32") == ("replay.observation_dtype", "float32")
