"""multicrop: DINO's 2 global + N local crops, with views of different sizes."""

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
    RandomSolarize,
)
from keras_ssl.augment.multicrop import multicrop
from keras_ssl.datasets.pipeline import make_ssl_dataset

SEED = tf.constant([4, 7])


def _types(pipeline):
    return [type(layer) for layer in pipeline]


def test_defaults_follow_dino_on_grayscale_images():
    augmenter = multicrop((28, 28, 1))
    assert isinstance(augmenter, MultiViewAugmenter) and augmenter.num_views == 10
    shapes = augmenter.compute_output_shape((None, 28, 28, 1))
    assert shapes == ((None, 28, 28, 1),) * 2 + ((None, 12, 12, 1),) * 8  # 96/224 of 28 = 12
    first, second, *local = augmenter.pipelines
    assert _types(first) == [RandomResizedCrop, RandomHorizontalFlip, ColorJitter]  # no blur
    assert _types(second) == _types(first) + [RandomSolarize]
    assert second[-1].probability == 0.2
    assert all(_types(p) == _types(first) for p in local)
    assert len({id(layer) for p in augmenter.pipelines for layer in p}) == 10 * 3 + 1
    assert first[0].scale == (0.4, 1.0) and local[0][0].scale == (0.05, 0.4)
    jitter = first[2]
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == pytest.approx(
        (0.4, 0.4, 0.2, 0.1)
    )
    assert jitter.probability == 0.8 and jitter.random_order and first[1].probability == 0.5


def test_rgb_images_get_grayscale_and_dino_blur_probabilities():
    augmenter = multicrop((224, 224, 3), num_local=2)
    assert augmenter.compute_output_shape((None, 224, 224, 3))[2] == (None, 96, 96, 3)
    first, second, local, _ = augmenter.pipelines
    expected = [RandomResizedCrop, RandomHorizontalFlip, ColorJitter, RandomGrayscale]
    assert _types(first) == expected + [RandomGaussianBlur]
    assert _types(second) == expected + [RandomGaussianBlur, RandomSolarize]
    assert [p[4].probability for p in (first, second, local)] == [1.0, 0.1, 0.5]
    assert (first[4].kernel_size, local[4].kernel_size) == (23, 9)
    assert first[4].sigma == (0.1, 2.0) and first[3].probability == 0.2
    no_blur = multicrop((224, 224, 3), num_local=1, blur=False, solarize_probability=0.0)
    assert all(RandomGaussianBlur not in _types(p) for p in no_blur.pipelines)
    assert all(RandomSolarize not in _types(p) for p in no_blur.pipelines)


def test_views_have_their_sizes_and_are_reproducible():
    augmenter = multicrop((16, 16, 3), global_size=(16, 16), local_size=(8, 4), num_local=3)
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    views = augmenter(images, seed=SEED)
    assert [tuple(v.shape) for v in views] == [(5, 16, 16, 3)] * 2 + [(5, 8, 4, 3)] * 3
    assert all(v.dtype == tf.float32 for v in views)
    assert all(0 <= float(tf.reduce_min(v)) and float(tf.reduce_max(v)) <= 1 for v in views)
    assert not np.array_equal(views[0].numpy(), views[1].numpy())
    assert not np.array_equal(views[2].numpy(), views[3].numpy())
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(augmenter))
    for a, b in zip(views, restored(images, seed=SEED)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_local_crops_cover_small_regions():
    # A local crop covers at most 40% of the area: on an image that is white in one quadrant
    # only, many local crops are all black or all white, while global crops (>= 40%) rarely are.
    image = np.zeros((1, 32, 32, 1), np.float32)
    image[:, :16, :16] = 1.0
    images = np.repeat(image, 1000, axis=0)
    augmenter = multicrop((32, 32, 1), local_size=8, num_local=1, color_probability=0.0)
    views = augmenter(images, seed=SEED)
    uniform = [float(np.mean(np.ptp(v.numpy().reshape(1000, -1), axis=1) == 0)) for v in views]
    # Measured: about 19% of local crops (0.18-0.20 over seeds), no global crop.
    assert uniform[2] > 0.12 and uniform[0] == uniform[1] == 0.0


def test_views_flow_through_the_input_pipeline():
    augmenter = multicrop((8, 8, 1), local_size=4, num_local=2)
    images = np.random.default_rng(1).integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
    dataset = make_ssl_dataset(images, batch_size=8, augmenter=augmenter, seed=0)
    views = next(iter(dataset))["views"]
    assert [tuple(v.shape) for v in views] == [(8, 8, 8, 1)] * 2 + [(8, 4, 4, 1)] * 2


def test_zero_local_crops_gives_two_global_views():
    augmenter = multicrop((12, 12, 1), num_local=0)
    assert augmenter.compute_output_shape((None, 12, 12, 1)) == ((None, 12, 12, 1),) * 2


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(image_shape=(28, 28)), r"`image_shape` must be .*received \(28, 28\).*Fix"),
        (dict(num_local=-1), r"`num_local` must be an integer >= 0; received -1.*Fix"),
        (dict(num_local=2.0), r"`num_local` must be .*received 2.0"),
        (dict(local_size=0), r"`local_size` must be a positive int .*received 0.*Fix"),
        (dict(local_size=(4, 4, 1)), r"`local_size` must be .*received \(4, 4, 1\)"),
        (dict(global_size="big"), r"`global_size` must be .*received 'big'"),
        (dict(local_scale=(0.5, 0.2)), r"`scale` must be .*Fix"),
        (dict(solarize_probability=1.5), r"`probability` must be a number.*received 1.5"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    arguments = {"image_shape": (28, 28, 1), **kwargs}
    with pytest.raises(ValueError, match=pattern):
        multicrop(**arguments)
