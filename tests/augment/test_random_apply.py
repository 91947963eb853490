"""RandomApply: per-image selection around keras_ssl and foreign layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.augment import ColorJitter, RandomApply, RandomResizedCrop, RandomSolarize
from keras_ssl.augment.seeds import fold_in

SEED = tf.constant([6, 1])


def _images(batch=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (batch, 6, 6, 3)).astype(np.float32)


def test_probability_zero_is_identity_and_one_is_the_layer():
    images = _images()
    inner = ColorJitter(probability=1.0)
    np.testing.assert_array_equal(RandomApply(inner, 0.0)(images, seed=SEED).numpy(), images)
    always = RandomApply(inner, 1.0)(images, seed=SEED).numpy()
    np.testing.assert_array_equal(always, inner(images, seed=fold_in(SEED, 1)).numpy())
    solarized = RandomApply(RandomSolarize(1.0), 1.0)(images, seed=SEED).numpy()
    np.testing.assert_array_equal(solarized, np.where(images < 0.5, images, 1 - images))


def test_foreign_layer_without_seed_is_applied_per_image():
    images = _images()
    layer = RandomApply(keras.layers.Rescaling(0.5), 0.5)
    out = layer(images, seed=SEED).numpy()
    halved = [np.array_equal(o, i * np.float32(0.5)) for o, i in zip(out, images)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(h != k for h, k in zip(halved, kept))
    assert 0 < sum(halved) < 16
    np.testing.assert_array_equal(layer(images, seed=SEED).numpy(), out)  # mask is seeded


def test_nested_layer_serializes():
    layer = RandomApply(ColorJitter(hue=0.2, probability=1.0), 0.7)
    config = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored.layer, ColorJitter) and restored.layer.hue == 0.2
    images = _images()
    np.testing.assert_array_equal(
        restored(images, seed=SEED).numpy(), layer(images, seed=SEED).numpy()
    )


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="must be a keras.layers.Layer; received function.*Fix"):
        RandomApply(lambda x: x, 0.5)
    with pytest.raises(ValueError, match=r"turned \(16, 6, 6, 3\) into \(16, 4, 4, 3\).*Fix"):
        RandomApply(RandomResizedCrop(4, 4), 0.5)(_images())
