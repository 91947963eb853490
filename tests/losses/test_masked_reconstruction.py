"""The context encoder's reconstruction loss (Pathak et al. 2016, eq. (1) and the released
code's overlap border)."""

import numpy as np
from scipy import ndimage

from keras_ssl import testing
from keras_ssl.losses import masked_reconstruction_loss
from keras_ssl.pretext import masks as masks_lib


def _dilation_border(masks, width):
    # Context pixels within Chebyshev distance `width` of a dropped pixel: the holes dilated by a
    # (2 * width + 1)-square (scipy's maximum filter, zero outside the image), minus the holes.
    holes = 1 - masks[..., 0]
    grown = ndimage.maximum_filter(holes, size=(1, 2 * width + 1, 2 * width + 1), mode="constant")
    return (grown - holes)[..., None].astype(np.float32)


def test_masked_reconstruction_loss_hole_only_is_eq_1():
    images = np.zeros((1, 2, 2, 1), np.float32)
    predictions = np.array([[[[1.0], [2.0]], [[3.0], [4.0]]]], np.float32)
    masks = np.array([[[[1.0], [0.0]], [[1.0], [0.0]]]], np.float32)
    # overlap=0: dropped pixels only, errors 2 and 4 -> (4 + 16) / 2; kept pixels do not count.
    testing.run_loss_test(
        masked_reconstruction_loss,
        {"images": images, "predictions": predictions, "masks": masks, "overlap": 0},
        expected=10.0,
    )
    # overlap=1: the kept column is the border, weighted 10: (10 * (1 + 9) + 4 + 16) / 4.
    testing.run_loss_test(
        masked_reconstruction_loss,
        {"images": images, "predictions": predictions, "masks": masks, "overlap": 1},
        expected=30.0,
    )
    assert float(masked_reconstruction_loss(images, predictions, np.ones_like(masks))[0]) == 0


def test_masked_reconstruction_loss_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    masks = masks_lib.random_blocks(4, (12, 12), seed=[1, 2]).numpy()
    inputs = {
        "images": rng.random((4, 12, 12, 3)),
        "predictions": rng.random((4, 12, 12, 3)),
        "masks": masks,
        "overlap": 2,
        "overlap_weight": 7.0,
    }

    def reference(images, predictions, masks, overlap, overlap_weight):
        holes, border = 1 - masks, _dilation_border(masks, overlap)
        weights = holes + overlap_weight * border
        return np.sum(weights * (images - predictions) ** 2, axis=(1, 2, 3)) / (
            3 * (holes + border).sum(axis=(1, 2, 3))
        )

    testing.run_loss_test(masked_reconstruction_loss, inputs, reference_fn=reference)


def test_an_error_in_the_4_pixel_border_costs_10x_the_same_error_in_the_hole():
    # 24x24 image, central hole [6:18]; with the default overlap=4 the predicted region is
    # [2:22], its 4-pixel border weighted 10 (train.lua: overlapPred=4, overlapL2Weight = 10).
    masks = masks_lib.central_square(1, (24, 24)).numpy()
    images = np.zeros((1, 24, 24, 1), np.float32)

    def cost(y, x):
        predictions = images.copy()
        predictions[0, y, x, 0] = 0.5
        return float(masked_reconstruction_loss(images, predictions, masks)[0])

    interior = cost(12, 12)
    np.testing.assert_allclose(interior, 0.25 / 400, rtol=1e-6, atol=0)  # 20 x 20 region
    for y, x in [(2, 2), (5, 12), (12, 21), (21, 21)]:  # border, 1 to 4 pixels from the hole
        np.testing.assert_allclose(cost(y, x) / interior, 10.0, rtol=1e-6, atol=0)
    for y, x in [(6, 6), (17, 10)]:  # hole pixels next to the border weigh 1
        np.testing.assert_allclose(cost(y, x) / interior, 1.0, rtol=1e-6, atol=0)
    for y, x in [(1, 1), (0, 12), (22, 12)]:  # 5+ pixels away: not predicted
        assert cost(y, x) == 0.0
