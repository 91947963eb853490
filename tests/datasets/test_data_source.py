"""Forcing a Fashion-MNIST source (argument, $KERAS_SSL_DATA_SOURCE, config.data.source) and the
``data: ...`` line that experiments print before training."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_ssl import config as config_lib
from keras_ssl import experiment
from keras_ssl.datasets import fashion_mnist
from keras_ssl.datasets.splits import load_splits

DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
needs_debian = pytest.mark.skipif(
    not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
EMBEDDED_LINE = (
    f"data: embedded 2,000/500-image subset ({fashion_mnist.EMBEDDED_DIR}): install "
    "dataset-fashion-mnist or set KERAS_SSL_DATA_DIR for the full 60,000/10,000 set"
)


def _write_small_set(folder, seed=0):
    """Four IDX files with 30 train and 20 test random images; returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    y_train = np.repeat(np.arange(10, dtype=np.uint8), 3)
    y_test = np.repeat(np.arange(10, dtype=np.uint8), 2)
    x_train = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    for name, array in zip(fashion_mnist.FILE_NAMES, (x_train, y_train, x_test, y_test)):
        fashion_mnist.write_idx(folder / f"{name}.gz", array)
    return x_train, x_test


class _PreparedBuilder:
    """A prepared TFDS fashion_mnist copy with 4 train and 2 test images (no network)."""

    data_dir = "/fake/tfds/fashion_mnist/3.0.1"

    def is_prepared(self):
        return True

    def as_dataset(self, split, shuffle_files):
        count, value = (4, 11) if split == "train" else (2, 22)
        images = np.full((count, 28, 28, 1), value, np.uint8)
        return tf.data.Dataset.from_tensor_slices({"image": images, "label": np.arange(count)})


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv(fashion_mnist.ENV_VAR, raising=False)
    monkeypatch.delenv(fashion_mnist.SOURCE_ENV_VAR, raising=False)
    return monkeypatch


# Each forced source on local data.


@needs_debian
def test_forced_embedded_and_debian_override_the_automatic_order(clean_env, tmp_path):
    _write_small_set(tmp_path / "env")
    clean_env.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "env"))
    assert fashion_mnist.find_source().kind == "env"  # the automatic order's first hit
    (x_train, _), (x_test, _) = fashion_mnist.load_data(source="debian")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert fashion_mnist.find_source(source="debian") == fashion_mnist.DataSource(
        "debian",
        str(DEBIAN_DIR),
        f"Debian package dataset-fashion-mnist ({DEBIAN_DIR}): the full 60,000/10,000-image set",
    )
    (
        (x_train, y_train),
        (x_test, _),
    ) = fashion_mnist.load_data(source="embedded")
    assert x_train.shape == (2000, 28, 28) and x_test.shape == (500, 28, 28)
    np.testing.assert_array_equal(np.bincount(y_train), [200] * 10)
    embedded = fashion_mnist.find_source(source="embedded")
    assert embedded.kind == "embedded" and f"data: {embedded.description}" == EMBEDDED_LINE


def test_forced_path_reads_the_explicit_folder_then_the_environment_folder(clean_env, tmp_path):
    explicit = _write_small_set(tmp_path / "mine", seed=1)
    (x_train, _), (x_test, _) = fashion_mnist.load_data(tmp_path / "mine", source="path")
    np.testing.assert_array_equal(x_train, explicit[0])
    np.testing.assert_array_equal(x_test, explicit[1])
    from_env = _write_small_set(tmp_path / "data" / "fashion-mnist", seed=2)
    clean_env.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "data"))
    splits, source = fashion_mnist.load_data(source="path", return_source=True)
    np.testing.assert_array_equal(splits[0][0], from_env[0])
    folder = tmp_path / "data" / "fashion-mnist"
    assert source == fashion_mnist.DataSource(
        "env",
        str(folder),
        f"$KERAS_SSL_DATA_DIR folder ({folder}): 30/20 images, not the full 60,000/10,000 set",
    )


def test_forced_tfds_is_read_even_with_local_files(clean_env, tmp_path):
    _write_small_set(tmp_path / "debian")
    clean_env.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    clean_env.setattr(tfds, "builder", lambda name: _PreparedBuilder())
    assert fashion_mnist.find_source().kind == "debian"
    splits, source = fashion_mnist.load_data(source="tfds", return_source=True)
    (x_train, _), (x_test, _) = splits
    assert x_train.shape == (4, 28, 28) and np.all(x_train == 11) and np.all(x_test == 22)
    assert source == fashion_mnist.DataSource(
        "tfds",
        _PreparedBuilder.data_dir,
        f"TFDS fashion_mnist ({_PreparedBuilder.data_dir}): 4/2 images, not the full "
        "60,000/10,000 set",
    )


# The environment variable and the argument.


def test_environment_variable_forces_a_source_and_the_argument_wins(clean_env, tmp_path):
    _write_small_set(tmp_path / "mine")
    assert fashion_mnist.find_source(tmp_path / "mine").kind == "path"
    clean_env.setenv(fashion_mnist.SOURCE_ENV_VAR, "embedded")
    assert fashion_mnist.find_source().kind == "embedded"
    # An explicit path contradicts the environment's "embedded"...
    with pytest.raises(
        ValueError,
        match=r"received path='.*mine' and \$KERAS_SSL_DATA_SOURCE='embedded'; expected a path "
        r"only with source 'path'.*Fix: drop `path` to read 'embedded', or use "
        r"\$KERAS_SSL_DATA_SOURCE='path'",
    ):
        fashion_mnist.load_data(tmp_path / "mine")
    # ... unless the argument says otherwise.
    assert fashion_mnist.find_source(tmp_path / "mine", source="path").kind == "path"
    clean_env.setenv(fashion_mnist.SOURCE_ENV_VAR, "")  # empty: the automatic order
    assert fashion_mnist.find_source(tmp_path / "mine").kind == "path"


