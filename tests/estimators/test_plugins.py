"""Estimators from outside the package: import paths, register, provenance; ZGR (built on the contract)."""

import hashlib
import re
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import estimators
from estimators import base, lab, testing

# The README's user estimator, verbatim.
USER_MODULE = textwrap.dedent('''\
    import tensorflow as tf

    import estimators
    from estimators import base


    class WeightedZGR(estimators.DiscreteGradientEstimator):
      """Surrogate: weight * softmax(z / temperature) + (1 - weight) * DARN's (y - p) log p_y."""

      def __init__(self, logits, temperature=None, weight=0.5, **kwargs):
        parameters = base.record_parameters(locals())
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
          raise ValueError(f"weight must be a number in [0, 1], got {weight!r}")
        self._weight = weight
        super().__init__(logits, temperature, parameters=parameters, **kwargs)

      def _surrogate(self, logits, temperature, sample):
        probs = tf.math.softmax(logits)
        log_prob = tf.reduce_sum(sample * tf.math.log_softmax(logits), axis=-1, keepdims=True)
        darn = (sample - tf.stop_gradient(probs)) * log_prob
        return self._weight * tf.math.softmax(logits / temperature) + (1 - self._weight) * darn
    ''')


@pytest.fixture
def user_module(tmp_path, monkeypatch, request):
  """A module file holding USER_MODULE on sys.path; returns (module name, file path)."""
  name = f"user_estimators_{request.node.name.split('[')[0]}"
  path = tmp_path / f"{name}.py"
  path.write_text(USER_MODULE)
  monkeypatch.syspath_prepend(str(tmp_path))
  yield name, path
  sys.modules.pop(name, None)


@pytest.fixture
def registry():
  """Restores the registry after a test that registers names."""
  saved = dict(estimators._REGISTRY)  # pylint: disable=protected-access
  yield
  estimators._REGISTRY.clear()  # pylint: disable=protected-access
  estimators._REGISTRY.update(saved)  # pylint: disable=protected-access


def sample_and_gradient(name, logits, weights, seed, **params):
  with tf.GradientTape() as tape:
    tape.watch(logits)
    sample = estimators.make(name, logits=logits, **params).sample(seed=seed)
    objective = tf.reduce_sum(sample * weights)
  return sample.numpy(), tape.gradient(objective, logits).numpy()


def test_user_estimator_by_path_passes_the_kit_and_builds(user_module):
  name, _ = user_module
  path = f"{name}:WeightedZGR"
  report = testing.check_estimator(path, temperature=0.5, weight=0.3)
  assert report.passed == testing.CHECKS and report.estimator == path
  assert {"temperature", "weight", "start_temperature", "period"} <= set(estimators.parameter_names(path))
  dist = estimators.make(path, logits=tf.zeros([4, 3]), temperature=0.5, weight=0.3)
  assert type(dist).__name__ == "WeightedZGR" and dist.sample(seed=(1, 2)).shape == (4, 3)


def test_user_estimator_at_weight_one_half_and_temperature_one_is_zgr(user_module):
  """Same sample (the base's categorical_one_hot) and the same gradient as the built-in ZGR."""
  logits = tf.constant(np.random.default_rng(5).normal(size=(32, 6)), tf.float64)
  weights = tf.constant(np.random.default_rng(6).normal(size=(6,)), tf.float64)
  ours = sample_and_gradient(f"{user_module[0]}:WeightedZGR", logits, weights, (3, 4), weight=0.5)
  theirs = sample_and_gradient("zgr", logits, weights, (3, 4))
  np.testing.assert_array_equal(ours[0], theirs[0])
  np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12, atol=1e-15)


