"""TFLite (LiteRT) export of encoders: ``uint8`` images in, L2-normalised embeddings out.

The ``.tflite`` file holds one signature, ``serve``, converted from the same function as the
SavedModel's (``keras_ssl.export.export_encoder``): input ``images`` (``uint8``
``[batch, H, W, C]``, allocated for batch 1, resizable), output ``embeddings`` (``float32``
``[batch, D]``, unit L2 norm). It runs with LiteRT's interpreter alone::

    from ai_edge_litert.interpreter import Interpreter  # pip install ai-edge-litert

    runner = Interpreter(model_path="encoder.tflite").get_signature_runner("serve")
    embeddings = runner(images=images_uint8)["embeddings"]  # resizes to the batch itself

(``tf.lite.Interpreter`` runs it too; TensorFlow 2.21 marks it deprecated in favour of
``ai_edge_litert``.) :func:`tflite_interpreter` picks whichever is installed.
"""

import os
import shutil
import tempfile
import uuid

import keras
import tensorflow as tf

#: ``quantize`` values: weights and activations in float32; int8 weights with dynamic-range
#: kernels (activations quantised on the fly); float16 weights (dequantised at load on CPUs).
QUANTIZATIONS = (None, "dynamic", "float16")


def export_tflite(model, path, quantize=None, overwrite=False):
    """Writes ``model``'s encoder as a ``.tflite`` file with a ``serve`` signature.

    The signature computes what the SavedModel's ``serve`` computes: ``uint8`` images scaled to
    ``[0, 1]``, the encoder in inference mode, embeddings L2-normalised. The file is written to
    a temporary sibling and moved into place when complete, so a failed conversion never
    leaves a partial file behind or replaces an existing one.

    Args:
        model: an ``SSLMethod`` (its ``export_encoder`` is exported: the trained encoder, or
            the teacher for DINO) or an encoder ``keras.Model``.
        path: the destination file (conventionally ``*.tflite``); missing folders are made.
        quantize: ``None`` (float32), ``"dynamic"`` (dynamic-range: int8 weights, about 4x
            smaller) or ``"float16"`` (float16 weights, about 2x smaller).
        overwrite: replace an existing file at ``path``.

    Returns:
        The destination path as a string.

    Raises:
        ValueError: for a ``model`` that is not a method or encoder, an unknown ``quantize``,
            or an existing ``path`` without ``overwrite`` (or one that is a folder).
    """
    from keras_ssl.export import _write_saved_model  # export.py re-exports this module

    encoder = getattr(model, "export_encoder", getattr(model, "encoder", model))
    if not isinstance(encoder, keras.Model):
        raise ValueError(
            f"`model` must be a keras_ssl method or an encoder keras.Model; received "
            f"{type(model).__name__}. Fix: pass the trained method (it has an `.encoder`)."
        )
    if quantize is not None and (not isinstance(quantize, str) or quantize not in QUANTIZATIONS):
        raise ValueError(
            f"`quantize` must be one of {list(QUANTIZATIONS)}; received {quantize!r}. Fix: "
            "None for float32, 'dynamic' for int8 weights, 'float16' for float16 weights."
        )
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path) or (os.path.exists(path) and not overwrite):
        raise ValueError(
            f"Export path {path!r} already exists; expected a new file path. Fix: pass "
            "overwrite=True to replace a file, or choose another path."
        )
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(path)}.partial-{uuid.uuid4().hex[:8]}")
    saved_model = tempfile.mkdtemp(prefix="keras_ssl_tflite_")
    try:
        _write_saved_model(encoder, os.path.join(saved_model, "model"), verbose=False)
        flatbuffer = _convert(os.path.join(saved_model, "model"), quantize)
        with open(staging, "wb") as f:
            f.write(flatbuffer)
        os.replace(staging, path)
    finally:
        shutil.rmtree(saved_model, ignore_errors=True)
        if os.path.exists(staging):
            os.remove(staging)
    return path


def _convert(saved_model_dir, quantize):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=["serve"])
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def tflite_interpreter(path, num_threads=None):
    """A LiteRT interpreter for the ``.tflite`` file at ``path``, tensors allocated.

    Uses ``ai_edge_litert.interpreter.Interpreter`` when the ``ai-edge-litert`` package is
    installed (``pip install "keras_ssl[tflite]"``), else TensorFlow's deprecated
    ``tf.lite.Interpreter`` (it warns once).

    Args:
        path: a file written by :func:`export_tflite`.
        num_threads: CPU threads for the kernels (``None``: the interpreter's default).

    Returns:
        The interpreter; ``interpreter.get_signature_runner("serve")(images=x)["embeddings"]``
        embeds a ``uint8`` batch ``x``.

    Raises:
        ValueError: when ``path`` is not a file.
    """
    if not os.path.isfile(path):
        raise ValueError(
            f"No TFLite file at {os.fspath(path)!r}; expected a file written by export_tflite. "
            "Fix: check the path, or export the encoder first."
        )
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=os.fspath(path), num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter
