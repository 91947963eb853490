"""RandomHorizontalFlip and RandomSolarize against their formulas."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.augment import RandomHorizontalFlip, RandomSolarize, solarize

SEED = tf.constant([4, 4])


def _images(batch=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (batch, 5, 7, 3)).astype(np.float32)


def test_flip_with_probability_one_equals_np_flip():
    images = _images()
    np.testing.assert_array_equal(
        RandomHorizontalFlip(1.0)(images, seed=SEED).numpy(), np.flip(images, axis=2)
    )
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(images, seed=SEED).numpy(), images)


def test_flip_decides_per_image():
    images = _images(batch=16)
    out = RandomHorizontalFlip(0.5)(images, seed=SEED).numpy()
    flipped = [np.array_equal(o, np.flip(i, axis=1)) for o, i in zip(out, images)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < 16


def test_solarize_formula():
    images = _images()
    expected = np.where(images < 0.5, images, 1.0 - images)
    np.testing.assert_array_equal(RandomSolarize(1.0)(images, seed=SEED).numpy(), expected)
    np.testing.assert_array_equal(
        solarize(tf.constant([0.2, 0.3, 0.9]), 0.3).numpy(),
        np.float32([0.2, 1 - np.float32(0.3), 1 - np.float32(0.9)]),
    )
    low = RandomSolarize(1.0, threshold=0.3)(images, seed=SEED).numpy()
    np.testing.assert_array_equal(low, np.where(images < 0.3, images, 1.0 - images))


def test_solarize_defaults_to_off_and_decides_per_image():
    images = _images(batch=16)
    np.testing.assert_array_equal(RandomSolarize()(images, seed=SEED).numpy(), images)
    out = RandomSolarize(0.5)(images, seed=SEED).numpy()
    solarized = [np.array_equal(o, np.where(i < 0.5, i, 1 - i)) for o, i in zip(out, images)]
    assert 0 < sum(solarized) < 16


def test_bad_threshold_raises():
    with pytest.raises(ValueError, match=r"`threshold` must be a number in \[0, 1\]; received 1.5"):
        RandomSolarize(1.0, threshold=1.5)
