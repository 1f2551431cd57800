"""tools/bench_seeds.py in its test-only mode: every figure present, positive and finite, the ratios the
ones its docstring defines (structure, not speed), and bad --seeds refused."""

import math

import pytest

from tools import bench_seeds


@pytest.mark.slow  # compiles a packed and a single learner twice, and trains two packed runs and two alone
def test_tiny_run_reports_every_figure_for_each_number_of_seeds():
  lines = []
  results = bench_seeds.run_benchmark("lbf-8x8-2p-2f-coop", [1, 2], mode="tiny", log=lines.append)
  assert results["num_envs"] == 16
  assert results["seeds"] == [1, 2] and len(lines) == 3
  for k in (1, 2):
    figures = results[f"seeds_{k}"]
    for name in ("packed_call_ms", "single_call_ms", "updates_per_s_per_seed", "updates_per_s_total",
                 "single_updates_per_s", "packed_gain", "packed_steps_per_s_per_seed", "packed_steps_per_s_total",
                 "alone_steps_per_s", "total_over_alone", "acting_env_joint_us", "acting_env_separate_us",
                 "acting_env_joint_steps_per_s", "acting_env_separate_steps_per_s", "joint_over_separate"):
      assert math.isfinite(figures[name]) and figures[name] > 0, (k, name)
    assert figures["updates_per_s_total"] == pytest.approx(k * figures["updates_per_s_per_seed"])
    assert figures["packed_gain"] == pytest.approx(k * figures["single_call_ms"] / figures["packed_call_ms"])
    assert figures["packed_steps_per_s_total"] == pytest.approx(k * figures["packed_steps_per_s_per_seed"])
    assert figures["total_over_alone"] == pytest.approx(figures["packed_steps_per_s_total"]
                                                        / figures["alone_steps_per_s"])
    assert figures["joint_over_separate"] == pytest.approx(figures["acting_env_separate_us"]
                                                           / figures["acting_env_joint_us"])
    assert figures["acting_env_joint_steps_per_s"] == pytest.approx(k * 16 * 1e6 / figures["acting_env_joint_us"])
    assert figures["joint_envs"] is True  # the fast LBF backend steps every seed's envs in one call
    assert "CPU" in figures["device"]


@pytest.mark.parametrize("seeds", ["0", "1,x", ""])
def test_bad_seeds_are_refused(seeds, capsys):
  with pytest.raises(SystemExit) as exit_:
    bench_seeds.main([f"--seeds={seeds}"])
  assert exit_.value.code == 2
  assert f"--seeds: comma-separated numbers >= 1, got {seeds!r}" in capsys.readouterr().err
