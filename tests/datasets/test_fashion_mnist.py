"""Tests for keras_ssl.datasets.fashion_mnist: IDX files, sources, fallback order and subset."""

import gzip
import logging
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_ssl.datasets import fashion_mnist, fashion_mnist_tfds

DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
needs_debian = pytest.mark.skipif(
    not DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist is not installed"
)
FILES = fashion_mnist.FILE_NAMES


def _reference_idx(path, header_size):
    """Independent reader: skip the fixed header, view the rest as bytes."""
    with gzip.open(path, "rb") as file:
        return np.frombuffer(file.read()[header_size:], np.uint8)


def _write_small_set(folder, per_class=(3, 2), seed=0, gz=True):
    """Writes four IDX files with random images and ``per_class`` train/test images a class."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for count in per_class:
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), count))
        images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
        arrays.append((images, labels))
    suffix = ".gz" if gz else ""
    (x_train, y_train), (x_test, y_test) = arrays
    for name, array in zip(FILES, (x_train, y_train, x_test, y_test)):
        fashion_mnist.write_idx(folder / f"{name}{suffix}", array)
    return (x_train, y_train), (x_test, y_test)


def _assert_same(loaded, expected):
    """Checks ``((x_train, y_train), (x_test, y_test))`` pairs for equal dtypes and values."""
    (x_train, y_train), (x_test, y_test) = loaded
    (ex_train, ey_train), (ex_test, ey_test) = expected
    for got, want in zip(
        (x_train, y_train, x_test, y_test), (ex_train, ey_train, ex_test, ey_test)
    ):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No env var, no Debian folder and a failing TFDS: only explicit sources remain."""
    monkeypatch.delenv(fashion_mnist.ENV_VAR, raising=False)
    monkeypatch.delenv(fashion_mnist.SOURCE_ENV_VAR, raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    calls = []

    def offline_builder(name, **kwargs):
        calls.append(name)
        raise OSError("offline")

    monkeypatch.setattr(tfds, "builder", offline_builder)
    return calls


# IDX reading and writing.


def test_write_idx_bytes_match_the_format_by_hand(tmp_path):
    fashion_mnist.write_idx(tmp_path / "a", np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
    assert (tmp_path / "a").read_bytes() == bytes(
        [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]
    )
    fashion_mnist.write_idx(tmp_path / "b", np.array([-2, 258], np.int16))
    assert (tmp_path / "b").read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 1, 2])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["array.idx", "array.idx.gz"])
def test_write_read_round_trip_is_exact(tmp_path, dtype, name):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    array = (
        rng.integers(info.min, info.max, (3, 4, 5), endpoint=True).astype(dtype)
        if info
        else rng.standard_normal((3, 4, 5)).astype(dtype)
    )
    fashion_mnist.write_idx(tmp_path / name, array)
    loaded = fashion_mnist.read_idx(tmp_path / name)
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.writeable


def test_gzip_output_is_deterministic_and_detected_by_content(tmp_path):
    array = np.arange(100, dtype=np.uint8).reshape(10, 10)
    fashion_mnist.write_idx(tmp_path / "a.gz", array)
    fashion_mnist.write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    shutil.copy(tmp_path / "a.gz", tmp_path / "no_suffix")  # gzip without the .gz name
    np.testing.assert_array_equal(fashion_mnist.read_idx(tmp_path / "no_suffix"), array)


def test_write_idx_rejects_unsupported_arrays(tmp_path):
    with pytest.raises(ValueError, match=r"received dtype int64 and shape \(2,\).*Fix: cast"):
        fashion_mnist.write_idx(tmp_path / "x", np.array([1, 2], np.int64))
    with pytest.raises(ValueError, match=r"received dtype uint8 and shape \(\).*rank 1 to 255"):
        fashion_mnist.write_idx(tmp_path / "x", np.uint8(3))