def test_user_estimator_parameters_are_validated(user_module):
  path = f"{user_module[0]}:WeightedZGR"
  with pytest.raises(ValueError, match=rf"^estimator '{path}' has no parameter 'wieght'; allowed: "
                                       r"temperature, start_temperature, .*, weight$"):
    estimators.make(path, logits=tf.zeros([1, 3]), wieght=0.3)
  with pytest.raises(ValueError, match=r"^weight must be a number in \[0, 1\], got 2"):
    estimators.make(path, logits=tf.zeros([1, 3]), weight=2)
  with pytest.raises(ValueError, match=r"temperature must be > 0"):
    testing.check_estimator(path, temperature=-1.0)


def test_source_of_a_path_names_the_file_and_its_hash(user_module):
  name, path = user_module
  source = estimators.source_of(f"{name}:WeightedZGR")
  assert source == dict(name=f"{name}:WeightedZGR", path=f"{name}:WeightedZGR", module_file=str(path),
                        sha256=hashlib.sha256(USER_MODULE.encode()).hexdigest())


def test_source_of_built_ins_is_none():
  for name in estimators.names():
    assert estimators.source_of(name) is None
  assert estimators.source_of("estimators.gst:GappedStraightThrough") is None
  assert estimators.source_of(estimators.ZGR) is None


def test_register_makes_a_name_everywhere(user_module, registry):
  cls = estimators.resolve(f"{user_module[0]}:WeightedZGR")
  assert estimators.register("weighted-zgr", cls) is cls
  assert "weighted-zgr" in estimators.names() and estimators.get("weighted-zgr") is cls
  assert estimators.label(cls) == "weighted-zgr"
  assert estimators.source_of("weighted-zgr")["name"] == "weighted-zgr"
  assert "weighted-zgr" in lab.names()
  stats = lab.gradient_statistics("weighted-zgr", lab.random_function("linear", 2, 3, seed=0),
                                  lab.random_logits(2, 3, seed=0), {"weight": 0.5}, num_samples=50,
                                  num_replicates=2)
  assert stats.estimator == "weighted-zgr"
  estimators.register("weighted-zgr", cls)  # the same class again: fine
  estimators.unregister("weighted-zgr")
  assert "weighted-zgr" not in estimators.names()


def test_register_refuses_taken_names_unless_overwrite(registry):
  with pytest.raises(ValueError, match=r"^estimator 'gst' is already registered \(GappedStraightThrough\); "
                                       r"pass overwrite=True to replace it$"):
    estimators.register("gst", estimators.ZGR)
  estimators.register("gst", estimators.ZGR, overwrite=True)
  assert estimators.get("gst") is estimators.ZGR
  estimators.unregister("gst")  # a built-in name gets its built-in class back
  assert estimators.get("gst") is estimators.GappedStraightThrough


@pytest.mark.parametrize("name, cls, message", [
    ("My", estimators.ZGR, r"estimator name 'My' is not allowed; allowed: a lowercase letter"),
    ("a:b", estimators.ZGR, r"estimator name 'a:b' is not allowed"),
    ("", estimators.ZGR, r"estimator name '' is not allowed"),
    (3, estimators.ZGR, r"estimator name 3 is not allowed"),
    ("mine", len, r"estimator 'mine' is <built-in function len>, not a subclass of "
                  r"estimators.DiscreteGradientEstimator"),
    ("mine", estimators.DiscreteGradientEstimator, r"estimator 'mine' is the abstract base class"),
])
def test_register_bad_input(name, cls, message, registry):
  with pytest.raises(ValueError, match=message):
    estimators.register(name, cls)
  assert set(estimators.names()) == set(estimators._BUILT_IN)  # pylint: disable=protected-access


def test_unregister_unknown_name():
  with pytest.raises(ValueError, match=r"^unknown estimator 'nope'; allowed: grmck"):
    estimators.unregister("nope")


BROKEN_MODULES = {
    "syntax_error": "def broken(:\n",
    "raises_on_import": "raise RuntimeError('no GPU here')\n",
    "missing_dependency": "import a_package_nobody_installed\n",
    "not_an_estimator": "import tensorflow as tf\nWeightedZGR = 3\nclass Plain:\n  pass\n",
}


