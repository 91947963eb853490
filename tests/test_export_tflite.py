import os
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, export, export_tflite, methods, pretrained
from keras_ssl.datasets import fashion_mnist

# Largest |difference| and smallest cosine similarity to the SavedModel's unit-norm embeddings
# that each quantisation may show on the 500 embedded test images with the pretrained SimCLR
# encoder (SmallResNet 16-32-64, 64-d). Measured on the 2-core VM (ai-edge-litert 2.3.0):
#   float32  max |diff| 2.1e-7, min cosine 1 - 1.8e-7  (the same computation, float rounding)
#   float16  max |diff| 4.4e-4, min cosine 1 - 5.4e-7  (float16 weights, float32 arithmetic)
#   dynamic  max |diff| 1.4e-2, min cosine 1 - 5.9e-4  (int8 weights, int8 activations on the fly)
# The bounds leave 3x or more room for other CPUs' kernels.
TOLERANCES = {
    None: {"max_abs": 1e-5, "min_cosine": 1 - 1e-6},
    "float16": {"max_abs": 1.5e-3, "min_cosine": 1 - 1e-5},
    "dynamic": {"max_abs": 0.04, "min_cosine": 1 - 2e-3},
}


@pytest.fixture(scope="module")
def encoder():
    return pretrained.load("simclr_fashion_mnist")


@pytest.fixture(scope="module")
def images():
    (_, _), (x_test, y_test) = fashion_mnist.load_data(source="embedded")
    return x_test[..., None], y_test


@pytest.fixture(scope="module")
def saved_model_embeddings(encoder, images, tmp_path_factory):
    path = export.export_encoder(encoder, tmp_path_factory.mktemp("saved") / "enc")
    loaded = tf.saved_model.load(path)
    return loaded.serve(tf.constant(images[0]))["embeddings"].numpy()


@pytest.fixture(scope="module")
def tflite_files(encoder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tflite")
    return {
        quantize: export.export_tflite(encoder, folder / f"{quantize}.tflite", quantize=quantize)
        for quantize in export.QUANTIZATIONS
    }


def run_serve(path, images):
    runner = export.tflite_interpreter(path).get_signature_runner("serve")
    return runner(images=images)["embeddings"]


@pytest.mark.slow  # real images per quantisation; the formula test stays in the default run
@pytest.mark.parametrize("quantize", export.QUANTIZATIONS)
def test_interpreter_matches_the_saved_model_on_real_images(
    quantize, tflite_files, images, saved_model_embeddings
):
    embeddings = run_serve(tflite_files[quantize], images[0])
    assert embeddings.shape == saved_model_embeddings.shape == (500, 64)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=0, atol=1e-5)
    error = np.abs(embeddings - saved_model_embeddings).max()
    cosine = np.sum(embeddings * saved_model_embeddings, axis=1) / np.linalg.norm(
        embeddings, axis=1
    )
    assert error <= TOLERANCES[quantize]["max_abs"]
    assert cosine.min() >= TOLERANCES[quantize]["min_cosine"]
    if quantize is None:  # float32 is the same computation: elementwise to float rounding
        np.testing.assert_allclose(embeddings, saved_model_embeddings, rtol=1e-5, atol=1e-6)


def test_float32_file_equals_the_encoder_formula_with_the_tensor_api(tflite_files, encoder, images):
    interpreter = export.tflite_interpreter(tflite_files[None])
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inputs["dtype"] == np.uint8 and list(inputs["shape"]) == [1, 28, 28, 1]
    assert list(inputs["shape_signature"]) == [-1, 28, 28, 1]
    assert interpreter.get_signature_list() == {
        "serve": {"inputs": ["images"], "outputs": ["embeddings"]}
    }
    one = images[0][:1]
    interpreter.set_tensor(inputs["index"], one)
    interpreter.invoke()
    features = encoder(one.astype(np.float32) / 255.0, training=False).numpy()
    expected = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(interpreter.get_tensor(outputs["index"]), expected, atol=1e-6)


def test_quantised_files_are_smaller(tflite_files):
    sizes = {quantize: os.path.getsize(path) for quantize, path in tflite_files.items()}
    assert sizes["float16"] < 0.6 * sizes[None]
    assert sizes["dynamic"] < 0.4 * sizes[None]


def test_a_method_exports_its_encoder(tmp_path, images):
    keras.utils.set_random_seed(0)
    encoder = backbones.SmallResNet((28, 28, 1), widths=(4, 8))
    model = methods.SimCLR(encoder, projection_dim=8)
    from_method = run_serve(export.export_tflite(model, tmp_path / "m.tflite"), images[0][:8])
    from_encoder = run_serve(export.export_tflite(encoder, tmp_path / "e.tflite"), images[0][:8])
    np.testing.assert_array_equal(from_method, from_encoder)


def test_bad_quantize_lists_the_choices(tmp_path, encoder):
    for value in ("int8", "FLOAT16", 16, True):
        with pytest.raises(ValueError, match=r"one of \[None, 'dynamic', 'float16'\]"):
            export.export_tflite(encoder, tmp_path / "x.tflite", quantize=value)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_needs_overwrite_and_a_failed_export_leaves_it(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    first = backbones.SmallResNet((8, 8, 1), widths=(4,))
    second = backbones.SmallResNet((8, 8, 1), widths=(4,))
    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    path = export.export_tflite(first, tmp_path / "enc.tflite")
    before = run_serve(path, pixels)
    with pytest.raises(ValueError, match="already exists.*overwrite=True"):
        export.export_tflite(second, path)
    with pytest.raises(ValueError, match="already exists"):
        export.export_tflite(second, tmp_path, overwrite=True)  # a folder is never replaced

    def broken(saved_model_dir, quantize):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export_tflite, "_convert", broken)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export.export_tflite(second, path, overwrite=True)
    assert os.listdir(tmp_path) == ["enc.tflite"]
    np.testing.assert_array_equal(run_serve(path, pixels), before)
    monkeypatch.undo()
    export.export_tflite(second, path, overwrite=True)
    assert not np.allclose(run_serve(path, pixels), before)
    assert os.listdir(tmp_path) == ["enc.tflite"]


def test_rejects_non_models_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="encoder keras.Model"):
        export.export_tflite("encoder.h5", tmp_path / "x.tflite")
    with pytest.raises(ValueError, match="No TFLite file"):
        export.tflite_interpreter(tmp_path / "missing.tflite")


def test_without_ai_edge_litert_tensorflow_s_interpreter_runs_the_file(
    tflite_files, images, monkeypatch
):
    expected = run_serve(tflite_files[None], images[0][:16])
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TF 2.21: "tf.lite.Interpreter is deprecated"
        interpreter = export.tflite_interpreter(tflite_files[None])
    assert type(interpreter) is tf.lite.Interpreter
    embeddings = interpreter.get_signature_runner("serve")(images=images[0][:16])["embeddings"]
    np.testing.assert_allclose(embeddings, expected, rtol=1e-6, atol=1e-7)