# Errors.


@pytest.mark.parametrize("value", ["debain", "Embedded", 3])
def test_unknown_source_lists_the_valid_ones(clean_env, value):
    with pytest.raises(
        ValueError,
        match=rf"Unknown Fashion-MNIST source: received source={value!r}; expected one of "
        r"'path', 'debian', 'tfds', 'embedded' \(or no value for the automatic order\)\. "
        r"Fix: use one of them, e\.g\. source='embedded'\.$",
    ):
        fashion_mnist.load_data(source=value)


def test_unknown_environment_source_names_the_variable(clean_env):
    clean_env.setenv(fashion_mnist.SOURCE_ENV_VAR, "cloud")
    with pytest.raises(
        ValueError,
        match=r"received \$KERAS_SSL_DATA_SOURCE='cloud'; expected one of 'path', 'debian', "
        r"'tfds', 'embedded'.*or unset KERAS_SSL_DATA_SOURCE\.$",
    ):
        fashion_mnist.load_data()


def test_forced_path_without_files_is_an_error_not_a_fallback(clean_env, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"received folder .*empty, which lacks train-images"):
        fashion_mnist.load_data(tmp_path / "empty", source="path")
    with pytest.raises(
        ValueError,
        match=r"source 'path' was asked for, but no path was given and \$KERAS_SSL_DATA_DIR is "
        r"not set; expected a folder with train-images-idx3-ubyte.*Fix: set KERAS_SSL_DATA_DIR",
    ):
        fashion_mnist.load_data(source="path")
    clean_env.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "empty"))
    with pytest.raises(
        ValueError,
        match=r"but \$KERAS_SSL_DATA_DIR='.*empty' holds no IDX files \(looked in it and its "
        r"fashion-mnist and fashion_mnist subfolders\)",
    ):
        fashion_mnist.load_data(source="path")


def test_forced_debian_without_the_package_is_an_error(clean_env, tmp_path):
    clean_env.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "missing")
    with pytest.raises(
        ValueError,
        match=r"source 'debian' was asked for, but .*missing holds no IDX files; expected the "
        r"files of the Debian package dataset-fashion-mnist there\. Fix: `sudo apt-get install "
        r"dataset-fashion-mnist`",
    ):
        fashion_mnist.load_data(source="debian")


def test_forced_tfds_that_is_unavailable_is_an_error(clean_env):
    def offline_builder(name):
        raise OSError("offline")

    clean_env.setattr(tfds, "builder", offline_builder)
    with pytest.raises(
        ValueError,
        match=r"source 'tfds' was asked for, but TFDS fashion_mnist is unavailable \(OSError: "
        r"offline\); expected a prepared or downloadable TFDS copy\. Fix: `pip install "
        r"tensorflow-datasets` and download it",
    ):
        fashion_mnist.load_data(source="tfds")


def test_subset_contradicting_the_source_is_an_error(clean_env):
    with pytest.raises(ValueError, match=r"received subset=True with path=None and source='tfds'"):
        fashion_mnist.load_data(subset=True, source="tfds")
    assert fashion_mnist.load_data(subset=True, source="embedded")[0][0].shape == (2000, 28, 28)


# The config field and the experiment's printed line.


def _data_config(**fields):
    config = config_lib.default_config()
    for key, value in fields.items():
        config.data[key] = value
    return config.data


def test_config_source_prints_the_line_and_wins_over_the_environment(clean_env, capsys):
    clean_env.setenv(fashion_mnist.SOURCE_ENV_VAR, "path")  # would fail: no folder is set
    with pytest.raises(ValueError, match=r"source 'path' was asked for"):
        load_splits(_data_config())
    capsys.readouterr()
    x_train, y_train, x_test, _ = load_splits(_data_config(source="embedded"))
    assert capsys.readouterr().out == EMBEDDED_LINE + "\n"
    assert x_train.shape == (2000, 28, 28, 1) and x_test.shape == (500, 28, 28, 1)
    clean_env.setenv(fashion_mnist.SOURCE_ENV_VAR, "embedded")  # the config default follows it
    load_splits(_data_config(), announce=False)
    assert capsys.readouterr().out == ""


def test_config_source_errors(clean_env):
    with pytest.raises(ValueError, match=r"received source='tfds2'; expected one of 'path'"):
        load_splits(_data_config(source="tfds2"))
    with pytest.raises(
        ValueError,
        match=r"config.data.source='embedded' was given with config.data.dataset='tfds:cifar10'; "
        r"expected a source only with 'fashion_mnist'\. Fix: drop config.data.source",
    ):
        load_splits(_data_config(source="embedded", dataset="tfds:cifar10"))


def test_train_prints_the_data_line_before_training(clean_env, capsys, tmp_path):
    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    clean_env.setattr(experiment, "build_model", stop)  # the step after loading the data
    config = config_lib.default_config()
    config.data.source = "embedded"
    config.precision = "float32"  # no global mixed-precision policy left for other tests
    with pytest.raises(Stop):
        experiment.train(config, str(tmp_path), verbose=0)
    assert capsys.readouterr().out == EMBEDDED_LINE + "\n"
