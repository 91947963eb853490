"""Fashion-MNIST as ``uint8`` NumPy arrays, found locally before anything is downloaded.

:func:`load_data` returns the same arrays as ``keras.datasets.fashion_mnist.load_data()`` but
reads them from the first of these sources that exists:

1. ``path``, a folder holding the four IDX files (an error if it lacks them);
2. ``$KERAS_SSL_DATA_DIR``: its ``fashion-mnist`` or ``fashion_mnist`` subfolder, or the folder
   itself;
3. the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);
4. TensorFlow Datasets ``fashion_mnist`` (downloaded when ``download=True``);
5. the class-balanced subset shipped inside keras_ssl (2000 train / 500 test images), made
   by :func:`make_subset` from the Debian package's files.

``source`` (or ``$KERAS_SSL_DATA_SOURCE`` when ``source`` is None) forces one of them instead:
``"path"`` (1, else 2), ``"debian"`` (3), ``"tfds"`` (4) or ``"embedded"`` (5); a forced source
that is not available is an error, never a fallback.

Fashion-MNIST is (c) 2017 Zalando SE, MIT licence: https://github.com/zalandoresearch/fashion-mnist
"""

import dataclasses
import functools
import os
import pathlib

import numpy as np
from absl import logging

from keras_ssl.datasets import fashion_mnist_tfds
from keras_ssl.datasets.idx import read_idx, write_idx
from keras_ssl.validation import check_int

ENV_VAR = "KERAS_SSL_DATA_DIR"
SOURCE_ENV_VAR = "KERAS_SSL_DATA_SOURCE"
SOURCES = ("path", "debian", "tfds", "embedded")
DEBIAN_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
EMBEDDED_DIR = pathlib.Path(__file__).resolve().parent / "data" / "fashion_mnist_subset"
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (28, 28)
FULL_SIZES = (60_000, 10_000)  # train and test images of the complete dataset
# Seconds to wait for a TFDS download host before falling back to the embedded subset.
_NOTICE = """\
Fashion-MNIST subset shipped with keras_ssl
===========================================

The four gzipped IDX files in this folder are a class-balanced subset of Fashion-MNIST
(https://github.com/zalandoresearch/fashion-mnist), in the original file format:

- train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz: {num_train} training images, the
  first {train_per_class} of each of the 10 classes in the order of the original training files;
- t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz: {num_test} test images, the first
  {test_per_class} of each of the 10 classes in the order of the original test files.

The selected images keep their original relative order; pixels and labels are unchanged.
The files were made by keras_ssl.datasets.fashion_mnist.make_subset from the original
Fashion-MNIST files.

Fashion-MNIST is distributed under the MIT License:

The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where :func:`load_data` read Fashion-MNIST from, and what that means.

    Attributes:
        kind: one of ``"path"``, ``"env"`` (``$KERAS_SSL_DATA_DIR``), ``"debian"``, ``"tfds"``,
            ``"embedded"``.
        location: the folder holding the IDX files, or the TFDS data folder.
        description: one line for people, with the real image counts, e.g. ``embedded
            2,000/500-image subset (...): install dataset-fashion-mnist or set
            KERAS_SSL_DATA_DIR for the full 60,000/10,000 set``.
    """

    kind: str
    location: str
    description: str

    def __str__(self):
        return f"{self.kind} ({self.location})"


def find_source(path=None, download=True, source=None):
    """Returns the :class:`DataSource` that :func:`load_data` reads, loading it to count it.

    With ``download=True`` and no local files this prepares the TFDS copy (downloading it), as
    :func:`load_data` would.

    Args:
        path: optional folder with the four IDX files; see :func:`load_data`.
        download: whether TFDS may download ``fashion_mnist``.
        source: optional source to force; see :func:`load_data`.

    Returns:
        A :class:`DataSource`.
    """
    return load_data(path, download=download, source=source, return_source=True)[1]


