"""Packed seeds (`MADDPGLearner(seeds=...)`): K runs in one learner are K single learners, bit for bit.

Every comparison is against learners of one seed each, built and updated on their own: the packed learner's
seed-k view (`save(seed=k)`, metrics[k], `policy_logits`, `actor_weights`) must hold exactly their numbers.
"""

import numpy as np
import pytest
import tensorflow as tf

from maddpg_tf.agent import learner as learner_lib
from maddpg_tf.agent import types

N, O, A, B = 3, 5, 4, 16
SEEDS = (3, 7, 11)
GST = ("gst", {"temperature": 0.5})
# Per-seed update counts of consecutive `step_block` calls (block size 3: full, partial and empty chunks,
# and a seed with nothing to do in a call).
CALLS = ((5, 2, 0), (1, 4, 3))
BLOCK = 3


def make(seeds=None, seed=0, estimator=GST, jit_compile=False, **config):
  config = learner_lib.LearnerConfig(**{"hidden_sizes": (8, 8), "use_target_networks": True, **config})
  return learner_lib.MADDPGLearner(N, O, A, config, estimator[0], estimator[1], seed=seed, jit_compile=jit_compile,
                                   seeds=seeds)


def random_batch(rng):
  return types.Transition(
      observation=rng.normal(size=(B, N, O)).astype(np.float32),
      action=rng.integers(0, A, size=(B, N)).astype(np.int32),
      reward=rng.normal(size=(B, N)).astype(np.float32),
      terminal=(rng.random(B) < 0.25).astype(np.float32),
      next_observation=rng.normal(size=(B, N, O)).astype(np.float32))


def updates(rng, seed, first, count):
  """`count` updates of a run of `seed` from update index `first`: (batches, Philox seeds, positions), as
  the harness draws them."""
  indices = range(first, first + count)
  return ([random_batch(rng) for _ in indices], [np.array([seed, u], np.int64) for u in indices],
          [float(u) for u in indices])


def train_both(estimator=GST, jit_compile=False, calls=CALLS, **config):
  """A packed learner of SEEDS and one single learner per seed, after the same per-seed updates.
  Returns (packed, singles, [(packed metrics, [each single's metrics or None])] per call)."""
  packed = make(SEEDS, estimator=estimator, jit_compile=jit_compile, **config)
  singles = [make(seed=s, estimator=estimator, jit_compile=jit_compile, **config) for s in SEEDS]
  rng, done, results = np.random.default_rng(0), [0] * len(SEEDS), []
  for counts in calls:
    work = [updates(rng, s, d, c) for s, d, c in zip(SEEDS, done, counts)]
    packed_metrics = packed.step_block(*(list(part) for part in zip(*work)), block_size=BLOCK)
    single_metrics = [single.step_block(*w, block_size=BLOCK) if c else None
                      for single, w, c in zip(singles, work, counts)]
    results.append((packed_metrics, single_metrics))
    done = [d + c for d, c in zip(done, counts)]
  return packed, singles, results


def assert_seed_equals_single(packed, k, single):
  view, expected = packed.save(seed=k), single.save()
  assert sorted(view) == sorted(expected)
  for name in expected:
    np.testing.assert_array_equal(view[name], expected[name], err_msg=name)


def train_by_steps(estimator=GST, calls=CALLS, **config):
  """As `train_both`, through compiled `step` calls: update j of a call runs the seeds with more than j
  updates in it (`active`), the others given their last batch and left alone."""
  packed = make(SEEDS, estimator=estimator, **config)
  singles = [make(seed=s, estimator=estimator, **config) for s in SEEDS]
  rng, done = np.random.default_rng(0), [0] * len(SEEDS)
  for counts in calls:
    work = [updates(rng, s, d, c) if c else updates(rng, s, d, 1) for s, d, c in zip(SEEDS, done, counts)]
    for j in range(max(counts)):
      active = [j < c for c in counts]
      picks = [min(j, max(c - 1, 0)) for c in counts]
      stacked = types.Transition(*(np.stack(parts) for parts in zip(*(w[0][i] for w, i in zip(work, picks)))))
      metrics = packed.step(stacked, np.stack([w[1][i] for w, i in zip(work, picks)]),
                            np.array([w[2][i] for w, i in zip(work, picks)]), active=active)
      for k, single in enumerate(singles):
        if active[k]:
          expected = single.step(work[k][0][j], work[k][1][j], work[k][2][j])
          for name, value in expected.items():  # the loss values' reductions: see the block test
            np.testing.assert_allclose(metrics[name][k].numpy(), value.numpy(), rtol=1e-5, atol=1e-8,
                                       err_msg=name)
    done = [d + c for d, c in zip(done, counts)]
  return packed, singles