@pytest.mark.parametrize("path, message", [
    ("syntax_error:X", r"estimator 'syntax_error:X': module 'syntax_error' does not import \(SyntaxError: "),
    ("raises_on_import:X", r"module 'raises_on_import' does not import \(RuntimeError: no GPU here\)"),
    ("missing_dependency:X", r"does not import \(ModuleNotFoundError: No module named "
                             r"'a_package_nobody_installed'\)"),
    ("no_such_module_anywhere:X", r"module 'no_such_module_anywhere' does not import \(ModuleNotFoundError"),
    ("not_an_estimator:Missing", r"module 'not_an_estimator' has no attribute 'Missing'"),
    ("not_an_estimator:WeightedZGR", r"estimator 'not_an_estimator:WeightedZGR' is 3, not a subclass of "
                                     r"estimators.DiscreteGradientEstimator"),
    ("not_an_estimator:Plain", r"is <class 'not_an_estimator.Plain'>, not a subclass"),
    ("not_an_estimator:tf.zeros", r"is <function .*>, not a subclass"),
    ("estimators:DiscreteGradientEstimator", r"is the abstract base class"),
    ("a:b:c", r"estimator 'a:b:c' is not a registered name or an import path"),
    (":Cls", r"estimator ':Cls' is not a registered name or an import path"),
    ("mod:", r"estimator 'mod:' is not a registered name or an import path"),
])
def test_bad_paths_are_one_value_error_line(path, message, tmp_path, monkeypatch):
  for name, text in BROKEN_MODULES.items():
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.delitem(sys.modules, name, raising=False)
  monkeypatch.syspath_prepend(str(tmp_path))
  for call in (estimators.resolve, estimators.parameter_names, lambda p: estimators.make(p, tf.zeros([1, 2])),
               estimators.source_of, testing.check_estimator):
    with pytest.raises(ValueError, match=message) as caught:
      call(path)
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith("or module.path:ClassName naming a subclass of "
                                      "estimators.DiscreteGradientEstimator")
  for name in BROKEN_MODULES:
    sys.modules.pop(name, None)


@pytest.mark.parametrize("name", [None, 3, ("gst",)])
def test_resolve_refuses_other_types(name):
  with pytest.raises(ValueError, match=rf"^unknown estimator {re.escape(repr(name))}; allowed: grmck"):
    estimators.resolve(name)


def test_path_is_found_from_the_working_directory(tmp_path, monkeypatch):
  """Console scripts do not put the working directory on sys.path; a path naming a module there works."""
  (tmp_path / "cwd_estimators.py").write_text(USER_MODULE)
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
  monkeypatch.delitem(sys.modules, "cwd_estimators", raising=False)
  assert estimators.resolve("cwd_estimators:WeightedZGR").__name__ == "WeightedZGR"
  sys.modules.pop("cwd_estimators", None)


# ---- ZGR ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_zgr_gradient_is_the_formula_for_a_fixed_sample(dtype):
  """dL/dz = (J(p) g + <g, y - p> (y - p)) / 2 with J(p) g = p (g - <p, g>), for the sample y drawn."""
  rng = np.random.default_rng(11)
  logits = tf.constant(rng.normal(size=(64, 5)) * 1.5, dtype)
  weights = tf.constant(rng.normal(size=(5,)), dtype)
  sample, gradient = sample_and_gradient("zgr", logits, weights, (7, 9))
  np.testing.assert_array_equal(sample, base.categorical_one_hot(logits, tf.constant([7, 9])).numpy())
  p = tf.math.softmax(logits).numpy()
  g = weights.numpy()[np.newaxis]
  straight_through = p * (g - np.sum(p * g, -1, keepdims=True))
  score = np.sum(g * (sample - p), -1, keepdims=True) * (sample - p)
  rtol, atol = (1e-5, 1e-6) if dtype == tf.float32 else (1e-12, 1e-14)
  np.testing.assert_allclose(gradient, (straight_through + score) / 2, rtol=rtol, atol=atol)


