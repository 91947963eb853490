import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.pretext import noise

SEED = tf.constant([3, 7])


def _images(n=16, side=16, channels=1, seed=0):
    return np.random.default_rng(seed).random((n, side, side, channels), dtype=np.float32)


def test_masking_zeroes_the_fraction_and_keeps_the_rest_exactly():
    images = _images() * 0.9 + 0.05  # no zeros in the input
    out = noise.masking_noise(images, 0.25, SEED).numpy()
    zeroed = out == 0
    assert abs(zeroed.mean() - 0.25) < 0.02
    np.testing.assert_array_equal(out[~zeroed], images[~zeroed])


def test_salt_and_pepper_replaces_the_fraction_by_0_or_1_half_each():
    images = _images() * 0.9 + 0.05
    out = noise.salt_and_pepper_noise(images, 0.3, SEED).numpy()
    changed = out != images
    assert abs(changed.mean() - 0.3) < 0.02
    assert set(np.unique(out[changed])) == {0.0, 1.0}
    assert abs((out[changed] == 1.0).mean() - 0.5) < 0.05
    np.testing.assert_array_equal(out[~changed], images[~changed])


def test_gaussian_noise_has_the_requested_moments_and_is_not_clipped():
    images = np.full((8, 32, 32, 1), 0.5, np.float32)
    out = noise.gaussian_noise(images, 0.3, SEED).numpy()
    difference = out - images
    assert abs(difference.mean()) < 0.02 and abs(difference.std() - 0.3) < 0.02
    assert out.min() < 0 and out.max() > 1
    expected = images + 0.3 * noise.standard_normal(tf.shape(images), SEED).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_uniform_is_in_the_unit_interval_and_seeded():
    values = noise.uniform([1000], SEED).numpy()
    assert values.min() >= 0 and values.max() < 1 and abs(values.mean() - 0.5) < 0.05
    np.testing.assert_array_equal(values, noise.uniform([1000], SEED).numpy())
    assert not np.array_equal(values, noise.uniform([1000], tf.constant([3, 8])).numpy())


@pytest.mark.parametrize(
    "kind, amount", [("gaussian", 0.2), ("masking", 0.3), ("salt_and_pepper", 0.3)]
)
def test_corrupt_is_stateless_and_identical_under_xla(kind, amount):
    images = tf.constant(_images(n=4, side=8, channels=3))
    eager = noise.corrupt(images, kind, amount, SEED).numpy()
    np.testing.assert_array_equal(noise.corrupt(images, kind, amount, SEED).numpy(), eager)
    compiled = tf.function(lambda x, s: noise.corrupt(x, kind, amount, s), jit_compile=True)
    np.testing.assert_allclose(compiled(images, SEED).numpy(), eager, atol=1e-5)
    other = noise.corrupt(images, kind, amount, tf.constant([3, 8])).numpy()
    assert not np.array_equal(other, eager)


def test_no_noise_returns_the_images():
    images = _images(n=2, side=4)
    np.testing.assert_array_equal(noise.corrupt(images, None, None).numpy(), images)


@pytest.mark.parametrize(
    "kind, amount, match",
    [
        ("speckle", 0.1, "`noise` must be one of"),
        ("gaussian", 0.0, r"`noise_amount` must be a positive number; received 0\.0\. .*deviation"),
        ("masking", 1.5, r"`noise_amount` must be a number in \(0, 1\); received 1\.5\. .*masking"),
        ("salt_and_pepper", "0.1", r"`noise_amount` must be a number in \(0, 1\); received '0\.1'"),
    ],
)
def test_bad_noise_arguments_raise(kind, amount, match):
    with pytest.raises(ValueError, match=match):
        noise.corrupt(_images(n=1, side=4), kind, amount, SEED)
