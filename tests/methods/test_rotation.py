import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import backbones, experiment, testing
from keras_ssl.augment.crop import RandomResizedCrop
from keras_ssl.augment.flip import RandomHorizontalFlip
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.methods.rotation import RotationPrediction

GLOBAL_BATCH = 8
IMAGE_SHAPE = (8, 8, 1)
CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "rotation_fashion_mnist.py"


def make_model(**kwargs):
    encoder = backbones.SmallResNet(IMAGE_SHAPE, widths=(4, 8), synchronized_bn=True)
    options = {"head_hidden_dims": (8,), "synchronized_bn": True, "probe_classes": 3}
    return RotationPrediction(encoder, **{**options, **kwargs})


def make_data(steps=2, seed=0):
    rng = np.random.default_rng(seed)
    n = steps * GLOBAL_BATCH
    return {
        "views": (rng.random((n, *IMAGE_SHAPE), dtype=np.float32),),
        "labels": rng.integers(0, 3, n),
    }


# ------------------------------------------------------------------------------ battery
class TestBattery(testing.PretextBattery):
    # Replicas: no randomness and no batch-level term: each replica rotates its own images and
    # its mean cross-entropy over 4n rotated copies, averaged over replicas, is the global mean;
    # the synchronized BatchNorm of backbone and head makes the statistics global. No state
    # besides weights (BatchNorm moving statistics are weights and are compared).
    make_model = staticmethod(make_model)
    make_data = staticmethod(make_data)
    global_batch = GLOBAL_BATCH

    def check_restored(self, restored):
        assert isinstance(restored, RotationPrediction) and restored.head_hidden_dims == (8,)


# ---------------------------------------------------------------------- RotNet specifics
def test_loss_is_cross_entropy_over_all_four_rotations_in_one_batch():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None, head_hidden_dims=())
    (view,) = make_data(steps=1)["views"]
    # NumPy: the four counter-clockwise rotations of every image, in one batch, label = turns.
    rotated = np.concatenate([np.rot90(view, k, axes=(1, 2)) for k in range(4)])
    labels = np.repeat(np.arange(4), GLOBAL_BATCH)
    features = model.encoder(rotated, training=True).numpy()
    logits = model.classifier(features, training=True).numpy().astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected_loss = -np.mean(log_softmax[np.arange(4 * GLOBAL_BATCH), labels])
    expected_accuracy = np.mean(np.argmax(logits, axis=1) == labels)
    terms, probe_features = model.compute_ssl_loss((tf.constant(view),), training=True)
    np.testing.assert_allclose(float(terms["loss"]), expected_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        float(terms["pretext_accuracy"]), expected_accuracy, rtol=1e-6, atol=1e-6
    )
    # The probe sees the unrotated copies.
    np.testing.assert_allclose(probe_features, features[:GLOBAL_BATCH], rtol=1e-5, atol=1e-6)
    assert model.classifier.hidden_dims == () and model.classifier.output_dim == 4


def test_exported_encoder_is_the_backbone_on_whole_images():
    model = make_model()
    assert model.export_encoder is model.encoder
    images = np.random.default_rng(3).integers(0, 256, (3, *IMAGE_SHAPE), dtype=np.uint8)
    expected = model.encoder(images.astype(np.float32) / 255.0, training=False)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_default_augmenter_is_one_cropped_and_flipped_view():
    model = make_model()
    assert model.augmenter.num_views == 1
    (pipeline,) = model.augmenter.pipelines
    assert [type(layer) for layer in pipeline] == [RandomResizedCrop, RandomHorizontalFlip]


def oriented_images(count, side, seed):
    """Smooth random images with a bright top band: their upright orientation is learnable."""
    grids = np.random.default_rng(seed).random((count, 3, 3, 1)) * 0.5
    images = tf.image.resize(grids, (side, side)).numpy()
    images[:, : side // 4] += 0.5
    return (np.clip(images, 0, 1) * 255).astype(np.uint8)


def test_trains_from_the_input_pipeline_and_learns():
    keras.utils.set_random_seed(0)
    model = make_model(probe_classes=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    images = oriented_images(64, IMAGE_SHAPE[0], seed=0)
    dataset = make_ssl_dataset(images, batch_size=16, augmenter=model.augmenter, seed=1)
    history = model.fit(dataset, epochs=8, verbose=0).history
    # Chance: loss log 4 = 1.386, accuracy 0.25.
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0] - 0.5
    assert history["pretext_accuracy"][-1] > 0.8


def test_config_is_the_recipe():
    # Training from the config is tests/methods/test_configs.py; this checks its choices reach
    # the model that experiment.build_model makes from it.
    config = testing.load_config(CONFIG)
    assert config.method == "rotation" and config.augment.preset == "crop_flip"
    assert config.backbone_kwargs.widths == (16, 32, 64) and config.batch_size == 128
    model = experiment.build_model(testing.shrink_config(config), (28, 28, 1))
    assert isinstance(model, RotationPrediction) and model.augmenter.num_views == 1


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"head_hidden_dims": (0,)}, r"head_hidden_dims.*received \(0,\)"),
        ({"head_hidden_dims": 8}, "head_hidden_dims.*received 8.*Fix"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model(**kwargs)


def test_non_square_images_raise():
    encoder = backbones.SmallResNet((8, 6, 1), widths=(4,))
    with pytest.raises(ValueError, match=r"square images.*received an encoder for images \(8, 6"):
        RotationPrediction(encoder)
