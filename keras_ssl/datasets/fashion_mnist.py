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

Fashion-MNIST is (c) 2017 Zalando SE, MIT licence: https://github.com/zalandoresearch/fashion-mnist
"""

import dataclasses
import functools
import gzip
import math
import os
import pathlib
import socket
import urllib.parse
import zlib

import numpy as np
from absl import logging

ENV_VAR = "KERAS_SSL_DATA_DIR"
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
# Seconds to wait for a TFDS download host before falling back to the embedded subset.
PROBE_TIMEOUT_S = 5.0

# IDX type codes (third byte of the magic number) and the big-endian dtypes they denote.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"

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
    """Where :func:`load_data` reads Fashion-MNIST from.

    Attributes:
        kind: one of ``"path"``, ``"env"``, ``"debian"``, ``"tfds"``, ``"embedded"``.
        location: the folder holding the IDX files, or the TFDS data folder.
    """

    kind: str
    location: str

    def __str__(self):
        return f"{self.kind} ({self.location})"


def read_idx(path):
    """Reads an IDX file (optionally gzipped) into a NumPy array.

    The gzip compression is recognised from the file's first bytes, not its name.

    Args:
        path: path of the file.

    Returns:
        An array in native byte order with the dtype and shape the IDX header declares.

    Raises:
        ValueError: if the file is missing, not valid gzip, has a bad magic number, or its size
            does not match the shape in its header.
    """
    path = pathlib.Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: received magic bytes {raw[:4].hex() or '(empty)'}; "
            "expected 00 00 <type code 08/09/0b/0c/0d/0e> <rank>. "
            "Fix: pass an IDX file such as train-images-idx3-ubyte.gz."
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"{path} is truncated: received {len(raw)} bytes; its header alone needs "
            f"{header_size} bytes for {ndim} dimensions. Fix: download the file again."
        )
    shape = tuple(int(size) for size in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header_size != expected:
        raise ValueError(
            f"{path} has the wrong size: received {len(raw) - header_size} data bytes; expected "
            f"{expected} for shape {shape} and dtype {dtype.newbyteorder('=').name}. "
            "Fix: the file is truncated or corrupt; download it again."
        )
    array = np.frombuffer(raw, dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Writes an array as an IDX file, gzipped when ``path`` ends in ``.gz``.

    The gzip stream carries no timestamp or file name, so equal arrays give equal bytes.

    Args:
        path: destination file.
        array: array of dtype uint8, int8, int16, int32, float32 or float64 and rank >= 1.

    Raises:
        ValueError: for a dtype or rank that IDX cannot store.
    """
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None or not 1 <= array.ndim <= 255:
        raise ValueError(
            f"IDX cannot store this array: received dtype {array.dtype.name} and shape "
            f"{array.shape}; expected dtype uint8, int8, int16, int32, float32 or float64 and "
            "rank 1 to 255. Fix: cast the array (e.g. array.astype(np.uint8)) or reshape it."
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + np.ascontiguousarray(array, _IDX_DTYPES[code]).tobytes()
    path = pathlib.Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)


def find_source(path=None, download=True):
    """Returns the :class:`DataSource` that :func:`load_data` would read.

    With ``download=True`` and no local files this prepares the TFDS copy (downloading it), as
    :func:`load_data` would.

    Args:
        path: optional folder with the four IDX files; see :func:`load_data`.
        download: whether TFDS may download ``fashion_mnist``.

    Returns:
        A :class:`DataSource`.
    """
    return _resolve(path, download)[0]


def load_data(path=None, subset=False, download=True):
    """Loads Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``.

    The arrays match ``keras.datasets.fashion_mnist.load_data()``: images ``uint8``
    ``(N, 28, 28)``, labels ``uint8`` ``(N,)`` in ``[0, 10)``. The sources tried are listed in
    the module docstring; the one used is logged with ``absl.logging.info``.

    Args:
        path: optional folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``)
            or not. When given, it is the only source tried.
        subset: if True, load the 2000/500-image subset shipped inside keras_ssl.
        download: whether TFDS may download ``fashion_mnist`` when no local copy is found.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``.

    Raises:
        ValueError: if ``path`` lacks the files, a folder holds only some of them, or a file
            is corrupt.
    """
    if subset:
        if path is not None:
            raise ValueError(
                f"load_data received both path={str(path)!r} and subset=True; expected one. "
                "Fix: drop `path` to load the embedded subset, or drop `subset=True`."
            )
        source, load = _embedded_source()
    else:
        source, load = _resolve(path, download)
    (x_train, y_train), (x_test, y_test) = load()
    logging.info(
        "Fashion-MNIST: %d train and %d test images from %s.", len(x_train), len(x_test), source
    )
    return (x_train, y_train), (x_test, y_test)


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
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise ValueError(
                f"`{name}` must be a positive integer; received {count!r}. Fix: pass e.g. "
                f"{name}=10."
            )
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


