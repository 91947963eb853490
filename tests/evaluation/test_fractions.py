import numpy as np
import pytest

from keras_ssl.evaluation.fractions import label_fraction

LABELS = np.repeat(np.arange(10), 100)[np.random.default_rng(0).permutation(1000)]


def test_class_balanced_and_reproducible():
    indices = label_fraction(LABELS, 0.1, seed=3)
    assert len(indices) == 100 and len(set(indices.tolist())) == 100
    np.testing.assert_array_equal(np.bincount(LABELS[indices]), np.full(10, 10))
    np.testing.assert_array_equal(indices, label_fraction(LABELS, 0.1, seed=3))
    assert not np.array_equal(indices, label_fraction(LABELS, 0.1, seed=4))
    assert np.all(np.diff(indices) > 0)


def test_tiny_fractions_keep_one_per_class_and_full_keeps_all():
    np.testing.assert_array_equal(np.bincount(LABELS[label_fraction(LABELS, 0.001)]), np.ones(10))
    np.testing.assert_array_equal(label_fraction(LABELS, 1.0), np.arange(1000))


def test_unbalanced_classes_keep_their_proportions():
    labels = np.array([0] * 200 + [1] * 20)
    counts = np.bincount(labels[label_fraction(labels, 0.1)])
    np.testing.assert_array_equal(counts, [20, 2])


@pytest.mark.parametrize("fraction", [0, 1.5, -0.1, True, "10%"])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        label_fraction(LABELS, fraction)
