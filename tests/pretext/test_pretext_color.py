import numpy as np
import pytest
import tensorflow as tf
from skimage import color as skcolor

from keras_ssl.pretext import color


def test_rgb_to_lab_matches_scikit_image_and_known_values():
    rgb = np.random.default_rng(0).random((4, 5, 3))
    # scikit-image uses a slightly different D65 white (0.95047, 1, 1.08883) than the sRGB
    # matrix's row sums used here: the two agree to a few thousandths.
    np.testing.assert_allclose(color.rgb_to_lab(rgb).numpy(), skcolor.rgb2lab(rgb), atol=0.01)
    # White, black and greys are neutral (a = b = 0); pure sRGB primaries by hand (CIE tables).
    known = color.rgb_to_lab(
        np.array([[1, 1, 1], [0, 0, 0], [0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1]], "f8")
    ).numpy()
    np.testing.assert_allclose(known[:3, 1:], 0, atol=1e-6)
    np.testing.assert_allclose(known[:2, 0], [100, 0], atol=1e-6)
    np.testing.assert_allclose(known[3], [53.24, 80.09, 67.20], atol=0.02)
    np.testing.assert_allclose(known[4], [87.73, -86.18, 83.18], atol=0.02)
    np.testing.assert_allclose(known[5], [32.30, 79.19, -107.86], atol=0.02)
    # uint8 is scaled to [0, 1] first.
    np.testing.assert_allclose(
        color.rgb_to_lab(np.full((1, 3), 255, np.uint8)).numpy(), [[100, 0, 0]], atol=1e-4
    )


def test_lab_rgb_round_trip_within_1e_3():
    rgb = np.random.default_rng(1).random((64, 64, 3)).astype(np.float32)
    rgb[0, :8] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.01, 0.02, 0.03]] + [
        [0.5, 0.5, 0.5]
    ] * 2
    back = color.lab_to_rgb(color.rgb_to_lab(rgb)).numpy()
    assert np.abs(back - rgb).max() < 1e-3
    lab = skcolor.rgb2lab(rgb.astype(np.float64))
    back = color.lab_to_rgb(color.rgb_to_lab(color.lab_to_rgb(lab))).numpy()  # Lab -> RGB -> Lab
    assert np.abs(color.rgb_to_lab(back).numpy() - lab).max() < 1e-2


