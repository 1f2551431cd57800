"""Identities between estimators: ReinMax at temperature 1 (its authors' default) is ZGR. Both take the
Gumbel-max sample, and ReinMax's Jacobian, 2 x ST's at the midpoint of the sample and the softmax minus half
of ST's at the softmax, reduces at temperature 1 to ZGR's average of the straight-through and DARN
Jacobians; so the two give one gradient for one sample, whatever the function (the beyond grid trains both:
README, Beyond the paper)."""

import numpy as np
import pytest
import tensorflow as tf

import estimators


def gradient(name, logits, f, **params):
  with tf.GradientTape() as tape:
    tape.watch(logits)
    sample = estimators.make(name, logits=logits, **params).sample(seed=(3, 4))
    value = tf.reduce_sum(f(sample))
  return sample.numpy(), tape.gradient(value, logits).numpy()


FUNCTIONS = {
    "quadratic": lambda w: (lambda x: tf.einsum("bi,ij,bj->b", x, w, x)),
    "smooth": lambda w: (lambda x: tf.reduce_sum(tf.sin(x @ w) * tf.exp(x @ w[::-1]), axis=-1)),
}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_reinmax_at_temperature_one_gives_zgrs_gradient(function):
  logits = tf.constant(np.random.default_rng(0).normal(size=(64, 6)), tf.float32)
  f = FUNCTIONS[function](tf.constant(np.random.default_rng(1).normal(size=(6, 6)), tf.float32))
  sample, reinmax = gradient("reinmax", logits, f, temperature=1.0)
  zgr_sample, zgr = gradient("zgr", logits, f)
  np.testing.assert_array_equal(sample, zgr_sample)
  np.testing.assert_allclose(reinmax, zgr, rtol=0, atol=1e-6 * np.abs(zgr).max())
  # At another temperature ReinMax is another estimator.
  _, other = gradient("reinmax", logits, f, temperature=0.5)
  assert np.abs(other - zgr).max() > 0.1 * np.abs(zgr).max()
