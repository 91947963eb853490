"""SavedModel export of encoders: ``uint8`` images in, L2-normalised embeddings out.

The exported folder loads with ``tf.saved_model.load`` in a process that has TensorFlow but not
keras_ssl (nor Keras)::

    encoder = tf.saved_model.load("encoder/")
    embeddings = encoder.serve(images_uint8)  # [batch, D], unit L2 norm
    # TF Serving: signature "serving_default" / "serve", input "images", output "embeddings"

``export_tflite(model, "encoder.tflite", quantize=None | "dynamic" | "float16")`` writes the
same signature as a TFLite (LiteRT) file (``keras_ssl/export_tflite.py``).
"""

import hashlib
import json
import os
import shutil
import uuid

import keras
import tensorflow as tf

METADATA_FILE = "keras_ssl_export.json"


def export_encoder(model, path, overwrite=False, verbose=False):
    """Writes ``model``'s encoder as a SavedModel with a ``serve`` signature.

    The signature takes ``uint8`` images ``[batch, H, W, C]``, applies the training
    preprocessing (scaling to ``[0, 1]``), runs the encoder in inference mode and returns
    ``{"embeddings": [batch, D]}`` with unit L2 norm. The folder is written to a temporary sibling
    and moved into place only when complete, so a failed export never leaves a half-written one.

    Args:
        model: an ``SSLMethod`` (its ``export_encoder`` is exported: the trained encoder, or
            the teacher for DINO) or an encoder ``keras.Model``.
        path: destination folder.
        overwrite: replace a folder that holds a different model (or other files).
        verbose: print the SavedModel's endpoints.

    Returns:
        The destination path as a string.

    Raises:
        ValueError: when ``path`` holds something else and ``overwrite`` is False.
    """
    encoder = getattr(model, "export_encoder", getattr(model, "encoder", model))
    if not isinstance(encoder, keras.Model):
        raise ValueError(
            f"`model` must be a keras_ssl method or an encoder keras.Model; received "
            f"{type(model).__name__}. Fix: pass the trained method (it has an `.encoder`)."
        )
    path = os.path.abspath(os.fspath(path))
    fingerprint = _fingerprint(encoder)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        if _read_fingerprint(path) == fingerprint:
            return path
        if not overwrite:
            raise ValueError(
                f"Export path {path!r} already holds a different model or other files; "
                "expected an empty or missing folder. Fix: pass overwrite=True to replace it, "
                "or choose another path."
            )
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(path)}.partial-{uuid.uuid4().hex[:8]}")
    try:
        _write_saved_model(encoder, staging, verbose)
        with open(os.path.join(staging, METADATA_FILE), "w") as f:
            json.dump(
                {
                    "fingerprint": fingerprint,
                    "encoder": encoder.name,
                    "input_shape": list(encoder.input_shape[1:]),
                    "embedding_dim": int(encoder.output_shape[-1]),
                    "signature": "serve",
                    "input": "images (uint8)",
                    "output": "embeddings (float32, L2-normalised)",
                },
                f,
                indent=2,
            )
        move_into_place(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _write_saved_model(encoder, directory, verbose):
    image_shape = tuple(encoder.input_shape[1:])

    def serve(images):
        pixels = tf.cast(images, tf.float32) / 255.0
        features = tf.cast(encoder(pixels, training=False), tf.float32)
        return {"embeddings": tf.math.l2_normalize(features, axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(encoder)
    archive.add_endpoint(
        name="serve",
        fn=serve,
        input_signature=[tf.TensorSpec((None, *image_shape), tf.uint8, name="images")],
    )
    archive.write_out(directory, verbose=verbose)


def move_into_place(staging, path):
    """Moves the finished folder (or file) ``staging`` to ``path``, replacing what is there.

    Writers build their output in a temporary sibling of ``path`` and call this last, so
    ``path`` only ever holds a complete result: each step is an atomic ``os.replace`` on the
    same file system. An existing ``path`` is first renamed aside, then ``staging`` takes its
    place and the old one is deleted; if that second rename fails, the old ``path`` is put
    back and the error is raised.

    Args:
        staging: the complete new folder or file, on the same file system as ``path``
            (e.g. ``path``'s parent folder).
        path: the destination; it may be missing, a folder or a file.

    Raises:
        OSError: when a rename fails (``path`` then still holds what it held before).
    """
    if not os.path.exists(path):
        os.replace(staging, path)
        return
    retired = f"{path}.replaced-{uuid.uuid4().hex[:8]}"
    os.replace(path, retired)
    try:
        os.replace(staging, path)
    except OSError:
        os.replace(retired, path)
        raise
    if os.path.isdir(retired):
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.remove(retired)


def _fingerprint(encoder):
    digest = hashlib.sha256()
    digest.update(json.dumps(encoder.get_config(), sort_keys=True, default=str).encode())
    for weight in encoder.weights:
        digest.update(weight.path.encode())
        digest.update(keras.ops.convert_to_numpy(weight).tobytes())
    return digest.hexdigest()


def _read_fingerprint(path):
    try:
        with open(os.path.join(path, METADATA_FILE)) as f:
            return json.load(f).get("fingerprint")
    except (OSError, ValueError):
        return None


# TFLite / LiteRT export (same ``serve`` signature, one file): see keras_ssl/export_tflite.py.
from keras_ssl.export_tflite import QUANTIZATIONS, export_tflite, tflite_interpreter  # noqa: E402, F401
