"""datasets.small: the offline digits and glyph sets are deterministic, balanced and learnable."""

import numpy as np
import pytest
from scipy import ndimage

from keras_ssl.datasets import small


def _one_nn_accuracy(x, y, x_test, y_test):
    """Cosine 1-nearest-neighbour accuracy on mean-centred raw pixels (an independent probe)."""
    a = x.reshape(len(x), -1).astype(np.float64)
    b = x_test.reshape(len(x_test), -1).astype(np.float64)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.mean(y[np.argmax(b @ a.T, axis=1)] == y_test))


@pytest.fixture(scope="module")
def digits():
    return small.load_digits(train_examples=500, test_examples=200, seed=3)


@pytest.fixture(scope="module")
def glyphs():
    return small.load_glyphs(train_examples=500, test_examples=200, seed=3)


@pytest.mark.parametrize("name", ["digits", "glyphs"])
def test_shapes_dtypes_and_balanced_labels(name, digits, glyphs):
    (x, y), (x_test, y_test) = {"digits": digits, "glyphs": glyphs}[name]
    assert x.shape == (500, 28, 28, 1) and x_test.shape == (200, 28, 28, 1)
    assert x.dtype == x_test.dtype == np.uint8
    assert y.dtype == y_test.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [50] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [20] * 10)
    assert x.max() > 200 and x.min() < 30  # the full intensity range is used
    # Classes are shuffled, not sorted.
    assert len(np.unique(y[:20])) > 5


@pytest.mark.parametrize("loader", [small.load_digits, small.load_glyphs])
def test_same_seed_same_arrays_other_seed_other_arrays(loader):
    first = loader(train_examples=30, test_examples=20, seed=5)
    again = loader(train_examples=30, test_examples=20, seed=5)
    other = loader(train_examples=30, test_examples=20, seed=6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(first[0][0], other[0][0])


def test_load_data_dispatches_by_name_and_rejects_unknown_names():
    direct = small.load_glyphs(train_examples=10, test_examples=10, seed=1)
    named = small.load_data("glyphs", train_examples=10, test_examples=10, seed=1)
    np.testing.assert_array_equal(direct[0][0], named[0][0])
    np.testing.assert_array_equal(direct[1][1], named[1][1])
    with pytest.raises(
        ValueError, match=r"Unknown small data set 'mnist'.*'digits', 'glyphs'.*Fix"
    ):
        small.load_data("mnist")


def test_classes_are_learnable_from_raw_pixels(digits, glyphs):
    # 10 balanced classes: chance is 0.1. Measured 0.55 for both at seed 0.
    for (x, y), (x_test, y_test) in (digits, glyphs):
        assert _one_nn_accuracy(x, y, x_test, y_test) > 0.35


def test_digit_sources_split_disjointly_per_class():
    labels = np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    train_ids, test_ids = small.split_sources(labels, 0.2, seed=0)
    assert np.intersect1d(train_ids, test_ids).size == 0
    np.testing.assert_array_equal(np.union1d(train_ids, test_ids), np.arange(len(labels)))
    expected = [max(1, round(n * 0.2)) for n in np.bincount(labels)]
    np.testing.assert_array_equal(np.bincount(labels[test_ids], minlength=10), expected)
    again = small.split_sources(labels, 0.2, seed=0)
    np.testing.assert_array_equal(again[1], test_ids)
    assert not np.array_equal(small.split_sources(labels, 0.2, seed=1)[1], test_ids)


def test_bilinear_sampling_matches_scipy():
    rng = np.random.default_rng(0)
    sources = rng.uniform(0, 1, (3, 9, 9))
    x = rng.uniform(-1.5, 9.5, (3, 5, 6))
    y = rng.uniform(-1.5, 9.5, (3, 5, 6))
    ours = small._bilinear(sources, x, y)
    for n in range(3):
        reference = ndimage.map_coordinates(
            sources[n], [y[n], x[n]], order=1, mode="grid-constant", cval=0.0
        )
        np.testing.assert_allclose(ours[n], reference, rtol=1e-12, atol=1e-12)


def test_colour_glyphs_vary_colour_and_keep_letter_contrast():
    (x, y), _ = small.load_glyphs(train_examples=200, test_examples=10, channels=3, seed=0)
    assert x.shape == (200, 28, 28, 3)
    means = x.reshape(200, -1, 3).mean(1)
    assert means.std(0).min() > 20  # every channel's mean varies across images
    luma = x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    spread = np.percentile(luma.reshape(200, -1), 99, 1) - np.percentile(
        luma.reshape(200, -1), 1, 1
    )
    assert spread.min() > 0.2 * 255  # foreground and background differ by >= 0.3 in luma
    gray = small.load_glyphs(train_examples=200, test_examples=10, seed=0)[0][1]
    np.testing.assert_array_equal(y, gray)  # same labels: colour is the only difference drawn


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: small.load_digits(train_examples=5), r"`train_examples` must be an integer >= 10"),
        (lambda: small.load_glyphs(test_examples=2.5), r"`test_examples` must be an integer >= 10"),
        (lambda: small.load_digits(image_size=4), r"`image_size` must be an integer >= 8"),
        (lambda: small.load_glyphs(seed=-1), r"`seed` must be an integer >= 0"),
        (lambda: small.load_digits(test_fraction=1.0), r"`test_fraction` must be a number in"),
        (lambda: small.load_glyphs(channels=2), r"`channels` must be 1 or 3; received 2"),
    ],
)
def test_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern + r".*Fix"):
        call()


def test_other_image_sizes():
    (x, _), (x_test, _) = small.load_digits(train_examples=10, test_examples=10, image_size=40)
    assert x.shape == x_test.shape == (10, 40, 40, 1)
    (x, _), _ = small.load_glyphs(train_examples=10, test_examples=10, image_size=16, channels=3)
    assert x.shape == (10, 16, 16, 3)