def load_data(path=None, subset=False, download=True, source=None, return_source=False):
    """Loads Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``.

    The arrays match ``keras.datasets.fashion_mnist.load_data()``: images ``uint8``
    ``(N, 28, 28)``, labels ``uint8`` ``(N,)`` in ``[0, 10)``. The sources tried are listed in
    the module docstring; the one used is logged with ``absl.logging.info``.

    Args:
        path: optional folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``)
            or not. When given, it is the only source tried.
        subset: if True, load the 2000/500-image subset shipped inside keras_ssl (the same as
            ``source="embedded"``).
        download: whether TFDS may download ``fashion_mnist`` when no local copy is found.
        source: None for the automatic order (or ``$KERAS_SSL_DATA_SOURCE`` when it is set), or
            the only source to read: ``"path"`` (``path``, else ``$KERAS_SSL_DATA_DIR``),
            ``"debian"``, ``"tfds"`` or ``"embedded"``.
        return_source: if True, also return the :class:`DataSource` that was read.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, followed by the :class:`DataSource` when
        ``return_source`` is True.

    Raises:
        ValueError: for an unknown ``source``, a forced source that is not available, ``path``
            or ``subset`` that contradict ``source``, a ``path`` lacking the files, a folder
            holding only some of them, or a corrupt file.
    """
    source, origin = (source, "source") if source is not None else _source_from_env()
    if source is not None and source not in SOURCES:
        raise ValueError(
            f"Unknown Fashion-MNIST source: received {origin}={source!r}; expected one of "
            f"{', '.join(map(repr, SOURCES))} (or no value for the automatic order). Fix: use "
            f"one of them, e.g. {origin}='embedded'"
            + (f", or unset {SOURCE_ENV_VAR}." if origin != "source" else ".")
        )
    if subset:
        if path is not None or source not in (None, "embedded"):
            raise ValueError(
                f"load_data received subset=True with path={_text(path)} and "
                f"{origin}={source!r}; expected subset=True alone. Fix: drop `path` and "
                "`source` to load the embedded subset, or drop `subset=True`."
            )
        source = "embedded"
    if path is not None and source not in (None, "path"):
        raise ValueError(
            f"load_data received path={_text(path)} and {origin}={source!r}; expected a path "
            f"only with source 'path' or no source. Fix: drop `path` to read {source!r}, or "
            f"use {origin}='path'."
        )
    kind, location, load = _forced(source, path, download) if source else _resolve(path, download)
    (x_train, y_train), (x_test, y_test) = load()
    data_source = DataSource(kind, location, _describe(kind, location, len(x_train), len(x_test)))
    logging.info(
        "Fashion-MNIST: %d train and %d test images from %s.",
        len(x_train),
        len(x_test),
        data_source,
    )
    splits = (x_train, y_train), (x_test, y_test)
    return (splits, data_source) if return_source else splits


def make_subset(source_dir, out_dir, train_per_class=200, test_per_class=50):
    """Writes a class-balanced subset of Fashion-MNIST as four gzipped IDX files and a NOTICE.

    For each class the first ``train_per_class`` training and ``test_per_class`` test images
    in file order are kept, in their original relative order. The output is byte-for-byte
    deterministic; it is how ``keras_ssl/datasets/data/fashion_mnist_subset`` was made.

    Args:
        source_dir: folder with the full Fashion-MNIST IDX files.
        out_dir: folder to write to (created if needed).
        train_per_class: training images kept per class.
        test_per_class: test images kept per class.

    Returns:
        ``(train_indices, test_indices)``: sorted ``int64`` indices of the kept images in the
        source files.

    Raises:
        ValueError: for a non-positive count, or a class with fewer images than requested.
    """
    for name, count in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        check_int(count, name, fix=f"pass e.g. {name}=10.")
    (x_train, y_train), (x_test, y_test) = _load_folder(_checked_folder(source_dir))
    train_indices = _first_per_class(y_train, train_per_class, "training")
    test_indices = _first_per_class(y_test, test_per_class, "test")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_idx(out_dir / f"{TRAIN_IMAGES}.gz", x_train[train_indices])
    write_idx(out_dir / f"{TRAIN_LABELS}.gz", y_train[train_indices])
    write_idx(out_dir / f"{TEST_IMAGES}.gz", x_test[test_indices])
    write_idx(out_dir / f"{TEST_LABELS}.gz", y_test[test_indices])
    notice = _NOTICE.format(
        num_train=len(train_indices),
        num_test=len(test_indices),
        train_per_class=train_per_class,
        test_per_class=test_per_class,
    )
    (out_dir / "NOTICE").write_text(notice, encoding="utf-8")
    return train_indices, test_indices