def expected_gradient_by_enumeration(name, f, logits, **params):
  """E_y [gradient of f(sample)] = sum_x p_x g(e_x): given the sample y = e_x, a straight-through
  estimator's gradient is deterministic (the gradient of f(y + s - stop_gradient(s)), s its surrogate)."""
  logits = tf.constant(logits)
  probs = tf.math.softmax(logits)
  expectation = tf.zeros_like(logits)
  for action in range(logits.shape[-1]):
    sample = tf.one_hot(tf.fill(tf.shape(logits)[:-1], action), logits.shape[-1], dtype=logits.dtype)
    with tf.GradientTape() as tape:
      tape.watch(logits)
      dist = estimators.make(name, logits=logits, **params)
      temperature = tf.ones_like(logits[..., :1])
      surrogate = dist._surrogate(logits, temperature, sample)  # pylint: disable=protected-access
      value = tf.reduce_sum(f(base.straight_through(sample, surrogate)))
    expectation += probs[..., action:action + 1] * tape.gradient(value, logits)
  return expectation.numpy()


def test_zgr_is_exactly_unbiased_for_quadratic_functions():
  """For f(y) = y^T M y + <w, y>, ZGR's expected gradient (by enumeration over the sample) is the exact
  gradient p * (v - <p, v>), v_a = f(e_a): the straight-through half's bias and the score (DARN) half's
  cancel (Shekhovtsov 2023). ST's alone does not: the comparison has power."""
  logits = lab.random_logits(6, 5, seed=2)
  f = lab.random_function("quadratic", 6, 5, seed=3)
  exact = lab.exact_gradient(f, logits).numpy()
  np.testing.assert_allclose(expected_gradient_by_enumeration("zgr", f, logits), exact, rtol=1e-10,
                             atol=1e-12)
  assert np.abs(expected_gradient_by_enumeration("st", f, logits, temperature=1.0) - exact).max() > 0.05


def test_zgr_sampled_bias_holds_zero_in_the_lab():
  """The same through sampling: the lab's squared-bias interval (95%) holds 0 for the quadratic f."""
  stats = lab.gradient_statistics("zgr", lab.random_function("quadratic", 8, 5, seed=3),
                                  lab.random_logits(8, 5, seed=2), num_samples=400, num_replicates=10)
  assert stats.squared_bias.contains(0.0), stats.squared_bias


def test_zgr_takes_no_temperature():
  assert "temperature" not in estimators.parameter_names("zgr")
  assert not lab.takes_temperature("zgr")
  with pytest.raises(ValueError, match=r"^estimator 'zgr' has no parameter 'temperature'; allowed: none$"):
    estimators.make("zgr", logits=tf.zeros([1, 3]), temperature=0.5)


def test_rloo_in_the_lab_is_unbiased_and_has_less_variance_than_reinforce():
  """The lab's RLOO row (K = 4): its bias interval holds 0, and its per-estimate variance is below
  single-sample REINFORCE's on the same quadratic problem."""
  f = lab.random_function("quadratic", 8, 5, seed=3)
  logits = lab.random_logits(8, 5, seed=4)
  rloo = lab.gradient_statistics("rloo", f, logits, {"num_samples": 4}, num_samples=500, num_replicates=12)
  reinforce = lab.gradient_statistics("reinforce", f, logits, num_samples=500, num_replicates=12)
  assert rloo.squared_bias.low <= 0 <= rloo.squared_bias.high or rloo.bias.value < 0.05 * rloo.exact_norm
  assert rloo.variance.high < reinforce.variance.low
  with pytest.raises(ValueError, match=r"estimator 'rloo': num_samples \(K\) must be an integer >= 2, got 1"):
    lab.check_estimator("rloo", {"num_samples": 1})
