import numpy as np
import pytest

from keras_ssl.retrieval import (
    Index,
    map_at_r,
    precision_at_k,
    recall_at_k,
    relevant_counts,
    retrieval_metrics,
)

# Three queries, hand-ranked neighbour labels (-1: no neighbour found at that rank).
QUERY_LABELS = np.array([0, 1, 2])
NEIGHBOUR_LABELS = np.array(
    [
        [1, 0, 0, 1],  # label 0: first hit at rank 2
        [1, 1, 0, 0],  # label 1: hits at ranks 1 and 2
        [-1, -1, 0, 1],  # label 2: never found
    ]
)


def test_recall_at_k_by_hand():
    assert recall_at_k(QUERY_LABELS, NEIGHBOUR_LABELS, 1) == pytest.approx(1 / 3, abs=1e-15)
    assert recall_at_k(QUERY_LABELS, NEIGHBOUR_LABELS, 2) == pytest.approx(2 / 3, abs=1e-15)
    assert recall_at_k(QUERY_LABELS, NEIGHBOUR_LABELS, 4) == pytest.approx(2 / 3, abs=1e-15)


def test_precision_at_k_by_hand():
    # k=1: (0 + 1 + 0) / 3; k=2: (1/2 + 1 + 0) / 3; k=4: (2/4 + 2/4 + 0) / 3.
    assert precision_at_k(QUERY_LABELS, NEIGHBOUR_LABELS, 1) == pytest.approx(1 / 3, abs=1e-15)
    assert precision_at_k(QUERY_LABELS, NEIGHBOUR_LABELS, 2) == pytest.approx(0.5, abs=1e-15)
    assert precision_at_k(QUERY_LABELS, NEIGHBOUR_LABELS, 4) == pytest.approx(1 / 3, abs=1e-15)


def test_map_at_r_by_hand():
    # Query 0, R=2: ranks 1..2 relevant [0, 1]; P@2 = 1/2 -> (1/2) / 2 = 1/4.
    # Query 1, R=3: ranks 1..3 relevant [1, 1, 0]; P@1 = 1, P@2 = 1 -> 2 / 3.
    # Query 2, R=1: rank 1 is empty -> 0.
    counts = np.array([2, 3, 1])
    expected = (1 / 4 + 2 / 3 + 0) / 3
    assert map_at_r(QUERY_LABELS, NEIGHBOUR_LABELS, counts) == pytest.approx(expected, abs=1e-15)
    # Perfect ranking: the R nearest are exactly the R relevant items.
    assert map_at_r([5], [[5, 5, 3]], [2]) == 1.0
    # Relevant items only beyond R do not count; R = 0 scores 0.
    assert map_at_r([5, 4], [[3, 5, 5], [1, 2, 3]], [1, 0]) == 0.0


