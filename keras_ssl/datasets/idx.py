"""The IDX file format of MNIST and Fashion-MNIST (optionally gzipped): read and write."""

import gzip
import math
import pathlib
import zlib

import numpy as np

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
