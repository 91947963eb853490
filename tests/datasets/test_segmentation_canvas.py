"""Tests for keras_ssl.datasets.segmentation.paint_canvas on hand-made garments."""

import numpy as np
import pytest

from keras_ssl.datasets.segmentation import paint_canvas


def test_labels_background_and_overlap_order():
    first = np.zeros((2, 2), np.uint8)
    first[:] = 100
    second = np.array([[200, 0], [0, 200]], np.uint8)  # only the diagonal is foreground
    image, mask = paint_canvas([first, second], [3, 7], [(0, 0), (1, 1)], canvas_size=4)
    expected_mask = np.array([[4, 4, 0, 0], [4, 8, 0, 0], [0, 0, 8, 0], [0, 0, 0, 0]])
    expected_image = np.array([[100, 100, 0, 0], [100, 200, 0, 0], [0, 0, 200, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(image, expected_image)
    # Reversed paint order: the first garment now covers the second one's pixel at (1, 1).
    _, mask = paint_canvas([second, first], [7, 3], [(1, 1), (0, 0)], canvas_size=4)
    assert mask[1, 1] == 4 and mask[2, 2] == 8


def test_threshold_makes_faint_pixels_background():
    garment = np.array([[32, 33]], np.uint8)
    _, mask = paint_canvas([garment], [0], [(0, 0)], canvas_size=2, threshold=32)
    np.testing.assert_array_equal(mask, [[0, 1], [0, 0]])


def test_errors():
    with pytest.raises(ValueError, match="does not fit"):
        paint_canvas(np.ones((1, 3, 3), np.uint8), [0], [(2, 0)], canvas_size=4)
    with pytest.raises(ValueError, match="one label and one"):
        paint_canvas(np.ones((2, 3, 3), np.uint8), [0], [(0, 0)], canvas_size=4)
