import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.clustering.kmeans import assign, initial_centroids, kmeans, reseed_empty_clusters
from keras_ssl.evaluation.clustering import clustering_accuracy


def _blobs(seed, per_cluster=20, centres=((0, 0), (10, 0), (0, 10), (10, 10))):
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, np.float32)
    labels = np.repeat(np.arange(len(centres)), per_cluster)
    points = centres[labels] + rng.uniform(-1, 1, (len(labels), centres.shape[1]))
    order = rng.permutation(len(labels))
    return points[order].astype(np.float32), labels[order]


def lloyd_reference(points, centroids, num_iterations):
    """Lloyd's algorithm written from its definition (no empty clusters in these cases)."""
    points, centroids = points.astype(np.float64), centroids.astype(np.float64).copy()
    for _ in range(num_iterations):
        distances = ((points[:, None, :] - centroids[None]) ** 2).sum(-1)
        assignments = distances.argmin(1)
        for k in range(len(centroids)):
            if np.any(assignments == k):
                centroids[k] = points[assignments == k].mean(0)
    distances = ((points[:, None, :] - centroids[None]) ** 2).sum(-1)
    return centroids, distances.argmin(1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_separable_blobs_are_recovered_exactly(seed):
    # k-means++ seeds one centroid per far-apart blob (random initialisation can put two in
    # one blob, a local optimum Lloyd's iterations do not leave).
    points, labels = _blobs(seed)
    centroids, assignments = kmeans(points, 4, seed=seed, num_iterations=10)
    accuracy, mapping = clustering_accuracy(labels, assignments.numpy(), return_mapping=True)
    assert accuracy == 1.0
    for cluster, label in mapping.items():
        np.testing.assert_allclose(
            centroids.numpy()[cluster], points[labels == label].mean(0), atol=1e-5
        )


def test_kmeans_plus_plus_recovers_blobs_for_every_seed_tried():
    points, labels = _blobs(7, per_cluster=10)
    for seed in range(8):
        _, assignments = kmeans(points, 4, seed=seed)
        assert clustering_accuracy(labels, assignments.numpy()) == 1.0, seed


def test_matches_lloyd_reference_from_given_centroids():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(50, 3)).astype(np.float32)
    start = points[:5].copy()
    expected_centroids, expected_assignments = lloyd_reference(points, start, 6)
    centroids, assignments = kmeans(points, 5, num_iterations=6, centroids=start)
    np.testing.assert_allclose(centroids.numpy(), expected_centroids, atol=1e-5)
    np.testing.assert_array_equal(assignments.numpy(), expected_assignments)


def test_chunked_assignment_equals_one_matrix():
    rng = np.random.default_rng(4)
    points = rng.normal(size=(37, 3)).astype(np.float32)
    centroids = rng.normal(size=(6, 3)).astype(np.float32)
    distances = ((points[:, None] - centroids[None]) ** 2).sum(-1)
    for batch_size in (1, 5, 37, 100):
        assignments, nearest = assign(points, centroids, batch_size=batch_size)
        np.testing.assert_array_equal(assignments.numpy(), distances.argmin(1))
        np.testing.assert_allclose(nearest.numpy(), distances.min(1), rtol=1e-5, atol=1e-5)


def test_deterministic_by_seed_and_different_across_seeds():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(60, 4)).astype(np.float32)
    first = kmeans(points, 6, seed=11)
    again = kmeans(points, 6, seed=11)
    other = kmeans(points, 6, seed=12)
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    np.testing.assert_array_equal(first[1].numpy(), again[1].numpy())
    inits = [initial_centroids(points, 6, seed=s).numpy() for s in (11, 12)]
    assert not np.array_equal(inits[0], inits[1])
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_initial_centroids_are_distinct_data_points(init):
    points, _ = _blobs(6)
    centroids = initial_centroids(points, 4, seed=3, init=init).numpy()
    rows = {tuple(row) for row in points.tolist()}
    assert all(tuple(c) in rows for c in centroids.tolist())
    assert len({tuple(c) for c in centroids.tolist()}) == 4


