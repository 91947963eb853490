"""Colour distortion: per-image brightness/contrast/saturation/hue and grayscale."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.augment import (
    ColorJitter,
    RandomGrayscale,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    rgb_to_luma,
)
from keras_ssl.augment.color import (
    _apply_color_steps,
    apply_color_transform,
    hue_matrices,
    transform_channels,
)

SEED = tf.constant([5, 9])
LUMA = np.array([0.299, 0.587, 0.114])


def _images(batch=4, size=8, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (batch, size, size, channels)).astype(np.float32)


def _np_brightness(x, f):
    return np.clip(x * f, 0, 1)


def _np_contrast(x, f):
    mean = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - mean) * f + mean, 0, 1)


def _np_saturation(x, f):
    gray = (x * LUMA).sum(axis=-1, keepdims=True)
    return np.clip(f * x + (1 - f) * gray, 0, 1)


def test_brightness_contrast_saturation_match_numpy_with_per_image_factors():
    images = _images()
    factors = np.array([0.5, 1.0, 1.3, 1.8], np.float32)
    for function, reference in (
        (adjust_brightness, _np_brightness),
        (adjust_contrast, _np_contrast),
        (adjust_saturation, _np_saturation),
    ):
        out = function(tf.constant(images), tf.constant(factors)).numpy()
        for index, factor in enumerate(factors):
            expected = reference(images[index].astype(np.float64), factor)
            np.testing.assert_allclose(out[index], expected, atol=1e-6)


def test_contrast_of_hand_typed_pixels():
    # Channel means 0.5 (first) and 0.25 (second); factor 2 doubles the distance to the mean.
    image = np.array([[[[0.2, 0.0], [0.8, 0.5]]]], np.float32)
    out = adjust_contrast(tf.constant(image), tf.constant([2.0])).numpy()
    np.testing.assert_allclose(out, [[[[0.0, 0.0], [1.0, 0.75]]]], atol=1e-7)


def test_fixed_order_jitter_matches_sequential_numpy_reference():
    images = _images()
    layer = ColorJitter(
        brightness=(1.2, 1.2),
        contrast=(0.7, 0.7),
        saturation=(1.5, 1.5),
        hue=0.0,
        probability=1.0,
        random_order=False,
    )
    out = layer(images, seed=SEED).numpy()
    for index in range(4):
        expected = _np_saturation(_np_contrast(_np_brightness(images[index], 1.2), 0.7), 1.5)
        np.testing.assert_allclose(out[index], expected, atol=1e-6)


def test_random_order_is_one_permutation_per_image():
    images = np.repeat(_images(batch=1), 24, axis=0)
    layer = ColorJitter(
        brightness=(1.6, 1.6),
        contrast=(0.5, 0.5),
        saturation=(1.8, 1.8),
        hue=0.0,
        probability=1.0,
    )
    out = layer(images, seed=SEED).numpy()
    steps = {
        "b": lambda x: _np_brightness(x, 1.6),
        "c": lambda x: _np_contrast(x, 0.5),
        "s": lambda x: _np_saturation(x, 1.8),
    }
    references = {}
    for order in itertools.permutations("bcs"):
        x = images[0].astype(np.float64)
        for step in order:
            x = steps[step](x)
        references["".join(order)] = x
    used = set()
    for image in out:
        matches = [k for k, ref in references.items() if np.abs(image - ref).max() < 1e-5]
        assert len(matches) == 1
        used.add(matches[0])
    assert len(used) >= 4  # 24 images draw several of the 6 orders


def test_jitter_probability_zero_and_per_image_application():
    images = _images(batch=16)
    np.testing.assert_array_equal(ColorJitter(probability=0.0)(images, seed=SEED).numpy(), images)
    out = ColorJitter(probability=0.5)(images, seed=SEED).numpy()
    unchanged = [np.array_equal(out[i], images[i]) for i in range(16)]
    assert 0 < sum(unchanged) < 16


def test_hue_zero_is_identity_and_half_turns_agree():
    images = tf.constant(_images())
    np.testing.assert_allclose(adjust_hue(images, tf.zeros([4])).numpy(), images, atol=1e-6)
    plus = adjust_hue(images, tf.fill([4], 0.5)).numpy()
    minus = adjust_hue(images, tf.fill([4], -0.5)).numpy()
    np.testing.assert_allclose(plus, minus, atol=1e-5)


def test_hue_rotation_keeps_luma_and_grays():
    images = tf.constant(_images())
    rotated = transform_channels(images, hue_matrices(tf.constant([0.1, -0.2, 0.3, 0.45])))
    np.testing.assert_allclose(rgb_to_luma(rotated).numpy(), rgb_to_luma(images).numpy(), atol=1e-5)
    grays = tf.constant(np.full((4, 2, 2, 3), 0.4, np.float32))
    np.testing.assert_allclose(adjust_hue(grays, tf.fill([4], 0.3)).numpy(), grays, atol=1e-6)


def test_hue_shift_turns_the_same_way_as_tf_image_adjust_hue():
    images = tf.constant(_images(batch=1, size=16) * 0.6 + 0.2)
    ours = adjust_hue(images, tf.constant([0.08])).numpy()
    same_way = tf.image.adjust_hue(images, 0.08).numpy()
    other_way = tf.image.adjust_hue(images, -0.08).numpy()
    assert np.abs(ours - same_way).mean() < 0.5 * np.abs(ours - other_way).mean()


def test_one_channel_images_get_brightness_and_contrast_only():
    images = _images(channels=1)
    layer = ColorJitter(
        brightness=(1.3, 1.3),
        contrast=(0.6, 0.6),
        saturation=(0.0, 0.0),
        hue=0.4,
        probability=1.0,
        random_order=False,
    )
    out = layer(images, seed=SEED).numpy()
    assert out.shape == images.shape
    for index in range(4):
        expected = _np_contrast(_np_brightness(images[index], 1.3), 0.6)
        np.testing.assert_allclose(out[index], expected, atol=1e-6)


def test_grayscale_matches_the_luma_formula():
    images = _images()
    out = RandomGrayscale(1.0)(images, seed=SEED).numpy()
    luma = 0.299 * images[..., 0] + 0.587 * images[..., 1] + 0.114 * images[..., 2]
    for channel in range(3):
        np.testing.assert_allclose(out[..., channel], luma, atol=1e-6)
    np.testing.assert_array_equal(RandomGrayscale(0.0)(images, seed=SEED).numpy(), images)
    white = np.ones((1, 2, 2, 3), np.float32)
    assert RandomGrayscale(1.0)(white, seed=SEED).numpy().max() <= 1.0


def test_grayscale_is_identity_on_one_channel_images():
    images = _images(channels=1)
    np.testing.assert_array_equal(RandomGrayscale(1.0)(images, seed=SEED).numpy(), images)


@pytest.mark.parametrize("layer", [ColorJitter(), RandomGrayscale()], ids=["jitter", "gray"])
def test_other_channel_counts_raise(layer):
    with pytest.raises(ValueError, match=r"1 or 3 channels; received shape \(4, 8, 8, 4\).*Fix"):
        layer(_images(channels=4))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(brightness=-0.1), r"`brightness` must be >= 0.*received -0.1.*Fix"),
        (dict(contrast=(1.5, 0.5)), r"`contrast` must be .*received \(1.5, 0.5\).*Fix"),
        (dict(saturation=(-1.0, 1.0)), r"`saturation` must be .*received \(-1.0, 1.0\).*Fix"),
        (dict(hue=0.7), r"`hue` must be in \[0, 0.5\].*received 0.7.*Fix"),
        (dict(hue=(-0.6, 0.1)), r"`hue` must be .*received \(-0.6, 0.1\).*Fix"),
    ],
)
def test_bad_jitter_arguments_raise(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        ColorJitter(**kwargs)


def test_simclr_strength_ranges():
    layer = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    assert layer._ranges == ((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))
    assert ColorJitter(brightness=1.5)._ranges[0] == (0.0, 2.5)


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_fused_steps_equal_chained_clipped_transforms(steps):
    rng = np.random.default_rng(steps)
    images = tf.constant(_images(batch=5))
    matrices = tf.constant(rng.uniform(-0.5, 1.5, (5, steps, 3, 3)).astype(np.float32))
    weights = tf.constant(rng.uniform(-1.0, 1.0, (5, steps)).astype(np.float32))
    chained = images
    for step in range(steps):
        chained = apply_color_transform(chained, matrices[:, step], weights[:, step])
    fused = _apply_color_steps(images, matrices, weights, [True] * steps)
    np.testing.assert_allclose(fused.numpy(), chained.numpy(), atol=1e-6)
    no_mean = _apply_color_steps(images, matrices, tf.zeros_like(weights), [False] * steps)
    chained = images
    for step in range(steps):
        chained = apply_color_transform(chained, matrices[:, step], None)
    np.testing.assert_allclose(no_mean.numpy(), chained.numpy(), atol=1e-6)
