"""Conformance kit: the package's own battery of checks, for any estimator.

    from estimators import testing
    report = testing.check_estimator(MyEstimator, temperature=0.5)   # or a name, or "module:Class"
    print(report)                 # the checks passed, the chi-square figure, bias and variance
    report.bias, report.variance  # lab.Interval(value, low, high), on a quadratic test function

A failing check raises AssertionError "<estimator>: check '<name>' failed: <what was seen>". Unknown or
bad parameters raise ValueError first, as `estimators.make` does. In pytest, one test per check:

    @pytest.mark.parametrize("name, check", testing.estimator_checks(MyEstimator, temperature=0.5))
    def test_my_estimator(name, check):
      check()

The checks (`CHECKS`, in order; all draws use fixed seeds, so a result is reproducible):
  one_hot         samples [n, 3, 5] are one-hot (relaxed estimators, `one_hot_samples = False`: points
                  of the simplex).
  frequencies     the sampled actions (argmax) of DRAWS draws per row of FREQUENCY_LOGITS are distributed
                  as softmax(logits): Pearson chi-square over the rows, df = rows x (A - 1), p > LEVEL.
  seed            the same seed gives the same sample eagerly (two separate builds); another seed, another.
  sample_shapes   logits [A], [B, A] and [B, N, A]: `sample()` has the logits' shape, `sample(4)` [4] + it.
  gradient_shapes at those shapes, the gradient of a quadratic function of the sample with respect to the
                  logits has the logits' shape and is finite.
  dtypes          float32 and float64 logits give samples and gradients of their dtype.
  large_logits    logits of magnitude 1000 (float32 and float64): finite samples and gradients, and the
                  sampled action is one whose probability is (numerically) not 0.
  tf_function     under `tf.function` the same seed gives the eager sample and gradient.
  xla             under XLA (`jit_compile=True`) too, for two seeds, and the same again on a second call.
  bias_variance   bias and variance of the gradient against the exact one (`estimators.lab`) on a
                  quadratic test function, 4 rows x 5 actions, 5 replicates of 200 samples: reported, and
                  required to be finite.
"""

import dataclasses
import functools

import numpy as np
import scipy.special
import scipy.stats
import tensorflow as tf

import estimators
from estimators import base, lab

CHECKS = ("one_hot", "frequencies", "seed", "sample_shapes", "gradient_shapes", "dtypes", "large_logits",
          "tf_function", "xla", "bias_variance")

LEVEL = 1e-3   # the chi-square test's significance level
DRAWS = 4000   # samples per row for the chi-square test
FREQUENCY_LOGITS = ((0., 0., 0., 0., 0.), (1.5, 0.5, -0.5, -1.5, 0.), (2., -1., 0.3, -2., 0.8))
# Per row, the actions whose probability is not 0 in float32 or float64.
LARGE_LOGITS = ((1000., 0., -1000., 500., -3.), (-1000., -1000., 1000., 999.5, 0.),
                (1000., 1000., -1000., 0., 0.))
LARGE_LOGITS_ACTIONS = ({0}, {2, 3}, {0, 1})
SHAPES = ((5,), (3, 5), (3, 2, 5))
SEED = (20230, 7)
OTHER_SEED = (20230, 8)


@dataclasses.dataclass(frozen=True)
class Report:
  """What `check_estimator` measured: every check passed, with these figures."""
  estimator: str
  params: dict
  passed: tuple
  chi_square: float
  degrees_of_freedom: int
  p_value: float
  statistics: lab.GradientStatistics

  @property
  def bias(self):
    return self.statistics.bias

  @property
  def variance(self):
    return self.statistics.variance

  def __str__(self):
    stats = self.statistics
    params = " ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
    return (f"{self.estimator} {params}".rstrip() + f": passed {', '.join(self.passed)}\n"
            f"  chi-square {self.chi_square:.2f} on {self.degrees_of_freedom} df, p = {self.p_value:.3g} "
            f"(level {LEVEL})\n"
            f"  quadratic f, {stats.num_replicates} x {stats.num_samples} samples: bias {stats.bias}, "
            f"variance {stats.variance}, mse {stats.mse}, cosine {stats.cosine}, "
            f"||exact|| {stats.exact_norm:.4g}")


@dataclasses.dataclass(frozen=True)
class _Subject:
  cls: type
  params: dict
  label: str

  def build(self, logits):
    return self.cls(logits=logits, **self.params)


def _require(condition, message):
  if not condition:
    raise AssertionError(message)


def _objective(sample, weights):
  """A quadratic function of the sample (a linear one would not show a Jacobian's off-diagonal part)."""
  return tf.reduce_sum(sample * weights) + tf.reduce_sum(tf.square(sample) * weights[::-1])


def _sample_and_gradient(subject, logits, seed):
  weights = tf.cast(tf.linspace(-1., 2., logits.shape[-1]), logits.dtype)
  with tf.GradientTape() as tape:
    tape.watch(logits)
    sample = subject.build(logits).sample(seed=seed)
    objective = _objective(sample, weights)
  return sample, tape.gradient(objective, logits)