# GST stays in the fast tier; the objective estimators' packed steps (the same masking) run in the full suite.
ESTIMATORS = pytest.mark.parametrize("estimator", [
    GST, pytest.param(("rloo", {"num_samples": 3}), marks=pytest.mark.slow),
    pytest.param(("expected", {}), marks=pytest.mark.slow)], ids=["gst", "rloo", "expected"])


@ESTIMATORS
def test_packed_steps_equal_single_learners_to_the_last_bits(estimator):
  packed, singles = train_by_steps(estimator)
  for k, single in enumerate(singles):
    view, expected = packed.save(seed=k), single.save()
    for name in expected:
      np.testing.assert_allclose(view[name], expected[name], rtol=1e-4, atol=1e-8, err_msg=name)
  assert packed.num_updates.numpy().tolist() == [6, 6, 3]


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="open: per-agent critics' Adam moments differ in the last bit under "
                   "graph mode after masked steps (Grappler rewrites); eager and shared networks are exact")
def test_packed_steps_equal_single_learners_bit_for_bit():
  packed, singles = train_by_steps()
  for k, single in enumerate(singles):
    assert_seed_equals_single(packed, k, single)


@pytest.mark.slow  # 20 s; the fast tier keeps the same updates step by step (tests above)
def test_packed_blocks_equal_single_learners_to_the_last_bits():
  """step_block: the same updates, but TensorFlow's graph optimiser (Grappler) rewrites the while loop's
  body of a packed block and of one run's block differently, so sums round differently in the last bit
  (measured: weights within 2e-9, Adam moments within 1e-5 relative after 6 updates)."""
  packed, singles, results = train_both()
  for k, single in enumerate(singles):
    view, expected = packed.save(seed=k), single.save()
    for name in expected:
      np.testing.assert_allclose(view[name], expected[name], rtol=1e-4, atol=1e-8, err_msg=name)
  assert packed.num_updates.numpy().tolist() == [6, 6, 3]
  for packed_metrics, single_metrics in results:
    for k, metrics in enumerate(single_metrics):
      if metrics is None:  # no update of this seed in the call
        assert np.isnan(packed_metrics["critic_loss"][k].numpy()).all()
        continue
      for name, value in metrics.items():
        np.testing.assert_allclose(packed_metrics[name][k].numpy(), value.numpy(), rtol=1e-4, atol=1e-7,
                                   err_msg=name)


@pytest.mark.slow  # four XLA compilations: 40 s
def test_packed_blocks_under_xla_equal_single_learners_under_xla():
  packed, singles, _ = train_both(jit_compile=True)
  for k, single in enumerate(singles):
    view, expected = packed.save(seed=k), single.save()
    for name in expected:
      np.testing.assert_allclose(view[name], expected[name], rtol=1e-4, atol=1e-8, err_msg=name)


@pytest.mark.slow  # 10 s; the shared learner's packing is the per-agent one's with one agent row
def test_packed_seeds_with_shared_parameters_equal_single_learners():
  packed, singles = train_by_steps(share_parameters=True)
  assert packed.actors.dense_layers[0].kernel.shape[0] == len(SEEDS)  # one shared actor per seed
  for k, single in enumerate(singles):
    assert_seed_equals_single(packed, k, single)


@pytest.mark.slow  # 15 s; a packed step's own metrics are compared in the fast tier's step tests
def test_packed_step_with_per_sample_variance_equals_single_steps():
  for shared in (False, True):
    packed = make(SEEDS, share_parameters=shared)
    singles = [make(seed=s, share_parameters=shared) for s in SEEDS]
    rng = np.random.default_rng(1)
    batches = [random_batch(rng) for _ in SEEDS]
    seeds = np.array([[s, 0] for s in SEEDS])
    stacked = types.Transition(*(np.stack(parts) for parts in zip(*batches)))
    metrics = packed.step(stacked, seeds, np.zeros(len(SEEDS)), per_sample_variance=True)
    for k, single in enumerate(singles):
      expected = single.step(batches[k], seeds[k], 0., per_sample_variance=True)
      for name, value in expected.items():  # last bits: see test_packed_blocks_equal_single_learners_...
        np.testing.assert_allclose(metrics[name][k].numpy(), value.numpy(), rtol=1e-5, atol=1e-8, err_msg=name)


def test_inactive_seed_is_left_exactly_unchanged():
  packed = make(SEEDS)
  rng = np.random.default_rng(2)
  batches = [random_batch(rng) for _ in SEEDS]
  poisoned = batches[1]._replace(reward=np.full((B, N), np.nan, np.float32))  # would wreck every number
  stacked = types.Transition(*(np.stack(parts) for parts in zip(batches[0], poisoned, batches[2])))
  seeds = np.array([[s, 0] for s in SEEDS])
  packed.step(stacked, seeds, np.zeros(3))  # all active: Adam moments and counts are no longer initial
  before = [packed.save(seed=k) for k in range(3)]
  metrics = packed.step(stacked, seeds + [0, 1], np.ones(3), active=[True, False, True])
  assert metrics[learner_lib.NON_FINITE_UPDATE].numpy().tolist() == [-1, -1, -1]
  after = [packed.save(seed=k) for k in range(3)]
  for name in before[1]:
    np.testing.assert_array_equal(after[1][name], before[1][name], err_msg=name)
  assert after[1]["num_updates"] == 1 and after[1]["critic_adam/iterations"] == 1
  assert after[0]["num_updates"] == 2 and after[2]["actor_adam/iterations"] == 2
  changed = [name for name in before[0] if not np.array_equal(after[0][name], before[0][name])]
  assert "actors/actors/dense_0/kernel" in changed and "target_critics/body/dense_0/kernel" in changed


