import json
import os

import numpy as np
import pytest

from keras_ssl.retrieval import ExactBackend, Index, exact_backend, load_index


def random_vectors(count, dim, seed):
    return np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)


def brute_force(vectors, queries, k, exclude=None):
    """Cosine top-k in float64 NumPy; ties go to the lower position (stable sort)."""
    a = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    b = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = b.astype(np.float64) @ a.T.astype(np.float64)
    if exclude is not None:
        scores[np.arange(len(queries)), exclude] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


VECTORS = random_vectors(300, 16, 2)
QUERIES = random_vectors(45, 16, 3)


def test_fixtures_have_no_near_ties():
    # With gaps above float32 rounding, exact search must rank as float64 NumPy does.
    _, scores = brute_force(VECTORS, np.concatenate([QUERIES, VECTORS]), 31)
    assert np.min(-np.diff(scores, axis=1)) > 2e-6


@pytest.mark.parametrize("batch_size", [None, 1, 7, 45, 1000])
def test_exact_search_equals_numpy_brute_force(batch_size):
    index = Index("exact", batch_size=batch_size).build(VECTORS)
    ids, scores = index.search(QUERIES, 30)
    expected_ids, expected_scores = brute_force(VECTORS, QUERIES, 30)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6, atol=1e-6)
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (45, 30)


def test_small_blocks_when_the_block_budget_is_small(monkeypatch):
    monkeypatch.setattr(exact_backend, "MAX_BLOCK_SCORES", 700)  # 2 queries per block for 300 items
    ids, _ = Index().build(VECTORS).search(QUERIES, 5)
    np.testing.assert_array_equal(ids, brute_force(VECTORS, QUERIES, 5)[0])


def test_exclude_ids_is_leave_one_out():
    index = Index(batch_size=16).build(VECTORS, ids=np.arange(300) + 1000)
    ids, scores = index.search(VECTORS, 10, exclude_ids=index.ids)
    positions, expected_scores = brute_force(VECTORS, VECTORS, 10, exclude=np.arange(300))
    np.testing.assert_array_equal(ids, positions + 1000)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6, atol=1e-6)
    assert not np.any(ids == index.ids[:, None])
    # -1 excludes nothing: that query finds itself first.
    exclude = np.full(300, -1)
    exclude[1:] = index.ids[1:]
    ids, _ = index.search(VECTORS, 1, exclude_ids=exclude)
    assert ids[0, 0] == 1000 and ids[1, 0] != 1001


def test_ties_go_to_the_earlier_item_and_scores_are_cosines():
    vectors = np.array([[0, 1], [3, 0], [1, 0], [0, 2], [1, 1]], np.float32)
    index = Index().build(vectors, ids=[10, 11, 12, 13, 14])
    ids, scores = index.search([[2.0, 0.0], [0.0, -1.0]], 5)
    np.testing.assert_array_equal(ids[0], [11, 12, 14, 10, 13])
    np.testing.assert_allclose(scores[0], [1, 1, np.sqrt(0.5), 0, 0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(ids[1], [11, 12, 14, 10, 13])  # ties at 0 keep order
    np.testing.assert_allclose(scores[1], [0, 0, -np.sqrt(0.5), -1, -1], rtol=1e-6, atol=1e-7)


def test_add_continues_ids_and_keeps_labels_and_metadata():
    index = Index().build(
        VECTORS[:100], labels=np.arange(100) % 3, metadata=[{"n": i} for i in range(100)]
    )
    index.add(
        VECTORS[100:], labels=np.arange(100, 300) % 3, metadata=[{"n": i} for i in range(100, 300)]
    )
    np.testing.assert_array_equal(index.ids, np.arange(300))
    assert len(index) == 300 and index.dim == 16
    ids, _ = index.search(QUERIES, 8)
    np.testing.assert_array_equal(ids, brute_force(VECTORS, QUERIES, 8)[0])
    np.testing.assert_array_equal(index.labels_for(ids), ids % 3)
    assert index.metadata_for(ids[:2, :2]) == [[{"n": int(i)} for i in row] for row in ids[:2, :2]]
    assert index.labels_for([[-1, 4]]).tolist() == [[-1, 1]]
    assert index.metadata_for([-1, 7]) == [None, {"n": 7}]
    with pytest.raises(ValueError, match="read-only"):
        index.ids[0] = 5


def test_build_replaces_the_contents_and_a_failed_build_changes_nothing():
    index = Index(batch_size=5).build(VECTORS, labels=np.zeros(300, int))
    index.info = {"kept": True}
    with pytest.raises(ValueError, match="has 2 entries"):
        index.build(QUERIES, labels=[0, 1])
    assert len(index) == 300 and index.dim == 16 and index.labels is not None
    index.build(QUERIES[:, :8])
    assert len(index) == 45 and index.dim == 8 and index.labels is None
    assert index.info == {"kept": True} and index.options == {"batch_size": 5}
    np.testing.assert_array_equal(index.search(QUERIES[:3, :8], 1)[0][:, 0], [0, 1, 2])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda i: i.add(VECTORS[:2, :4], labels=[0, 1]), "dimension 16"),
        (lambda i: i.add(VECTORS[:2]), "This index is labelled"),
        (lambda i: i.add(VECTORS[:2], labels=[0]), "has 1 entries"),
        (lambda i: i.add(VECTORS[:2], labels=[0, -1]), "non-negative"),
        (lambda i: i.add(VECTORS[:2], labels=[0.5, 1]), "integer class ids"),
        (lambda i: i.add(VECTORS[:2], labels=[0, 1], ids=[3, 99]), "duplicates such as \\[3\\]"),
        (lambda i: i.add(VECTORS[:2], labels=[0, 1], ids=[-4, 99]), "non-negative"),
        (lambda i: i.add(VECTORS[:2], labels=[0, 1], metadata=["a", "b"]), "has no metadata"),
        (lambda i: i.add(VECTORS[0], labels=[0]), "rank 2"),
        (lambda i: i.add(np.full((1, 16), np.nan), labels=[0]), "NaN"),
        (lambda i: i.add(np.array([["a"] * 16]), labels=[0]), "numeric"),
        (lambda i: i.search(QUERIES[0], 1), "rank 2"),
        (lambda i: i.search(QUERIES[:, :3], 1), "dimension 16"),
        (lambda i: i.search(QUERIES, 0), "integer >= 1"),
        (lambda i: i.search(QUERIES, 2.0), "integer >= 1"),
        (lambda i: i.search(QUERIES, True), "integer >= 1"),
        (lambda i: i.search(QUERIES, 11), "at most the 10 items"),
        (lambda i: i.search(QUERIES, 10, exclude_ids=np.zeros(45, int)), "at most the 9"),
        (lambda i: i.search(QUERIES, 1, exclude_ids=[0, 1]), "one per query"),
        (lambda i: i.search(QUERIES, 1, exclude_ids=np.full(45, 77)), "Ids not in the index"),
        (lambda i: i.labels_for([123]), "Ids not in the index"),
        (lambda i: i.metadata_for([0]), "no metadata"),
    ],
)
def test_bad_inputs_are_value_errors(call, match):
    index = Index().build(VECTORS[:10], labels=np.arange(10) % 2)
    with pytest.raises(ValueError, match=match):
        call(index)


