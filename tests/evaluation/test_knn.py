"""Tests for keras_ssl.evaluation.knn against a brute-force NumPy reference."""

import math

import numpy as np
import pytest

from keras_ssl.evaluation import knn as knn_module
from keras_ssl.evaluation.knn import knn_accuracy, knn_predict


def _reference_knn(train, train_labels, queries, num_classes, k, temperature):
    """Wu et al. (2018) written directly: full similarity matrix, stable sort, np.argmax."""
    train = train / np.sqrt(np.sum(np.square(train), axis=1, keepdims=True))
    queries = queries / np.sqrt(np.sum(np.square(queries), axis=1, keepdims=True))
    similarity = queries.astype(np.float64) @ train.astype(np.float64).T
    predictions, votes = [], []
    for row in similarity:
        nearest = np.argsort(-row, kind="stable")[:k]  # ties: lower index first
        vote = np.zeros(num_classes)
        np.add.at(vote, train_labels[nearest], np.exp(row[nearest] / temperature))
        predictions.append(np.argmax(vote))  # ties: lowest class id
        votes.append(vote / vote.sum())
    return np.array(predictions), np.array(votes)


def _data(seed, num_train=400, num_query=150, dim=12, num_classes=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim))
    train_labels = rng.integers(0, num_classes, num_train)
    query_labels = rng.integers(0, num_classes, num_query)
    train = centres[train_labels] + 1.2 * rng.normal(size=(num_train, dim))
    queries = centres[query_labels] + 1.2 * rng.normal(size=(num_query, dim))
    return train.astype(np.float32), train_labels, queries.astype(np.float32), query_labels


@pytest.mark.parametrize(
    "k, temperature, batch_size", [(20, 0.07, 1024), (1, 0.07, 64), (7, 0.5, 33), (200, 1.0, 7)]
)
def test_matches_numpy_reference(k, temperature, batch_size):
    train, train_labels, queries, _ = _data(seed=k)
    predictions, votes = knn_predict(
        train, train_labels, queries, 5, k, temperature, batch_size, return_votes=True
    )
    expected_predictions, expected_votes = _reference_knn(
        train, train_labels, queries, 5, k, temperature
    )
    assert predictions.dtype == np.int64
    np.testing.assert_array_equal(predictions, expected_predictions)
    np.testing.assert_allclose(votes, expected_votes, rtol=2e-5, atol=1e-6)


def test_hand_computed_votes_and_temperature():
    train = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = np.array([0, 1, 1])
    query = np.array([[2.0, 0.0]])  # cosine similarities 1, 0, -1
    predictions, votes = knn_predict(
        train, labels, query, 2, k=3, temperature=1.0, return_votes=True
    )
    total = math.e + 1.0 + math.exp(-1.0)
    np.testing.assert_allclose(
        votes, [[math.e / total, (1 + math.exp(-1)) / total]], rtol=1e-6, atol=1e-6
    )
    assert predictions.tolist() == [0]  # e > 1 + 1/e
    # At a high temperature every neighbour weighs ~1, so the two class-1 neighbours win.
    assert knn_predict(train, labels, query, 2, k=3, temperature=100.0).tolist() == [1]
    # With k=2 the far class-1 neighbour drops out: e vs 1.
    assert knn_predict(train, labels, query, 2, k=2, temperature=100.0).tolist() == [0]


def test_similarity_ties_keep_the_lower_train_index():
    query = np.array([[1.0, 0.0]])
    train = np.array([[0.0, 1.0], [0.0, -1.0]])  # both at similarity 0
    assert knn_predict(train, np.array([0, 1]), query, 2, k=1).tolist() == [0]
    assert knn_predict(train, np.array([1, 0]), query, 2, k=1).tolist() == [1]


def test_vote_ties_go_to_the_lowest_class_id():
    query = np.array([[1.0, 0.0]])
    train = np.array([[0.0, 1.0], [0.0, -1.0]])
    for labels in ([1, 0], [0, 1], [2, 1]):
        expected = min(labels)
        assert knn_predict(train, np.array(labels), query, 3, k=2).tolist() == [expected]
        reference, _ = _reference_knn(train, np.array(labels), query, 3, 2, 0.07)
        assert reference.tolist() == [expected]


def test_small_temperature_does_not_overflow():
    train, train_labels, queries, _ = _data(seed=3)
    predictions, votes = knn_predict(
        train, train_labels, queries, 5, k=10, temperature=1e-3, return_votes=True
    )
    assert np.all(np.isfinite(votes))
    # At temperature -> 0 the vote is the nearest neighbour's label.
    nearest = knn_predict(train, train_labels, queries, 5, k=1)
    np.testing.assert_array_equal(predictions, nearest)


def test_queries_are_processed_in_bounded_blocks(monkeypatch):
    train, train_labels, queries, _ = _data(seed=4, num_query=50)
    seen_shapes = []
    original = knn_module._knn_block

    def spy(train_t, labels_t, block, *args):
        seen_shapes.append(tuple(block.shape))
        return original(train_t, labels_t, block, *args)

    monkeypatch.setattr(knn_module, "_knn_block", spy)
    blocked = knn_predict(train, train_labels, queries, 5, k=5, batch_size=16)
    assert seen_shapes == [(16, 12)] * 4  # 50 queries: 16 + 16 + 16 + 2 padded to 16
    monkeypatch.setattr(knn_module, "_knn_block", original)
    np.testing.assert_array_equal(blocked, knn_predict(train, train_labels, queries, 5, k=5))


def test_knn_accuracy():
    train, train_labels, queries, query_labels = _data(seed=5)
    predictions = knn_predict(train, train_labels, queries, 5)
    accuracy = knn_accuracy(train, train_labels, queries, query_labels)
    assert accuracy == pytest.approx(np.mean(predictions == query_labels), abs=0)
    assert 0.5 < accuracy <= 1.0
    # Each training point is its own nearest neighbour.
    assert knn_accuracy(train, train_labels, train, train_labels, k=1) == 1.0


def test_invalid_arguments_raise():
    train, labels, queries, query_labels = _data(seed=6, num_train=10, num_query=4)
    with pytest.raises(ValueError, match="`train_labels` has 9 entries but `train_features` has"):
        knn_predict(train, labels[:9], queries, 5)
    with pytest.raises(ValueError, match="`query_labels` has 3 entries"):
        knn_accuracy(train, labels, queries, query_labels[:3], k=3)
    with pytest.raises(ValueError, match=r"`k`=11 is larger than the training set \(10"):
        knn_predict(train, labels, queries, 5, k=11)
    with pytest.raises(ValueError, match="`k` must be an integer >= 1; received 0"):
        knn_predict(train, labels, queries, 5, k=0)
    for temperature in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="`temperature` must be a finite number > 0"):
            knn_predict(train, labels, queries, 5, k=3, temperature=temperature)
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        knn_predict(train, labels, queries, 5, k=3, batch_size=0)
    with pytest.raises(ValueError, match="same feature dimension.*received 3 and 12"):
        knn_predict(train, labels, queries[:, :3], 5, k=3)
    with pytest.raises(ValueError, match=r"\[0, num_classes=2\); received values in"):
        knn_predict(train, labels, queries, 2, k=3)
    with pytest.raises(ValueError, match="`num_classes` must be an integer >= 1"):
        knn_predict(train, labels, queries, 0, k=3)
    with pytest.raises(ValueError, match=r"`query_features` must have rank 2"):
        knn_predict(train, labels, queries[0], 5, k=3)