def test_lab_to_rgb_leaves_out_of_gamut_colours_outside_unit_range_without_clip():
    lab = np.array([[50.0, -90.0, 50.0], [50.0, 0.0, 0.0]])
    raw = color.lab_to_rgb(lab, clip=False).numpy()
    assert raw[0].min() < 0 or raw[0].max() > 1  # (a, b) = (-90, 50) is not an sRGB colour
    np.testing.assert_allclose(
        color.lab_to_rgb(lab).numpy()[0], np.clip(raw[0], 0, 1), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(raw[1], skcolor.lab2rgb(lab[1]), atol=1e-3)


def numpy_gamut_cells(grid=10.0):
    """Independent procedure (the other direction from the library's RGB-cube sampling): sample
    L and ab on a grid, convert Lab -> RGB unclipped, keep ab cells where some L is in gamut."""
    ab = np.arange(-120, 120.01, 1.0)
    a, b = np.meshgrid(ab, ab, indexing="ij")
    inside = np.zeros(a.shape, bool)
    for lightness in np.arange(0, 100.01, 1.0):
        lab = np.stack([np.full(a.shape, lightness), a, b], -1)
        raw = color.lab_to_rgb(lab, clip=False).numpy()
        inside |= np.all((raw >= -1e-9) & (raw <= 1 + 1e-9), axis=-1)
    cells = np.unique(np.round(np.stack([a[inside], b[inside]], -1) / grid), axis=0)
    return cells * grid


def test_ab_gamut_has_the_bins_sRGB_colours_reach():
    bins = color.ab_gamut_bins(10)
    # Computed, not a table: 262 cells of the grid-10 ab plane hold an sRGB colour, spanning
    # a in [-90, 100], b in [-110, 90] -- the same extent as Zhang et al.'s released table,
    # which has 313 bins because it also holds cells no sRGB colour reaches (see the docstring).
    assert bins.shape == (262, 2) and bins.dtype == np.float32
    assert (bins[:, 0].min(), bins[:, 0].max(), bins[:, 1].min(), bins[:, 1].max()) == (
        -90,
        100,
        -110,
        90,
    )
    np.testing.assert_array_equal(bins % 10, 0)
    assert np.all(np.lexsort((bins[:, 1], bins[:, 0])) == np.arange(len(bins)))
    reference = numpy_gamut_cells()
    # The L x ab sampling misses a few barely touched boundary cells; all it finds are in bins.
    found = {tuple(c) for c in reference}
    assert found <= {tuple(c) for c in bins} and len(found) >= 250
    assert (-90.0, 50.0) not in found and (0.0, 0.0) in found
    # Every colour of the RGB cube lies in the cell of one of the bins.
    rgb = np.random.default_rng(0).random((20000, 3))
    ab = color.rgb_to_lab(rgb).numpy()[:, 1:]
    nearest = np.argmin(((ab[:, None] - bins[None]) ** 2).sum(-1), axis=1)
    assert np.abs(ab - bins[nearest]).max() <= 5 + 1e-6
    assert len(color.ab_gamut_bins(20)) < 100


def test_soft_encoding_is_a_gaussian_over_the_5_nearest_bins():
    bins = color.ab_gamut_bins()
    point = np.array([[3.0, -4.0]])
    targets = color.soft_encode(point, bins).numpy()[0]
    distances = np.sqrt(((bins - point) ** 2).sum(-1))
    nearest = np.argsort(distances)[:5]
    expected = np.zeros(len(bins))
    expected[nearest] = np.exp(-(distances[nearest] ** 2) / (2 * 5.0**2))
    expected /= expected.sum()
    np.testing.assert_allclose(targets, expected, atol=1e-6)
    assert np.count_nonzero(targets) == 5 and np.argmax(targets) == nearest[0]
    # By hand: a value on a bin centre (0, 0) has 4 neighbours at distance 10.
    centre = color.soft_encode(np.zeros((2, 1, 2)), bins).numpy()
    assert centre.shape == (2, 1, len(bins))
    weight = np.exp(-100 / 50)
    np.testing.assert_allclose(
        np.sort(centre[0, 0])[-5:],
        [weight / (1 + 4 * weight)] * 4 + [1 / (1 + 4 * weight)],
        rtol=1e-5,
        atol=1e-5,
    )


def test_bin_frequencies_and_rebalancing_weights():
    bins = color.ab_gamut_bins()
    grey = np.full((2, 4, 4, 3), 128, np.uint8)
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    frequencies = color.ab_bin_frequencies(np.concatenate([grey, red]), bins)
    red_bin = int(color.nearest_bin(color.rgb_to_lab(red[0, 0, 0] / 255.0)[1:], bins))
    grey_bin = int(np.argmin((bins**2).sum(-1)))
    assert frequencies[grey_bin] == pytest.approx(2 / 3) and frequencies[red_bin] == pytest.approx(
        1 / 3
    )
    dataset = tf.data.Dataset.from_tensor_slices({"images": np.concatenate([grey, red])}).batch(2)
    np.testing.assert_allclose(
        color.ab_bin_frequencies(dataset, bins), frequencies, rtol=1e-6, atol=1e-6
    )

    weights = color.rebalancing_weights(frequencies, bins).numpy()
    # NumPy reference of Eq. 4: smooth, mix with uniform, invert, E_p~[w] = 1.
    squared = ((bins[:, None] - bins[None]) ** 2).sum(-1)
    smoothed = np.exp(-squared / 50.0) @ frequencies
    smoothed /= smoothed.sum()
    reference = 1 / (0.5 * smoothed + 0.5 / len(bins))
    reference /= (smoothed * reference).sum()
    np.testing.assert_allclose(weights, reference, rtol=1e-4, atol=1e-4)
    assert (smoothed * weights).sum() == pytest.approx(1.0, abs=1e-5)
    assert weights[grey_bin] < weights[red_bin] < weights.max()  # rarer colours weigh more
    # Uniform frequencies on a uniform kernel: all weights 1 (plain cross-entropy) -- checked
    # through mix = 1, where the weights no longer depend on the frequencies.
    np.testing.assert_allclose(
        color.rebalancing_weights(frequencies, bins, mix=1.0), 1, rtol=1e-5, atol=1e-5
    )


def test_annealed_mean_interpolates_between_mean_and_mode():
    bins = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]], np.float32)
    probabilities = np.array([0.5, 0.3, 0.2])
    logits = np.log(probabilities)
    np.testing.assert_allclose(
        color.annealed_mean(logits, bins, 1.0), probabilities @ bins, rtol=1e-5, atol=1e-5
    )
    sharpened = probabilities ** (1 / 0.38)
    sharpened /= sharpened.sum()
    np.testing.assert_allclose(
        color.annealed_mean(logits, bins), sharpened @ bins, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(color.annealed_mean(logits, bins, 1e-3), bins[0], atol=1e-3)


def test_bad_inputs_raise():
    with pytest.raises(
        ValueError, match=r"images.*3 values.*received shape \(2, 2, 1\).*grayscale"
    ):
        color.rgb_to_lab(np.zeros((2, 2, 1), np.float32))
    with pytest.raises(ValueError, match=r"lab.*received shape \(4, 2\)"):
        color.lab_to_rgb(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"ab.*received shape \(4, 3\)"):
        color.soft_encode(np.zeros((4, 3)), color.ab_gamut_bins())
    with pytest.raises(ValueError, match="grid_size.*received 0"):
        color.ab_gamut_bins(0)
    with pytest.raises(ValueError, match="resolution.*received 0"):
        color.ab_gamut_bins(10, resolution=0)
    with pytest.raises(ValueError, match="data set is empty"):
        color.ab_bin_frequencies(np.zeros((0, 2, 2, 3), np.uint8), color.ab_gamut_bins())


def test_lightness_bins_and_quantisation():
    centres = color.lightness_bins()
    assert centres.shape == (50, 1)
    np.testing.assert_allclose(centres[:3, 0], [1.0, 3.0, 5.0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(centres[-1, 0], 99.0, rtol=1e-6, atol=1e-6)
    values = [-3.0, 0.0, 1.99, 2.0, 50.0, 99.9, 100.0, 105.0]
    np.testing.assert_array_equal(color.quantize_lightness(values), [0, 0, 0, 1, 25, 49, 49, 49])
    # The index is the nearest centre's (within the range; random values avoid the ties).
    inside = np.random.default_rng(0).uniform(0, 100, 500)
    nearest = np.argmin(np.abs(inside[:, None] - centres[None, :, 0]), axis=1)
    np.testing.assert_array_equal(color.quantize_lightness(inside), nearest)
    np.testing.assert_array_equal(color.quantize_lightness([10.0, 60.0], num_bins=4), [0, 2])