def _check_sample_values(subject, samples, what):
  samples = np.asarray(samples, np.float64)
  _require(np.all(np.isfinite(samples)), f"{what}: samples are not all finite")
  sums = samples.sum(-1)
  if subject.cls.one_hot_samples:
    _require(np.all((samples == 0) | (samples == 1)) and np.all(sums == 1),
             f"{what}: samples are not one-hot (entries other than 0 and 1, or rows not summing to 1; "
             f"a relaxed estimator sets one_hot_samples = False)")
  else:
    _require(np.all(samples >= 0) and np.all(samples <= 1) and np.allclose(sums, 1., atol=1e-5),
             f"{what}: relaxed samples are not points of the simplex")


def _frequency_samples(subject):
  return subject.build(tf.constant(FREQUENCY_LOGITS, tf.float32)).sample(DRAWS, seed=SEED).numpy()


def check_one_hot(subject):
  _check_sample_values(subject, _frequency_samples(subject), f"logits {FREQUENCY_LOGITS}")


def check_frequencies(subject):
  actions = _frequency_samples(subject).argmax(-1)                           # [DRAWS, rows]
  logits = np.asarray(FREQUENCY_LOGITS)
  counts = np.stack([np.bincount(actions[:, row], minlength=logits.shape[-1]) for row in range(len(logits))])
  expected = DRAWS * scipy.special.softmax(logits, axis=-1)
  statistic = float(np.sum(np.square(counts - expected) / expected))
  df = logits.shape[0] * (logits.shape[1] - 1)
  p_value = float(scipy.stats.chi2.sf(statistic, df))
  _require(p_value > LEVEL, f"chi-square {statistic:.1f} on {df} df, p = {p_value:.3g} <= {LEVEL}: the "
           f"sampled actions are not distributed as softmax(logits) (counts {counts.tolist()}, expected "
           f"{np.round(expected, 1).tolist()}, {DRAWS} draws per row)")
  return dict(chi_square=statistic, degrees_of_freedom=df, p_value=p_value)


def check_seed(subject):
  logits = tf.zeros([64, 5])
  first = subject.build(logits).sample(seed=SEED).numpy()
  again = subject.build(logits).sample(seed=SEED).numpy()
  other = subject.build(logits).sample(seed=OTHER_SEED).numpy()
  _require(np.array_equal(first, again), f"seed {SEED}: two samples differ")
  _require(not np.array_equal(first, other), f"seeds {SEED} and {OTHER_SEED}: the same 64 x 5 sample")


def _seeded_inputs():
  logits = tf.constant(np.random.default_rng(0).normal(size=(16, 6)) * 2, tf.float32)
  return logits, tf.constant(SEED, tf.int32), tf.constant(OTHER_SEED, tf.int32)


def _compare(subject, mode, compiled, eager, seed):
  sample, gradient = (np.asarray(value) for value in compiled)
  if subject.cls.one_hot_samples:
    same = np.array_equal(sample, eager[0].numpy())
  else:
    same = np.allclose(sample, eager[0].numpy(), atol=1e-6)
  _require(same, f"seed {seed}: the sample under {mode} differs from the eager one")
  _require(gradient.shape == eager[1].shape and np.allclose(gradient, eager[1].numpy(), rtol=1e-5,
                                                             atol=1e-5),
           f"seed {seed}: the gradient under {mode} differs from the eager one")


def _bound(subject):
  # A partial, not a closure: TF counts retracings per code object and would warn once the battery
  # has run on a few estimators, though each of its functions is traced once.
  return functools.partial(_sample_and_gradient, subject)


def check_tf_function(subject):
  logits, seed, _ = _seeded_inputs()
  compiled = tf.function(_bound(subject), autograph=False)
  _compare(subject, "tf.function", compiled(logits, seed), _sample_and_gradient(subject, logits, seed),
           SEED)


def check_xla(subject):
  logits, seed, other = _seeded_inputs()
  compiled = tf.function(_bound(subject), autograph=False, jit_compile=True)
  first = compiled(logits, seed)
  _compare(subject, "XLA", first, _sample_and_gradient(subject, logits, seed), SEED)
  _compare(subject, "XLA", compiled(logits, other), _sample_and_gradient(subject, logits, other), OTHER_SEED)
  again = compiled(logits, seed)
  _require(np.array_equal(first[0].numpy(), again[0].numpy()),
           f"seed {SEED}: two calls of the same XLA program give different samples")


def _shaped_logits(shape, dtype=tf.float32):
  size = int(np.prod(shape))
  return tf.constant(np.linspace(-1.5, 1.5, size).reshape(shape) * np.cos(np.arange(size)).reshape(shape),
                     dtype)


