import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import config as config_lib
from keras_ssl import experiment
from keras_ssl.datasets import fashion_mnist
from keras_ssl.datasets.splits import load_splits, probe_splits
from keras_ssl.retrieval import Index, load_index
from keras_ssl.retrieval.search import search_workdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def keras_ssl_cli(*args, env=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "keras_ssl.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


def tiny_config():
    config = config_lib.default_config()
    config.data.data_dir = str(fashion_mnist.EMBEDDED_DIR)
    config.data.train_examples = 128
    config.data.probe_train_examples = 300
    config.data.probe_test_examples = 100
    config.backbone_kwargs = {"widths": (4, 8)}
    config.method_kwargs = {"temperature": 0.2, "projection_dim": 16}
    config.batch_size = 64
    config.epochs = 1
    config.precision = "float32"
    config.probes.knn_every_epochs = 0
    config.probes.collapse_every_epochs = 0
    config.probes.linear_epochs = 1
    config.export = False  # `search` exports the encoder itself when it is missing
    return config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained run (no export yet), query images written as PNGs in class folders, and the
    probe training split the index is built over."""
    workdir = str(tmp_path_factory.mktemp("run"))
    experiment.train(tiny_config(), workdir, verbose=0)
    config = experiment.load_config(workdir)
    x_train, y_train, x_test, y_test = load_splits(config.data, announce=False)
    probe_train = probe_splits(config, (x_train, y_train, x_test, y_test))[0]
    queries = x_test[:4]  # uint8 [4, 28, 28, 1]
    folder = tmp_path_factory.mktemp("queries")
    names = []
    for i, image in enumerate(queries):
        class_folder = folder / fashion_mnist.CLASS_NAMES[int(y_test[i])].replace("/", "-")
        class_folder.mkdir(exist_ok=True)
        (class_folder / f"q{i}.png").write_bytes(tf.io.encode_png(image).numpy())
        names.append(f"{class_folder.name}/q{i}.png")
    return workdir, str(folder), queries, names, probe_train


def reference_scores(workdir, images, train_images):
    """Cosine similarities in float64 of the exported encoder's embeddings [queries, train]."""
    encoder = tf.saved_model.load(os.path.join(workdir, "encoder"))

    def embed(x):
        return encoder.serve(tf.constant(x))["embeddings"].numpy().astype(np.float64)

    return embed(images) @ embed(train_images).T


def assert_exact_top_k(ids, scores, reference, k):
    """``ids`` are a correct top-k of ``reference``: at each rank the returned item's reference
    score equals the k-th best reference score (so near-ties may come in either order)."""
    ids = np.asarray(ids)
    best = -np.sort(-reference, axis=1)[:, :k]
    got = np.take_along_axis(reference, ids, axis=1)
    np.testing.assert_allclose(got, best, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores, best, rtol=1e-5, atol=1e-5)
    assert all(len(set(row)) == k for row in ids.tolist())


def read_json(workdir):
    with open(os.path.join(workdir, "search", "neighbours.json")) as f:
        return json.load(f)


def test_search_a_folder_then_a_npy_array_with_the_same_index(run, tmp_path):
    workdir, folder, queries, names, (train_images, train_labels) = run
    assert not os.path.exists(os.path.join(workdir, "encoder"))
    result = keras_ssl_cli("search", f"--workdir={workdir}", f"--query={folder}", "--top_k=5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.exists(os.path.join(workdir, "encoder", "saved_model.pb"))  # exported first
    record = read_json(workdir)
    assert (record["k"], record["backend"], record["index_size"]) == (5, "exact", 300)
    assert record["index"] == os.path.join(workdir, "index")
    assert [entry["query"] for entry in record["queries"]] == sorted(names)
    order = np.argsort(names)  # the folder is read in sorted path order
    ids = np.array([[n["id"] for n in entry["neighbours"]] for entry in record["queries"]])
    scores = np.array([[n["score"] for n in entry["neighbours"]] for entry in record["queries"]])
    assert_exact_top_k(ids, scores, reference_scores(workdir, queries[order], train_images), 5)
    for entry, row, position in zip(record["queries"], ids, order):
        neighbours = entry["neighbours"]
        assert [n["rank"] for n in neighbours] == [1, 2, 3, 4, 5]
        assert [n["label"] for n in neighbours] == train_labels[row].tolist()
        assert [n["class"] for n in neighbours] == [
            fashion_mnist.CLASS_NAMES[label] for label in train_labels[row]
        ]
        assert entry["folder_class"] == names[position].split("/")[0]
    first = record["queries"][0]
    assert f"{first['query']}: {first['neighbours'][0]['class']}" in result.stdout
    with open(os.path.join(workdir, record["plot"]), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    index_stamp = os.path.getmtime(os.path.join(workdir, "index", "index.json"))
    assert load_index(os.path.join(workdir, "index")).info["split"] == "probe_train"

    # The same images as a .npy array: the saved index is reused, the neighbours are the same.
    array = tmp_path / "queries.npy"
    np.save(array, queries[order][..., 0])  # [N, 28, 28] grayscale is accepted
    result = keras_ssl_cli("search", f"--workdir={workdir}", f"--query={array}", "--top_k=5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Embedding" not in result.stdout  # nothing re-embedded for the index
    assert os.path.getmtime(os.path.join(workdir, "index", "index.json")) == index_stamp
    again = read_json(workdir)
    assert [e["query"] for e in again["queries"]] == [f"queries.npy[{i}]" for i in range(4)]
    for entry, before in zip(again["queries"], record["queries"]):
        assert [n["id"] for n in entry["neighbours"]] == [n["id"] for n in before["neighbours"]]


def test_faiss_index_at_an_explicit_path(run, tmp_path):
    pytest.importorskip("faiss")
    workdir, folder, queries, names, (train_images, _) = run
    path = str(tmp_path / "faiss_index")
    result = keras_ssl_cli(
        "search",
        f"--workdir={workdir}",
        f"--query={folder}",
        f"--index={path}",
        "--index_backend=faiss",
        "--top_k=3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_json(workdir)
    assert (record["backend"], record["index"]) == ("faiss", path)
    assert load_index(path).backend == "faiss"
    reference = reference_scores(workdir, queries[np.argsort(names)], train_images)
    found = np.array([[n["id"] for n in entry["neighbours"]] for entry in record["queries"]])
    # Approximate search: the items found score (almost) as high as the exact top 3.
    exact_third = -np.sort(-reference, axis=1)[:, 2:3]
    assert np.mean(np.take_along_axis(reference, found, axis=1) >= exact_third - 1e-6) >= 0.9


def test_stale_index_missing_faiss_and_bad_queries_are_value_errors(run, tmp_path, monkeypatch):
    """In-process (``keras-ssl`` prints a ValueError as one line and exits with status 2)."""
    workdir, folder, _, _, _ = run
    stale = str(tmp_path / "stale")
    other = Index().build(np.ones((300, 8)), labels=np.zeros(300, int))
    other.info = {"encoder_fingerprint": "another encoder"}
    other.save(stale)
    with pytest.raises(ValueError, match="built from another encoder"):
        search_workdir(workdir, folder, index_path=stale, verbose=False)
    assert len(load_index(stale)) == 300  # left as it was

    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"must hold images \[N, 28, 28, 1\]"):
        search_workdir(workdir, bad, verbose=False)
    np.save(bad, np.full((2, 28, 28), 2.0, np.float32))
    with pytest.raises(ValueError, match=r"uint8 images in \[0, 255\] or floats in \[0, 1\]"):
        search_workdir(workdir, bad, verbose=False)
    with pytest.raises(ValueError, match="does not exist"):
        search_workdir(workdir, tmp_path / "nowhere", verbose=False)
    with pytest.raises(ValueError, match="at most the 300 images"):
        search_workdir(workdir, folder, k=301, verbose=False)
    with pytest.raises(ValueError, match="No trained run"):
        search_workdir(tmp_path, folder, verbose=False)

    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    with pytest.raises(ValueError, match=r"pip install keras-ssl\[retrieval\]"):
        search_workdir(workdir, folder, index_path=tmp_path / "new", backend="faiss", verbose=False)
    assert not os.path.exists(tmp_path / "new")
