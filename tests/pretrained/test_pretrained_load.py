import hashlib
import shutil

import numpy as np
import pytest

from keras_ssl import backbones, pretrained
from keras_ssl.datasets import fashion_mnist
from keras_ssl.pretrained import loading

SHIPPED = ("simclr_fashion_mnist", "vicreg_fashion_mnist")


@pytest.fixture(scope="module")
def subset():
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(source="embedded")
    return x_train[..., None], y_train, x_test[..., None], y_test


def embed(encoder, images):
    return encoder.predict(images.astype(np.float32) / 255.0, batch_size=500, verbose=0)


def test_list_weights_names_the_shipped_entries_and_filters_by_method():
    assert set(SHIPPED) <= set(pretrained.list_weights())
    assert pretrained.list_weights() == sorted(pretrained.list_weights())
    assert pretrained.list_weights(method="simclr") == ["simclr_fashion_mnist"]
    assert pretrained.list_weights(method="vicreg") == ["vicreg_fashion_mnist"]
    assert pretrained.list_weights(method="no_such_method") == []


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_entry_is_complete_and_its_file_hashes_to_the_registry(name):
    entry = pretrained.get_entry(name)
    assert entry.name == name and entry.url is None
    assert entry.architecture == "small_resnet" and entry.input_shape == (28, 28, 1)
    assert entry.command == f"python -m keras_ssl.pretrained.build --name {name}"
    data = (pretrained.WEIGHTS_DIR / entry.file).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry.sha256
    assert len(data) < 1_000_000  # small enough to ship inside the package
    full = entry.accuracies["fashion_mnist_test"]
    assert set(full) == {"knn", "linear"} and 0.8 < full["knn"] <= 1 and 0.75 < full["linear"] <= 1


@pytest.mark.parametrize("name", SHIPPED)
def test_load_gives_the_trained_encoder_at_its_registered_knn_accuracy(name, subset, numpy_knn):
    entry = pretrained.get_entry(name)
    encoder = pretrained.load(name)
    fresh = backbones.SmallResNet((28, 28, 1), **entry.architecture_kwargs)
    assert encoder.input_shape == (None, 28, 28, 1) and encoder.output_shape == (None, 64)
    assert [w.shape for w in encoder.weights] == [w.shape for w in fresh.weights]
    x_train, y_train, x_test, y_test = subset
    accuracy = numpy_knn(embed(encoder, x_train), y_train, embed(encoder, x_test), y_test)
    # Same images and protocol as the build; 0.01 (5 of 500 test images) absorbs kernels that
    # round differently on another CPU.
    assert accuracy == pytest.approx(entry.accuracies["embedded_subset_test"]["knn"], abs=0.01)
    random_init = numpy_knn(embed(fresh, x_train), y_train, embed(fresh, x_test), y_test)
    assert accuracy > random_init + 0.03


def test_unknown_name_lists_the_names():
    with pytest.raises(
        ValueError, match="Unknown pretrained weights 'simclr'.*simclr_fashion_mnist"
    ):
        pretrained.load("simclr")
    with pytest.raises(ValueError, match="vicreg_fashion_mnist"):
        pretrained.get_entry(None)


def test_corrupted_shipped_file_is_refused_with_both_hashes(tmp_path, monkeypatch):
    entry = pretrained.get_entry("simclr_fashion_mnist")
    copy = tmp_path / entry.file
    shutil.copy(pretrained.WEIGHTS_DIR / entry.file, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(loading, "WEIGHTS_DIR", tmp_path)
    received = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(ValueError, match=f"SHA-256 .* is {received}; expected {entry.sha256}"):
        pretrained.load("simclr_fashion_mnist")
    copy.unlink()
    with pytest.raises(ValueError, match="shipped file .* is missing.*reinstall"):
        pretrained.load("simclr_fashion_mnist")


def test_entries_are_validated():
    good = dict(
        name="mine",
        method="simclr",
        architecture="small_resnet",
        architecture_kwargs={"widths": (8,)},
        input_shape=(28, 28, 1),
        sha256="0" * 64,
        file="mine.weights.h5",
    )
    assert pretrained.WeightsEntry(**good).input_shape == (28, 28, 1)
    bad = {
        "name": ("Mine!", "lower-case"),
        "architecture": ("resnet9", "unknown architecture 'resnet9'"),
        "input_shape": ((28, 28), "three positive integers"),
        "sha256": ("abc", "64 lower-case hex"),
        "file": ("dir/mine.h5", "bare file name"),
    }
    for field, (value, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            pretrained.WeightsEntry(**{**good, field: value})
    with pytest.raises(ValueError, match="exactly one of `file` and `url`"):
        pretrained.WeightsEntry(**{**good, "url": "http://127.0.0.1/mine.weights.h5"})


def test_register_refuses_taken_names_and_non_entries(monkeypatch):
    monkeypatch.setattr(pretrained.registry, "REGISTRY", dict(pretrained.REGISTRY))
    entry = pretrained.get_entry("simclr_fashion_mnist")
    with pytest.raises(ValueError, match="already registered"):
        pretrained.register(entry)
    with pytest.raises(ValueError, match="WeightsEntry; received dict"):
        pretrained.register({"name": "x"})
    assert pretrained.register(entry, overwrite=True) is entry
