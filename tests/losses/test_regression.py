import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.losses.regression import (
    NegativeCosineSimilarity,
    NormalizedMSE,
    cosine_similarity,
    negative_cosine_similarity,
    normalized_mse,
)
from keras_ssl.testing import run_loss_test


def normalized_mse_reference(prediction, target):
    """BYOL Eq. 2 written literally: the squared distance of the unit-normalised rows."""
    q = prediction / np.linalg.norm(prediction, axis=1, keepdims=True)
    z = target / np.linalg.norm(target, axis=1, keepdims=True)
    return np.sum((q - z) ** 2, axis=1)


def negative_cosine_reference(prediction, target):
    """SimSiam Eq. 1: D(p, z) = -(p / ||p||_2) . (z / ||z||_2), one row at a time."""
    return np.array(
        [-(p @ z) / (np.sqrt(p @ p) * np.sqrt(z @ z)) for p, z in zip(prediction, target)]
    )


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "prediction": rng.normal(size=(6, 5)).astype(np.float32),
        "target": rng.normal(size=(6, 5)).astype(np.float32),
    }


def test_normalized_mse_battery():
    run_loss_test(
        normalized_mse,
        _inputs(),
        reference_fn=normalized_mse_reference,
        swap=("prediction", "target"),
        loss_object=NormalizedMSE(),
    )


def test_negative_cosine_battery():
    run_loss_test(
        negative_cosine_similarity,
        _inputs(1),
        reference_fn=negative_cosine_reference,
        swap=("prediction", "target"),
        loss_object=NegativeCosineSimilarity(),
    )


def test_hand_computed_values():
    # Rows: same direction (cos 1), orthogonal (cos 0), opposite (cos -1), 45 degrees.
    prediction = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0], [1.0, 1.0]], np.float32)
    target = np.array([[5.0, 0.0], [0.0, 4.0], [0.0, -1.0], [0.0, 7.0]], np.float32)
    cosines = np.array([1.0, 0.0, -1.0, np.sqrt(0.5)])
    np.testing.assert_allclose(cosine_similarity(prediction, target), cosines, atol=1e-6)
    np.testing.assert_allclose(
        normalized_mse(prediction, target), [0.0, 2.0, 4.0, 2.0 - np.sqrt(2.0)], atol=1e-6
    )
    np.testing.assert_allclose(negative_cosine_similarity(prediction, target), -cosines, atol=1e-6)


def test_closed_form_normalized_mse_is_two_minus_two_cos():
    # ||p/|p| - z/|z| ||^2 = 2 - 2 cos(p, z) for any rows: the two BYOL forms agree.
    inputs = _inputs(2)
    run_loss_test(
        normalized_mse,
        inputs,
        expected=np.mean(2.0 + 2.0 * negative_cosine_reference(**inputs)),
    )


def test_losses_are_scale_invariant_and_zero_rows_are_finite():
    inputs = _inputs(3)
    scaled = {"prediction": 7.5 * inputs["prediction"], "target": 0.01 * inputs["target"]}
    np.testing.assert_allclose(normalized_mse(**scaled), normalized_mse(**inputs), atol=1e-5)
    zero = np.zeros((1, 5), np.float32)
    np.testing.assert_allclose(
        normalized_mse(zero, inputs["target"][:1]), [2.0], rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(negative_cosine_similarity(zero, zero), [0.0], rtol=1e-6, atol=1e-6)


def test_gradient_flows_only_where_the_caller_allows_it():
    inputs = {key: tf.constant(value) for key, value in _inputs(4).items()}
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(list(inputs.values()))
        plain = tf.reduce_mean(normalized_mse(inputs["prediction"], inputs["target"]))
        stopped = tf.reduce_mean(
            normalized_mse(inputs["prediction"], tf.stop_gradient(inputs["target"]))
        )
    assert tape.gradient(plain, inputs["target"]) is not None
    assert tape.gradient(stopped, inputs["target"]) is None
    np.testing.assert_allclose(
        tape.gradient(plain, inputs["prediction"]),
        tape.gradient(stopped, inputs["prediction"]),
        rtol=1e-6,
        atol=1e-6,
    )


def test_bfloat16_inputs_are_computed_in_float32():
    inputs = _inputs(5)
    half = {key: tf.constant(value, tf.bfloat16) for key, value in inputs.items()}
    values = normalized_mse(**half)
    assert values.dtype == tf.float32
    rounded = {key: np.asarray(tf.cast(value, tf.float32)) for key, value in half.items()}
    np.testing.assert_allclose(values, normalized_mse_reference(**rounded), atol=1e-5)


def test_loss_objects_serialize():
    for loss in (NormalizedMSE(name="byol"), NegativeCosineSimilarity()):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert type(restored) is type(loss) and restored.get_config() == loss.get_config()


@pytest.mark.parametrize("loss_fn", [normalized_mse, negative_cosine_similarity])
def test_bad_shapes_raise(loss_fn):
    with pytest.raises(ValueError, match=r"rank 2 \[batch, dim\]; received shapes \(4,\).*Fix"):
        loss_fn(np.zeros(4, np.float32), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"same embedding size; received 3 and 5.*Fix"):
        loss_fn(np.zeros((2, 3), np.float32), np.zeros((2, 5), np.float32))
