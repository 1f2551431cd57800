"""Shared machinery of the discrete gradient estimators.

Every estimator is a `tfp.distributions.Distribution` over one-hot vectors on the last axis of `logits`:
it samples like `OneHotCategorical(logits)` and differs only in the gradient its samples carry back to
`logits` (the estimator). Subclasses implement `_relax(logits, temperature, seed)`.

Randomness: stateless seeds (an int pair or a shape-[2] int tensor) drawn through Philox explicitly, so the
eager path, `tf.function` and XLA give the same numbers, and XLA on CPU stays fast (TF's default stateless
algorithm is several times slower there). Under XLA on CPU the Philox words are computed by our own ops
(`philox_map_xla`): the same bits as TF's kernel, several times faster there (see that function).
"""

import inspect

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tensorflow_probability.python.internal import parameter_properties
from tensorflow_probability.python.internal import prefer_static as ps
from tensorflow_probability.python.internal import tensor_util
from tensorflow.python.ops import control_flow_util  # pylint: disable=g-direct-tensorflow-import

from estimators import schedules

RNG_ALGORITHM = "philox"

# An estimator's `objective_form` (see `DiscreteGradientEstimator.objective`).
PATHWISE, EXACT, SCORE_FUNCTION = "pathwise", "exact", "score_function"
# The keywords of a temperature schedule.
SCHEDULE_KEYWORDS = ("start_temperature", "end_temperature", "period")


# ----------------------------------------------------------------------------------------------------------
# Random numbers.

def split_seed(seed, n=2):
  """Splits a stateless seed into `n` independent seeds with Philox (TFP's splitter uses the default alg)."""
  seed = tfp.random.sanitize_seed(seed)
  seeds = tf.random.stateless_uniform([n, 2], seed=seed, minval=None, maxval=None, dtype=tf.int32,
                                      alg=RNG_ALGORITHM)
  return tf.unstack(seeds)


def noise(shape, seed, dtype, transform=None):
  """`transform(U)` for U ~ U(0, 1) iid of `shape` from Philox bits, both ends excluded; `transform` must be
  elementwise (default: none, U itself).

  The float conversion is done here because XLA's stateless uniform turns the same Philox bits into
  different floats than TF's kernels do; the integer bits agree, so eager, graph and XLA runs share one
  stream. The half-step offset keeps -log(U) and log(-log(U)) finite without clipping. Under XLA on CPU
  (float32) the transform is computed in the random-number code's own fusion, where it vectorises (see
  `philox_map_xla`).
  """
  dtype = tf.as_dtype(dtype)
  transform = transform or (lambda values: values)
  if dtype == tf.float32 and _use_philox_bits_xla():
    return philox_map_xla(shape, seed, lambda bits: transform(_float32_from_bits(bits)))
  return transform(_uniform_from_bits(shape, seed, dtype))