def test_read_idx_rejects_bad_files(tmp_path):
    with pytest.raises(ValueError, match=r"Cannot read IDX file: received path '.*missing'"):
        fashion_mnist.read_idx(tmp_path / "missing")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(ValueError, match=r"text is not an IDX file: received magic bytes 68656c6c"):
        fashion_mnist.read_idx(tmp_path / "text")
    (tmp_path / "header").write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match=r"header is truncated: received 8 bytes.*needs 16"):
        fashion_mnist.read_idx(tmp_path / "header")
    fashion_mnist.write_idx(tmp_path / "full", np.zeros((2, 3), np.int32))
    (tmp_path / "short").write_bytes((tmp_path / "full").read_bytes()[:-1])
    with pytest.raises(
        ValueError,
        match=r"short has the wrong size: received 23 data bytes; "
        r"expected 24 for shape \(2, 3\) and dtype int32",
    ):
        fashion_mnist.read_idx(tmp_path / "short")
    fashion_mnist.write_idx(tmp_path / "full.gz", np.zeros((50, 50), np.uint8))
    (tmp_path / "cut.gz").write_bytes((tmp_path / "full.gz").read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"cut\.gz is a damaged gzip file"):
        fashion_mnist.read_idx(tmp_path / "cut.gz")


# The real files.


@needs_debian
def test_default_source_is_the_debian_package_with_the_known_dataset(monkeypatch, caplog):
    monkeypatch.delenv(fashion_mnist.ENV_VAR, raising=False)
    monkeypatch.delenv(fashion_mnist.SOURCE_ENV_VAR, raising=False)
    assert fashion_mnist.find_source() == fashion_mnist.DataSource(
        "debian",
        str(DEBIAN_DIR),
        f"Debian package dataset-fashion-mnist ({DEBIAN_DIR}): the full 60,000/10,000-image set",
    )
    with caplog.at_level(logging.INFO, logger="absl"):
        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert "60000 train and 10000 test images from debian" in caplog.text
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == y_train.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    np.testing.assert_array_equal(y_train[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])  # ankle boot...
    np.testing.assert_array_equal(y_test[:5], [9, 2, 1, 1, 6])
    # Same bytes as an independent reader that skips the 16/8-byte headers.
    np.testing.assert_array_equal(
        x_train.ravel(), _reference_idx(DEBIAN_DIR / "train-images-idx3-ubyte.gz", 16)
    )
    np.testing.assert_array_equal(
        y_test, _reference_idx(DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz", 8)
    )


# Explicit path and environment variable.


@pytest.mark.parametrize("gz", [True, False])
def test_explicit_path(isolated, tmp_path, gz):
    expected = _write_small_set(tmp_path / "mine", gz=gz)
    assert fashion_mnist.find_source(tmp_path / "mine") == fashion_mnist.DataSource(
        "path",
        str(tmp_path / "mine"),
        f"folder ({tmp_path / 'mine'}): 30/20 images, not the full 60,000/10,000 set",
    )
    _assert_same(fashion_mnist.load_data(str(tmp_path / "mine")), expected)


def test_missing_path_is_an_error_not_a_fallback(isolated, tmp_path):
    with pytest.raises(ValueError, match=r"does not exist or is not a folder: received '.*nope'"):
        fashion_mnist.load_data(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"is not a folder: received '.*file'"):
        fashion_mnist.load_data(tmp_path / "file")


def test_path_lacking_files_names_the_missing_ones(isolated, tmp_path):
    _write_small_set(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "partial" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(
        ValueError,
        match=r"files missing: received folder .*partial, which lacks train-images-idx3-ubyte, "
        r"t10k-labels-idx1-ubyte; expected .*Fix:",
    ):
        fashion_mnist.load_data(tmp_path / "partial")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"lacks train-images-idx3-ubyte, train-labels"):
        fashion_mnist.find_source(tmp_path / "empty")


def test_corrupt_or_mismatched_files_name_the_file(isolated, tmp_path):
    folder = tmp_path / "bad"
    (x_train, y_train), _ = _write_small_set(folder)
    images_file = folder / "train-images-idx3-ubyte.gz"
    images_file.write_bytes(images_file.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz is a damaged gzip file"):
        fashion_mnist.load_data(folder)
    fashion_mnist.write_idx(images_file, x_train[:, :27, :27])
    with pytest.raises(
        ValueError,
        match=r"train-images.*received uint8 array of shape "
        r"\(30, 27, 27\); expected uint8 \(N, 28, 28\)",
    ):
        fashion_mnist.load_data(folder)
    fashion_mnist.write_idx(images_file, x_train[:-1])
    with pytest.raises(ValueError, match=r"train-labels.*received 30 labels.*expected 29"):
        fashion_mnist.load_data(folder)
    fashion_mnist.write_idx(images_file, x_train)
    fashion_mnist.write_idx(folder / "train-labels-idx1-ubyte.gz", y_train + 1)
    with pytest.raises(
        ValueError,
        match=r"received 30 labels with maximum 10; expected 30 "
        r"labels in \[0, 10\)",
    ):
        fashion_mnist.load_data(folder)
    fashion_mnist.write_idx(folder / "train-labels-idx1-ubyte.gz", y_train.astype(np.int32))
    with pytest.raises(
        ValueError,
        match=r"received int32 array of shape \(30,\); expected "
        r"uint8 \(N,\)",
    ):
        fashion_mnist.load_data(folder)


@pytest.mark.parametrize("subfolder", ["fashion-mnist", "fashion_mnist", ""])
def test_environment_variable(isolated, monkeypatch, tmp_path, subfolder):
    expected = _write_small_set(tmp_path / "data" / subfolder, seed=3)
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "data"))
    source = fashion_mnist.find_source()
    folder = tmp_path / "data" / subfolder
    assert source == fashion_mnist.DataSource(
        "env",
        str(folder),
        f"$KERAS_SSL_DATA_DIR folder ({folder}): 30/20 images, not the full 60,000/10,000 set",
    )
    _assert_same(fashion_mnist.load_data(), expected)