def _source_from_env():
    """``(source, where it came from)`` for ``$KERAS_SSL_DATA_SOURCE``; ``(None, ...)`` if unset."""
    value = os.environ.get(SOURCE_ENV_VAR)
    return (value, f"${SOURCE_ENV_VAR}") if value else (None, "source")


def _text(path):
    return None if path is None else repr(str(path))


def _describe(kind, location, num_train, num_test):
    """The one-line human description of a :class:`DataSource`."""
    counts = f"{num_train:,}/{num_test:,}"
    full = f"{FULL_SIZES[0]:,}/{FULL_SIZES[1]:,}"
    if kind == "embedded":
        return (
            f"embedded {counts}-image subset ({location}): install dataset-fashion-mnist or "
            f"set {ENV_VAR} for the full {full} set"
        )
    what = {
        "path": "folder",
        "env": f"${ENV_VAR} folder",
        "debian": "Debian package dataset-fashion-mnist",
        "tfds": "TFDS fashion_mnist",
    }[kind]
    if (num_train, num_test) == FULL_SIZES:
        return f"{what} ({location}): the full {full}-image set"
    return f"{what} ({location}): {counts} images, not the full {full} set"


def _folder(kind, folder):
    return kind, str(folder), functools.partial(_load_folder, folder)


def _env_folder():
    """The ``$KERAS_SSL_DATA_DIR`` folder holding the files, or None; raises if only some."""
    root = pathlib.Path(os.environ[ENV_VAR])
    for folder in (root / "fashion-mnist", root / "fashion_mnist", root):
        if _holds_idx_files(folder, f"${ENV_VAR}"):
            return folder
    return None


def _resolve(path, download):
    """Returns ``(kind, location, load)`` for the first available source; ``load()`` reads it."""
    if path is not None:
        return _folder("path", _checked_folder(path))
    if os.environ.get(ENV_VAR):
        folder = _env_folder()
        if folder is not None:
            return _folder("env", folder)
        logging.warning(
            "$%s=%s holds no Fashion-MNIST IDX files (looked in it and its fashion-mnist and "
            "fashion_mnist subfolders); trying the next source.",
            ENV_VAR,
            os.environ[ENV_VAR],
        )
    if _holds_idx_files(DEBIAN_DIR, "the Debian package dataset-fashion-mnist"):
        return _folder("debian", DEBIAN_DIR)
    builder, problem = fashion_mnist_tfds.prepared_builder(download)
    if builder is not None:
        return (
            "tfds",
            str(builder.data_dir),
            functools.partial(fashion_mnist_tfds.load_arrays, builder),
        )
    logging.warning("TFDS fashion_mnist is unavailable (%s); using the embedded subset.", problem)
    return _embedded_source()


def _forced(source, path, download):
    """``(kind, location, load)`` for ``source`` alone; raises if it is not available."""
    if source == "embedded":
        return _embedded_source()
    if source == "path":
        if path is not None:
            return _folder("path", _checked_folder(path))
        folder = _env_folder() if os.environ.get(ENV_VAR) else None
        if folder is None:
            found = (
                f"${ENV_VAR}={os.environ[ENV_VAR]!r} holds no IDX files (looked in it and its "
                "fashion-mnist and fashion_mnist subfolders)"
                if os.environ.get(ENV_VAR)
                else f"no path was given and ${ENV_VAR} is not set"
            )
            raise ValueError(
                f"Fashion-MNIST source 'path' was asked for, but {found}; expected a folder "
                f"with {', '.join(FILE_NAMES)} (each may end in .gz). Fix: set {ENV_VAR} (or "
                "config.data.data_dir / `path`) to that folder."
            )
        return _folder("env", folder)
    if source == "debian":
        if not _holds_idx_files(DEBIAN_DIR, "the Debian package dataset-fashion-mnist"):
            raise ValueError(
                f"Fashion-MNIST source 'debian' was asked for, but {DEBIAN_DIR} holds no IDX "
                "files; expected the files of the Debian package dataset-fashion-mnist there. "
                "Fix: `sudo apt-get install dataset-fashion-mnist`, or choose another source."
            )
        return _folder("debian", DEBIAN_DIR)
    builder, problem = fashion_mnist_tfds.prepared_builder(download)
    if builder is None:
        raise ValueError(
            f"Fashion-MNIST source 'tfds' was asked for, but TFDS fashion_mnist is unavailable "
            f"({problem}); expected a prepared or downloadable TFDS copy. Fix: `pip install "
            "tensorflow-datasets` and download it (download=True with network access, or "
            "`tfds build fashion_mnist`), or choose another source."
        )
    return "tfds", str(builder.data_dir), functools.partial(fashion_mnist_tfds.load_arrays, builder)


