"""Registry and argument checks: every bad argument raises ValueError naming the value."""

import numpy as np
import pytest
import tensorflow as tf

import estimators

LOGITS = tf.constant([[0.5, -1.0, 2.0]])
BUILT_IN = {"stgs", "tags", "grmck", "gst", "st", "gumbel_softmax", "reinmax", "reinmax-rao", "reinmax-cv", "zgr"}
WITH_TEMPERATURE = BUILT_IN - {"tags", "zgr"}


def test_names_lists_every_estimator():
  assert set(estimators.names()) == BUILT_IN
  assert list(estimators.names()) == sorted(BUILT_IN)


def test_unknown_estimator_names_value_and_lists_allowed():
  with pytest.raises(ValueError, match=r"unknown estimator 'gsT'.*allowed: grmck, gst"):
    estimators.make("gsT", logits=LOGITS)


def test_unknown_parameter_names_it_and_lists_allowed():
  with pytest.raises(ValueError, match=r"no parameter 'kappa'.*allowed:.*gap"):
    estimators.make("gst", logits=LOGITS, kappa=1.0)
  with pytest.raises(ValueError, match=r"no parameter 'temperature'"):
    estimators.make("tags", logits=LOGITS, temperature=1.0)
  with pytest.raises(ValueError, match=r"no parameter 'num_samples'"):
    estimators.make("stgs", logits=LOGITS, num_samples=3)


def test_parameter_names_per_estimator():
  assert "num_samples" in estimators.parameter_names("grmck")
  assert "gap" in estimators.parameter_names("gst")
  assert "gap" not in estimators.parameter_names("stgs")
  for name in BUILT_IN - {"zgr"}:
    assert {"start_temperature", "end_temperature", "period", "step"} <= set(
        estimators.parameter_names(name))


@pytest.mark.parametrize("name", sorted(WITH_TEMPERATURE))
@pytest.mark.parametrize("temperature", [0.0, -0.5, float("nan"), float("inf")])
def test_bad_temperature(name, temperature):
  with pytest.raises(ValueError, match=rf"temperature must be > 0.*{temperature}"):
    estimators.make(name, logits=LOGITS, temperature=temperature)


def test_bad_temperature_tensor_static_value_is_checked():
  with pytest.raises(ValueError, match=r"temperature must be > 0.*-1"):
    estimators.make("stgs", logits=LOGITS, temperature=tf.constant(-1.0))


@pytest.mark.parametrize("num_samples", [0, -3, 2.5, True, "10", None])
def test_bad_num_samples(num_samples):
  with pytest.raises(ValueError, match=r"num_samples \(K\) must be an integer >= 1, got"):
    estimators.make("grmck", logits=LOGITS, num_samples=num_samples)


@pytest.mark.parametrize("name", ["reinmax-rao", "reinmax-cv"])
@pytest.mark.parametrize("num_samples", [0, -1, 2.5, True, "100"])
def test_bad_num_samples_of_the_reinmax_variants(name, num_samples):
  with pytest.raises(ValueError, match=rf"num_samples \(K\) must be an integer >= 1, got {num_samples!r}"):
    estimators.make(name, logits=LOGITS, num_samples=num_samples)


@pytest.mark.parametrize("cv_weight", [-1, -0.5, float("nan"), float("inf"), True, "0.7", None])
def test_bad_cv_weight(cv_weight):
  with pytest.raises(ValueError, match=rf"cv_weight \(eta\) must be a finite number >= 0, got {cv_weight!r}"):
    estimators.make("reinmax-cv", logits=LOGITS, cv_weight=cv_weight)


def test_reinmax_variants_keep_their_parameters():
  rao = estimators.make("reinmax-rao", logits=LOGITS)
  assert rao.num_samples == 100 and "cv_weight" not in estimators.parameter_names("reinmax-rao")
  cv = estimators.make("reinmax-cv", logits=LOGITS, num_samples=np.int64(7), cv_weight=0)
  assert (cv.num_samples, cv.cv_weight) == (7, 0.0)
  assert estimators.make("reinmax-cv", logits=LOGITS).cv_weight == 0.7


def test_numpy_integer_num_samples_is_fine():
  assert estimators.make("grmck", logits=LOGITS, num_samples=np.int64(5)).num_samples == 5


@pytest.mark.parametrize("gap", [0.0, -1.0, float("nan")])
def test_bad_gap(gap):
  with pytest.raises(ValueError, match=rf"gap must be > 0.*{gap}"):
    estimators.make("gst", logits=LOGITS, gap=gap)


@pytest.mark.parametrize("key,value", [("period", 0), ("period", -5), ("start_temperature", 0.0),
                                       ("end_temperature", -0.1)])
def test_bad_schedule_values(key, value):
  params = dict(start_temperature=4.0, end_temperature=0.1, period=100)
  params[key] = value
  with pytest.raises(ValueError, match=rf"{key} must be > 0.*{value}"):
    estimators.make("tags", logits=LOGITS, **params)


def test_schedule_needs_all_three_and_not_a_temperature_too():
  with pytest.raises(ValueError, match=r"missing end_temperature, period"):
    estimators.make("gst", logits=LOGITS, start_temperature=2.0)
  with pytest.raises(ValueError, match=r"either temperature \(0.5\) or a temperature schedule"):
    estimators.make("gst", logits=LOGITS, temperature=0.5, start_temperature=2.0,
                    end_temperature=0.5, period=10)


def test_unknown_schedule_name():
  with pytest.raises(ValueError, match=r"unknown temperature schedule 'cosine'.*exponential, linear"):
    estimators.make("stgs", logits=LOGITS, start_temperature=2.0, end_temperature=0.5, period=10,
                    schedule="cosine")


@pytest.mark.parametrize("name", sorted(BUILT_IN - {"tags"}))
def test_logits_without_action_axis(name):
  with pytest.raises(ValueError, match=r"logits need an action axis.*shape \(\)"):
    estimators.make(name, logits=tf.constant(1.0))


def test_integer_logits_rejected():
  with pytest.raises(ValueError, match=r"logits must be floating point, got dtype int32"):
    estimators.make("stgs", logits=tf.constant([1, 2, 3]))


def test_runtime_temperature_checked_with_validate_args():
  dist_fn = tf.function(lambda t: estimators.make("stgs", logits=LOGITS, temperature=t,
                                                  validate_args=True).sample(seed=(1, 2)))
  with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be > 0"):
    dist_fn(tf.constant(-1.0))
  assert dist_fn(tf.constant(0.5)).shape == (1, 3)
