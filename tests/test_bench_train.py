"""tools/bench_train.py: the window clock's cuts by hand, the JSON keys of each backend, the command line,
and one end-to-end run in its test-only mode (structure, not speed)."""

import json
import math
import types

import pytest

from tools import bench_train

TASK = "lbf-8x8-2p-2f-coop"


def _feed(clock, times, updates):
  """Steps the clock as the loop would: 16 env steps per vector step; returns the index that ended it."""
  counters = types.SimpleNamespace(env_steps=0, updates=0)
  clock.bind(counters)
  now = [0.0]
  clock.clock = lambda: now[0]
  for index, (t, u) in enumerate(zip(times, updates)):
    now[0], counters.env_steps, counters.updates = t, 16 * (index + 1), u
    try:
      clock.observe(None, None)
    except bench_train.WindowsDone:
      return index
  return None


def test_window_clock_cuts_at_cycle_starts_after_settling_and_stops_after_the_last_window():
  # Steps 0..9 a quarter second apart, then half a second apart. An update block (16 updates) is
  # scheduled after steps 1, 3, 6, 8, 11, 13, so steps 2, 4, 7, 9, 12, 14 start cycles.
  times = [0.25 * i for i in range(10)] + [2.25 + 0.5 * (i - 9) for i in range(10, 16)]
  starts = {2, 4, 7, 9, 12, 14}
  updates, total = [], 0
  for i in range(16):
    total += 16 * (i in starts)
    updates.append(total)
  clock = bench_train.WindowClock(window_s=1.0, windows=2, settle_blocks=2, max_wait_s=100.0)
  # Block 1 (step 2) settles; block 2 (step 4, t 1.0) opens window 1; step 7 is 0.75 s in, step 9 (t 2.25)
  # closes it; step 12 (t 3.75, 1.5 s later) closes window 2 and ends the run.
  assert _feed(clock, times, updates) == 12
  assert clock.cuts == [4, 9, 12]
  m = clock.metrics()
  assert m["window_steps_per_s"] == [80 / 1.25, 48 / 1.5]
  assert (m["window_s"], m["window_env_steps"], m["window_updates"]) == (2.75, 128, 48)
  assert m["train_steps_per_s"] == 128 / 2.75 and m["settle_s"] == 1.0


def test_window_clock_gives_up_when_no_update_block_comes():
  clock = bench_train.WindowClock(window_s=1.0, windows=1, settle_blocks=1, max_wait_s=1.0)
  with pytest.raises(RuntimeError, match="0 update block"):
    _feed(clock, [0.0, 0.5, 1.5], [0, 0, 0])
  assert clock.metrics() == {}
  with pytest.raises(ValueError, match="windows >= 1"):
    bench_train.WindowClock(window_s=1.0, windows=0, settle_blocks=1, max_wait_s=1.0)


def _run(bare, train):
  keys = ("update_ms", "update_block_ms", "update_share", "sample_ms", "act_us", "env_vector_step_us",
          "updates_per_env_step", "other_processes_cores", "window_steps_per_s")
  return {"bare_steps_per_s": bare, "train_steps_per_s": train, "train_over_bare": train / bare,
          **dict.fromkeys(keys, 1.0)}


def test_task_keys_describe_the_reference_run_and_add_the_fast_backends_figures():
  runs = {"reference": _run(10_000.0, 6_000.0), "fast": _run(40_000.0, 9_000.0)}
  out = bench_train.task_keys("lbf_8x8", runs, TASK)
  assert out["lbf_8x8_train_over_bare"] == 0.6 and out["lbf_8x8_pass"] is True and out["lbf_8x8_target"] == 0.5
  assert out["lbf_8x8_fast_bare_steps_per_s"] == 40_000.0
  assert out["lbf_8x8_fast_train_over_bare"] == 9_000.0 / 40_000.0
  assert out["lbf_8x8_train_over_reference_bare"] == 0.9
  alone = bench_train.task_keys("lbf_8x8", {"reference": _run(10_000.0, 4_000.0)}, TASK)
  assert alone["lbf_8x8_pass"] is False
  assert not any("fast" in k or "reference_bare" in k for k in alone)
  other = bench_train.task_keys("lbf_10x10_3p_3f", {"fast": _run(10.0, 5.0)}, "lbf-10x10-3p-3f")
  assert other["lbf_10x10_3p_3f_train_over_bare"] == 0.5 and other["lbf_10x10_3p_3f_pass"] is None
  assert "lbf_10x10_3p_3f_train_over_reference_bare" not in other


def test_fast_backend_without_the_config_key_is_one_line_and_exit_2(capsys, monkeypatch):
  original = bench_train.task_config

  def without_key(*args, **kwargs):  # a config from before the fast backends
    config = original(*args, **kwargs)
    del config["env_backend"]
    return config

  monkeypatch.setattr(bench_train, "task_config", without_key)
  with pytest.raises(SystemExit) as exit_info:
    bench_train.main(["--backends=reference,fast", "--tasks", TASK])
  assert exit_info.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "env_backend" in err[0]