def _embedded_source():
    folder = EMBEDDED_DIR
    if not _holds_idx_files(folder, "the keras_ssl installation"):
        raise ValueError(
            f"The embedded Fashion-MNIST subset is missing: received no IDX files in {folder}; "
            f"expected {', '.join(f'{name}.gz' for name in FILE_NAMES)}. Fix: reinstall "
            "keras_ssl with its package data, or pass `path` to a folder with the full files."
        )
    return _folder("embedded", folder)


def _idx_files(folder):
    """Maps each expected file name to its path in ``folder`` (``.gz`` preferred)."""
    found = {}
    for name in FILE_NAMES:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def _missing_message(folder, found, what):
    missing = [name for name in FILE_NAMES if name not in found]
    return (
        f"{what}: received folder {folder}, which lacks {', '.join(missing)}; expected the four "
        f"Fashion-MNIST IDX files {', '.join(FILE_NAMES)} (each may end in .gz). Fix: copy the "
        "missing files there (https://github.com/zalandoresearch/fashion-mnist), or install "
        "the Debian package dataset-fashion-mnist."
    )


def _holds_idx_files(folder, what):
    """True if ``folder`` holds all four files, False if none; raises if only some."""
    found = _idx_files(folder)
    if found and len(found) < len(FILE_NAMES):
        raise ValueError(_missing_message(folder, found, f"Incomplete Fashion-MNIST in {what}"))
    return bool(found)


def _checked_folder(path):
    folder = pathlib.Path(path)
    if not folder.is_dir():
        raise ValueError(
            f"Fashion-MNIST path does not exist or is not a folder: received {str(path)!r}; "
            f"expected a folder holding {', '.join(FILE_NAMES)} (each may end in .gz). "
            "Fix: pass the folder that holds the IDX files, or path=None to search the "
            "default locations."
        )
    found = _idx_files(folder)
    if len(found) < len(FILE_NAMES):
        raise ValueError(_missing_message(folder, found, "Fashion-MNIST files missing"))
    return folder


def _load_folder(folder):
    files = _idx_files(folder)
    x_train = _check_images(files[TRAIN_IMAGES])
    y_train = _check_labels(files[TRAIN_LABELS], len(x_train))
    x_test = _check_images(files[TEST_IMAGES])
    y_test = _check_labels(files[TEST_LABELS], len(x_test))
    return (x_train, y_train), (x_test, y_test)


def _check_images(path):
    images = read_idx(path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"{path} does not hold Fashion-MNIST images: received {images.dtype.name} array of "
            f"shape {images.shape}; expected uint8 (N, 28, 28) (IDX magic number 2051). "
            "Fix: check that the image and label files are not swapped or from another dataset."
        )
    return images


def _check_labels(path, num_images):
    labels = read_idx(path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{path} does not hold Fashion-MNIST labels: received {labels.dtype.name} array of "
            f"shape {labels.shape}; expected uint8 (N,) (IDX magic number 2049). "
            "Fix: check that the image and label files are not swapped or from another dataset."
        )
    if len(labels) != num_images or (len(labels) and labels.max() >= NUM_CLASSES):
        raise ValueError(
            f"{path} does not match its images: received {len(labels)} labels with maximum "
            f"{labels.max() if len(labels) else None}; expected {num_images} labels in "
            f"[0, {NUM_CLASSES}). Fix: use image and label files from the same split."
        )
    return labels


def _first_per_class(labels, per_class, split):
    indices = []
    for label in range(NUM_CLASSES):
        of_class = np.flatnonzero(labels == label)
        if len(of_class) < per_class:
            raise ValueError(
                f"Cannot take {per_class} {split} images of class {label}: received only "
                f"{len(of_class)}. Fix: ask for at most {len(of_class)} per class."
            )
        indices.append(of_class[:per_class])
    return np.sort(np.concatenate(indices)).astype(np.int64)
