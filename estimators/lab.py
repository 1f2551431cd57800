"""Estimator lab: every discrete gradient estimator measured against the exact gradient.

For a function f of a one-hot action a ~ Categorical(p), p = softmax(z), the objective and its gradient
with respect to the logits z are sums over the A actions (v_a = f(e_a), the value of the a-th one-hot):

    J(z)  = E_{a ~ p} f(a) = sum_a p_a v_a
    dJ/dz = sum_a v_a p_a (e_a - p) = p * (v - <p, v>)

Small action sets (LBF has 6 actions) make this exact gradient cheap: a ground truth for every estimator.
Note that only the values at the vertices enter it; a straight-through estimator instead differentiates f
at the sampled vertex, which is why those estimators are biased once f is not linear.

Functions of actions follow one convention: `f(actions)` takes one-hot (or relaxed) actions of shape
[..., *batch, A], where `batch` is the shape of `logits` without its action axis and any extra leading axes
are samples, and returns values [..., *batch], one per row. Rows are independent problems.

    import estimators
    from estimators import lab
    logits = lab.random_logits(num_rows=8, num_actions=6, seed=0)
    f = lab.random_function("quadratic", num_rows=8, num_actions=6, seed=1)
    stats = lab.gradient_statistics("gst", f, logits, {"gap": 1.0}, temperature=0.7)
    stats.bias, stats.variance, stats.mse, stats.cosine           # each an Interval(value, low, high)

`estimator` names are the registry's (`names()`: every estimator but `expected`, which is the exact
gradient itself), import paths "module.path:ClassName" and estimator classes (as `estimators.resolve`
takes them); `reinforce`, the unbiased score-function estimator f(a) (e_a - p), is the reference. Each is
measured through its `objective`: the gradient of the objective it forms for f.

Statistics: R independent replicates of S samples each (fresh seeds, the same logits and f). In each
replicate, with g the exact gradient, m the mean of the S sampled gradients and Sigma their covariance,
per row and then averaged over rows:
    squared bias = ||m - g||^2 - tr(Sigma) / S   (unbiased for ||E g_hat - g||^2, so it can be < 0)
    variance     = tr(Sigma)                     (unbiased sample covariance)
    mse          = mean over samples of ||g_hat - g||^2
    cosine       = mean over samples of cos(g_hat, g)   (0 where either vector is 0)
Each comes with a Student-t confidence interval over the R replicates (df = R - 1); `bias` is the square
root of the squared bias interval, clipped at 0.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import estimators
from estimators import base, expected


def names():
  """Every estimator the lab measures, sorted: all but those whose gradient is the exact one."""
  return tuple(name for name in estimators.names(pathwise_only=False)
               if estimators.resolve(name).objective_form != base.EXACT)


def check_estimator(name, params):
  """Raises ValueError unless `name` is a lab estimator and `params` are its keyword arguments (built once,
  so bad values fail here)."""
  estimators.check(name, params, allowed=names())


def takes_temperature(name):
  """Whether estimator `name` has a `temperature` parameter (REINFORCE and TAGS do not)."""
  return "temperature" in estimators.parameter_names(name)


# ----------------------------------------------------------------------------------------------------------
# The exact objective and gradient.

# v [*batch, A]: f at every one-hot action, row by row; and E_{a ~ softmax(logits)} f(a) [*batch].
vertex_values = expected.vertex_values
exact_expectation = expected.expectation


def expected_gradient_from_values(logits, values):
  """d/dz sum_a softmax(z)_a v_a = p * (v - <p, v>), for values v [*batch, A] that do not depend on z."""
  return base.softmax_vjp(tf.math.softmax(logits), values)


def exact_gradient(f, logits):
  """The exact gradient [*batch, A] of E_{a ~ softmax(logits)} f(a) with respect to the logits."""
  logits = tf.convert_to_tensor(logits)
  return expected_gradient_from_values(logits, vertex_values(f, logits))


# ----------------------------------------------------------------------------------------------------------
# Test functions.

class LinearFunction:
  """f(a) = <w, a> per row; w [*batch, A]."""

  def __init__(self, w):
    self.w = np.asarray(w)

  def __call__(self, actions):
    return tf.reduce_sum(actions * tf.constant(self.w, actions.dtype), axis=-1)


class QuadraticFunction:
  """f(a) = a^T M a + <w, a> per row; M [*batch, A, A], w [*batch, A]. On one-hot actions only the
  diagonal of M matters; its off-diagonal entries still steer a straight-through gradient."""

  def __init__(self, m, w):
    self.m = np.asarray(m)
    self.w = np.asarray(w)

  def __call__(self, actions):
    m = tf.constant(self.m, actions.dtype)
    quadratic = tf.reduce_sum(actions * tf.squeeze(tf.matmul(m, actions[..., tf.newaxis]), -1), axis=-1)
    return quadratic + tf.reduce_sum(actions * tf.constant(self.w, actions.dtype), axis=-1)


FUNCTION_FAMILIES = ("linear", "quadratic")


def _check_shape(num_rows, num_actions):
  base.check_integer_at_least("num_rows", num_rows, 1)
  base.check_integer_at_least("num_actions", num_actions, 2)


def random_function(family, num_rows, num_actions, seed):
  """A random `linear` (w ~ N(0, 1)) or `quadratic` (also M ~ N(0, 1)) function, one per row."""
  _check_shape(num_rows, num_actions)
  rng = np.random.default_rng(seed)
  w = rng.standard_normal((num_rows, num_actions))
  if family == "linear":
    return LinearFunction(w)
  if family == "quadratic":
    return QuadraticFunction(rng.standard_normal((num_rows, num_actions, num_actions)), w)
  raise ValueError(f"unknown function family {family!r}; allowed: {', '.join(FUNCTION_FAMILIES)}")


def random_logits(num_rows, num_actions, seed, scale=1.0, dtype=np.float64):
  """Logits [num_rows, num_actions] ~ N(0, scale^2)."""
  _check_shape(num_rows, num_actions)
  return (scale * np.random.default_rng(seed).standard_normal((num_rows, num_actions))).astype(dtype)


# ----------------------------------------------------------------------------------------------------------
# Sampled gradients.

class GradientSampler:
  """Draws S per-sample gradients of the estimator's objective for f (`objective`; for a pathwise estimator,
  f(sample)) with respect to the logits in one compiled call.

  `sampler(logits, seed, num_samples, temperature=None)` -> [S, *batch, A]. The logits are tiled S
  times along a new leading axis, so each copy gets its own noise from the one stateless `seed`; the
  temperature is a tensor argument, so a sweep over temperatures reuses one trace.
  """

  def __init__(self, name, f, params=None, jit_compile=False):
    self.name = name
    self.f = f
    self.params = dict(params or {})
    check_estimator(name, self.params)
    if "temperature" in self.params:
      raise ValueError("pass the temperature to the call, not in params")
    self._function = tf.function(self._sample, jit_compile=jit_compile)

  def _sample(self, logits, seed, num_samples, temperature):
    tiled = tf.broadcast_to(logits, tf.concat([[num_samples], tf.shape(logits)], axis=0))
    params = dict(self.params)
    if temperature is not None:
      params["temperature"] = temperature
    with tf.GradientTape() as tape:
      tape.watch(tiled)
      values = estimators.make(self.name, logits=tiled, **params).objective(self.f, seed=seed)
    # Rows (and samples) are independent, so the gradient of the sum is every row's own gradient.
    return tape.gradient(values, tiled)

  def __call__(self, logits, seed, num_samples, temperature=None):
    logits = tf.convert_to_tensor(logits)
    if temperature is not None:
      if not takes_temperature(self.name):
        raise ValueError(f"estimator {estimators.label(self.name)!r} takes no temperature")
      estimators.schedules.check_positive("temperature", temperature)
      temperature = tf.constant(temperature, logits.dtype)
    seed = tf.cast(tfp.random.sanitize_seed(seed), tf.int32)
    return self._function(logits, seed, tf.constant(int(num_samples)), temperature)


# ----------------------------------------------------------------------------------------------------------
# Statistics.

@dataclasses.dataclass(frozen=True)
class Interval:
  """A point estimate and its confidence interval [low, high]."""
  value: float
  low: float
  high: float

  def contains(self, x):
    return self.low <= x <= self.high

  def __str__(self):
    return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


def t_interval(values, confidence=0.95):
  """Mean of `values` and its Student-t interval (df = n - 1, scale = the standard error)."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  values = np.asarray(values, np.float64)
  mean = float(values.mean())
  if values.size < 2:
    return Interval(mean, -math.inf, math.inf)
  half = float(stats.t.ppf(0.5 + confidence / 2, df=values.size - 1) * values.std(ddof=1)
               / math.sqrt(values.size))
  return Interval(mean, mean - half, mean + half)


