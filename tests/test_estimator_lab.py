"""The estimator lab: the exact gradient, the statistics, known facts it must measure, the command-line
tool, and, in one short training run, the `expected` estimator and the exact-gradient diagnostics.

Every test is deterministic (stateless seeds); the tolerances are stated where they are used."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from estimators import lab
from maddpg_tf.cli import lab as estimator_lab

ROWS, ACTIONS = 8, 5
LOGITS = lab.random_logits(ROWS, ACTIONS, seed=0)
LINEAR = lab.random_function("linear", ROWS, ACTIONS, seed=1)
QUADRATIC = lab.random_function("quadratic", ROWS, ACTIONS, seed=1)


def wiggly(actions):
  """An arbitrary smooth non-polynomial f of the action, for the callable path."""
  u = tf.constant(np.linspace(-1., 2., ACTIONS), actions.dtype)
  return tf.sin(3. * tf.reduce_sum(actions * u, -1)) + tf.square(tf.reduce_sum(actions * (u - 0.5), -1))


def statistics(name, f, params=None, temperature=None, **kwargs):
  kwargs = {"num_samples": 1000, "num_replicates": 10, **kwargs}
  return lab.gradient_statistics(name, f, LOGITS, params, temperature=temperature, **kwargs)


@pytest.mark.parametrize("f", [LINEAR, QUADRATIC, wiggly], ids=["linear", "quadratic", "callable"])
def test_exact_gradient_matches_finite_differences(f):
  gradient = lab.exact_gradient(f, LOGITS).numpy()
  step = 1e-6
  for k in range(ACTIONS):
    shift = np.zeros_like(LOGITS)
    shift[:, k] = step
    difference = (lab.exact_expectation(f, LOGITS + shift) - lab.exact_expectation(f, LOGITS - shift)).numpy()
    np.testing.assert_allclose(gradient[:, k], difference / (2 * step), rtol=1e-6, atol=1e-9)
  assert np.abs(gradient).max() > 0.01  # not trivially zero


def test_exact_gradient_takes_any_batch_shape():
  logits = lab.random_logits(6, ACTIONS, seed=3).reshape(2, 3, ACTIONS)
  np.testing.assert_allclose(lab.exact_gradient(wiggly, logits).numpy().reshape(6, ACTIONS),
                             lab.exact_gradient(wiggly, logits.reshape(6, ACTIONS)).numpy(), rtol=1e-12)


def test_reinforce_agrees_with_the_exact_gradient_within_its_interval():
  stats = statistics("reinforce", QUADRATIC)
  assert stats.squared_bias.contains(0.0), stats.squared_bias
  assert stats.bias.low == 0.0 and stats.variance.low > 0
  # Power: the same samples against a reference 10% too large put 0 outside the interval.
  wrong = statistics("reinforce", QUADRATIC, exact=1.1 * lab.exact_gradient(QUADRATIC, LOGITS).numpy())
  assert wrong.squared_bias.low > 0, wrong.squared_bias
  # The decomposition holds replicate by replicate: mse = squared bias + variance.
  assert stats.mse.value == pytest.approx(stats.squared_bias.value + stats.variance.value, rel=1e-9)


@pytest.mark.parametrize("name,temperature", [("st", 1.0), ("stgs", 1.0), ("stgs", 0.5), ("gst", 0.7)])
def test_straight_through_estimators_are_biased_for_quadratic_f(name, temperature):
  stats = statistics(name, QUADRATIC, temperature=temperature)
  assert stats.squared_bias.low > 0, stats.squared_bias      # the interval excludes zero
  assert stats.relative_bias > 0.1, stats.relative_bias       # and not by a hair (measured 0.2-0.5)


def test_straight_through_at_temperature_one_is_exact_for_linear_f():
  """For f(a) = <w, a> the ST gradient is J_softmax(z)^T w = p * (w - <p, w>): exact, every sample."""
  stats = statistics("st", LINEAR, temperature=1.0, num_replicates=3)
  assert stats.bias.high < 1e-12 and stats.variance.high < 1e-20
  assert stats.cosine.value == pytest.approx(1.0, abs=1e-12)
  # At temperature T the ST gradient is the deterministic J_softmax(z / T)^T w / T: its bias in closed form.
  cold = statistics("st", LINEAR, temperature=0.5, num_replicates=3)
  softmax = lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)
  p, q = softmax(LOGITS), softmax(LOGITS / 0.5)
  difference = q * (LINEAR.w - (q * LINEAR.w).sum(-1, keepdims=True)) / 0.5 - p * (
      LINEAR.w - (p * LINEAR.w).sum(-1, keepdims=True))
  assert cold.bias.value == pytest.approx(np.sqrt(np.square(difference).sum(-1).mean()), rel=1e-9)
  assert cold.bias.value > 0.1


def test_grmck_variance_falls_with_k_and_keeps_the_bias():
  """Rao-Blackwellisation: K conditional samples average the relaxation; the mean gradient is unchanged."""
  one = statistics("grmck", QUADRATIC, {"num_samples": 1}, temperature=0.5)
  ten = statistics("grmck", QUADRATIC, {"num_samples": 10}, temperature=0.5)
  assert ten.variance.high < 0.7 * one.variance.low, (one.variance, ten.variance)   # measured ratio 0.52
  assert ten.squared_bias.low <= one.squared_bias.high and one.squared_bias.low <= ten.squared_bias.high
  # K = 1 draws the same (action, noise) pair as STGS: the same statistics, within the intervals.
  stgs = statistics("stgs", QUADRATIC, temperature=0.5)
  assert stgs.variance.low <= one.variance.high and one.variance.low <= stgs.variance.high


def test_stgs_variance_grows_and_bias_shrinks_as_the_temperature_falls():
  cold = statistics("stgs", QUADRATIC, temperature=0.25)
  warm = statistics("stgs", QUADRATIC, temperature=1.0)
  assert cold.variance.low > 3 * warm.variance.high, (cold.variance, warm.variance)  # measured ~7x
  assert cold.bias.high < warm.bias.low, (cold.bias, warm.bias)


def test_reinmax_is_unbiased_for_quadratic_f_at_temperature_one():
  """ReinMax is second-order accurate (Liu et al. 2023): exact in expectation for quadratic f."""
  stats = statistics("reinmax", QUADRATIC, temperature=1.0, num_replicates=20)
  # Measured: bias interval [0, 0.020] for an exact gradient of norm 0.42 (STGS at 1: 0.21).
  assert stats.squared_bias.contains(0.0) and stats.bias.high < 0.1 * stats.exact_norm, stats.bias
  assert statistics("reinmax", QUADRATIC, temperature=0.5).squared_bias.low > 0


def test_lab_rejects_bad_arguments():
  with pytest.raises(ValueError, match=r"unknown estimator 'gumbel'; allowed: grmck, .*reinforce"):
    lab.GradientSampler("gumbel", LINEAR)
  with pytest.raises(ValueError, match=r"estimator 'reinforce' has no parameter 'temperature'"):
    lab.check_estimator("reinforce", {"temperature": 1.0})
  with pytest.raises(ValueError, match=r"temperature must be > 0"):
    statistics("stgs", LINEAR, temperature=0.0)
  with pytest.raises(ValueError, match=r"num_actions must be an integer >= 2, got 1"):
    lab.random_function("linear", 3, 1, seed=0)
  with pytest.raises(ValueError, match=r"unknown function family 'cubic'"):
    lab.random_function("cubic", 3, 3, seed=0)


# ----------------------------------------------------------------------------------------------------------
# The command-line tool.

QUICK = ["--samples=40", "--replicates=3", "--rows=4"]


def read_csv(path):
  with open(path, newline="") as handle:
    return list(csv.DictReader(handle))


def test_tool_writes_tables_and_plots(tmp_path, capsys):
  out = tmp_path / "lab"
  status = estimator_lab.run(["--function=linear", "--estimators=st,grmck:num_samples=2,reinforce",
                              "--temperatures=0.5,1", "--num-actions=3,4", f"--out={out}"] + QUICK)
  assert status == 0
  printed = capsys.readouterr().out
  assert "| linear | 3 | grmck:num_samples=2 | 0.5 |" in printed and "| linear | 4 | reinforce | - |" in printed
  rows = read_csv(out / "estimator_lab.csv")
  assert len(rows) == 2 * (2 * 2 + 1)  # sizes x (estimators with a temperature x temperatures + reinforce)
  st = [r for r in rows if r["label"] == "st" and r["temperature"] == "1.0"]
  assert len(st) == 2 and all(float(r["bias"]) < 1e-9 for r in st)  # exact for linear f
  assert (out / "estimator_lab.md").read_text().count("\n") == len(rows) + 2
  for name in ("bias_vs_temperature.png", "variance_vs_temperature.png"):
    assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("arguments,message", [
    (["--estimators=stgs,gumble"], r"unknown estimator 'gumble'; allowed: "),
    (["--temperatures=0.5,0"], r"temperature must be > 0 and finite, got 0.0"),
    (["--temperatures=-1"], r"temperature must be > 0 and finite, got -1.0"),
    (["--estimators=grmck:num_samples=0"], r"num_samples \(K\) must be an integer >= 1, got 0"),
    (["--estimators=tags"], r"tags is stgs with an annealed temperature"),
    (["--num-actions=1"], r"every size must be >= 2, got 1"),
    (["--function=cubic"], r"argument --function: invalid choice: 'cubic'"),
    (["--checkpoint=/nonexistent/run"], r"--checkpoint /nonexistent/run is not a directory"),
])
def test_tool_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, arguments, message):
  out = tmp_path / "lab"
  assert estimator_lab.run(arguments + [f"--out={out}"] + QUICK) == 2
  error = capsys.readouterr().err
  assert error.count("\n") == 1 and error.startswith("maddpg-estimator-lab: error: ")
  assert __import__("re").search(message, error), error
  assert not out.exists()


def test_tool_refuses_an_out_path_that_is_a_file(tmp_path, capsys):
  out = tmp_path / "results.txt"
  out.write_text("keep me")
  assert estimator_lab.run([f"--out={out}", "--estimators=st"] + QUICK) == 2
  assert "is a file, not a directory" in capsys.readouterr().err
  assert out.read_text() == "keep me"


# ----------------------------------------------------------------------------------------------------------
# One short training run: `expected` trains, the diagnostics reach TensorBoard, the lab reads its critic.

@pytest.fixture(scope="module")
def expected_run(tmp_path_factory):
  from configs import lbf
  from maddpg_tf import config as common
  from maddpg_tf.run import experiment
  config = lbf.get_config("smoke,estimator=expected")
  for key, value in (("total_steps", 400), ("jit_compile", False), ("loop.eval_episodes", 1),
                     ("loop.eval_num_envs", 1), ("diagnostics.exact_gradient_every", 4),
                     ("diagnostics.num_repeats", 4)):
    common.set_value(config, key, value)
  workdir = str(tmp_path_factory.mktemp("expected") / "run")
  summary = experiment.Experiment(config, workdir, progress=False).run()
  return workdir, summary


def scalars(workdir, tag):
  from tensorboard.backend.event_processing import event_accumulator
  events = event_accumulator.EventAccumulator(os.path.join(workdir, "tb"), size_guidance={"tensors": 0})
  events.Reload()
  return [float(tf.make_ndarray(event.tensor_proto)) for event in events.Tensors(tag)]


def test_expected_estimator_trains(expected_run):
  workdir, summary = expected_run
  assert summary["env_steps"] == 400 and summary["updates"] >= 8
  losses = scalars(workdir, "train/actor_loss/agent_0")
  assert losses and all(np.isfinite(losses))


def test_exact_gradient_diagnostics_reach_tensorboard(expected_run):
  workdir, summary = expected_run
  for name in ("cosine", "relative_error", "relative_bias", "variance", "norm"):
    for suffix in ("", "/agent_0", "/agent_1"):
      values = scalars(workdir, f"exact_gradient/{name}{suffix}")
      assert len(values) == (summary["updates"] + 3) // 4, (name, suffix, values)  # updates 0, 4, 8, ...
  # The expected loss's own gradient is the exact gradient.
  assert scalars(workdir, "exact_gradient/cosine") == pytest.approx([1.0] * len(values), abs=1e-5)
  assert max(scalars(workdir, "exact_gradient/variance")) == 0.0


def test_tool_reads_a_runs_critic(expected_run, tmp_path, capsys):
  workdir, _ = expected_run
  out = tmp_path / "critic"
  status = estimator_lab.run([f"--checkpoint={workdir}", "--agent=1", "--estimators=st,stgs",
                              "--temperatures=1", f"--out={out}"] + QUICK)
  assert status == 0
  assert "critic Q_1 of run (ckpt-400, 4 replay rows)" in capsys.readouterr().out
  rows = read_csv(out / "estimator_lab.csv")
  assert [r["label"] for r in rows] == ["st", "stgs"] and all(r["num_actions"] == "6" for r in rows)
  assert all(np.isfinite(float(r["variance"])) for r in rows)
  assert estimator_lab.run([f"--checkpoint={workdir}", "--agent=2", f"--out={out}"] + QUICK) == 2
  assert "--agent must be in 0..1, got 2" in capsys.readouterr().err


def test_help_names_the_console_script_and_every_flag():
  parser = estimator_lab.make_parser()
  assert parser.prog == "maddpg-estimator-lab"
  missing = [action.option_strings for action in parser._actions if not action.help]  # pylint: disable=protected-access
  assert not missing
  shown = subprocess.run([sys.executable, "-m", "maddpg_tf.cli.lab", "--help"], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert shown.returncode == 0 and shown.stdout.startswith("usage: maddpg-estimator-lab"), shown.stderr
