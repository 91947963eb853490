import numpy as np
import pytest

from keras_ssl.methods import inpainting


def test_check_fill_value_defaults_to_the_papers_imagenet_mean_and_broadcasts():
    np.testing.assert_array_equal(
        inpainting.check_fill_value(None, 3), np.float32([117 / 255, 104 / 255, 123 / 255])
    )
    np.testing.assert_array_equal(
        inpainting.check_fill_value(None, 1), np.float32([inpainting.IMAGENET_MEAN_GREY])
    )
    np.testing.assert_array_equal(inpainting.check_fill_value(0.5, 3), np.float32([0.5] * 3))
    np.testing.assert_array_equal(
        inpainting.check_fill_value(np.float32([0.1, 0.2, 0.3]), 3), np.float32([0.1, 0.2, 0.3])
    )


@pytest.mark.parametrize("value", [1.5, -0.1, (0.1, 0.2), "mean", True, [[0.1]], [0.1, "a", 0.3]])
def test_check_fill_value_rejects(value):
    with pytest.raises(ValueError, match="`fill_value` must be a float in \\[0, 1\\] or 3 of them"):
        inpainting.check_fill_value(value, 3)


def test_fill_holes_keeps_the_context_and_fills_the_holes():
    images = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    masks = np.ones((2, 4, 4, 1), np.float32)
    masks[:, 1:3, 1:3] = 0
    filled = inpainting.fill_holes(images, masks, np.float32([0.1, 0.2, 0.3])).numpy()
    np.testing.assert_array_equal(filled * masks, images * masks)
    np.testing.assert_allclose(filled[:, 1:3, 1:3], np.broadcast_to([0.1, 0.2, 0.3], (2, 2, 2, 3)))
    pasted = inpainting.fill_holes(images, masks, 1 - images).numpy()
    np.testing.assert_allclose(pasted[:, 1:3, 1:3], 1 - images[:, 1:3, 1:3])