def _resolve(path, download):
    """Returns ``(DataSource, load)`` for the first available source; ``load()`` reads it."""
    if path is not None:
        folder = _checked_folder(path)
        return DataSource("path", str(folder)), functools.partial(_load_folder, folder)
    env_dir = os.environ.get(ENV_VAR)
    if env_dir:
        root = pathlib.Path(env_dir)
        for folder in (root / "fashion-mnist", root / "fashion_mnist", root):
            if _holds_idx_files(folder, f"${ENV_VAR}"):
                return DataSource("env", str(folder)), functools.partial(_load_folder, folder)
        logging.warning(
            "$%s=%s holds no Fashion-MNIST IDX files (looked in it and its fashion-mnist and "
            "fashion_mnist subfolders); trying the next source.",
            ENV_VAR,
            env_dir,
        )
    if _holds_idx_files(DEBIAN_DIR, "the Debian package dataset-fashion-mnist"):
        folder = DEBIAN_DIR
        return DataSource("debian", str(folder)), functools.partial(_load_folder, folder)
    builder = _prepared_tfds_builder(download)
    if builder is not None:
        return DataSource("tfds", str(builder.data_dir)), functools.partial(_load_tfds, builder)
    return _embedded_source()


def _embedded_source():
    folder = EMBEDDED_DIR
    if not _holds_idx_files(folder, "the keras_ssl installation"):
        raise ValueError(
            f"The embedded Fashion-MNIST subset is missing: received no IDX files in {folder}; "
            f"expected {', '.join(f'{name}.gz' for name in FILE_NAMES)}. Fix: reinstall "
            "keras_ssl with its package data, or pass `path` to a folder with the full files."
        )
    return DataSource("embedded", str(folder)), functools.partial(_load_folder, folder)


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


def _read_bytes(path):
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ValueError(
            f"Cannot read IDX file: received path {str(path)!r} ({error.strerror}); expected "
            "a readable file. Fix: check the path."
        ) from error
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(
            f"{path} is a damaged gzip file ({error}): received {len(raw)} compressed bytes; "
            "expected a complete gzip stream. Fix: download the file again."
        ) from error


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


def _prepared_tfds_builder(download):
    """The TFDS ``fashion_mnist`` builder, prepared, or None if TFDS cannot provide it."""
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder("fashion_mnist")
        if not builder.is_prepared():
            if not download:
                logging.info("TFDS fashion_mnist is not prepared and download=False; skipping.")
                return None
            # Offline, TFDS retries each download for minutes before failing: probe first.
            unreachable = _unreachable_hosts(builder)
            if unreachable:
                logging.warning(
                    "TFDS fashion_mnist cannot be downloaded (%s); using the embedded subset.",
                    unreachable,
                )
                return None
            builder.download_and_prepare()
    except Exception as error:  # offline, missing dependency, ...: every failure falls through
        logging.warning(
            "TFDS fashion_mnist is unavailable (%s: %s); using the embedded subset.",
            type(error).__name__,
            error,
        )
        return None
    return builder


def _unreachable_hosts(builder):
    """Describes the download hosts of ``builder`` that refuse a TCP connection; "" if none."""
    problems = []
    for host, port in sorted({_host_and_port(url) for url in builder.url_infos or {}}):
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
        except OSError as error:
            problems.append(f"{host}:{port} unreachable: {error}")
    return "; ".join(problems)


def _host_and_port(url):
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _load_tfds(builder):
    import tensorflow_datasets as tfds

    def split_arrays(split):
        dataset = builder.as_dataset(split=split, shuffle_files=False).batch(10_000)
        batches = list(tfds.as_numpy(dataset))
        images = np.concatenate([batch["image"] for batch in batches]).astype(np.uint8)
        labels = np.concatenate([batch["label"] for batch in batches]).astype(np.uint8)
        return images.reshape(-1, *IMAGE_SHAPE), labels

    return split_arrays("train"), split_arrays("test")
