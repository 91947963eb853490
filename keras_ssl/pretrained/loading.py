"""Pretrained encoders by name: the weights file found (or downloaded), verified, loaded."""

import hashlib
import os
import pathlib

import keras

from keras_ssl import backbones
from keras_ssl.pretrained.registry import get_entry

#: Where the shipped ``.weights.h5`` files live (package data).
WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "weights"
#: ``keras.utils.get_file``'s sub-folder for downloaded weights (under ``~/.keras`` by default).
CACHE_SUBDIR = "keras_ssl_pretrained"


def load(name, cache_dir=None):
    """Builds the encoder registered as ``name`` and loads its pretrained weights.

    The weights file is verified against the registry's SHA-256 before it is read. Shipped
    weights are read from the package; weights with a URL are downloaded on first use with
    ``keras.utils.get_file`` (progress bar) and cached, later calls read the cache.

    Args:
        name: a name from :func:`keras_ssl.pretrained.list_weights`.
        cache_dir: folder of the download cache (default ``keras.utils.get_file``'s,
            ``~/.keras``); the file goes in its ``keras_ssl_pretrained/`` sub-folder.

    Returns:
        A ``keras.Model`` of the registered architecture, built for the entry's input shape:
        ``float32`` images in ``[0, 1]`` shaped ``[batch, H, W, C]`` to ``[batch, D]``
        features (as in training; ``keras_ssl.export.export_encoder`` turns it into a
        SavedModel that takes ``uint8`` images). It is trainable, for fine-tuning.

    Raises:
        ValueError: for an unknown name (the message lists the names), a file whose SHA-256
            differs from the registry's, or a download that fails.
    """
    entry = get_entry(name)
    path = weights_path(name, cache_dir=cache_dir)
    encoder = build_encoder(entry)
    encoder.load_weights(path)
    return encoder


def build_encoder(entry):
    """A freshly initialised encoder of ``entry``'s architecture and input shape."""
    builder = backbones.REGISTRY[entry.architecture]
    return builder(tuple(entry.input_shape), **dict(entry.architecture_kwargs))


def weights_path(name, cache_dir=None):
    """The local path of ``name``'s verified weights file, downloading it first if needed.

    Args:
        name: a registered name.
        cache_dir: download cache folder (see :func:`load`).

    Returns:
        The path as a string.

    Raises:
        ValueError: for an unknown name, a missing shipped file, a failed download or a
            SHA-256 mismatch (a mismatching download is deleted from the cache).
    """
    entry = get_entry(name)
    if entry.file is not None:
        path = WEIGHTS_DIR / entry.file
        if not path.is_file():
            raise ValueError(
                f"Weights {name!r}: the shipped file {str(path)!r} is missing; expected it in "
                "the installed package. Fix: reinstall keras_ssl, or rebuild it with "
                f"`python -m keras_ssl.pretrained.build --name {name}`."
            )
        verify_sha256(path, entry.sha256, name)
        return str(path)
    return _download(entry, cache_dir)


def sha256_of_file(path):
    """Hex SHA-256 of the file at ``path`` (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path, expected, name):
    """Raises ``ValueError`` unless the file at ``path`` hashes to ``expected``."""
    received = sha256_of_file(path)
    if received != expected:
        raise ValueError(
            f"Weights {name!r}: the SHA-256 of {str(path)!r} is {received}; expected {expected} "
            "(the registry's). The file is corrupted, truncated or not the registered one. "
            "Fix: delete it and load again (a download is fetched anew), reinstall keras_ssl "
            "for shipped weights, or correct the registry entry's sha256."
        )


def _download(entry, cache_dir):
    # The hash in the cached name: a registry update never reads an older file's cache.
    file_name = f"{entry.name}-{entry.sha256[:12]}.weights.h5"
    kwargs = {}
    if cache_dir is not None:  # get_file falls back to /tmp/.keras for a folder not (yet) there
        os.makedirs(cache_dir, exist_ok=True)
        kwargs["cache_dir"] = os.fspath(cache_dir)
    path = None
    for force_download in (False, True):  # a cached file that fails the check is fetched anew
        try:
            path = keras.utils.get_file(
                file_name,
                origin=entry.url,
                cache_subdir=CACHE_SUBDIR,
                force_download=force_download,
                **kwargs,
            )
        except Exception as error:  # get_file raises a bare Exception for URL and HTTP errors
            raise ValueError(
                f"Weights {entry.name!r}: downloading {entry.url!r} failed ({error}); expected "
                "the weights file there. Fix: check the network and the URL, or put the file "
                f"in the download cache as {CACHE_SUBDIR}/{file_name}."
            ) from error
        received = sha256_of_file(path)
        if received == entry.sha256:
            return path
    os.remove(path)
    raise ValueError(
        f"Weights {entry.name!r}: the file downloaded from {entry.url!r} has SHA-256 "
        f"{received}; expected {entry.sha256} (the registry's). It was deleted from the cache. "
        "Fix: check the URL (the server may hold another version of the file), or correct the "
        "registry entry's sha256."
    )
