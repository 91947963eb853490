import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.pretext.rotation import rotate_images, rotation_batch


def test_rotation_batch_matches_numpy_rot90_and_labels_count_quarter_turns():
    images = np.arange(2 * 3 * 3 * 2, dtype=np.float32).reshape(2, 3, 3, 2)
    rotated, labels = rotation_batch(images)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2, 3, 3])
    for k in range(4):
        for i in range(2):
            # Counter-clockwise quarter turns, as np.rot90 / tf.image.rot90.
            np.testing.assert_array_equal(rotated[2 * k + i], np.rot90(images[i], k))
    # Hand-checked 2x2 case: a 90 degree turn moves the top-right pixel to the top-left.
    square = np.array([[1, 2], [3, 4]], np.uint8).reshape(1, 2, 2, 1)
    rotated, _ = rotation_batch(square)
    np.testing.assert_array_equal(rotated[1, ..., 0], [[2, 4], [1, 3]])
    np.testing.assert_array_equal(rotated[2, ..., 0], [[4, 3], [2, 1]])
    assert rotated.dtype == tf.uint8


def test_rotating_back_by_the_label_restores_the_image():
    rng = np.random.default_rng(0)
    images = rng.random((5, 6, 6, 3)).astype(np.float32)
    rotated, labels = rotation_batch(images)
    restored = rotate_images(rotated, -labels)
    np.testing.assert_array_equal(restored, np.tile(images, (4, 1, 1, 1)))
    # Each image its own turn; any integer works modulo 4.
    turns = np.array([0, 1, 2, 3, 7])
    turned = rotate_images(images, turns)
    for i, k in enumerate(turns):
        np.testing.assert_array_equal(turned[i], np.rot90(images[i], k))
        assert not np.array_equal(turned[i], images[i]) or k % 4 == 0
    np.testing.assert_array_equal(rotate_images(turned, 4 - turns), images)


def test_rotate_images_compiles_with_xla():
    images = np.random.default_rng(1).random((4, 5, 5, 1)).astype(np.float32)
    turns = np.array([3, 2, 1, 0], np.int32)
    compiled = tf.function(rotate_images, jit_compile=True)
    np.testing.assert_array_equal(compiled(images, turns), rotate_images(images, turns))
    batch = tf.function(rotation_batch, jit_compile=True)(images)
    np.testing.assert_array_equal(batch[0], rotation_batch(images)[0])


@pytest.mark.parametrize("shape", [(2, 4, 6, 1), (4, 4, 1)])
def test_non_square_or_unbatched_images_raise(shape):
    with pytest.raises(ValueError, match=r"square images \[batch, side, side.*received shape"):
        rotation_batch(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match="Fix: resize or centre-crop"):
        rotate_images(np.zeros(shape, np.float32), np.zeros(shape[:1], np.int32))