@pytest.mark.slow  # 9 s; the mask that stops a seed is the one test_inactive_seed_is_left_exactly_unchanged checks
def test_non_finite_seed_stops_alone():
  packed = make(SEEDS, jit_compile=False)
  rng = np.random.default_rng(3)
  work = [updates(rng, s, 0, 5) for s in SEEDS]
  work[1][0][3] = work[1][0][3]._replace(reward=np.full((B, N), np.inf, np.float32))  # seed 1, update 3
  metrics = packed.step_block(*(list(part) for part in zip(*work)), block_size=BLOCK)
  assert metrics[learner_lib.NON_FINITE_UPDATE].numpy().tolist() == [-1, 3, -1]
  assert metrics[learner_lib.NON_FINITE_LOSS].numpy().tolist() == [-1, 0, -1]
  # seed 1 stops at the end of the chunk holding update 3 (updates 3 and 4: its last), as a single run would
  assert packed.num_updates.numpy().tolist() == [5, 5, 5]


@pytest.mark.slow  # 7 s; a seed's view (save(seed=k)) is what the fast tier's equality tests compare
def test_save_restore_round_trips_between_packed_and_single():
  packed, singles = train_by_steps(calls=CALLS[:1])
  # a single learner restores a packed seed's arrays and then holds exactly them
  fresh = make(seed=99)
  fresh.restore(packed.save(seed=1))
  assert_seed_equals_single(packed, 1, fresh)
  # a packed learner restores one seed from a single learner, the others untouched
  other = make((20, 21, 22))
  untouched = [other.save(seed=k) for k in (0, 2)]
  other.restore(singles[0].save(), seed=1)
  assert_seed_equals_single(other, 1, singles[0])
  for k, arrays in zip((0, 2), untouched):
    for name, array in other.save(seed=k).items():
      np.testing.assert_array_equal(array, arrays[name], err_msg=name)
  # the whole packed state round-trips
  copy = make((20, 21, 22))
  copy.restore(packed.save())
  for name, array in copy.save().items():
    np.testing.assert_array_equal(array, packed.save()[name], err_msg=name)


def test_initial_seed_views_are_single_learners():
  packed = make(SEEDS, share_parameters=True)
  singles = [make(seed=s, share_parameters=True) for s in SEEDS]
  observations = np.random.default_rng(4).normal(size=(len(SEEDS), 6, N, O)).astype(np.float32)
  logits = packed.policy_logits(observations).numpy()
  for k, single in enumerate(singles):
    assert_seed_equals_single(packed, k, single)
    np.testing.assert_array_equal(logits[k], single.policy_logits(observations[k]).numpy())
    np.testing.assert_array_equal(packed.policy_logits(observations[k], seed=k).numpy(), logits[k])
    for (kernel, bias), (expected_kernel, expected_bias) in zip(packed.actor_weights(seed=k),
                                                                  single.actor_weights()):
      np.testing.assert_array_equal(kernel, expected_kernel)
      np.testing.assert_array_equal(bias, expected_bias)
  every = packed.actor_weights()
  assert every[0][0].shape == (len(SEEDS) * N, O, 8)
  np.testing.assert_array_equal(every[-1][1][N:2 * N], singles[1].actor_weights()[-1][1])


def test_bad_seed_arguments_are_refused():
  with pytest.raises(ValueError, match="distinct"):
    make((1, 1))
  with pytest.raises(ValueError, match="distinct"):
    make(())
  packed = make((1, 2))
  with pytest.raises(ValueError, match=r"index in \[0, 2\)"):
    packed.save(seed=2)
  with pytest.raises(ValueError, match="packs no seeds"):
    make(seed=1).save(seed=0)
  with pytest.raises(ValueError, match="has shape"):
    packed.restore(make((1, 2, 3)).save())
  with pytest.raises(ValueError, match="share_parameters=False"):
    packed.restore(make(seed=1, share_parameters=True).save(), seed=0)
  with pytest.raises(ValueError, match="one list of batches"):
    packed.step_block([[]], [[]], [[]])
  with pytest.raises(ValueError, match="at least one batch"):
    packed.step_block([[], []], [[], []], [[], []])
