import itertools

import numpy as np
import pytest

from keras_ssl.evaluation.clustering import clustering_accuracy, contingency_table


def brute_force_accuracy(labels, clusters, num_classes, num_clusters):
    """ACC by trying every one-to-one map of clusters to classes."""
    best = 0.0
    for classes in itertools.permutations(range(max(num_classes, num_clusters)), num_clusters):
        mapped = np.array([classes[k] for k in clusters])
        best = max(best, float(np.mean(mapped == labels)))
    return best


def test_permuted_cluster_ids_give_full_accuracy_and_the_inverse_map():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    clusters = np.array([2, 2, 0, 0, 1, 1, 1])
    accuracy, mapping = clustering_accuracy(labels, clusters, return_mapping=True)
    assert accuracy == 1.0
    assert mapping == {0: 1, 1: 2, 2: 0}


def test_hand_computed_partial_match():
    # Cluster 0 = {0, 0, 1}, cluster 1 = {1, 1, 0}: best map 0->0, 1->1 gets 4 of 6.
    labels = np.array([0, 0, 1, 1, 1, 0])
    clusters = np.array([0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(clustering_accuracy(labels, clusters), 4 / 6, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(contingency_table(labels, clusters), [[2, 1], [1, 2]])


def test_hungarian_beats_the_greedy_majority_map_where_they_differ():
    # Clusters 0 and 1 both hold mostly class 0; one-to-one forces cluster 1 -> class 1.
    labels = np.array([0, 0, 0, 1, 0, 0, 1, 1, 2, 2])
    clusters = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    # Best: 0->0 (3), 1->1 (2), 2->2 (2) = 7/10.
    np.testing.assert_allclose(clustering_accuracy(labels, clusters), 0.7, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_over_all_maps(seed):
    rng = np.random.default_rng(seed)
    num_classes, num_clusters = 4, 3 + seed % 3  # fewer, as many and more clusters
    labels = rng.integers(0, num_classes, 40)
    clusters = rng.integers(0, num_clusters, 40)
    expected = brute_force_accuracy(labels, clusters, num_classes, num_clusters)
    got = clustering_accuracy(labels, clusters, num_classes, num_clusters)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "labels, clusters, kwargs, match",
    [
        (np.zeros(3, int), np.zeros(4, int), {}, r"`clusters` has 4 entries but `labels` has 3"),
        (np.zeros((3, 2), int), np.zeros(3, int), {}, r"`labels` must have rank 1"),
        (np.zeros(3, int), np.array([0.5, 1, 2]), {}, r"`clusters` must hold integer"),
        (np.array([0, 1, 5]), np.zeros(3, int), {"num_classes": 3}, r"must lie in \[0, num"),
        (np.array([0, -1, 1]), np.zeros(3, int), {}, r"non-negative integer ids; received neg"),
        (np.zeros(0, int), np.zeros(0, int), {}, r"at least one example; received an empty"),
    ],
)
def test_bad_input(labels, clusters, kwargs, match):
    with pytest.raises(ValueError, match=match):
        clustering_accuracy(labels, clusters, **kwargs)
