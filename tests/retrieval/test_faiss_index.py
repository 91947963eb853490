"""The faiss backend (faiss-cpu is in the "test" extra; these tests need it installed)."""

import sys

import keras
import numpy as np
import pytest

from keras_ssl import backbones, evaluation
from keras_ssl.datasets import fashion_mnist
from keras_ssl.retrieval import FaissBackend, Index, load_index, retrieval_metrics
from keras_ssl.retrieval.faiss_backend import default_nlist

faiss = pytest.importorskip("faiss", reason="faiss backend tests need pip install keras-ssl[test]")


@pytest.fixture(scope="module")
def embeddings():
    """Real neighbours: the embedded Fashion-MNIST subset (2,000 train / 500 test images)
    embedded by a randomly initialised (seeded) SmallResNet, whose features already group
    similar images (exact recall@10 is about 0.94 on them)."""
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(path=fashion_mnist.EMBEDDED_DIR)
    keras.utils.set_random_seed(0)
    encoder = backbones.SmallResNet((28, 28, 1), widths=(16, 32))
    train = evaluation.extract_features(encoder, x_train[..., None])
    test = evaluation.extract_features(encoder, x_test[..., None])
    return train, np.asarray(y_train), test, np.asarray(y_test)


def random_vectors(count, dim, seed):
    return np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)


def brute_force_ids(vectors, queries, k, exclude=None):
    a = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    b = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = b.astype(np.float64) @ a.T.astype(np.float64)
    if exclude is not None:
        scores[np.arange(len(queries)), exclude] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


# Same fixtures as test_retrieval_index.py: adjacent top-31 scores differ by more than 2e-6.
VECTORS = random_vectors(300, 16, 2)
QUERIES = random_vectors(45, 16, 3)


@pytest.mark.parametrize("options", [{"kind": "hnsw"}, {"kind": "ivf_flat"}])
def test_faiss_recall_at_10_is_at_least_95_percent_of_exact(embeddings, options):
    train, train_labels, test, test_labels = embeddings
    exact = Index("exact").build(train, labels=train_labels)
    approximate = Index("faiss", **options).build(train, labels=train_labels)
    exact_metrics = retrieval_metrics(exact, test, test_labels)
    approximate_metrics = retrieval_metrics(approximate, test, test_labels)
    assert exact_metrics["recall@10"] > 0.8  # the random encoder's neighbours are meaningful
    assert approximate_metrics["recall@10"] >= 0.95 * exact_metrics["recall@10"]
    assert approximate_metrics["map@R"] >= 0.95 * exact_metrics["map@R"]
    # The approximate neighbour lists themselves mostly agree with the exact ones.
    exact_ids, exact_scores = exact.search(test, 10)
    ids, scores = approximate.search(test, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids)])
    assert overlap >= 0.95
    # Where both found the same item, they give it the same cosine score.
    same = ids == exact_ids
    np.testing.assert_allclose(scores[same], exact_scores[same], rtol=1e-5, atol=1e-5)


def test_ivf_probing_every_cell_equals_brute_force():
    index = Index("faiss", kind="ivf_flat", nlist=8, nprobe=8).build(VECTORS)
    assert index.options["nlist"] == 8
    ids, _ = index.search(QUERIES, 30)
    np.testing.assert_array_equal(ids, brute_force_ids(VECTORS, QUERIES, 30))
    ids, _ = index.search(VECTORS, 10, exclude_ids=index.ids)
    np.testing.assert_array_equal(ids, brute_force_ids(VECTORS, VECTORS, 10, np.arange(300)))


def test_hnsw_leave_one_out_never_returns_the_query():
    index = Index("faiss").build(VECTORS, ids=np.arange(300) + 7)
    ids, scores = index.search(VECTORS, 5, exclude_ids=index.ids)
    assert ids.shape == (300, 5) and not np.any(ids == index.ids[:, None])
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # nearest first
    expected = brute_force_ids(VECTORS, VECTORS, 5, np.arange(300)) + 7
    # HNSW is approximate (and its multi-threaded build need not be deterministic), so the
    # lists are compared as sets; on 300 items with ef_search=128 they are all but exact.
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, expected)]) >= 0.98


def test_unfound_neighbours_are_minus_one_and_never_relevant():
    # One cell probed out of 20: most queries find fewer than 100 items.
    labels = np.arange(300) % 3
    index = Index("faiss", kind="ivf_flat", nlist=20, nprobe=1).build(VECTORS, labels=labels)
    ids, scores = index.search(QUERIES, 100)
    missing = ids == -1
    assert missing.any() and not missing.all()
    assert np.all(np.isneginf(scores[missing])) and np.all(np.isfinite(scores[~missing]))
    neighbour_labels = index.labels_for(ids)
    np.testing.assert_array_equal(neighbour_labels[missing], -1)
    query_labels = np.zeros(45, int)
    result = retrieval_metrics(index, QUERIES, query_labels, (100,), (100,), False)
    expected = np.mean(np.sum(neighbour_labels == 0, axis=1) / 100)
    assert result["precision@100"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kind", ["hnsw", "ivf_flat"])
def test_save_load_round_trip(tmp_path, kind):
    index = Index("faiss", kind=kind, ef_search=40, nprobe=3).build(
        VECTORS, labels=np.arange(300) % 5, metadata=[str(i) for i in range(300)]
    )
    path = index.save(tmp_path / "index")
    loaded = load_index(path)
    assert loaded.backend == "faiss" and loaded.options == index.options
    for got, want in zip(loaded.search(QUERIES, 10), index.search(QUERIES, 10)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.labels, index.labels)
    assert loaded.metadata_for([3]) == ["3"]
    loaded.add(QUERIES, labels=np.zeros(45, int), metadata=["q"] * 45)
    ids, scores = loaded.search(QUERIES[:4], 1)
    np.testing.assert_array_equal(ids[:, 0], [300, 301, 302, 303])  # each query finds itself
    np.testing.assert_allclose(scores[:, 0], 1.0, rtol=1e-5, atol=1e-5)


def test_without_faiss_the_error_names_the_fix(tmp_path, monkeypatch):
    path = Index("faiss").build(VECTORS).save(tmp_path / "index")
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install keras-ssl\[retrieval\]"):
        load_index(path)
    with pytest.raises(ImportError, match=r"pip install keras-ssl\[retrieval\]"):
        Index("faiss")
    assert len(Index("exact").build(VECTORS)) == 300  # the exact backend needs no faiss


@pytest.mark.parametrize(
    "options, match",
    [
        ({"kind": "pq"}, "Unknown faiss index kind 'pq'"),
        ({"hnsw_m": 1}, "hnsw_m"),
        ({"ef_search": 0}, "ef_search"),
        ({"nprobe": -1}, "nprobe"),
        ({"nlist": 2.5}, "nlist"),
        ({"batch_size": 3}, "Bad options for the 'faiss'"),
    ],
)
def test_bad_faiss_options(options, match):
    with pytest.raises(ValueError, match=match):
        Index("faiss", **options)


def test_ivf_needs_enough_training_vectors():
    with pytest.raises(ValueError, match="nlist"):
        Index("faiss", kind="ivf_flat", nlist=50).build(VECTORS[:20])
    assert default_nlist(2000) == 51 and default_nlist(60000) == 980 and default_nlist(10) == 1
    assert FaissBackend().options["kind"] == "hnsw"
