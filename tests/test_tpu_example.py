import importlib.util
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_example():
    path = os.path.join(ROOT, "examples", "tpu", "pretrain_imagenet.py")
    spec = importlib.util.spec_from_file_location("pretrain_imagenet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_streams_tfds_images_trains_with_lars_and_exports(tmp_path):
    example = load_example()
    # TFDS' mock data follows ImageNet's feature spec (images of random sizes) without files.
    with tfds.testing.mock_data(num_examples=16):
        images = list(example.load_images("imagenet2012", "train", None, 20, True).take(3))
        for image, label in images:
            assert image.shape == (20, 20, 3) and image.dtype == tf.uint8
            assert label.dtype == tf.int64 or label.dtype == tf.int32
        model, history = example.main(
            [
                "--tpu=",
                "--download",
                "--backbone=small_resnet",
                f"--workdir={tmp_path}",
                "--image_size=16",
                "--batch_size=8",
                "--num_examples=16",
                "--epochs=1",
                "--warmup_epochs=0.5",
                "--steps_per_execution=2",
            ]
        )
    assert type(model.optimizer).__name__ == "LARS" and model.jit_compile
    assert np.isfinite(history["loss"]).all() and int(model.optimizer.iterations) == 2
    assert os.path.exists(tmp_path / "encoder" / "saved_model.pb")
    assert os.listdir(tmp_path / "logs")  # TensorBoard event files


def test_export_to_a_remote_filesystem_copies_a_complete_saved_model(tmp_path):
    example = load_example()
    import keras

    from keras_ssl import backbones

    encoder = backbones.SmallResNet((8, 8, 3), widths=(4,))
    path = example.export(encoder, "ram://exports/encoder")  # in-memory gfile filesystem
    assert tf.io.gfile.exists(f"{path}/saved_model.pb")
    local = tmp_path / "copy"
    for folder, _, files in tf.io.gfile.walk(path):
        target = str(local) + folder[len(path) :]
        os.makedirs(target, exist_ok=True)
        for name in files:
            tf.io.gfile.copy(f"{folder}/{name}", os.path.join(target, name))
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    loaded = tf.saved_model.load(str(local))  # keep a reference while serving
    served = loaded.serve(tf.constant(images))
    expected = keras.ops.convert_to_numpy(encoder(images.astype(np.float32) / 255))
    expected = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(served["embeddings"], expected, atol=1e-5)
