"""RandomResizedCrop: box sampling, the batched bilinear resize and its XLA twin."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.augment import RandomResizedCrop, crop_and_resize, sample_crop_boxes
from keras_ssl.augment.crop import crop_and_resize_gather

SEED = tf.constant([11, 5])


def _images(batch=6, height=16, width=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (batch, height, width, channels)).astype(np.float32)


def _bilinear_reference(image, box, out_height, out_width):
    """NumPy crop_and_resize for one image, written from the documented sampling rule."""
    height, width, _ = image.shape
    y1, x1, y2, x2 = (float(v) for v in box)
    out = np.zeros((out_height, out_width, image.shape[2]))
    for i in range(out_height):
        if out_height > 1:
            y = y1 * (height - 1) + i * (y2 - y1) * (height - 1) / (out_height - 1)
        else:
            y = 0.5 * (y1 + y2) * (height - 1)
        for j in range(out_width):
            if out_width > 1:
                x = x1 * (width - 1) + j * (x2 - x1) * (width - 1) / (out_width - 1)
            else:
                x = 0.5 * (x1 + x2) * (width - 1)
            top, left = math.floor(y), math.floor(x)
            bottom, right = min(math.ceil(y), height - 1), min(math.ceil(x), width - 1)
            dy, dx = y - top, x - left
            upper = image[top, left] + (image[top, right] - image[top, left]) * dx
            lower = image[bottom, left] + (image[bottom, right] - image[bottom, left]) * dx
            out[i, j] = upper + (lower - upper) * dy
    return out


def test_full_scale_square_crop_is_identity():
    images = _images()
    layer = RandomResizedCrop(16, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(layer(images, seed=SEED).numpy(), images, atol=1e-6)
    compiled = tf.function(lambda x: layer(x, seed=SEED), jit_compile=True)(images)
    np.testing.assert_allclose(compiled.numpy(), images, atol=1e-6)


def test_boxes_stay_inside_and_follow_scale_and_ratio():
    boxes = sample_crop_boxes(500, 16, 16, (0.1, 0.5), (3 / 4, 4 / 3), SEED).numpy()
    y1, x1, y2, x2 = boxes.T
    assert (boxes >= 0).all() and (boxes <= 1).all()
    assert (y2 > y1).all() and (x2 > x1).all()
    area = (y2 - y1) * (x2 - x1)
    aspect = (x2 - x1) / (y2 - y1)
    # No clipping is needed for these ranges, so area and aspect ratio are as drawn.
    assert area.min() >= 0.1 - 1e-5 and area.max() <= 0.5 + 1e-5
    assert aspect.min() >= 0.75 - 1e-4 and aspect.max() <= 4 / 3 + 1e-4
    # Log-uniform aspect ratio: wide and tall crops are equally likely.
    assert 0.4 < (aspect > 1).mean() < 0.6


def test_large_crops_are_clipped_into_the_image():
    boxes = sample_crop_boxes(500, 20, 20, (0.9, 1.0), (0.5, 2.0), SEED).numpy()
    assert (boxes >= 0).all() and (boxes <= 1).all()
    assert ((boxes[:, 2] - boxes[:, 0]) <= 1).all() and ((boxes[:, 3] - boxes[:, 1]) <= 1).all()
    # Clipped boxes span the whole image along the clipped side.
    full_width = np.isclose(boxes[:, 3] - boxes[:, 1], 1.0)
    assert full_width.any()
    np.testing.assert_allclose(boxes[full_width, 1], 0.0, atol=1e-7)


def test_non_square_images_keep_the_pixel_aspect_ratio():
    boxes = sample_crop_boxes(50, 16, 32, (0.25, 0.25), (2.0, 2.0), SEED).numpy()
    pixel_height = (boxes[:, 2] - boxes[:, 0]) * 16
    pixel_width = (boxes[:, 3] - boxes[:, 1]) * 32
    np.testing.assert_allclose(pixel_width / pixel_height, 2.0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pixel_width * pixel_height / (16 * 32), 0.25, rtol=1e-5, atol=1e-5)


def test_layer_crops_the_sampled_boxes_with_bilinear_resize():
    images = _images(height=16, width=20)
    layer = RandomResizedCrop(7, 5)
    boxes = layer.sample_boxes(images, SEED).numpy()
    out = layer(images, seed=SEED).numpy()
    assert out.shape == (6, 7, 5, 3)
    for index in range(6):
        expected = _bilinear_reference(images[index], boxes[index], 7, 5)
        np.testing.assert_allclose(out[index], expected, atol=1e-5)
    tf_reference = tf.image.crop_and_resize(images, boxes, tf.range(6), (7, 5)).numpy()
    np.testing.assert_array_equal(out, tf_reference)


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (16, 16), (40, 33)])
def test_gather_twin_matches_tf_crop_and_resize(size):
    images = _images(height=16, width=20)
    boxes = sample_crop_boxes(6, 16, 20, (0.08, 1.0), (0.5, 2.0), SEED)
    expected = tf.image.crop_and_resize(images, boxes, tf.range(6), size).numpy()
    np.testing.assert_array_equal(crop_and_resize(images, boxes, size).numpy(), expected)
    np.testing.assert_allclose(
        crop_and_resize_gather(images, boxes, size).numpy(), expected, atol=1e-6
    )
    compiled = tf.function(lambda x, b: crop_and_resize(x, b, size), jit_compile=True)
    np.testing.assert_allclose(compiled(images, boxes).numpy(), expected, atol=1e-5)


def test_output_shape_and_upsampling():
    layer = RandomResizedCrop(24, 40)
    assert layer(_images(), seed=SEED).shape == (6, 24, 40, 3)
    assert layer.compute_output_shape((None, 16, 16, 3)) == (None, 24, 40, 3)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(scale=(0.0, 0.5)), r"`scale` must be .*\(0.0, 1.0\].*received \(0.0, 0.5\).*Fix"),
        (dict(scale=(0.5, 1.5)), r"`scale` must be .*received \(0.5, 1.5\).*Fix"),
        (dict(scale=(0.8, 0.2)), r"`scale` must be .*a <= b.*received \(0.8, 0.2\).*Fix"),
        (dict(scale=0.5), r"`scale` must be .*received 0.5.*Fix"),
        (dict(ratio=(0.0, 1.0)), r"`ratio` must be .*received \(0.0, 1.0\).*Fix"),
        (dict(height=0), r"`height` must be an integer >= 1; received 0.*Fix"),
        (dict(width=12.5), r"`width` must be an integer >= 1; received 12.5.*Fix"),
    ],
)
def test_bad_arguments_raise(kwargs, pattern):
    arguments = dict(height=8, width=8)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        RandomResizedCrop(**arguments)