@dataclasses.dataclass(frozen=True)
class GradientStatistics:
  """One estimator's gradient measured against the exact gradient (see the module docstring)."""
  estimator: str
  params: dict
  temperature: float | None
  squared_bias: Interval
  bias: Interval
  variance: Interval
  mse: Interval
  cosine: Interval
  exact_norm: float        # root mean square over rows of ||exact gradient||
  num_samples: int
  num_replicates: int
  confidence: float

  @property
  def relative_bias(self):
    """bias / exact_norm (inf if the exact gradient is 0)."""
    return self.bias.value / self.exact_norm if self.exact_norm > 0 else math.inf

  def as_row(self):
    """A flat dict (for CSV): every interval as value, low, high."""
    row = {"estimator": self.estimator,
           "params": " ".join(f"{k}={v}" for k, v in sorted(self.params.items())),
           "temperature": "" if self.temperature is None else self.temperature}
    for name in ("bias", "squared_bias", "variance", "mse", "cosine"):
      interval = getattr(self, name)
      row.update({name: interval.value, f"{name}_low": interval.low, f"{name}_high": interval.high})
    row.update(exact_norm=self.exact_norm, relative_bias=self.relative_bias, num_samples=self.num_samples,
               num_replicates=self.num_replicates, confidence=self.confidence)
    return row