def test_empty_clusters_are_reseeded_on_the_farthest_points():
    # Two tight blobs and two starting centroids far away from all points: after the first
    # assignment clusters 2 and 3 are empty, so they take the two farthest points.
    points = np.array([[0, 0], [0, 1], [1, 0], [9, 9], [9, 10], [10, 9], [30, 30]], np.float32)
    start = np.array([[0.3, 0.3], [9.3, 9.3], [100, 100], [-100, -100]], np.float32)
    assignments, distances = assign(points, start)
    np.testing.assert_array_equal(assignments.numpy(), [0, 0, 0, 1, 1, 1, 1])
    reseeded = reseed_empty_clusters(points, start, assignments, distances).numpy()
    np.testing.assert_allclose(reseeded[:2], start[:2], rtol=1e-6, atol=1e-6)
    # Farthest: (30, 30) from (9.3, 9.3), then (0, 1) / (1, 0) tie at 0.58 -> stable order.
    np.testing.assert_allclose(reseeded[2], [30, 30], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(reseeded[3], [0, 1], rtol=1e-6, atol=1e-6)
    centroids, assignments = kmeans(points, 4, num_iterations=5, centroids=start)
    counts = np.bincount(assignments.numpy(), minlength=4)
    assert np.all(counts > 0), counts
    np.testing.assert_allclose(centroids.numpy()[2], [30, 30], rtol=1e-6, atol=1e-6)


def test_no_empty_cluster_when_points_allow():
    # More clusters than natural groups: every cluster still ends with at least one point.
    points, _ = _blobs(8, per_cluster=5)
    for seed in range(4):
        _, assignments = kmeans(points, 12, seed=seed, init="random")
        assert np.all(np.bincount(assignments.numpy(), minlength=12) > 0)


def test_runs_in_tf_function_and_xla():
    points, labels = _blobs(9)
    eager = kmeans(points, 4, seed=5)
    graph = tf.function(lambda x: kmeans(x, 4, seed=5))(tf.constant(points))
    np.testing.assert_array_equal(graph[1].numpy(), eager[1].numpy())
    np.testing.assert_allclose(graph[0].numpy(), eager[0].numpy(), atol=1e-5)
    # XLA draws stateless random numbers with its own generator, so the initialisation (and
    # with it the cluster numbering) may differ from the plain graph; the result is still
    # deterministic and recovers the blobs.
    compiled = tf.function(lambda x: kmeans(x, 4, seed=5), jit_compile=True)
    first, again = compiled(tf.constant(points)), compiled(tf.constant(points))
    np.testing.assert_array_equal(first[1].numpy(), again[1].numpy())
    assert clustering_accuracy(labels, first[1].numpy()) == 1.0


@pytest.mark.parametrize(
    "points, kwargs, match",
    [
        (np.zeros((4, 2, 1)), {}, r"`points` must be rank 2 \[num_points, dim\]; received"),
        (np.zeros((3, 2)), {}, r"at least as many points as clusters; received 3 points for"),
        (np.zeros((8, 2)), {"init": "kmeans"}, r"`init` must be one of .* received 'kmeans'"),
        (np.zeros((8, 2)), {"num_iterations": -1}, r"`num_iterations` must be an integer >= 0"),
        (np.zeros((8, 2)), {"batch_size": 0}, r"`batch_size` must be an integer >= 1"),
        (np.zeros((8, 2)), {"centroids": np.zeros((3, 2))}, r"`centroids` must have shape"),
    ],
)
def test_bad_input(points, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kmeans(points, 4, **kwargs)


def test_bad_num_clusters():
    with pytest.raises(ValueError, match=r"`num_clusters` must be an integer >= 1; received 0"):
        kmeans(np.zeros((4, 2)), 0)