def test_relevant_counts_with_and_without_leave_one_out():
    index_labels = np.array([0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(relevant_counts([2, 0, 3], index_labels), [3, 2, 0])
    # Leaving out an item of the query's own class lowers R by one; of another class, not.
    np.testing.assert_array_equal(
        relevant_counts([2, 0, 1], index_labels, excluded_labels=[2, 1, -1]), [2, 2, 1]
    )


def reference_metrics(index_vectors, index_labels, queries, query_labels, ks, exclude_self):
    """Brute force in float64 NumPy, written from the definitions, one query at a time."""
    index_vectors = index_vectors / np.linalg.norm(index_vectors, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    recall = {k: [] for k in ks}
    precision = {k: [] for k in ks}
    average_precision = []
    for q, (query, label) in enumerate(zip(queries, query_labels)):
        scores = index_vectors.astype(np.float64) @ query.astype(np.float64)
        order = [i for i in np.argsort(-scores, kind="stable") if not (exclude_self and i == q)]
        ranked = [int(index_labels[i]) == int(label) for i in order]
        for k in ks:
            recall[k].append(float(any(ranked[:k])))
            precision[k].append(sum(ranked[:k]) / k)
        candidates = [i for i in range(len(index_labels)) if not (exclude_self and i == q)]
        r = sum(int(index_labels[i]) == int(label) for i in candidates)
        total = sum(sum(ranked[:i]) / i for i in range(1, r + 1) if ranked[i - 1])
        average_precision.append(total / r if r else 0.0)
    result = {f"recall@{k}": np.mean(recall[k]) for k in ks}
    result.update({f"precision@{k}": np.mean(precision[k]) for k in ks})
    result["map@R"] = np.mean(average_precision)
    return result


def separated_data(count, dim, classes, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    centres = rng.normal(size=(classes, dim))
    vectors = centres[labels] + rng.normal(scale=1.2, size=(count, dim))
    return vectors.astype(np.float32), labels


def min_score_gap(index_vectors, queries):
    a = index_vectors / np.linalg.norm(index_vectors, axis=1, keepdims=True)
    b = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = np.sort(b.astype(np.float64) @ a.T.astype(np.float64), axis=1)
    return np.min(np.diff(scores, axis=1))


@pytest.mark.parametrize("batch_size", [1024, 7])
def test_retrieval_metrics_equal_numpy_brute_force(batch_size):
    vectors, labels = separated_data(120, 6, 4, seed=0)
    queries, query_labels = separated_data(40, 6, 4, seed=1)
    assert min_score_gap(vectors, queries) > 1e-6  # no near-ties: float32 ranks as float64 does
    index = Index().build(vectors, labels=labels)
    ks = (1, 5, 10)
    result = retrieval_metrics(index, queries, query_labels, ks, ks, batch_size=batch_size)
    expected = reference_metrics(vectors, labels, queries, query_labels, ks, exclude_self=False)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-12), name
    assert result["queries"] == 40 and result["index_size"] == 120


def test_leave_one_out_equals_numpy_brute_force():
    vectors, labels = separated_data(80, 8, 5, seed=7)
    assert min_score_gap(vectors, vectors) > 1e-6
    index = Index().build(vectors, labels=labels)
    ks = (1, 5, 10)
    result = retrieval_metrics(index, vectors, labels, ks, ks, exclude_ids=index.ids)
    expected = reference_metrics(vectors, labels, vectors, labels, ks, exclude_self=True)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-12), name
    # Without leaving the query out, every query finds itself first.
    assert retrieval_metrics(index, vectors, labels, (1,), (1,))["recall@1"] == 1.0


def test_leave_one_out_with_duplicates_of_another_class():
    # Items 0 and 1 are the same point with different labels; left out, each finds the other.
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]], np.float32)
    labels = np.array([0, 1, 0, 1])
    index = Index().build(vectors, labels=labels)
    ids, _ = index.search(vectors, 1, exclude_ids=index.ids)
    np.testing.assert_array_equal(ids[:, 0], [1, 0, 3, 2])
    result = retrieval_metrics(index, vectors, labels, (1,), (1,), exclude_ids=index.ids)
    assert result["recall@1"] == 0.0 and result["map@R"] == 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: recall_at_k([0, 1], [[0, 1]], 1), "has 1 rows"),
        (lambda: recall_at_k([0], [[0, 1]], 3), "at most the 2 neighbours"),
        (lambda: precision_at_k([0], [[0, 1]], 0), "integer >= 1"),
        (lambda: precision_at_k([0], [0, 1], 1), "rank 2"),
        (lambda: precision_at_k([0], [[0.5, 1.0]], 1), "integer labels"),
        (lambda: recall_at_k([-2], [[0]], 1), "non-negative"),
        (lambda: map_at_r([0], [[0, 1]], [3]), "R up to 3"),
        (lambda: map_at_r([0], [[0, 1]], [-1]), ">= 0"),
        (lambda: map_at_r([0, 1], [[0], [1]], [1]), "one per query"),
    ],
)
def test_bad_inputs_are_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_retrieval_metrics_input_checks():
    vectors, labels = separated_data(20, 4, 2, seed=3)
    with pytest.raises(ValueError, match="has no labels"):
        retrieval_metrics(Index().build(vectors), vectors, labels)
    index = Index().build(vectors, labels=labels)
    with pytest.raises(ValueError, match="at most the 19 items"):
        retrieval_metrics(index, vectors, labels, (20,), (), exclude_ids=index.ids)
    with pytest.raises(ValueError, match="one id per query"):
        retrieval_metrics(index, vectors, labels, exclude_ids=index.ids[:3])
    with pytest.raises(ValueError, match="query_labels"):
        retrieval_metrics(index, vectors, labels[:5])
