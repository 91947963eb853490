import numpy as np
import tensorflow as tf

from keras_ssl.losses.pretext_classification import classification_terms
from keras_ssl.testing import run_loss_test


def numpy_terms(logits, labels):
    """Cross-entropy from its definition, -log(exp(s_y) / sum_j exp(s_j)), and the hit rate."""
    logits = logits.astype(np.float64)
    log_norm = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    losses = log_norm - logits[np.arange(len(labels)), labels]
    return losses.mean(), np.mean(np.argmax(logits, axis=1) == labels)


def test_hand_value():
    # Row 0: scores (0, log 3) with label 1: loss log(4/3), a hit; row 1: equal scores: log 2.
    logits = np.array([[0.0, np.log(3.0)], [1.0, 1.0]], np.float32)
    loss, accuracy = classification_terms(logits, tf.constant([1, 0]))
    np.testing.assert_allclose(float(loss), (np.log(4 / 3) + np.log(2)) / 2, rtol=1e-6)
    assert float(accuracy) == 1.0  # argmax of a tie is the first class, the label of row 1


def test_numpy_reference():
    rng = np.random.default_rng(0)
    inputs = {
        "logits": rng.normal(size=(12, 5)).astype(np.float32) * 3,
        "labels": rng.integers(0, 5, 12).astype(np.int32),
    }
    run_loss_test(
        lambda logits, labels: classification_terms(logits, labels)[0],
        inputs,
        expected=numpy_terms(**inputs)[0],
    )
    _, accuracy = classification_terms(**inputs)
    np.testing.assert_allclose(float(accuracy), numpy_terms(**inputs)[1])


def test_low_precision_logits_are_computed_in_float32():
    logits = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    labels = np.arange(6, dtype=np.int32) % 4
    loss, accuracy = classification_terms(tf.cast(logits, tf.bfloat16), labels)
    assert loss.dtype == tf.float32 and accuracy.dtype == tf.float32
    rounded = tf.cast(tf.cast(logits, tf.bfloat16), tf.float32).numpy()
    np.testing.assert_allclose(float(loss), numpy_terms(rounded, labels)[0], rtol=1e-5)