def word_major_noise(shape, seed, dtype, transform=None):
  """`noise(shape, seed, dtype, transform)`'s numbers in another order: Philox word-major, in chunks.

  Philox gives 4 words per block; the stream order is block by block (value n is word n % 4 of block n // 4).
  Here the B = ceil(size / 4) blocks are cut into `word_major_chunks(B)` = C chunks of P consecutive blocks,
  and within a chunk the values go word by word: value n is word (n % 4P) // P of block
  (n // 4P) P + n % P. Still iid uniforms, and the same numbers in eager, tf.function and XLA. Under XLA on
  CPU this is the order `philox_map_xla(..., word_major=True)` computes in: no transpose into stream order
  (about a sixth of the random-number cost), and each chunk's ten rounds and `transform` run on a state
  small enough to stay in the core's L1 cache (about a fifth of the cost at GRMCK's 9 x 512 x 6). For noise
  no other code must reproduce.
  """
  dtype = tf.as_dtype(dtype)
  transform = transform or (lambda values: values)
  shape = tf.cast(shape, tf.int32)
  size = ps.reduce_prod(shape)
  if dtype == tf.float32 and _use_philox_bits_xla():
    return philox_map_xla(shape, seed, lambda bits: transform(_float32_from_bits(bits)), word_major=True)
  chunks, per_chunk = word_major_chunks((size + 3) // 4)
  values = _uniform_from_bits(tf.reshape(4 * chunks * per_chunk, [1]), seed, dtype)
  values = tf.transpose(tf.reshape(values, tf.stack([chunks, per_chunk, 4])), [0, 2, 1])
  return transform(tf.reshape(tf.reshape(values, [-1])[:size], shape))


# How `word_major_noise` cuts its blocks into chunks. Up to WORD_MAJOR_CHUNKED_UP_TO_BLOCKS blocks, in chunks
# of at most 768 blocks: a 12 KiB Philox state, which with the chunk's transformed values stays in a 32 KiB
# L1 data cache while its ten rounds run (XLA runs a state of this size on one thread; GRMCK's 9 x 512 x 6
# conditional noise, 6912 blocks, is about a fifth cheaper chunked). Above it, one chunk: XLA then splits
# the rounds across threads, which pays more than the cache (GRMCK K=50 at 512 x 6, 37632 blocks, was 16%
# slower chunked). Part of the numbers' definition, so the same everywhere.
WORD_MAJOR_CHUNK_BLOCKS = 768
WORD_MAJOR_CHUNKED_UP_TO_BLOCKS = 16384


def word_major_chunks(blocks):
  """(chunks, blocks per chunk) of `word_major_noise` for `blocks` Philox blocks (int tensors): one chunk
  above WORD_MAJOR_CHUNKED_UP_TO_BLOCKS, else the fewest chunks of at most WORD_MAJOR_CHUNK_BLOCKS, as even
  as possible (the last chunk's unused words are dropped)."""
  static = tf.get_static_value(blocks)
  if static is not None:  # the usual case: plain ints, so the chunk loop is built only when it has 2+ chunks
    blocks = int(static)
    chunks = 1 if blocks > WORD_MAJOR_CHUNKED_UP_TO_BLOCKS else max(-(-blocks // WORD_MAJOR_CHUNK_BLOCKS), 1)
    return chunks, -(-blocks // chunks)
  blocks = tf.cast(blocks, tf.int32)
  chunks = tf.where(blocks > WORD_MAJOR_CHUNKED_UP_TO_BLOCKS, 1,
                    tf.maximum((blocks + WORD_MAJOR_CHUNK_BLOCKS - 1) // WORD_MAJOR_CHUNK_BLOCKS, 1))
  return chunks, (blocks + chunks - 1) // chunks


def _float32_from_bits(bits):
  # 23 bits, not 24: the largest value, 1 - 2^-24, is a float32; with 24 bits (k + 0.5) * 2^-24 can round
  # to exactly 1.0 (once in 2^24 draws), and -log(-log(1)) = inf made the Gumbel-softmax NaN in training.
  return (tf.cast(tf.bitwise.right_shift(bits, 9), tf.float32) + 0.5) * 2. ** -23


def _uniform_from_bits(shape, seed, dtype):
  if dtype == tf.float64:
    bits = _random_bits(ps.concat([shape, [2]], axis=0), seed)
    high = tf.cast(tf.bitwise.right_shift(bits[..., 0], 6), tf.float64)  # 26 bits
    low = tf.cast(tf.bitwise.right_shift(bits[..., 1], 6), tf.float64)   # 26 bits (52 in all: see above)
    return (high * 2. ** 26 + low + 0.5) * 2. ** -52
  values = _float32_from_bits(_random_bits(shape, seed))
  if dtype == tf.float32:
    return values
  # Narrower floats: round to the dtype, then keep strictly inside (0, 1).
  finfo = np.finfo(dtype.as_numpy_dtype)
  return tf.clip_by_value(tf.cast(values, dtype), finfo.tiny, 1. - finfo.epsneg)


def _random_bits(shape, seed):
  if _use_philox_bits_xla():
    return philox_map_xla(shape, seed)
  return tf.random.stateless_uniform(shape, seed=seed, minval=None, maxval=None, dtype=tf.uint32,
                                     alg=RNG_ALGORITHM)


# Philox-4x32-10 (Salmon et al. 2011), as TF's and XLA's kernels compute it.
_PHILOX_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_PHILOX_KEY_INCREMENTS = (0x9E3779B9, 0xBB67AE85)
_PHILOX_ROUNDS = 10
# TF scrambles a stateless seed into Philox's key and counter with one Philox draw under this key
# (tensorflow/python/ops/random_ops_util.py, `_philox_scramble_seed`; core/kernels/stateless_random_ops.cc).
_PHILOX_SEED_SCRAMBLE_KEY = 0x02461E293EC8F720
_PHILOX_ALG_ID = 1  # Algorithm.PHILOX in TF's raw random ops


def _use_philox_bits_xla():
  """True while tracing for XLA (a jit_compile'd function or anything it calls) on a machine without GPU/TPU.

  (On accelerators XLA's own generator is left alone: the slowness worked around here is XLA's CPU code.)
  """
  if not control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
    return False
  return not tf.config.list_logical_devices("GPU") and not tf.config.list_logical_devices("TPU")


def fusion_barrier_xla(value):
  """`value`, unchanged. Under XLA on CPU, computed once, in its own fusion, instead of inside every consumer.

  XLA copies cheap elementwise producers into each consumer's fusion. When a few-op expression feeds
  several reductions (GST's one-hot action and perturbation feed the softmax's max, exp and sum), the
  copies add up and tip the fusions over XLA's cost threshold for splitting them across threads, which
  on a 512-row batch costs more in hand-offs than it saves (GST was about 2x STGS with two threads, 1.1x
  with one). A `tf.cond` whose branches are the same makes `value` a plain array (XLA does not fuse across
  a conditional); the numbers are identical. No gradient flows through: use on stop-gradient values.
  """
  if not _use_philox_bits_xla():
    return value
  head = tf.reshape(value, [-1])[:1]
  predicate = tf.reduce_any(tf.equal(head, head))  # not foldable by XLA (NaN != NaN); empty: False
  return tf.cond(predicate, lambda: value, lambda: value)


def _philox_round(state, key0, key1):
  """One Philox-4x32 round on a [4, blocks] uint32 state (the four counter words of every block)."""
  word0, word1, word2, word3 = tf.unstack(state)
  shift = tf.constant(32, tf.uint64)
  product0 = tf.cast(word0, tf.uint64) * tf.constant(_PHILOX_MULTIPLIERS[0], tf.uint64)
  product1 = tf.cast(word2, tf.uint64) * tf.constant(_PHILOX_MULTIPLIERS[1], tf.uint64)
  high0 = tf.cast(tf.bitwise.right_shift(product0, shift), tf.uint32)
  high1 = tf.cast(tf.bitwise.right_shift(product1, shift), tf.uint32)
  xor = tf.bitwise.bitwise_xor
  return tf.stack([xor(xor(high1, word1), key0), tf.cast(product1, tf.uint32),
                   xor(xor(high0, word3), key1), tf.cast(product0, tf.uint32)])


def philox_map_xla(shape, seed, transform=None, word_major=False):
  """`transform(bits)`, bits = `tf.random.stateless_uniform(shape, seed, None, None, tf.uint32, "philox")`.

  With `word_major`, the same words in the order of `word_major_noise` (chunked; no transpose).

  The same Philox-4x32-10 words as TF's kernel, bit for bit (the tests check it), in the same order;
  `transform` (default: none) must be elementwise. Written with ordinary ops for XLA on CPU, which compiles
  the stateless generator badly: it expands it into ONE elementwise loop in which every output word
  recomputes its whole 4-word Philox block and picks its word with a select, and whatever XLA fuses after
  it (the float conversion and logs of Gumbel noise) is then compiled as scalar code. That was about 90%
  of an STGS forward-and-backward pass on 512 rows. Here instead:
    - the state of every block is a [4, blocks] array and the 10 rounds run in a `tf.while_loop` (two
      rounds an iteration), so each word is computed once, in contiguous rows that vectorise;
    - `transform` is applied to that [4, blocks] array, then a transpose puts the values in stream order
      (block b gives words 4b .. 4b+3). Each step sits inside a `tf.cond` whose two branches are the same
      function: it computes nothing different, but XLA does not fuse across a conditional, so the
      transform gets a fusion of its own (vectorised) and consumers read a plain array.
    - `word_major`: no transpose, and an outer loop runs the rounds and `transform` chunk by chunk (see
      `word_major_noise`), so the state being updated ten times stays in L1 instead of L2.
  Meant for XLA (many small ops; eager and plain graph mode use TF's kernel, see `_use_philox_bits_xla`).
  """
  transform = transform or (lambda bits: bits)
  shape = tf.cast(shape, tf.int32)
  # TF's seed scramble: key = words 0-1, the high 64 bits of the 128-bit counter = words 2-3; the low 64 bits
  # start at 0 and count blocks.
  words = tf.raw_ops.StatelessRandomUniformFullIntV2(
      shape=[4], key=tf.constant([_PHILOX_SEED_SCRAMBLE_KEY], tf.uint64),
      counter=tf.cast(seed, tf.uint64), alg=_PHILOX_ALG_ID, dtype=tf.uint32)
  key0, key1, counter2, counter3 = tf.unstack(words)
  size = ps.reduce_prod(shape)
  # Any run-time boolean: every `_barrier` below has the same function in both branches.
  predicate = tf.not_equal(key0, 0)

  def _barrier(function):
    return tf.cond(predicate, function, function)

  def one_round(round_index, state):
    r = tf.cast(round_index, tf.uint32)
    return _philox_round(state, key0 + r * _PHILOX_KEY_INCREMENTS[0], key1 + r * _PHILOX_KEY_INCREMENTS[1])

  def two_rounds(round_index, state):
    # The barrier materialises the first round, so the second writes straight into the loop's buffer
    # (one round per iteration costs a copy of the state per round instead).
    halfway = _barrier(lambda: one_round(round_index, state))
    return round_index + 2, one_round(round_index + 1, halfway)

  def blocks_from(first_block, count):
    """The final [4, count] state of blocks first_block .. first_block + count - 1."""
    block = tf.bitcast(tf.range(count, dtype=tf.int32) + first_block, tf.uint32)
    zeros = tf.zeros_like(block)
    state = tf.stack([block, zeros, zeros + counter2, zeros + counter3])
    assert _PHILOX_ROUNDS % 2 == 0
    _, state = tf.while_loop(lambda round_index, _: round_index < _PHILOX_ROUNDS, two_rounds,
                             (tf.constant(0, tf.int32), state), parallel_iterations=1)
    return state

  blocks = (size + 3) // 4
  chunks, per_chunk = word_major_chunks(blocks) if word_major else (1, blocks)
  if isinstance(chunks, int) and chunks == 1:
    state = blocks_from(0, blocks)
    values = _barrier(lambda: transform(state))
    if word_major:
      return tf.reshape(tf.reshape(values, [-1])[:size], shape)
    return _barrier(lambda: tf.reshape(tf.reshape(tf.transpose(values), [-1])[:size], shape))

  def one_chunk(chunk, output):
    values = transform(blocks_from(chunk * per_chunk, per_chunk))
    return chunk + 1, tf.tensor_scatter_nd_update(output, [[chunk]], values[tf.newaxis])

  output_dtype = transform(tf.zeros([4, 0], tf.uint32)).dtype
  output = tf.zeros(tf.stack([chunks, 4, per_chunk]), output_dtype)
  _, output = tf.while_loop(lambda chunk, _: chunk < chunks, one_chunk, (tf.constant(0, tf.int32), output),
                            parallel_iterations=1)
  return tf.reshape(tf.reshape(output, [-1])[:size], shape)


def gumbel(shape, seed, dtype):
  """Standard Gumbel noise: -log(-log(U))."""
  return noise(shape, seed, dtype, lambda values: -tf.math.log(-tf.math.log(values)))


def one_hot_argmax(values):
  """One-hot of the argmax over the last axis, in the dtype of `values`."""
  return tf.one_hot(tf.argmax(values, axis=-1, output_type=tf.int32), ps.shape(values)[-1],
                    dtype=values.dtype)


def categorical_one_hot(logits, seed):
  """A hard one-hot sample from Categorical(softmax(logits)), by Gumbel-max."""
  return one_hot_argmax(logits + gumbel(ps.shape(logits), seed, logits.dtype))


def straight_through(hard, surrogate):
  """Forward value `hard` (exactly: s - stop_gradient(s) is 0), gradient of `surrogate` backward."""
  return hard + (surrogate - tf.stop_gradient(surrogate))


def softmax_vjp(probs, upstream):
  """Vector-Jacobian product of softmax at output `probs`: probs * (g - <probs, g>)."""
  return probs * (upstream - tf.reduce_sum(probs * upstream, axis=-1, keepdims=True))


# ----------------------------------------------------------------------------------------------------------
# Argument checks: raise at construction, naming the value.

def check_integer_at_least(name, value, minimum):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def one_line(error):
  """An exception as one line, `Type: message` (messages that quote code or shapes may span lines)."""
  return " ".join(f"{type(error).__name__}: {error}".split())


def _check_logits(logits):
  if not logits.dtype.is_floating:
    raise ValueError(f"logits must be floating point, got dtype {logits.dtype.name}")
  rank = logits.shape.rank
  if rank is not None and rank < 1:
    raise ValueError(f"logits need an action axis (rank >= 1), got shape {logits.shape}")
  if rank is not None and logits.shape[-1] is not None and logits.shape[-1] < 1:
    raise ValueError(f"logits need at least one action on the last axis, got shape {logits.shape}")


def _accepts_var_keyword(function):
  return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())


def resolve_temperature(temperature, start_temperature, end_temperature, period, step, schedule, dtype):
  """A fixed `temperature`, or the `schedule` of (start, end, period) evaluated at `step`."""
  scheduled = {"start_temperature": start_temperature, "end_temperature": end_temperature,
               "period": period}
  given = [k for k, v in scheduled.items() if v is not None]
  if given:
    if temperature is not None:
      raise ValueError(f"give either temperature ({temperature!r}) or a temperature schedule "
                       f"({', '.join(given)}), not both")
    missing = [k for k, v in scheduled.items() if v is None]
    if missing:
      raise ValueError(f"a temperature schedule needs start_temperature, end_temperature and period; "
                       f"missing {', '.join(missing)}")
    step = 0 if step is None else step
    return schedules.get(schedule)(step, start_temperature, end_temperature, period, dtype=dtype)
  temperature = 1. if temperature is None else temperature
  schedules.check_positive("temperature", temperature)
  return tensor_util.convert_nonref_to_tensor(temperature, dtype=dtype, name="temperature")


def record_parameters(local_variables):
  """The constructor arguments, from `locals()` at the top of an __init__ (TFP's `parameters`)."""
  parameters = {k: v for k, v in local_variables.items()
                if k not in ("self", "__class__", "kwargs", "parameters")}
  parameters.update(local_variables.get("kwargs", {}))
  return parameters


class _EstimatorMeta(type(tfp.distributions.Distribution)):
  """Gives an estimator class that defines `__init__` its parent's `_parameter_properties`.

  TFP warns when a subclass redefines `__init__` but inherits `_parameter_properties`. An estimator's
  extra keywords (K, the gap, ...) are Python numbers, not tensor parameters with batch shape, so the
  base's properties (logits and temperature) stay right for it, and subclasses need not repeat them.
  A class may still define its own.
  """

  def __new__(mcs, classname, baseclasses, attrs):
    if "__init__" in attrs and "_parameter_properties" not in attrs:
      for klass in (k for base in baseclasses for k in base.__mro__):
        if "_parameter_properties" in vars(klass):
          attrs["_parameter_properties"] = vars(klass)["_parameter_properties"]
          break
    return super().__new__(mcs, classname, baseclasses, attrs)


class SampleCount:
  """Mixin of estimators that use K = `num_samples` draws per row: one home for K's check and property.

  A subclass's `__init__` calls `_set_num_samples(num_samples)` before the base's; `min_num_samples` is
  the smallest K its formula is defined for.
  """

  min_num_samples = 1

  def _set_num_samples(self, num_samples):
    self._num_samples = check_integer_at_least("num_samples (K)", num_samples, self.min_num_samples)

  @property
  def num_samples(self):
    return self._num_samples


# Keywords every TFP distribution takes: accepted by `estimators.make`, but no parameter of an estimator (not
# listed by `parameter_names`, nor searched, nor offered in messages).
TFP_ARGUMENTS = ("validate_args", "allow_nan_stats", "name")


class DiscreteGradientEstimator(tfp.distributions.Distribution, metaclass=_EstimatorMeta):
  """Base class: a one-hot categorical whose samples carry an estimator's gradient.

  Forward, `sample()` returns a hard one-hot vector (except the relaxed `gumbel_softmax`), distributed as
  `OneHotCategorical(logits)`. Backward, the gradient with respect to `logits` is the estimator's
  surrogate gradient. `log_prob`, `probs_parameter`, `mode` and `entropy` are those of the categorical.

  The temperature is either fixed (`temperature=`) or a schedule (`start_temperature`, `end_temperature`,
  `period`, evaluated at `step` by `schedule`, see `estimators.schedules`): any estimator can anneal.

  Writing an estimator (the contract; `estimators.testing.check_estimator` checks it):

  1. Subclass `DiscreteGradientEstimator` and write ONE of two hooks. Both receive `logits` [..., A]
     (any batch shape, float32 or float64) and `temperature` broadcast to [..., 1] (1.0 unless given).
     - `_surrogate(self, logits, temperature, sample) -> [..., A]`: the straight-through form. The base
       draws `sample`, a hard one-hot ~ Categorical(softmax(logits)) (`categorical_one_hot`, Gumbel-max
       on Philox noise), and returns `sample + s - stop_gradient(s)` for s = your surrogate: the forward
       value is the sample, the gradient is that of s.
     - `_relax(self, logits, temperature, seed) -> [..., A]`: full control. Return the sample with the
       estimator's gradient attached; draw every random number from the stateless `seed` (an int32 [2]
       tensor) with this module's `gumbel`, `noise` and `split_seed`, so the same seed gives the same
       sample eagerly, under `tf.function` and under XLA. A relaxed (not one-hot) sample must set the
       class attribute `one_hot_samples = False`; its argmax must then be distributed as softmax(logits).
  2. Parameters are the keywords of `__init__`: they are what `estimators.parameter_names` reports and
     `estimators.make` accepts (anything else is refused with one line naming it). Declare them after
     `logits` and `temperature`, check each at construction (raise ValueError naming the value and what
     is allowed; `check_integer_at_least` and `schedules.check_positive` do it for the usual cases),
     and pass the rest on:

         def __init__(self, logits, temperature=None, my_param=1.0, **kwargs):
           parameters = record_parameters(locals())        # first line: TFP's `parameters`
           schedules.check_positive("my_param", my_param)
           self._my_param = my_param
           super().__init__(logits, temperature, parameters=parameters, **kwargs)

     `**kwargs` passes the temperature schedule keywords on; leave it out (and `temperature`) for an
     estimator without a temperature: then only the keywords of its own `__init__` are accepted.
     Without an `__init__`, an estimator's parameters are the base's: the temperature and its schedule.
  3. Use it by import path (`estimators.make("my_pkg.my_module:MyEstimator", logits=..., ...)`, the
     same string for `--config.estimator.name`) or register a short name: `estimators.register("mine",
     MyEstimator)`.
  4. What a user of an estimator asks it (MADDPG's learner asks nothing else): `objective(f, seed)`, by
     default f at one sample (PATHWISE); `scheduled(params)`, whether the keywords start a temperature
     schedule (then `step` is passed); `temperature`. An estimator whose gradient needs f at several
     actions (exact enumeration, score-function estimators) subclasses `ObjectiveEstimator` instead and
     writes `objective`, as `expected`, `rloo` and `reinforce` do.
  """

  # False for estimators whose samples are relaxed points of the simplex rather than one-hot vectors.
  one_hot_samples = True
  # How `objective` forms E f(a) and its gradient: PATHWISE (f at one sample that carries the gradient),
  # EXACT (the sum over every action) or SCORE_FUNCTION (f at samples, the gradient from their log-probs).
  objective_form = PATHWISE

  def __init__(self, logits, temperature=None, *, start_temperature=None, end_temperature=None,
               period=None, step=None, schedule="exponential", validate_args=False,
               allow_nan_stats=True, name=None, parameters=None):
    if parameters is None:
      parameters = record_parameters(locals())
    with tf.name_scope(name or type(self).__name__) as name:
      self._logits = tensor_util.convert_nonref_to_tensor(logits, dtype_hint=tf.float32, name="logits")
      _check_logits(self._logits)
      self._temperature = resolve_temperature(temperature, start_temperature, end_temperature, period,
                                              step, schedule, self._logits.dtype)
      super().__init__(dtype=self._logits.dtype,
                       reparameterization_type=tfp.distributions.FULLY_REPARAMETERIZED,
                       validate_args=validate_args, allow_nan_stats=allow_nan_stats,
                       parameters=parameters, name=name)

  @classmethod
  def _parameter_properties(cls, dtype, num_classes=None):
    return dict(
        logits=parameter_properties.ParameterProperties(event_ndims=1),
        temperature=parameter_properties.ParameterProperties(
            event_ndims=0, default_constraining_bijector_fn=parameter_properties.BIJECTOR_NOT_IMPLEMENTED))

  @classmethod
  def parameter_names(cls):
    """Every keyword this estimator's constructor accepts, besides `logits` and TFP's own `TFP_ARGUMENTS`
    (which every distribution takes and which are no setting of the estimator)."""
    names = []
    for klass in reversed(cls.__mro__):
      if "__init__" in vars(klass) and issubclass(klass, DiscreteGradientEstimator):
        for parameter in inspect.signature(klass.__init__).parameters.values():
          if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
          if (parameter.name not in ("self", "logits", "parameters", *TFP_ARGUMENTS)
              and parameter.name not in names):
            names.append(parameter.name)
    if cls.__init__ is not DiscreteGradientEstimator.__init__ and not _accepts_var_keyword(cls.__init__):
      own = set(inspect.signature(cls.__init__).parameters)
      names = [n for n in names if n in own]
    return tuple(names)

  @classmethod
  def scheduled(cls, params):
    """Whether an estimator built with keywords `params` follows a temperature schedule, so it must also
    be given the schedule's position `step` (a schedule is in force once any of its keywords is given)."""
    return "step" in cls.parameter_names() and any(key in params for key in SCHEDULE_KEYWORDS)

  def objective(self, f, seed, sample_axis=0):
    """E_{a ~ softmax(logits)} f(a) [*batch], formed so that its gradient with respect to `logits` is this
    estimator's; its value is a sample of the expectation (exact for EXACT estimators).

    `f` maps one-hot (or relaxed) actions [..., A] to values [...]: it is called on actions shaped like
    `logits`, with, for estimators that evaluate f at several actions, one more axis of those actions at
    `sample_axis` (as `tf.expand_dims(logits, sample_axis)` places it). `seed`: a stateless seed. This
    default is PATHWISE: f at one sample, whose gradient is the estimator's.
    """
    del sample_axis  # one sample, shaped like the logits
    return f(self.sample(seed=seed))

  @property
  def logits(self):
    return self._logits

  @property
  def temperature(self):
    """The temperature in force (a tensor; a schedule's value at `step`)."""
    return self._temperature

  def _event_shape(self):
    return self._logits.shape[-1:]

  def _event_shape_tensor(self):
    return ps.shape(self._logits)[-1:]

  # ---- sampling --------------------------------------------------------------------------------------

  def _sample_n(self, n, seed=None):
    logits = tf.convert_to_tensor(self._logits)
    temperature = tf.convert_to_tensor(self._temperature)
    batch_shape = ps.broadcast_shape(ps.shape(logits)[:-1], ps.shape(temperature))
    shape = ps.concat([[n], batch_shape, ps.shape(logits)[-1:]], axis=0)
    logits = tf.broadcast_to(logits, shape)
    temperature = tf.broadcast_to(temperature, shape[:-1])[..., tf.newaxis]
    return self._relax(logits, temperature, seed)

  def _relax(self, logits, temperature, seed):
    """Returns a sample with the estimator's gradient. `temperature` broadcasts against `logits`.

    This default is the straight-through form over `_surrogate` (see the class docstring)."""
    sample = categorical_one_hot(logits, seed)
    return straight_through(sample, self._surrogate(logits, temperature, sample))

  def _surrogate(self, logits, temperature, sample):
    """The function whose gradient a straight-through sample carries: [..., A], like `logits`."""
    raise NotImplementedError(f"{type(self).__name__} implements neither _surrogate nor _relax")

  # ---- the categorical's statistics --------------------------------------------------------------------

  def _log_prob(self, x):
    return tf.reduce_sum(tf.cast(x, self.dtype) * tf.math.log_softmax(self._logits), axis=-1)

  def _entropy(self):
    log_probs = tf.math.log_softmax(self._logits)
    return -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)

  def _mode(self):
    return one_hot_argmax(tf.convert_to_tensor(self._logits))

  def _mean(self):
    return self.probs_parameter()

  def probs_parameter(self, name=None):
    with self._name_and_control_scope(name or "probs_parameter"):
      return tf.math.softmax(self._logits)

  def logits_parameter(self, name=None):
    with self._name_and_control_scope(name or "logits_parameter"):
      return tf.identity(self._logits)

  def _parameter_control_dependencies(self, is_init):
    # Static values are checked in __init__; this catches values only known when the graph runs.
    if not self.validate_args:
      return []
    return [tf.debugging.assert_positive(self._temperature, message="temperature must be > 0")]


class ObjectiveEstimator(DiscreteGradientEstimator):
  """Base class of estimators whose gradient is formed in `objective` from f's values at several actions
  (exact enumeration, score-function estimators) rather than carried by one sample.

  Their samples are plain one-hot draws ~ Categorical(softmax(logits)) that carry no gradient, and they
  have no temperature (`temperature` is None). Subclasses set `objective_form` and write `objective`.
  """

  objective_form = SCORE_FUNCTION

  @property
  def temperature(self):
    """None: the gradient passes through no relaxation."""
    return None

  def _relax(self, logits, temperature, seed):
    return tf.stop_gradient(categorical_one_hot(logits, seed))

  def objective(self, f, seed, sample_axis=0):
    raise NotImplementedError(f"{type(self).__name__} does not implement objective")



def sample_axis_index(sample_axis, rank):
  """Where a new axis goes in logits of rank `rank`, as `tf.expand_dims(logits, sample_axis)` places it, as
  an index >= 0; ValueError unless it lies before the action axis."""
  index = sample_axis if sample_axis >= 0 else sample_axis + rank + 1
  if not 0 <= index <= rank - 1:
    raise ValueError(f"sample_axis must lie before the action axis of logits of rank {rank}, got {sample_axis}")
  return index


def tile_along(tensor, sample_axis, size):
  """(`tensor` repeated `size` times along a new axis at `sample_axis`, that axis as an index >= 0)."""
  axis = sample_axis_index(sample_axis, tensor.shape.rank)
  shape = tf.shape(tensor)
  tiled = tf.broadcast_to(tf.expand_dims(tensor, axis), tf.concat([shape[:axis], [size], shape[axis:]], 0))
  return tiled, axis
