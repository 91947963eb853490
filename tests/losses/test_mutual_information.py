import math

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.losses import mutual_information as mi
from keras_ssl.testing import run_loss_test, two_replica_strategy


def iic_reference(probs_a, probs_b, epsilon=mi.EPSILON):
    """Ji et al. 2019, Eq. 1-3, entry by entry: joint over the batch, symmetrised, -I."""
    n, c = probs_a.shape
    a, b = probs_a.astype(np.float64), probs_b.astype(np.float64)
    joint = np.zeros((c, c))
    for i in range(n):
        for k in range(c):
            for m in range(c):
                joint[k, m] += a[i, k] * b[i, m] / n
    joint = (joint + joint.T) / 2
    joint = np.maximum(joint / joint.sum(), epsilon)
    rows = np.maximum(joint.sum(1), epsilon)
    cols = np.maximum(joint.sum(0), epsilon)
    information = sum(
        joint[k, m] * math.log(joint[k, m] / (rows[k] * cols[m]))
        for k in range(c)
        for m in range(c)
    )
    return -information


def _softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def _random_pair(seed, n=6, c=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 2
    return _softmax(logits), _softmax(logits + rng.normal(size=(n, c)))


def test_iic_battery():
    probs_a, probs_b = _random_pair(0)
    run_loss_test(
        mi.iic_loss,
        {"probs_a": probs_a, "probs_b": probs_b},
        reference_fn=iic_reference,
        swap=("probs_a", "probs_b"),
        loss_object=mi.IICLoss(),
    )


def test_hand_computed_three_images_two_clusters():
    # Both views agree: two images in cluster 0, one in cluster 1. P = diag(2/3, 1/3), so
    # I(z, z') = H(z) = -(2/3 ln 2/3 + 1/3 ln 1/3) = 0.636514; zero entries are floored at
    # epsilon and contribute ~1e-15.
    probs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    expected = 2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)
    run_loss_test(mi.iic_loss, {"probs_a": probs, "probs_b": probs}, expected=expected)
    np.testing.assert_allclose(expected, -0.636514, atol=1e-6)


@pytest.mark.parametrize("clusters", [2, 5, 10])
def test_maximum_is_minus_log_c_for_a_uniform_one_to_one_joint(clusters):
    # Each cluster used by the same number of images and both views agree: P = I / C.
    probs = np.eye(clusters, dtype=np.float32)[np.arange(3 * clusters) % clusters]
    joint = mi.iic_joint(probs, probs).numpy()
    np.testing.assert_allclose(joint, np.eye(clusters) / clusters, atol=1e-7)
    run_loss_test(mi.iic_loss, {"probs_a": probs, "probs_b": probs}, expected=-math.log(clusters))
    # Any other pairs of distributions stay above the bound.
    for seed in range(5):
        probs_a, probs_b = _random_pair(seed, n=12, c=clusters)
        value = float(mi.iic_loss(probs_a, probs_b))
        assert -math.log(clusters) < value <= 1e-6


def test_independent_outputs_give_zero():
    # A constant output (the collapse IIC avoids) carries no information: P = p p^T, loss 0.
    constant = np.tile(np.array([[0.7, 0.2, 0.1]], np.float32), (5, 1))
    np.testing.assert_allclose(float(mi.iic_loss(constant, constant)), 0.0, atol=1e-6)
    # So does a second view whose output ignores the image (uniform), once the first view's
    # marginal is uniform too (otherwise the symmetrisation couples the two marginals).
    balanced = np.array([[0.6, 0.3, 0.1], [0.1, 0.6, 0.3], [0.3, 0.1, 0.6]], np.float32)
    uniform = np.full((3, 3), 1 / 3, np.float32)
    np.testing.assert_allclose(float(mi.iic_loss(balanced, uniform)), 0.0, atol=1e-6)


def test_joint_is_symmetrised():
    probs_a, probs_b = _random_pair(2)
    joint = mi.iic_joint(probs_a, probs_b).numpy()
    unsymmetrised = probs_a.T @ probs_b / len(probs_a)
    assert np.abs(unsymmetrised - unsymmetrised.T).max() > 1e-3
    np.testing.assert_allclose(joint, (unsymmetrised + unsymmetrised.T) / 2, atol=1e-6)
    np.testing.assert_allclose(joint.sum(), 1.0, atol=1e-6)


def test_one_hot_inputs_with_empty_clusters_have_finite_gradients():
    probs = tf.constant(np.eye(4, dtype=np.float32)[[0, 0, 1, 1]])  # clusters 2, 3 empty
    with tf.GradientTape() as tape:
        tape.watch(probs)
        loss = mi.iic_loss(probs, probs)
    gradient = tape.gradient(loss, probs).numpy()
    assert np.isfinite(float(loss)) and np.all(np.isfinite(gradient))
    np.testing.assert_allclose(float(loss), -math.log(2), atol=1e-6)


def test_two_replicas_on_halves_equal_one_device_on_the_batch():
    """The joint distribution is global: every replica gets the loss of the whole batch and,
    after the base class's division by the number of replicas, the single-device gradient."""
    probs_a, probs_b = _random_pair(5, n=8, c=3)
    # Each half alone is nearly independent of the cluster it is in: the per-replica joints
    # give a very different loss than the global one.
    probs_a[4:] = probs_a[4:, ::-1]
    probs_b[4:] = probs_b[4:, ::-1]
    with tf.GradientTape() as tape:
        inputs = [tf.constant(probs_a), tf.constant(probs_b)]
        tape.watch(inputs)
        expected = mi.iic_loss(*inputs)
    expected_gradients = tape.gradient(expected, inputs)
    halves = [float(mi.iic_loss(probs_a[s], probs_b[s])) for s in (slice(0, 4), slice(4, 8))]
    assert abs(np.mean(halves) - float(expected)) > 1e-3

    def replica_step(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            loss = mi.iic_loss(a, b)
            scaled = loss / distribute.num_replicas()
        return loss, tape.gradient(scaled, [a, b])

    strategy = two_replica_strategy()
    dataset = tf.data.Dataset.from_tensor_slices((probs_a, probs_b)).batch(8)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    loss, gradients = strategy.run(tf.function(replica_step), args=batch)
    for replica_value in strategy.experimental_local_results(loss):
        np.testing.assert_allclose(replica_value, float(expected), rtol=1e-6, atol=1e-6)
    for index in range(2):
        halves = strategy.experimental_local_results(gradients[index])
        np.testing.assert_allclose(
            np.concatenate(halves), expected_gradients[index], rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize(
    "probs_a, probs_b, match",
    [
        (np.ones((3, 4, 1)), np.ones((3, 4, 1)), r"rank 2 \[batch, clusters\]; received shapes"),
        (np.ones((3, 4)), np.ones((3, 5)), r"same shape .* received \(3, 4\) and \(3, 5\)"),
        (np.ones((3, 1)), np.ones((3, 1)), r"at least 2 clusters; received probabilities over 1"),
    ],
)
def test_bad_probabilities(probs_a, probs_b, match):
    with pytest.raises(ValueError, match=match):
        mi.iic_loss(probs_a, probs_b)


@pytest.mark.parametrize("epsilon", [0.0, 1.0, True, "small"])
def test_bad_epsilon(epsilon):
    match = r"`epsilon` must be a number in \(0, 1\); received"
    with pytest.raises(ValueError, match=match):
        mi.iic_loss(np.ones((3, 2)) / 2, np.ones((3, 2)) / 2, epsilon=epsilon)
    with pytest.raises(ValueError, match=match):
        mi.IICLoss(epsilon=epsilon)
