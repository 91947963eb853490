import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.pretext import patch_pairs


def test_neighbour_labels_in_reading_order_around_the_centre():
    assert patch_pairs.NEIGHBOURS[0] == (-1, -1) and patch_pairs.NEIGHBOURS[4] == (0, 1)
    cells = [(r, c) for r in (-1, 0, 1) for c in (-1, 0, 1) if (r, c) != (0, 0)]
    assert list(patch_pairs.NEIGHBOURS) == cells


def test_default_geometry_scales_the_paper():
    assert patch_pairs.default_patch_geometry((28, 28)) == ((6, 6), (3, 3), (1, 1))
    assert patch_pairs.default_patch_geometry((224, 224)) == ((48, 48), (24, 24), (4, 4))
    # 28 px: a 24-px grid centred (2 px each side), centre cell at 2 + 6 + 3 = 11.
    assert patch_pairs.patch_pair_geometry((28, 28), (6, 6), (3, 3), (1, 1)) == (11, 11)


def test_patches_are_cut_at_cell_plus_shift_and_placing_them_by_label_restores_the_image():
    rng = np.random.default_rng(0)
    images = rng.random((16, 28, 28, 2)).astype(np.float32)
    labels = np.arange(16) % 8
    shifts = rng.integers(-1, 2, (16, 2, 2)).astype(np.int32)
    centre, neighbour = patch_pairs.cut_patch_pairs(images, labels, shifts, (6, 6), (3, 3))
    centre, neighbour = np.asarray(centre), np.asarray(neighbour)
    for b in range(16):
        dr, dc = patch_pairs.NEIGHBOURS[labels[b]]
        top, left = 11 + shifts[b, 0, 0], 11 + shifts[b, 0, 1]
        np.testing.assert_array_equal(centre[b], images[b, top : top + 6, left : left + 6])
        top, left = 11 + 9 * dr + shifts[b, 1, 0], 11 + 9 * dc + shifts[b, 1, 1]
        np.testing.assert_array_equal(neighbour[b], images[b, top : top + 6, left : left + 6])
    # Without jitter: pasting both patches on a blank canvas at the places their label names
    # gives back exactly those pixels of the image.
    zero = np.zeros((16, 2, 2), np.int32)
    centre, neighbour = patch_pairs.cut_patch_pairs(images, labels, zero, (6, 6), (3, 3))
    for b in range(16):
        canvas, mask = np.zeros_like(images[b]), np.zeros(images.shape[1:], bool)
        dr, dc = patch_pairs.NEIGHBOURS[labels[b]]
        for (top, left), patch in (
            ((11, 11), centre[b]),
            ((11 + 9 * dr, 11 + 9 * dc), neighbour[b]),
        ):
            canvas[top : top + 6, left : left + 6] = patch
            mask[top : top + 6, left : left + 6] = True
        np.testing.assert_array_equal(canvas[mask], images[b][mask])
        assert mask.sum() == 2 * 36 * 2  # two disjoint patches (the gap separates them)


def test_hand_checked_top_left_neighbour():
    # 11x11 image, 3-px patches, 1-px gap, no jitter: the grid fills it exactly, the centre
    # cell starts at 4 and the top-left neighbour (label 0) at 0.
    image = np.arange(121, dtype=np.float32).reshape(1, 11, 11, 1)
    centre, neighbour = patch_pairs.cut_patch_pairs(
        image, np.array([0]), np.zeros((1, 2, 2), np.int32), (3, 3), (1, 1)
    )
    np.testing.assert_array_equal(neighbour[0, :, :, 0], [[0, 1, 2], [11, 12, 13], [22, 23, 24]])
    np.testing.assert_array_equal(centre[0, 0, :, 0], [48, 49, 50])


def test_draws_are_stateless_per_image_and_compile_with_xla():
    labels, shifts = patch_pairs.sample_patch_pairs(200, [1, 2], (1, 2))
    assert set(np.unique(labels)) == set(range(8))
    assert set(np.unique(shifts[..., 0])) == {-1, 0, 1}
    assert set(np.unique(shifts[..., 1])) == {-2, -1, 0, 1, 2}
    again = patch_pairs.sample_patch_pairs(200, [1, 2], (1, 2))
    np.testing.assert_array_equal(again[0], labels)
    np.testing.assert_array_equal(again[1], shifts)
    assert not np.array_equal(patch_pairs.sample_patch_pairs(200, [1, 3], (1, 2))[0], labels)
    images = np.random.default_rng(1).random((4, 28, 28, 1)).astype(np.float32)

    def pairs(images, seed):
        return patch_pairs.make_patch_pairs(images, seed, (6, 6), (3, 3), (1, 1))

    compiled = tf.function(pairs, jit_compile=True)(images, tf.constant([7, 8]))
    plain = pairs(images, tf.constant([7, 8]))
    for got, want in zip(compiled, plain):
        np.testing.assert_array_equal(got, want)


def test_grid_larger_than_the_image_raises():
    images = np.zeros((2, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match=r"needs 30 pixels along the height.*have 28.*Fix"):
        patch_pairs.make_patch_pairs(images, [0, 0], (6, 6), (4, 3), (2, 1))
    with pytest.raises(ValueError, match=r"images \[batch, height, width, channels\].*received"):
        patch_pairs.make_patch_pairs(images[0], [0, 0], (6, 6), (3, 3), (1, 1))
    with pytest.raises(ValueError, match=r"`gap` must be a non-negative int.*received -1"):
        patch_pairs.pair(-1, "gap", allow_zero=True)
    assert patch_pairs.pair(0, "gap", allow_zero=True) == (0, 0)
