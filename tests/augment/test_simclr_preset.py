"""presets.simclr: the SimCLR recipe for RGB and grayscale images."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.augment import (
    ColorJitter,
    MultiViewAugmenter,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    presets,
)

SEED = tf.constant([8, 3])


def _types(pipeline):
    return [type(layer) for layer in pipeline]


def test_simclr_on_small_rgb_images_has_no_blur():
    augmenter = presets.simclr((32, 32, 3))
    assert isinstance(augmenter, MultiViewAugmenter) and augmenter.num_views == 2
    first, second = augmenter.pipelines
    expected = [RandomResizedCrop, RandomHorizontalFlip, ColorJitter, RandomGrayscale]
    assert _types(first) == _types(second) == expected
    assert all(a is not b for a, b in zip(first, second))  # two separately built pipelines
    crop, flip, jitter, gray = first
    assert (crop.height, crop.width, crop.scale) == (32, 32, (0.08, 1.0))
    assert crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert flip.probability == 0.5 and gray.probability == 0.2
    assert (jitter.brightness, jitter.contrast, jitter.saturation) == pytest.approx((0.4,) * 3)
    assert jitter.hue == pytest.approx(0.1) and jitter.probability == 0.8 and jitter.random_order


def test_simclr_blur_defaults_follow_image_size():
    large = presets.simclr((224, 224, 3), color_strength=1.0).pipelines[0]
    assert _types(large)[-1] is RandomGaussianBlur
    assert (large[-1].kernel_size, large[-1].sigma, large[-1].probability) == (23, (0.1, 2.0), 0.5)
    assert large[2].brightness == pytest.approx(0.8) and large[2].hue == pytest.approx(0.2)
    assert presets.simclr((64, 64, 3)).pipelines[0][-1].kernel_size == 7
    assert presets.simclr((96, 80, 3)).pipelines[0][-1].kernel_size == 9
    assert presets.simclr((32, 32, 3), blur=True).pipelines[0][-1].kernel_size == 3
    assert RandomGaussianBlur not in _types(presets.simclr((64, 64, 3), blur=False).pipelines[0])


def test_simclr_on_grayscale_images():
    augmenter = presets.simclr((28, 28, 1), crop_scale=(0.2, 1.0))
    pipeline = augmenter.pipelines[0]
    assert _types(pipeline) == [RandomResizedCrop, RandomHorizontalFlip, ColorJitter]
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    views = augmenter(images, seed=SEED)
    assert [tuple(v.shape) for v in views] == [(5, 28, 28, 1)] * 2
    assert all(v.dtype == tf.float32 for v in views)
    assert all(0 <= float(tf.reduce_min(v)) and float(tf.reduce_max(v)) <= 1 for v in views)
    assert not np.array_equal(views[0].numpy(), views[1].numpy())


def test_simclr_views_on_rgb_images_are_reproducible_and_serializable():
    augmenter = presets.simclr((16, 16, 3), blur=True, color_probability=1.0)
    images = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    views = augmenter(images, seed=SEED)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(augmenter))
    for a, b in zip(views, restored(images, seed=SEED)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert [tuple(v.shape) for v in views] == [(4, 16, 16, 3)] * 2


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(image_shape=(32, 32)), r"`image_shape` must be .*received \(32, 32\).*Fix"),
        (dict(image_shape=(32, 32, 4)), r"`image_shape` must be .*received \(32, 32, 4\).*Fix"),
        (dict(crop_scale=(0.0, 1.0)), r"`scale` must be .*received \(0.0, 1.0\).*Fix"),
        (dict(color_strength=-1.0), r"`color_strength` must be a number >= 0; received -1.0.*Fix"),
        (dict(color_probability=1.2), r"`probability` must be a number.*received 1.2.*Fix"),
        (dict(grayscale_probability=-0.2), r"`probability` must be a number.*received -0.2"),
    ],
)
def test_bad_arguments_raise(kwargs, pattern):
    arguments = dict(image_shape=(32, 32, 3))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        presets.simclr(**arguments)