@pytest.mark.parametrize("argv, message", [(["--backends=reference,slow"], "--backends"),
                                           (["--backends=reference,reference"], "--backends"),
                                           (["--tasks", ","], "--tasks is empty"),
                                           (["--set", "loop.nope=1"], "unknown config field")])
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, message):
  with pytest.raises(SystemExit) as exit_info:
    bench_train.main(argv)
  assert exit_info.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and message in err[0]


def test_overrides_parse_as_json_values():
  assert bench_train.parse_override("loop.asynchronous_updates=false") == ("loop.asynchronous_updates", False)
  assert bench_train.parse_override("num_envs=16") == ("num_envs", 16)
  assert bench_train.parse_override("replay.observation_dtype=float32") == ("replay.observation_dtype", "float32")


def test_bare_rate_counts_whole_rounds_of_vector_steps():
  steps, seconds = bench_train.bare_rate(TASK, num_envs=3, seconds=0.05, episode_limit=25)
  assert steps % (20 * 3) == 0 and steps >= 60 and seconds >= 0.05


@pytest.mark.slow
def test_tiny_run_on_both_backends_prints_one_json_object_with_positive_finite_figures(capsys):
  # jit_compile=false: XLA's compile of the update takes 5-15 s here; the structure is the same without it.
  assert bench_train.main(["--tiny", "--json", "--tasks", TASK, "--set", "jit_compile=false",
                           "--backends=reference,fast"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert "train/bare" in "\n".join(lines[:-1])
  result = json.loads(lines[-1])
  prefix = bench_train.key_prefix(TASK)
  assert prefix == "lbf_8x8"
  for key in (f"{prefix}_train_over_bare", f"{prefix}_train_steps_per_s", f"{prefix}_bare_steps_per_s",
              f"{prefix}_update_ms", f"{prefix}_update_block_ms", f"{prefix}_update_share", f"{prefix}_sample_ms",
              f"{prefix}_act_us", f"{prefix}_env_vector_step_us", f"{prefix}_updates_per_env_step",
              f"{prefix}_fast_bare_steps_per_s", f"{prefix}_fast_train_steps_per_s",
              f"{prefix}_train_over_reference_bare", "buffer_2m_lbf_15x15_4p_5f_gb",
              "lbf_8x8_speedup_vs_paper_gst", "lbf_8x8_speedup_vs_paper_stgs1"):
    value = result[key]
    assert isinstance(value, (int, float)) and not isinstance(value, bool), key
    assert math.isfinite(value) and value > 0, (key, value)
  # Two windows, each holding whole update cycles; LBF schedules 1 update per finished 25-step episode.
  assert len(result[f"{prefix}_window_steps_per_s"]) == 2
  assert 0 < result[f"{prefix}_updates_per_env_step"] <= 2 / 25
  assert result[f"{prefix}_target"] == 0.5 and isinstance(result[f"{prefix}_pass"], bool)
  # The fast backend steps LBF 30-200x faster than the package: the two bare runs are different envs.
  assert result[f"{prefix}_fast_bare_steps_per_s"] > 5 * result[f"{prefix}_bare_steps_per_s"]
  assert result[f"{prefix}_train_over_reference_bare"] == pytest.approx(
      result[f"{prefix}_fast_train_steps_per_s"] / result[f"{prefix}_bare_steps_per_s"])
  out = "\n".join(lines)
  assert "[reference]" in out and "[fast]" in out and "by 1 worker process" in out
  # Two [2M, 4, 27] observation arrays are at least 0.864 GB in float16 (nbytes, not RSS).
  assert result["buffer_2m_lbf_15x15_4p_5f_gb"] >= 2 * 2_000_000 * 4 * 27 * 2 / 1e9
  assert result["estimator"] == "gst" and result["tf_version"] and result["git_revision"]
  assert result["overrides"] == {"jit_compile": False} and result["backends"] == ["reference", "fast"]
  for absent in ("lbf_15x15_train_over_bare", "rware_tiny_4ag_train_over_bare"):
    assert absent not in result


def test_task_keys_carry_the_sharing_comparison_only_when_measured():
  run = {**_run(10_000.0, 6_000.0), "update_stacked_ms": 2.0, "update_shared_ms": 1.5, "shared_over_stacked": 0.75}
  out = bench_train.task_keys("lbf_8x8", {"reference": run}, TASK)
  assert (out["lbf_8x8_update_stacked_ms"], out["lbf_8x8_update_shared_ms"], out["lbf_8x8_shared_over_stacked"]) == (
      2.0, 1.5, 0.75)
  assert not any("shared" in key for key in bench_train.task_keys("lbf_8x8", {"reference": _run(1.0, 1.0)}, TASK))


@pytest.mark.slow
def test_tiny_run_compares_a_shared_update_with_the_per_agent_one(capsys):
  assert bench_train.main(["--tiny", "--json", "--tasks", TASK, "--set", "jit_compile=false",
                           "--compare-sharing"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  result = json.loads(lines[-1])
  stacked, shared = result["lbf_8x8_update_stacked_ms"], result["lbf_8x8_update_shared_ms"]
  assert stacked > 0 and shared > 0 and result["lbf_8x8_shared_over_stacked"] == pytest.approx(shared / stacked)
  assert "update per-agent (stacked)" in "\n".join(lines[:-1])
