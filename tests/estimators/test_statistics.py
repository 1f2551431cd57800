"""Sample statistics: every estimator samples softmax(logits); GRMCK is a Rao-Blackwellised STGS.

All draws use fixed seeds, so a run is reproducible; the tolerances are what a correct estimator passes
with overwhelming probability over seeds (stated per test), so a broken one fails.
"""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

import estimators

LOGITS = np.array([0.5, -1.0, 2.0, 0.0, 1.0, -0.3])
WEIGHTS = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.2])
PARAMS = {"tags": dict(start_temperature=4.0, end_temperature=0.1, period=100, step=10)}


@pytest.mark.parametrize("name", estimators.names())
def test_sample_frequencies_match_softmax(name):
  """Pearson chi-square goodness of fit of 30,000 actions, at the 0.1% level."""
  draws = 30_000
  dist = estimators.make(name, logits=tf.constant(LOGITS, tf.float32), **PARAMS.get(name, {}))
  samples = dist.sample(draws, seed=(42, 7)).numpy()
  counts = np.bincount(samples.argmax(-1), minlength=len(LOGITS))
  probs = scipy.special.softmax(LOGITS)
  statistic, p_value = scipy.stats.chisquare(counts, draws * probs)
  assert p_value > 1e-3, (name, counts, draws * probs, statistic)


def test_chi_square_test_rejects_a_wrong_distribution():
  """The test above has power: samples of softmax(2 * logits) fail it."""
  draws = 30_000
  samples = estimators.make("gst", logits=tf.constant(2 * LOGITS)).sample(draws, seed=(42, 7)).numpy()
  counts = np.bincount(samples.argmax(-1), minlength=len(LOGITS))
  assert scipy.stats.chisquare(counts, draws * scipy.special.softmax(LOGITS)).pvalue < 1e-6


def per_sample_gradients(name, rows, seed, **params):
  """[rows, A] gradients of <w, sample> w.r.t. the logits, one independent sample per row."""
  logits = tf.constant(np.tile(LOGITS, (rows, 1)))
  with tf.GradientTape() as tape:
    tape.watch(logits)
    sample = estimators.make(name, logits=logits, **params).sample(seed=seed)
    objective = tf.reduce_sum(sample * WEIGHTS)
  return tape.gradient(objective, logits).numpy()


def test_grmck_has_the_stgs_expectation_and_less_variance():
  """Rao-Blackwell (paper eq. 6-7): E[grad_GRMCK] = E[grad_STGS]; Var(grad_GRMCK) <= Var(grad_STGS).

  Means agree within 5 standard errors of their difference per component (false alarm chance about
  1e-6 per component). Variances: total (trace) variance, K=10 below STGS by a clear margin.
  """
  rows, temperature = 100_000, 0.5
  stgs = per_sample_gradients("stgs", rows, (1, 2), temperature=temperature)
  grmck = per_sample_gradients("grmck", rows, (3, 4), temperature=temperature, num_samples=10)
  difference_se = np.sqrt(stgs.var(0) / rows + grmck.var(0) / rows)
  np.testing.assert_array_less(np.abs(stgs.mean(0) - grmck.mean(0)), 5 * difference_se)
  assert grmck.var(0).sum() < 0.8 * stgs.var(0).sum(), (grmck.var(0).sum(), stgs.var(0).sum())


def test_grmck_variance_falls_with_k_and_k1_matches_stgs():
  """K=1 has exactly STGS's distribution; Var(K) = Var(E[.|a]) + E[Var(.|a)] / K falls with K."""
  rows, temperature = 50_000, 0.5
  total_variance = {k: per_sample_gradients("grmck", rows, (5, k), temperature=temperature,
                                            num_samples=k).var(0).sum() for k in (1, 5, 50)}
  stgs_variance = per_sample_gradients("stgs", rows, (9, 9), temperature=temperature).var(0).sum()
  assert total_variance[50] < 0.9 * total_variance[5] < 0.9 * 0.9 * total_variance[1], total_variance
  np.testing.assert_allclose(total_variance[1], stgs_variance, rtol=0.1)


def test_gst_gradient_has_less_variance_than_stgs():
  """GST replaces the Gumbel noise by deterministic perturbations (Fan et al.): lower variance."""
  rows = 50_000
  stgs = per_sample_gradients("stgs", rows, (1, 2), temperature=0.7).var(0).sum()
  gst = per_sample_gradients("gst", rows, (3, 4), temperature=0.7).var(0).sum()
  assert gst < stgs, (gst, stgs)
