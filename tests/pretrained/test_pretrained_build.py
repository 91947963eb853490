"""The build command end to end on the embedded subset, for one short epoch."""

import hashlib

import keras
import numpy as np
import pytest

from keras_ssl import pretrained
from keras_ssl.pretrained import build, loading
from keras_ssl.pretrained.registry import WeightsEntry


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    policy = keras.mixed_precision.global_policy().name
    entry = build.build(
        "simclr_fashion_mnist",
        output_dir=folder,
        data_source="embedded",
        overrides={"train_steps": 0, "epochs": 1, "batch_size": 256},
        verbose=0,
    )
    assert keras.mixed_precision.global_policy().name == policy  # restored after training
    return folder, entry


def test_build_writes_the_file_the_entry_hashes(built):
    folder, entry = built
    assert sorted(p.name for p in folder.iterdir()) == ["simclr_fashion_mnist.weights.h5"]
    data = (folder / entry.file).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry.sha256
    assert entry.method == "simclr" and entry.architecture == "small_resnet"
    assert entry.architecture_kwargs == {"widths": (16, 32, 64)}
    assert entry.input_shape == (28, 28, 1)
    assert "1 epochs of 7 steps at batch 256 on 2,000" in entry.description
    assert set(entry.accuracies) == {"fashion_mnist_test", "embedded_subset_test"}
    # Trained and probed on the subset: both keys measure the same kNN.
    assert (
        entry.accuracies["fashion_mnist_test"]["knn"]
        == entry.accuracies["embedded_subset_test"]["knn"]
    )


def test_built_entry_loads_and_reproduces_its_accuracy(built, monkeypatch):
    folder, entry = built
    monkeypatch.setattr(loading, "WEIGHTS_DIR", folder)
    monkeypatch.setitem(pretrained.REGISTRY, entry.name, entry)
    encoder = pretrained.load(entry.name)
    subset = build.fashion_mnist.load_data(source="embedded")
    assert build.probe(encoder, subset) == {"knn": entry.accuracies["embedded_subset_test"]["knn"]}


def test_printed_entry_is_python_that_rebuilds_the_entry(built):
    _, entry = built
    text = build.format_entry(entry)
    assert text.startswith("WeightsEntry(\n") and text.endswith("),")
    rebuilt = eval(text.rstrip(","), {"WeightsEntry": WeightsEntry})  # noqa: S307
    assert rebuilt == entry


def test_bad_recipe_and_override_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown recipe 'simclr'.*simclr_fashion_mnist"):
        build.build("simclr", output_dir=tmp_path)
    with pytest.raises(ValueError, match="Unknown config field 'optimizer.lr'"):
        build.build("simclr_fashion_mnist", output_dir=tmp_path, overrides={"optimizer.lr": 0.1})
    with pytest.raises(ValueError, match="Config file .* not found"):
        build.build("simclr_fashion_mnist", output_dir=tmp_path, config_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_probe_matches_a_numpy_knn(numpy_knn):
    (x_train, y_train), (x_test, y_test) = build.fashion_mnist.load_data(source="embedded")
    encoder = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten()])
    expected = numpy_knn(
        x_train.reshape(2000, -1) / 255.0, y_train, x_test.reshape(500, -1) / 255.0, y_test
    )
    result = build.probe(encoder, ((x_train, y_train), (x_test, y_test)))
    assert result["knn"] == pytest.approx(expected, abs=0.0041)  # float32 vs float64 ties
    assert np.isclose(expected, 0.776, atol=0.002)  # README: raw pixels on the subset, 0.7760
