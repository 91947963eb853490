import json
import os
import sys

import keras
import numpy as np
import pytest

from keras_ssl import config as config_lib
from keras_ssl import evaluation, experiment
from keras_ssl.datasets import fashion_mnist
from keras_ssl.datasets.splits import load_splits, probe_splits
from keras_ssl.evaluation import protocols
from keras_ssl.retrieval import Index, retrieval_metrics, retrieval_protocol


class StandIn:
    """What a protocol uses of a trained method: its ``export_encoder``."""

    def __init__(self, encoder):
        self.export_encoder = encoder


def pixel_encoder():
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten()])


@pytest.fixture(scope="module")
def pixel_splits():
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(path=fashion_mnist.EMBEDDED_DIR)
    train = (x_train[:600, ..., None], np.asarray(y_train[:600]))
    test = (x_test[:200, ..., None], np.asarray(y_test[:200]))
    return train, test


def make_splits(pixel_splits, **options):
    train, test = pixel_splits
    return protocols.EvalSplits(
        train=train,
        test=test,
        options={**protocols.DEFAULT_OPTIONS, **options},
        cache_key="pixels",
    )


def test_protocol_is_registered_with_its_options():
    assert protocols.PROTOCOLS["retrieval"] is retrieval_protocol
    assert protocols.DEFAULT_OPTIONS["retrieval_recall_ks"] == (1, 5, 10)
    assert protocols.DEFAULT_OPTIONS["retrieval_precision_ks"] == (10,)
    assert protocols.DEFAULT_OPTIONS["retrieval_backend"] == "exact"


def test_test_split_is_searched_against_the_train_split(pixel_splits, tmp_path):
    splits = make_splits(pixel_splits)
    result = retrieval_protocol(StandIn(pixel_encoder()), None, splits, str(tmp_path))
    (x_train, y_train), (x_test, y_test) = pixel_splits
    train = x_train.reshape(600, -1).astype(np.float32) / 255.0
    test = x_test.reshape(200, -1).astype(np.float32) / 255.0
    expected = retrieval_metrics(Index().build(train, labels=y_train), test, y_test)
    for name in ("recall@1", "recall@5", "recall@10", "precision@10", "map@R"):
        assert result[name] == pytest.approx(expected[name], abs=1e-12), name
    assert (result["queries"], result["index_size"]) == (200, 600)
    assert (result["backend"], result["metric"]) == ("exact", "cosine")
    # recall@1 is the accuracy of a 1-nearest-neighbour classifier (an independent code path).
    knn_1 = evaluation.knn_accuracy(train, y_train, test, y_test, 10, k=1)
    assert result["recall@1"] == pytest.approx(knn_1, abs=1e-12)
    # Features went to the protocols' shared cache, under the names the other protocols use.
    cached = np.load(tmp_path / "features" / "pixels_train.npy")
    np.testing.assert_allclose(cached, train, rtol=1e-6, atol=1e-7)
    assert os.path.exists(tmp_path / "features" / "pixels_test.npy")


def test_options_choose_ks_and_backend(pixel_splits, tmp_path):
    pytest.importorskip("faiss")
    exact = retrieval_protocol(
        StandIn(pixel_encoder()), None, make_splits(pixel_splits), str(tmp_path)
    )
    splits = make_splits(
        pixel_splits,
        retrieval_recall_ks=(2,),
        retrieval_precision_ks=(3, 20),
        retrieval_backend="faiss",
    )
    result = retrieval_protocol(StandIn(pixel_encoder()), None, splits, str(tmp_path))
    assert {"recall@2", "precision@3", "precision@20", "map@R"} <= set(result)
    assert "recall@1" not in result and result["backend"] == "faiss"
    assert result["map@R"] >= 0.95 * exact["map@R"]


def test_faiss_backend_without_faiss_is_a_value_error(pixel_splits, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    splits = make_splits(pixel_splits, retrieval_backend="faiss")
    with pytest.raises(ValueError, match=r"pip install keras-ssl\[retrieval\]"):
        retrieval_protocol(StandIn(pixel_encoder()), None, splits, str(tmp_path))


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
    config.export = False
    return config


def test_keras_ssl_eval_protocol_retrieval_writes_eval_json(tmp_path):
    workdir = str(tmp_path / "run")
    experiment.train(tiny_config(), workdir, verbose=0)
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump({"linear": {"accuracy": 0.5}}, f)  # an earlier protocol's result is kept
    record = experiment.evaluate(workdir, protocol="retrieval", verbose=False)
    with open(os.path.join(workdir, "eval.json")) as f:
        assert json.load(f) == record
    assert record["linear"] == {"accuracy": 0.5}
    result = record["retrieval"]
    assert (result["queries"], result["index_size"]) == (100, 300)
    # Equal to the metrics computed here from the run's own encoder on its probe split.
    config = experiment.load_config(workdir)
    train, test = probe_splits(config, load_splits(config.data, announce=False))
    encoder = keras.saving.load_model(os.path.join(workdir, "model.keras")).export_encoder
    train_features = evaluation.extract_features(encoder, train[0], normalize=False)
    test_features = evaluation.extract_features(encoder, test[0], normalize=False)
    expected = retrieval_metrics(
        Index().build(train_features, labels=train[1]), test_features, test[1]
    )
    for name in ("recall@1", "recall@5", "recall@10", "precision@10", "map@R"):
        assert 0 <= result[name] <= 1
        assert result[name] == pytest.approx(expected[name], abs=1e-12), name
    assert result["seconds"] > 0
