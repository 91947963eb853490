import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.clustering import apply_pca, fit_pca, kmeans
from keras_ssl.clustering.features import balancing_weights, cluster_features, embed_images


def test_balancing_weights_reference_and_uniform_expectation():
    assignments = np.array([0, 0, 0, 1, 3, 3], np.int32)  # cluster 2 is empty
    weights = balancing_weights(assignments, 4)
    # n / (K' * n_k) with n = 6, K' = 3 non-empty clusters: 6 / (3 * n_k).
    np.testing.assert_allclose(weights, [6 / 9, 6 / 3, 6 / 3, 6 / 6], rtol=1e-6)
    assert weights.dtype == np.float32
    # Every non-empty cluster carries the same total weight, and the examples average 1.
    totals = np.bincount(assignments, weights=weights[assignments], minlength=4)
    np.testing.assert_allclose(totals[[0, 1, 3]], 2.0, rtol=1e-6)
    np.testing.assert_allclose(weights[assignments].mean(), 1.0, rtol=1e-6)


def test_unbalanced_weights_are_ones():
    weights = balancing_weights(np.array([0, 0, 1]), 3, balanced=False)
    np.testing.assert_array_equal(weights, np.ones(3, np.float32))
    assert weights.dtype == np.float32


def test_cluster_features_is_pca_whitening_l2_and_seeded_kmeans():
    features = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    mean, projection, centroids, assignments = cluster_features(
        tf.constant(features), 3, True, 4, 5, tf.constant(7, tf.int64), "kmeans++"
    )
    expected_mean, expected_projection = fit_pca(features, 3, whiten=True)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(projection, expected_projection, rtol=1e-5, atol=1e-6)
    points = tf.math.l2_normalize(apply_pca(features, expected_mean, expected_projection), axis=1)
    expected_centroids, expected_assignments = kmeans(points, 4, num_iterations=5, seed=7)
    np.testing.assert_array_equal(assignments, expected_assignments)
    np.testing.assert_allclose(centroids, expected_centroids, rtol=1e-5, atol=1e-6)


def test_embed_images_pads_the_last_batch_and_matches_the_encoder():
    encoder = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    images = np.random.default_rng(1).integers(0, 256, (5, 4, 4, 1)).astype(np.uint8)
    features = embed_images(encoder, images, batch_size=2)
    expected = encoder(images.astype(np.float32) / 255.0, training=False).numpy()
    assert features.shape == (5, 3) and features.dtype == np.float32
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        embed_images(encoder, images, batch_size=0)
