import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.pretext import masks

SEED = tf.constant([5, 9])


def test_central_square_drops_the_centre_quarter():
    b = masks.central_square(2, (8, 8, 3)).numpy()
    expected = np.ones((8, 8), np.float32)
    expected[2:6, 2:6] = 0
    assert b.shape == (2, 8, 8, 1)
    np.testing.assert_array_equal(b[0, ..., 0], expected)
    np.testing.assert_array_equal(b[1], b[0])
    assert masks.central_square(1, (28, 28)).numpy().mean() == 1 - 14 * 14 / 28**2


def test_random_blocks_cover_about_a_quarter_with_squares():
    b = masks.random_blocks(64, (28, 28, 1), SEED).numpy()
    dropped = 1 - b.mean(axis=(1, 2, 3))
    block_area = 7 * 7 / 28**2
    assert dropped.min() >= 0.25 and dropped.max() < 0.25 + block_area
    assert set(np.unique(b)) == {0.0, 1.0}
    assert len({b[i].tobytes() for i in range(64)}) == 64  # every image its own mask
    single = masks.random_blocks(1, (8, 8), SEED, coverage=0.01, block_size=0.25).numpy()[0, ..., 0]
    rows, columns = np.nonzero(single == 0)
    assert len(rows) == 4 and np.ptp(rows) == 1 and np.ptp(columns) == 1  # one 2x2 block


def test_random_blocks_are_seeded_and_identical_under_xla():
    eager = masks.random_blocks(4, (8, 8), SEED).numpy()
    compiled = tf.function(lambda s: masks.random_blocks(4, (8, 8), s), jit_compile=True)
    np.testing.assert_array_equal(compiled(SEED).numpy(), eager)
    assert not np.array_equal(masks.random_blocks(4, (8, 8), tf.constant([5, 10])).numpy(), eager)


def test_random_regions_are_flipped_and_shifted_source_masks():
    source = np.zeros((1, 6, 6), np.uint8)
    source[0, 0, 0:2] = 1  # a 1x2 bar in the corner
    b = masks.random_regions(32, source, SEED).numpy()
    for mask in b[..., 0]:
        rows, columns = np.nonzero(mask == 0)
        assert len(rows) == 2 and rows[0] == rows[1]  # the same bar, moved (cyclically)
        assert (columns[1] - columns[0]) % 6 in (1, 5)
    positions = {tuple(np.argwhere(m[..., 0] == 0).ravel()) for m in b}
    assert len(positions) > 10
    compiled = tf.function(lambda s: masks.random_regions(32, source, s), jit_compile=True)
    np.testing.assert_array_equal(compiled(SEED).numpy(), b)


def test_blob_source_and_make_masks():
    source = masks.blob_regions((16, 16), count=8, seed=1)
    assert source.shape == (8, 16, 16) and source.dtype == np.uint8
    assert 0.02 < source.mean() < 0.6
    np.testing.assert_array_equal(source, masks.blob_regions((16, 16), count=8, seed=1))
    region = masks.make_masks("random_region", 3, (16, 16, 1), SEED).numpy()
    assert region.shape == (3, 16, 16, 1) and 0 < region.mean() < 1
    np.testing.assert_array_equal(
        masks.make_masks("central", 2, (8, 8)), masks.central_square(2, (8, 8))
    )


def _numpy_border(b, width):
    # Context pixels within Chebyshev distance `width` of a dropped pixel, by brute force.
    holes = 1 - b[..., 0]
    border = np.zeros_like(holes)
    for n, y, x in zip(*np.nonzero(holes)):
        border[n, max(0, y - width) : y + width + 1, max(0, x - width) : x + width + 1] = 1
    return ((border - holes) > 0).astype(np.float32)[..., None]


def test_overlap_border_is_the_hole_grown_by_the_width():
    b = masks.random_blocks(3, (10, 10), seed=[3, 4]).numpy()
    for width in (0, 1, 3):
        np.testing.assert_array_equal(
            masks.overlap_border(b, width).numpy(), _numpy_border(b, width)
        )


def test_central_box_is_the_hole_grown_by_the_margin_and_clipped():
    assert masks.central_box((16, 16)) == (4, 4, 8, 8)
    assert masks.central_box((16, 16), margin=2) == (2, 2, 12, 12)
    assert masks.central_box((16, 16), margin=7) == (0, 0, 16, 16)


def test_predicted_region_of_central_masks_is_the_grown_crop():
    images = np.random.default_rng(0).random((2, 16, 16, 3)).astype(np.float32)
    b = masks.central_square(2, (16, 16))
    region = masks.predicted_region(images, b, "central", overlap=2).numpy()
    np.testing.assert_array_equal(region, images[:, 2:14, 2:14])
    assert masks.region_shape("central", (16, 16, 3), 2) == region.shape[1:] == (12, 12, 3)


def test_predicted_region_of_random_masks_zeroes_everything_but_the_hole_and_border():
    images = np.random.default_rng(0).random((3, 10, 10, 1)).astype(np.float32)
    b = masks.random_blocks(3, (10, 10), seed=[3, 4]).numpy()
    region = masks.predicted_region(images, b, "random_blocks", overlap=1).numpy()
    np.testing.assert_allclose(region, images * ((1 - b) + _numpy_border(b, 1)), rtol=0, atol=0)
    assert masks.region_shape("random_blocks", (10, 10, 1), 1) == (10, 10, 1)


def test_region_source():
    assert masks.region_source("central", np.ones((2, 8, 8)), (8, 8, 1)) is None
    np.testing.assert_array_equal(
        masks.region_source("random_region", None, (8, 8, 1)), masks.blob_regions((8, 8))
    )
    source = masks.region_source("random_region", np.ones((2, 8, 8, 1), bool), (8, 8, 1))
    assert source.shape == (2, 8, 8) and source.dtype == np.uint8 and source.min() == 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: masks.central_square(1, (8,)), "`image_shape` must be .* received \\(8,\\)"),
        (lambda: masks.central_square(1, (8, 8), size=1.0), "`size` must be a number in"),
        (lambda: masks.random_blocks(1, (8, 8), coverage=0), "`coverage` must be a number in"),
        (lambda: masks.random_regions(1, np.ones((8, 8))), "received shape \\(8, 8\\)"),
        (lambda: masks.make_masks("square", 1, (8, 8)), "`mask` must be one of"),
        (
            lambda: masks.region_source("random_region", np.ones((2, 4, 4)), (8, 8, 1)),
            "`region_masks` must be \\[M, 8, 8\\] .* received shape \\(2, 4, 4\\)",
        ),
        (
            lambda: masks.overlap_border(np.ones((1, 4, 4, 1)), -1),
            "`width` must be an integer >= 0; received -1. Fix: pass a border width in pixels",
        ),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
