"""Eager, tf.function and XLA give the same sample and gradient for the same seed."""

import numpy as np
import pytest
import tensorflow as tf

import estimators

PARAMS = {"stgs": dict(temperature=0.6), "tags": dict(start_temperature=4.0, end_temperature=0.1,
                                                       period=100, step=37),
          "grmck": dict(temperature=0.5, num_samples=10), "gst": dict(temperature=0.7, gap=1.0),
          "st": dict(temperature=0.8), "gumbel_softmax": dict(temperature=0.9),
          "reinmax": dict(temperature=1.3),
          "reinmax-rao": dict(temperature=0.5, num_samples=10),
          "reinmax-cv": dict(temperature=0.5, num_samples=10, cv_weight=0.7), "zgr": {}}


def sample_and_gradient(name, logits, weights, seed):
  with tf.GradientTape() as tape:
    tape.watch(logits)
    sample = estimators.make(name, logits=logits, **PARAMS[name]).sample(seed=seed)
    objective = tf.reduce_sum(sample * weights)
  return sample, tape.gradient(objective, logits)


def test_params_cover_every_estimator():
  assert set(PARAMS) == set(estimators.names())


@pytest.mark.parametrize("name", estimators.names())
def test_eager_function_and_xla_agree(name):
  rng = np.random.default_rng(0)
  logits = tf.constant(rng.normal(size=(64, 6)) * 2, tf.float32)
  weights = tf.constant(rng.normal(size=(6,)), tf.float32)
  seed = tf.constant([123, 456], tf.int32)
  eager = sample_and_gradient(name, logits, weights, seed)
  graph = tf.function(sample_and_gradient, autograph=False)(name, logits, weights, seed)
  xla = tf.function(sample_and_gradient, jit_compile=True, autograph=False)(name, logits, weights, seed)
  for other in (graph, xla):
    np.testing.assert_allclose(other[0].numpy(), eager[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(other[1].numpy(), eager[1].numpy(), atol=1e-5, rtol=1e-5)
  if name != "gumbel_softmax":
    np.testing.assert_array_equal(xla[0].numpy(), eager[0].numpy())


@pytest.mark.parametrize("name", estimators.names())
def test_same_seed_same_sample_different_seed_different_sample(name):
  logits = tf.zeros([256, 5])
  first = estimators.make(name, logits=logits, **PARAMS[name]).sample(seed=(1, 2)).numpy()
  again = estimators.make(name, logits=logits, **PARAMS[name]).sample(seed=(1, 2)).numpy()
  other = estimators.make(name, logits=logits, **PARAMS[name]).sample(seed=(1, 3)).numpy()
  np.testing.assert_array_equal(first, again)
  assert np.any(first != other)


# Three XLA compilations per case: the fast tier keeps one of each kind named below, the full suite all.
_FAST_NOISE_CASES = {((7,), tf.float32), ((9, 512, 6), tf.float32), ((7, 333, 5), tf.float32),
                     ((50, 512, 6), tf.float32), ((7, 333, 5), tf.float64)}


@pytest.mark.parametrize("shape, dtype", [
    pytest.param(list(shape), dtype, id=f"{dtype.name}-{'x'.join(map(str, shape))}",
                 marks=() if (shape, dtype) in _FAST_NOISE_CASES else pytest.mark.slow)
    for dtype in (tf.float32, tf.float64)
    for shape in ((7,), (3, 2, 50), (9, 64, 6), (9, 512, 6), (7, 333, 5), (50, 512, 6))])
def test_word_major_noise_is_the_stream_read_word_by_word(shape, dtype):
  """Chunk by chunk, value n of word_major_noise is word n // P of Philox block n % P of the chunk (P blocks
  of 4 words) of the same stream `noise` reads block by block; the same numbers eagerly and under XLA
  (where each chunk is computed on its own and no transpose is needed). [9, 512, 6] is 9 chunks,
  [7, 333, 5] ends inside its last chunk, and [50, 512, 6] is over the size that is chunked."""
  from estimators import base  # pylint: disable=g-import-not-at-top
  seed = tf.constant([12, -34], tf.int32)
  size = int(np.prod(shape))
  blocks = -(-size // 4)
  chunks, per_chunk = (int(n) for n in base.word_major_chunks(blocks))
  assert chunks * per_chunk >= blocks > (chunks - 1) * per_chunk
  above_limit = blocks > base.WORD_MAJOR_CHUNKED_UP_TO_BLOCKS
  assert per_chunk <= base.WORD_MAJOR_CHUNK_BLOCKS or (chunks == 1 and above_limit)
  stream = base.noise([4 * chunks * per_chunk], seed, dtype).numpy()
  expected = stream.reshape(chunks, per_chunk, 4).transpose(0, 2, 1).reshape(-1)[:size].reshape(shape)
  eager = base.word_major_noise(shape, seed, dtype).numpy()
  np.testing.assert_array_equal(eager, expected)
  compiled = tf.function(lambda s: base.word_major_noise(shape, s, dtype), jit_compile=True)(seed)
  np.testing.assert_array_equal(compiled.numpy(), expected)
  # A transform is applied elementwise (XLA's log may differ from TF's kernel in the last bit).
  log = lambda values: -tf.math.log(values)
  compiled = tf.function(lambda s: base.word_major_noise(shape, s, dtype, log), jit_compile=True)(seed)
  np.testing.assert_allclose(compiled.numpy(), -np.log(expected), rtol=1e-6)


def test_word_major_noise_of_a_shape_known_only_when_run_is_the_same():
  """The chunking is then computed by the graph (word_major_chunks' tensor path): the same numbers."""
  from estimators import base  # pylint: disable=g-import-not-at-top
  seed = tf.constant([5, 6], tf.int32)
  for shape in ([9, 512, 6], [7, 333, 5], [50, 512, 6]):
    static = base.word_major_noise(shape, seed, tf.float32).numpy()
    dynamic = tf.function(lambda s: base.word_major_noise(s, seed, tf.float32),
                          input_signature=[tf.TensorSpec([None], tf.int32)])(tf.constant(shape))
    np.testing.assert_array_equal(dynamic.numpy(), static)
