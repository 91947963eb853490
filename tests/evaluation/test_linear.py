"""Tests for keras_ssl.evaluation.linear."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.evaluation import linear as linear_module
from keras_ssl.evaluation.linear import linear_probe


def _blobs(seed, per_class, num_classes=3, dim=5, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = 3.0 * np.eye(num_classes, dim)
    labels = np.repeat(np.arange(num_classes), per_class)
    features = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    return features.astype(np.float32), labels


def test_linearly_separable_features_reach_full_accuracy():
    train, train_labels = _blobs(0, 100)
    test, test_labels = _blobs(1, 50)
    result = linear_probe(train, train_labels, test, test_labels, 3, epochs=30, batch_size=64)
    assert result == {"accuracy": 1.0, "train_accuracy": 1.0}


def test_two_gaussians_reach_the_bayes_accuracy():
    # Classes N(-1, 1) and N(+1, 1) in one dimension (plus 3 noise dimensions): the best
    # classifier is the sign of x_0, with accuracy Phi(1) = 0.8413 in expectation.
    rng = np.random.default_rng(2)

    def sample(count):
        labels = rng.integers(0, 2, count)
        features = rng.normal(size=(count, 4))
        features[:, 0] += 2.0 * labels - 1.0
        return features.astype(np.float32), labels

    (train, train_labels), (test, test_labels) = sample(20000), sample(20000)
    bayes_accuracy = np.mean((test[:, 0] > 0) == test_labels)
    assert abs(bayes_accuracy - 0.5 * (1 + math.erf(1 / math.sqrt(2)))) < 0.01
    result = linear_probe(train, train_labels, test, test_labels, 2, epochs=10, learning_rate=1e-2)
    assert abs(result["accuracy"] - bayes_accuracy) < 0.004
    assert abs(result["train_accuracy"] - 0.8413) < 0.01


def test_standardisation_makes_the_probe_invariant_to_feature_scale():
    rng = np.random.default_rng(3)
    train, train_labels = _blobs(3, 200, spread=2.0)
    test, test_labels = _blobs(4, 100, spread=2.0)
    scale, shift = rng.uniform(0.01, 100.0, size=5), rng.normal(size=5) * 10
    plain = linear_probe(train, train_labels, test, test_labels, epochs=10)
    affine = linear_probe(
        train * scale + shift, train_labels, test * scale + shift, test_labels, epochs=10
    )
    assert plain["accuracy"] < 1.0
    assert abs(plain["accuracy"] - affine["accuracy"]) <= 0.01


def test_same_seed_same_result_and_seed_changes_the_batch_order():
    train, train_labels = _blobs(5, 300, spread=2.0)
    test, test_labels = _blobs(6, 100, spread=2.0)
    first = linear_probe(train, train_labels, test, test_labels, epochs=3, batch_size=32, seed=7)
    second = linear_probe(train, train_labels, test, test_labels, epochs=3, batch_size=32, seed=7)
    assert first == second

    def weights(seed):
        blocks = tf.constant(train[:896].reshape(28, 32, 5).transpose(0, 2, 1).copy())
        label_blocks = tf.constant(train_labels[:896].reshape(28, 32))
        w, b = linear_module._train(
            blocks,
            label_blocks,
            3,
            tf.constant(2),
            tf.constant(1e-2),
            tf.constant(0.0),
            tf.constant(seed, tf.int64),
        )
        return np.concatenate([w.numpy().ravel(), b.numpy()])

    np.testing.assert_array_equal(weights(1), weights(1))
    assert not np.array_equal(weights(1), weights(2))


def test_training_reaches_the_regularised_optimum():
    # The minimiser of mean cross-entropy + decay/2 * ||W||^2 has zero gradient:
    # X^T (softmax(X W^T + b) - one_hot) / N + decay * W = 0 and mean(softmax - one_hot) = 0.
    train, labels = _blobs(7, 64)
    blocks = tf.constant(train.reshape(3, 64, 5).transpose(0, 2, 1).copy())
    label_blocks = tf.constant(labels.reshape(3, 64))
    one_hot = np.eye(3)[labels]

    def gradient(weights, bias, decay):
        logits = train @ weights.T + bias
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        grad_w = (probabilities - one_hot).T @ train / len(train) + decay * weights
        return np.linalg.norm(grad_w), np.linalg.norm((probabilities - one_hot).mean(axis=0))

    norms = {}
    for decay in (0.0, 1.0):
        weights, bias = linear_module._train(
            blocks,
            label_blocks,
            3,
            tf.constant(300),
            tf.constant(1e-2),
            tf.constant(decay),
            tf.constant(0, tf.int64),
        )
        norms[decay] = np.linalg.norm(weights.numpy())
    grad_w, grad_b = gradient(weights.numpy(), bias.numpy(), 1.0)
    start_w, _ = gradient(np.zeros((3, 5)), np.zeros(3), 1.0)
    assert grad_w < 2e-3 * start_w and grad_b < 2e-3
    assert norms[1.0] < 0.5 * norms[0.0]


def test_top5_is_reported_only_with_more_than_five_classes():
    train, train_labels = _blobs(8, 20, num_classes=6, dim=6)
    test, test_labels = _blobs(9, 10, num_classes=6, dim=6)
    result = linear_probe(train, train_labels, test, test_labels, 6, epochs=20, batch_size=32)
    assert result["top5_accuracy"] == 1.0 and result["accuracy"] == 1.0
    five = linear_probe(train[:100], train_labels[:100], test[:50], test_labels[:50], 5, epochs=2)
    assert "top5_accuracy" not in five


def test_constant_feature_does_not_break_standardisation():
    train, train_labels = _blobs(10, 50)
    test, test_labels = _blobs(11, 20)
    train[:, 4] = 7.0
    result = linear_probe(train, train_labels, test, test_labels, epochs=20, batch_size=32)
    assert result["accuracy"] == 1.0


def test_invalid_input_raises():
    train, labels = _blobs(12, 10)
    with pytest.raises(ValueError, match="`train_labels` has 29 entries but `train_features`"):
        linear_probe(train, labels[:29], train, labels)
    with pytest.raises(ValueError, match=r"`test_labels` must lie in \[0, num_classes=3\)"):
        linear_probe(train, labels, train, labels + 1, num_classes=3)
    with pytest.raises(ValueError, match=r"`train_features` must have rank 2.*\(30, 5, 1\)"):
        linear_probe(train[..., None], labels, train, labels)
    with pytest.raises(ValueError, match=r"`test_labels` must have rank 1.*\(30, 2\)"):
        linear_probe(train, labels, train, np.stack([labels, labels], 1))
    with pytest.raises(ValueError, match="same feature dimension.*received 4 and 5"):
        linear_probe(train, labels, train[:, :4], labels)
    with pytest.raises(ValueError, match="`epochs` must be an integer >= 1; received 0"):
        linear_probe(train, labels, train, labels, epochs=0)
    with pytest.raises(ValueError, match="`learning_rate` must be a number > 0"):
        linear_probe(train, labels, train, labels, learning_rate=0.0)
    with pytest.raises(ValueError, match="`weight_decay` must be a number >= 0"):
        linear_probe(train, labels, train, labels, weight_decay=-1e-4)
    with pytest.raises(ValueError, match="`num_classes` must be an integer >= 2"):
        linear_probe(train, labels, train, labels, num_classes=1)
    with pytest.raises(ValueError, match="`seed` must be an integer"):
        linear_probe(train, labels, train, labels, seed=0.5)