def test_environment_variable_before_debian(isolated, monkeypatch, tmp_path):
    env_set = _write_small_set(tmp_path / "env", seed=4)
    _write_small_set(tmp_path / "debian", seed=5)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "env"))
    _assert_same(fashion_mnist.load_data(), env_set)
    # An env folder without the files falls through to the next source.
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "elsewhere"))
    assert fashion_mnist.find_source().kind == "debian"


def test_incomplete_environment_folder_is_an_error(isolated, monkeypatch, tmp_path):
    _write_small_set(tmp_path / "env" / "fashion-mnist")
    (tmp_path / "env" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(tmp_path / "env"))
    with pytest.raises(
        ValueError,
        match=r"Incomplete Fashion-MNIST in \$KERAS_SSL_DATA_DIR: "
        r"received folder .*fashion-mnist, which lacks "
        r"t10k-images-idx3-ubyte;",
    ):
        fashion_mnist.load_data()


def test_incomplete_debian_folder_is_an_error(isolated, monkeypatch, tmp_path):
    _write_small_set(tmp_path / "debian")
    (tmp_path / "debian" / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    with pytest.raises(ValueError, match=r"Incomplete Fashion-MNIST in the Debian package"):
        fashion_mnist.find_source()


# TFDS and the embedded subset, the last two sources.


def test_tfds_is_used_when_no_local_files(monkeypatch, tmp_path):
    monkeypatch.delenv(fashion_mnist.ENV_VAR, raising=False)
    monkeypatch.delenv(fashion_mnist.SOURCE_ENV_VAR, raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fashion_mnist_tfds, "unreachable_hosts", lambda builder: "")  # "online"
    with tfds.testing.mock_data(num_examples=7):
        assert fashion_mnist.find_source().kind == "tfds"
        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
        reference = {
            split: list(tfds.as_numpy(tfds.load("fashion_mnist", split=split)))
            for split in ("train", "test")
        }
    for images, labels, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        assert images.dtype == labels.dtype == np.uint8 and images.shape == (7, 28, 28)
        np.testing.assert_array_equal(images, [e["image"][..., 0] for e in reference[split]])
        np.testing.assert_array_equal(labels, [e["label"] for e in reference[split]])


class _FakeBuilder:
    """Stands in for the TFDS fashion_mnist builder: records downloads, touches no network."""

    data_dir = "/fake/tfds/fashion_mnist/3.0.1"
    url_infos = {
        "http://fashion-mnist.example/train.gz": None,
        "http://fashion-mnist.example/test.gz": None,
        "https://mirror.example/labels.gz": None,
    }

    def __init__(self, prepared):
        self.prepared = prepared
        self.downloads = 0

    def is_prepared(self):
        return self.prepared

    def download_and_prepare(self):
        self.downloads += 1
        self.prepared = True

    def as_dataset(self, split, shuffle_files):
        images = np.full((3, 28, 28, 1), 7 if split == "train" else 8, np.uint8)
        return tf.data.Dataset.from_tensor_slices({"image": images, "label": np.arange(3)})


@pytest.fixture
def fake_tfds(isolated, monkeypatch):
    """A fake TFDS builder and a fake ``socket.create_connection`` that records its calls."""
    state = {"builder": _FakeBuilder(prepared=False), "connections": [], "online": True}

    class Connection:
        def close(self):
            pass

    def create_connection(address, timeout):
        state["connections"].append((address, timeout))
        if not state["online"]:
            raise OSError("no route to host")
        return Connection()

    monkeypatch.setattr(tfds, "builder", lambda name: state["builder"])
    monkeypatch.setattr(fashion_mnist_tfds.socket, "create_connection", create_connection)
    return state


def test_tfds_download_is_skipped_when_its_hosts_are_unreachable(fake_tfds, caplog):
    fake_tfds["online"] = False
    with caplog.at_level(logging.INFO, logger="absl"):
        assert fashion_mnist.find_source().kind == "embedded"
    timeout = fashion_mnist_tfds.PROBE_TIMEOUT_S
    assert fake_tfds["connections"] == [
        (("fashion-mnist.example", 80), timeout),
        (("mirror.example", 443), timeout),
    ]
    assert fake_tfds["builder"].downloads == 0
    assert (
        "TFDS fashion_mnist is unavailable (cannot be downloaded: fashion-mnist.example:80 "
        "unreachable: no route to host; mirror.example:443 unreachable: no route to host); "
        "using the embedded subset." in caplog.text
    )


def test_tfds_downloads_when_its_hosts_answer(fake_tfds):
    assert fashion_mnist.find_source() == fashion_mnist.DataSource(
        "tfds",
        _FakeBuilder.data_dir,
        f"TFDS fashion_mnist ({_FakeBuilder.data_dir}): 3/3 images, not the full 60,000/10,000 set",
    )
    assert fake_tfds["builder"].downloads == 1
    assert len(fake_tfds["connections"]) == 2
    # Once prepared, TFDS is used without probing or downloading again.
    assert fashion_mnist.find_source().kind == "tfds"
    assert fake_tfds["builder"].downloads == 1 and len(fake_tfds["connections"]) == 2


def test_tfds_without_download_needs_a_prepared_copy(fake_tfds):
    assert fashion_mnist.find_source(download=False).kind == "embedded"
    assert fake_tfds["connections"] == [] and fake_tfds["builder"].downloads == 0
    fake_tfds["builder"].prepared = True
    assert fashion_mnist.find_source(download=False).kind == "tfds"


def test_embedded_subset_is_the_last_resort(isolated, caplog):
    with caplog.at_level(logging.INFO, logger="absl"):
        source = fashion_mnist.find_source()
        loaded = fashion_mnist.load_data()
    assert isolated == ["fashion_mnist", "fashion_mnist"]  # TFDS was tried, and failed
    assert "TFDS fashion_mnist is unavailable (OSError: offline); using the embedded" in caplog.text
    assert "2000 train and 500 test images from embedded" in caplog.text
    assert source == fashion_mnist.DataSource(
        "embedded",
        str(fashion_mnist.EMBEDDED_DIR),
        f"embedded 2,000/500-image subset ({fashion_mnist.EMBEDDED_DIR}): install "
        "dataset-fashion-mnist or set KERAS_SSL_DATA_DIR for the full 60,000/10,000 set",
    )
    _assert_same(loaded, fashion_mnist.load_data(subset=True))


def test_embedded_subset_is_class_balanced():
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(subset=True)
    assert x_train.shape == (2000, 28, 28) and x_test.shape == (500, 28, 28)
    np.testing.assert_array_equal(np.bincount(y_train), [200] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [50] * 10)
    total = sum(path.stat().st_size for path in fashion_mnist.EMBEDDED_DIR.iterdir())
    assert total < 1.1e6
    notice = (fashion_mnist.EMBEDDED_DIR / "NOTICE").read_text()
    assert "Copyright (c) 2017 Zalando SE" in notice and "MIT License" in notice


@needs_debian
def test_embedded_subset_equals_the_first_debian_images_of_each_class(monkeypatch, tmp_path):
    (x_full, y_full), (xt_full, yt_full) = fashion_mnist.load_data(DEBIAN_DIR)
    (x_sub, y_sub), (xt_sub, yt_sub) = fashion_mnist.load_data(subset=True)
    for full_x, full_y, sub_x, sub_y, per_class in (
        (x_full, y_full, x_sub, y_sub, 200),
        (xt_full, yt_full, xt_sub, yt_sub, 50),
    ):
        seen = np.zeros(10, int)
        keep = []
        for index, label in enumerate(full_y):  # plain loop, no shared code with make_subset
            if seen[label] < per_class:
                seen[label] += 1
                keep.append(index)
        assert sub_x.tobytes() == full_x[keep].tobytes()
        np.testing.assert_array_equal(sub_y, full_y[keep])
    # make_subset rebuilds the shipped files byte for byte.
    train_indices, test_indices = fashion_mnist.make_subset(DEBIAN_DIR, tmp_path / "subset")
    assert len(train_indices) == 2000 and len(test_indices) == 500
    assert np.all(np.diff(train_indices) > 0)
    for path in sorted(fashion_mnist.EMBEDDED_DIR.iterdir()):
        assert (tmp_path / "subset" / path.name).read_bytes() == path.read_bytes(), path.name


def test_make_subset_on_small_files(tmp_path):
    (x_train, y_train), (x_test, y_test) = _write_small_set(tmp_path / "src", per_class=(4, 3))
    train_indices, test_indices = fashion_mnist.make_subset(
        tmp_path / "src", tmp_path / "out", train_per_class=2, test_per_class=1
    )
    expected_train = np.sort(np.concatenate([np.flatnonzero(y_train == c)[:2] for c in range(10)]))
    np.testing.assert_array_equal(train_indices, expected_train)
    (sub_x, sub_y), (sub_xt, sub_yt) = fashion_mnist.load_data(tmp_path / "out")
    np.testing.assert_array_equal(sub_x, x_train[expected_train])
    np.testing.assert_array_equal(sub_y, y_train[expected_train])
    np.testing.assert_array_equal(sub_xt, x_test[test_indices])
    np.testing.assert_array_equal(np.bincount(sub_yt), [1] * 10)
    notice = (tmp_path / "out" / "NOTICE").read_text()
    assert "20 training images, the\n  first 2 of each" in notice


def test_make_subset_errors(tmp_path):
    _write_small_set(tmp_path / "src", per_class=(4, 3))
    with pytest.raises(
        ValueError,
        match=r"Cannot take 5 training images of class 0: received "
        r"only 4\. Fix: ask for at most 4",
    ):
        fashion_mnist.make_subset(tmp_path / "src", tmp_path / "out", train_per_class=5)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=r"`test_per_class` must be an integer >= 1"):
            fashion_mnist.make_subset(tmp_path / "src", tmp_path / "out", test_per_class=bad)
    with pytest.raises(ValueError, match=r"does not exist or is not a folder"):
        fashion_mnist.make_subset(tmp_path / "absent", tmp_path / "out")


def test_subset_with_path_is_an_error(tmp_path):
    with pytest.raises(
        ValueError, match=r"received subset=True with path='.*' and source=None; expected subset"
    ):
        fashion_mnist.load_data(tmp_path, subset=True)


def test_missing_embedded_files_are_an_error(isolated, monkeypatch, tmp_path):
    monkeypatch.setattr(fashion_mnist, "EMBEDDED_DIR", tmp_path / "gone")
    with pytest.raises(ValueError, match=r"embedded Fashion-MNIST subset is missing.*reinstall"):
        fashion_mnist.load_data()