def replicate_statistics(gradients, exact):
  """(squared bias, variance, mse, cosine) of sampled gradients [S, *batch, A] against `exact`
  [*batch, A], each averaged over rows (one replicate's figures)."""
  samples = np.asarray(gradients, np.float64).reshape(len(gradients), -1, exact.shape[-1])
  exact = np.asarray(exact, np.float64).reshape(-1, exact.shape[-1])
  count = samples.shape[0]
  trace = samples.var(axis=0, ddof=1).sum(-1)                                       # [rows]
  squared_bias = np.square(samples.mean(axis=0) - exact).sum(-1) - trace / count
  mse = np.square(samples - exact).sum(-1).mean(0)
  norms = np.linalg.norm(samples, axis=-1) * np.linalg.norm(exact, axis=-1)
  cosines = np.divide((samples * exact).sum(-1), norms, out=np.zeros_like(norms), where=norms > 0)
  return squared_bias.mean(), trace.mean(), mse.mean(), cosines.mean()


def gradient_statistics(name, f, logits, params=None, *, temperature=None, num_samples=1000,
                        num_replicates=20, seed=0, confidence=0.95, exact=None, sampler=None):
  """Bias, variance, MSE and cosine similarity of estimator `name` for E f(a), a ~ softmax(logits).

  `params` (e.g. {"num_samples": 10}, GRMCK's K) and `temperature` go to `estimators.make`;
  `num_samples` (S) and `num_replicates` (R) are the lab's. `exact` overrides the reference gradient
  (default: `exact_gradient(f, logits)`); `sampler` reuses a `GradientSampler` (and its trace) across
  calls. Replicate r uses the stateless seed (seed, r).
  """
  base.check_integer_at_least("num_samples (S)", num_samples, 2)
  base.check_integer_at_least("num_replicates (R)", num_replicates, 2)
  logits = tf.convert_to_tensor(logits)
  if sampler is None:
    sampler = GradientSampler(name, f, params)
  if exact is None:
    exact = exact_gradient(f, logits)
  exact = np.asarray(exact, np.float64)
  replicates = np.array([replicate_statistics(sampler(logits, (seed, r), num_samples, temperature), exact)
                         for r in range(num_replicates)])                           # [R, 4]
  squared_bias, variance, mse, cosine = (t_interval(column, confidence) for column in replicates.T)
  root = lambda x: math.sqrt(max(x, 0.))
  bias = Interval(root(squared_bias.value), root(squared_bias.low), root(squared_bias.high))
  exact_norm = float(np.sqrt(np.square(exact.reshape(-1, exact.shape[-1])).sum(-1).mean()))
  label = estimators.label(name)
  return GradientStatistics(label, dict(sampler.params), temperature, squared_bias, bias, variance, mse,
                            cosine, exact_norm, int(num_samples), int(num_replicates), confidence)