def test_bad_metadata_and_construction():
    with pytest.raises(ValueError, match="JSON-serialisable"):
        Index().build(VECTORS[:2], metadata=[object(), 1])
    with pytest.raises(ValueError, match="one entry per vector"):
        Index().build(VECTORS[:2], metadata=[1])
    with pytest.raises(ValueError, match="a sequence"):
        Index().build(VECTORS[:2], metadata="ab")
    with pytest.raises(ValueError, match="Unknown index backend 'annoy'"):
        Index("annoy")
    with pytest.raises(ValueError, match="Bad options for the 'exact'"):
        Index("exact", nprobe=3)
    with pytest.raises(ValueError, match="batch_size"):
        ExactBackend(batch_size=0)
    with pytest.raises(ValueError, match="The index is empty"):
        Index().search(QUERIES, 1)


def test_save_and_load_round_trip(tmp_path):
    index = Index(batch_size=9).build(
        VECTORS, labels=np.arange(300) % 4, ids=np.arange(300) * 2, metadata=list(range(300))
    )
    index.info = {"encoder": "abc"}
    path = index.save(tmp_path / "index")
    loaded = load_index(path)
    assert (loaded.backend, loaded.options, loaded.info) == ("exact", {"batch_size": 9}, index.info)
    for name in ("ids", "labels"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(index, name))
    assert loaded.metadata == list(range(300))
    for got, want in zip(loaded.search(QUERIES, 12), index.search(QUERIES, 12)):
        np.testing.assert_array_equal(got, want)
    loaded.add(QUERIES, labels=np.zeros(45, int), metadata=[None] * 45)  # a loaded index grows
    assert len(loaded) == 345 and loaded.ids[-1] == 598 + 45
    with open(os.path.join(path, "index.json")) as f:
        assert json.load(f)["backend"] == "exact"
    assert sorted(os.listdir(tmp_path)) == ["index"]


def test_save_refuses_to_clobber_and_overwrites_atomically(tmp_path, monkeypatch):
    path = Index().build(VECTORS[:5]).save(tmp_path / "index")
    with pytest.raises(ValueError, match="overwrite=True"):
        Index().build(VECTORS[:6]).save(path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("keep")
    with pytest.raises(ValueError, match="holds other files"):
        Index().build(VECTORS[:6]).save(tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "keep.txt").read_text() == "keep"

    def broken(self, folder):
        np.save(os.path.join(folder, "vectors.npy"), np.zeros(3))
        raise OSError("disk full")

    monkeypatch.setattr(ExactBackend, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        Index().build(VECTORS[:7]).save(path, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["index", "notes"]  # no partial folder left
    assert len(load_index(path)) == 5  # the earlier index is intact
    monkeypatch.undo()
    Index().build(VECTORS[:7]).save(path, overwrite=True)
    assert len(load_index(path)) == 7 and sorted(os.listdir(tmp_path)) == ["index", "notes"]


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="No saved index"):
        load_index(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(ValueError, match="not a keras_ssl index"):
        load_index(tmp_path)
    path = Index().build(VECTORS[:5]).save(tmp_path / "index")
    np.save(os.path.join(path, "ids.npy"), np.arange(4))
    with pytest.raises(ValueError, match="inconsistent"):
        load_index(path)