def check_sample_shapes(subject):
  for shape in SHAPES:
    logits = _shaped_logits(shape)
    sample = subject.build(logits).sample(seed=SEED)
    _require(tuple(sample.shape) == shape, f"logits {list(shape)}: sample() has shape {sample.shape}")
    _check_sample_values(subject, sample, f"logits {list(shape)}")
    samples = subject.build(logits).sample(4, seed=SEED)
    _require(tuple(samples.shape) == (4,) + shape,
             f"logits {list(shape)}: sample(4) has shape {samples.shape}, not {[4] + list(shape)}")


def check_gradient_shapes(subject):
  for shape in SHAPES:
    try:
      _, gradient = _sample_and_gradient(subject, _shaped_logits(shape), tf.constant(SEED))
    except Exception as error:  # pylint: disable=broad-except  # e.g. TF refusing a mis-shaped gradient
      raise AssertionError(f"logits {list(shape)}: computing the gradient raised "
                           f"{base.one_line(error)}") from error
    _require(gradient is not None, f"logits {list(shape)}: no gradient reaches the logits")
    _require(tuple(gradient.shape) == shape,
             f"logits {list(shape)}: the gradient has shape {gradient.shape}, not the logits' {list(shape)}")
    _require(np.all(np.isfinite(gradient.numpy())), f"logits {list(shape)}: the gradient is not finite")


def check_dtypes(subject):
  for dtype in (tf.float32, tf.float64):
    sample, gradient = _sample_and_gradient(subject, _shaped_logits((3, 5), dtype), tf.constant(SEED))
    _require(sample.dtype == dtype, f"{dtype.name} logits: samples are {sample.dtype.name}")
    _require(gradient is not None and gradient.dtype == dtype,
             f"{dtype.name} logits: the gradient is {getattr(gradient, 'dtype', None)}")
    _check_sample_values(subject, sample, f"{dtype.name} logits")


def check_large_logits(subject):
  for dtype in (tf.float32, tf.float64):
    logits = tf.constant(LARGE_LOGITS, dtype)
    sample, gradient = _sample_and_gradient(subject, logits, tf.constant(SEED))
    what = f"{dtype.name} logits {LARGE_LOGITS}"
    _require(np.all(np.isfinite(sample.numpy())), f"{what}: the sample is not finite")
    _require(gradient is not None and np.all(np.isfinite(gradient.numpy())),
             f"{what}: the gradient is not finite")
    actions = sample.numpy().argmax(-1)
    _require(all(a in allowed for a, allowed in zip(actions, LARGE_LOGITS_ACTIONS)),
             f"{what}: sampled actions {actions.tolist()}, whose probabilities are 0")


def check_bias_variance(subject):
  params = dict(subject.params)
  temperature = params.pop("temperature", None)
  f = lab.random_function("quadratic", num_rows=4, num_actions=5, seed=1)
  stats = lab.gradient_statistics(subject.cls, f, lab.random_logits(4, 5, seed=0), params,
                                  temperature=temperature, num_samples=200, num_replicates=5, seed=3)
  figures = (stats.squared_bias.value, stats.variance.value, stats.mse.value, stats.cosine.value)
  _require(np.all(np.isfinite(figures)), f"squared bias, variance, mse, cosine: {figures}: not all finite")
  return dict(statistics=dataclasses.replace(stats, estimator=subject.label))


_FUNCTIONS = {name: globals()[f"check_{name}"] for name in CHECKS}


def _subject(estimator, params):
  cls = estimators.resolve(estimator)
  estimators.check_parameters(cls, params)
  cls(logits=tf.zeros([1, 2]), **params)  # bad values raise their ValueError here, before any check
  return _Subject(cls, dict(params), estimators.label(estimator))


def _runner(subject, name):
  def run():
    try:
      return _FUNCTIONS[name](subject)
    except AssertionError as error:
      raise AssertionError(f"{subject.label}: check {name!r} failed: {error}") from None
    except Exception as error:  # pylint: disable=broad-except  # any failure inside the estimator
      raise AssertionError(f"{subject.label}: check {name!r} failed: raised {base.one_line(error)}") from error
  run.__name__ = f"check_{name}"
  return run


def estimator_checks(estimator, **params):
  """[(check name, callable)] for `estimator` (a class, registered name or "module:Class") built with
  `params`; each callable runs one check, raising AssertionError naming it, and returns its figures (a
  dict or None). For `pytest.mark.parametrize("name, check", ...)`. Bad parameters: ValueError now."""
  subject = _subject(estimator, params)
  return [(name, _runner(subject, name)) for name in CHECKS]


def check_estimator(estimator, **params):
  """Runs every check on `estimator` with `params`; returns a `Report`, or raises AssertionError naming
  the first check that failed (ValueError for unknown or bad parameters)."""
  figures = {}
  passed = []
  for name, run in estimator_checks(estimator, **params):
    figures.update(run() or {})
    passed.append(name)
  return Report(estimator=estimators.label(estimator), params=dict(params), passed=tuple(passed),
                **figures)
