import numpy as np
import tensorflow as tf

from keras_ssl.losses.pseudo_labels import pseudo_label_terms


def pseudo_label_reference(logits, labels, cluster_weights):
    """mean_i w[y_i] * -log softmax(logits_i)[y_i] (0 for y_i = -1) and the accuracy; float64."""
    logits = np.asarray(logits, np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    clustered = labels >= 0
    targets = np.maximum(labels, 0)
    losses = -log_softmax[np.arange(len(labels)), targets]
    weights = np.where(clustered, np.asarray(cluster_weights)[targets], 0.0)
    return np.mean(weights * losses), np.mean(logits.argmax(axis=1) == labels)


def _inputs(seed=0, m=12, k=5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(m, k)).astype(np.float32)
    labels = rng.integers(-1, k, m).astype(np.int32)
    weights = rng.uniform(0.5, 2.0, k).astype(np.float32)
    return logits, labels, weights


def test_matches_the_weighted_cross_entropy_and_accuracy_reference():
    logits, labels, weights = _inputs()
    assert (labels == -1).any() and (labels >= 0).any()
    loss, accuracy = pseudo_label_terms(tf.constant(logits), tf.constant(labels), weights)
    expected_loss, expected_accuracy = pseudo_label_reference(logits, labels, weights)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(accuracy, expected_accuracy)


def test_hand_computed_value():
    # Two classes, equal logits: each clustered example costs ln 2, times its cluster's weight;
    # the unclustered third example weighs 0 but counts in the mean.
    logits = tf.zeros((3, 2))
    loss, accuracy = pseudo_label_terms(logits, tf.constant([0, 1, -1]), tf.constant([1.0, 3.0]))
    np.testing.assert_allclose(loss, (1.0 + 3.0) * np.log(2.0) / 3, rtol=1e-6)
    np.testing.assert_allclose(accuracy, 1 / 3)  # argmax 0 on ties: only the first is right


def test_unit_weights_give_the_plain_cross_entropy_and_gradients_reach_the_logits():
    logits, labels, _ = _inputs(seed=1)
    labels = np.abs(labels)
    plain = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss, _ = pseudo_label_terms(logits, tf.constant(labels), tf.ones(5))
    np.testing.assert_allclose(loss, np.mean(plain), rtol=1e-6)
    softmax = tf.nn.softmax(logits).numpy()
    expected = (softmax - np.eye(5)[labels]) / len(labels)
    np.testing.assert_allclose(tape.gradient(loss, logits), expected, atol=1e-6)
