"""RandomGaussianBlur: per-image kernels, reflect padding, both implementations."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.augment import RandomGaussianBlur, gaussian_blur
from keras_ssl.augment.blur import gaussian_kernels

SEED = tf.constant([2, 8])


def _images(batch=3, height=6, width=7, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (batch, height, width, channels)).astype(np.float32)


def _np_blur(image, sigma, kernel_size):
    """Direct 2-D convolution with a normalised separable Gaussian, reflect padding."""
    radius = kernel_size // 2
    taps = np.array([math.exp(-(k * k) / (2 * sigma * sigma)) for k in range(-radius, radius + 1)])
    taps /= taps.sum()
    kernel = np.outer(taps, taps)
    pad = [(radius, radius), (radius, radius), (0, 0)]
    padded = np.pad(image.astype(np.float64), pad, "reflect")
    out = np.zeros(image.shape)
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            window = padded[i : i + kernel_size, j : j + kernel_size]
            out[i, j] = (window * kernel[:, :, None]).sum(axis=(0, 1))
    return out


@pytest.mark.parametrize("compiled", [False, True], ids=["tf", "xla"])
def test_blur_matches_numpy_convolution_with_per_image_sigma(compiled):
    images = _images()
    sigmas = np.array([0.5, 1.0, 2.5], np.float32)
    blur = lambda x, s: gaussian_blur(x, s, 5)  # noqa: E731
    if compiled:
        blur = tf.function(blur, jit_compile=True)
    out = blur(tf.constant(images), tf.constant(sigmas)).numpy()
    for index, sigma in enumerate(sigmas):
        np.testing.assert_allclose(out[index], _np_blur(images[index], sigma, 5), atol=1e-6)


def test_tiny_sigma_is_identity_and_constant_images_stay_constant():
    images = _images(height=8, width=8)
    sharp = RandomGaussianBlur(5, sigma=(1e-3, 1e-3), probability=1.0)
    np.testing.assert_allclose(sharp(images, seed=SEED).numpy(), images, atol=1e-6)
    constant = np.full((3, 8, 8, 3), 0.37, np.float32)
    blurred = RandomGaussianBlur(7, sigma=(0.1, 3.0), probability=1.0)(constant, seed=SEED)
    np.testing.assert_allclose(blurred.numpy(), constant, atol=1e-6)
    white = np.ones((8, 8, 8, 3), np.float32)
    for seed in range(5):  # normalised weights may sum to 1 + 1 ulp; the output is clipped
        out = RandomGaussianBlur(5, probability=1.0)(white, seed=tf.constant([seed, 0]))
        assert float(tf.reduce_max(out)) == 1.0


def test_kernels_are_normalised_symmetric_gaussians():
    kernels = gaussian_kernels(tf.constant([0.5, 2.0]), 5).numpy()
    np.testing.assert_allclose(kernels.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(kernels, kernels[:, ::-1], atol=1e-7)
    np.testing.assert_allclose(
        kernels[1, 1] / kernels[1, 2], math.exp(-1 / 8), rtol=1e-5, atol=1e-5
    )


def test_blur_probability_and_sigma_per_image():
    images = np.repeat(_images(batch=1, height=8, width=8), 12, axis=0)
    out = RandomGaussianBlur(5, probability=0.5)(images, seed=SEED).numpy()
    unchanged = [np.array_equal(o, images[0]) for o in out]
    assert 0 < sum(unchanged) < 12
    blurred = {o.tobytes() for o, same in zip(out, unchanged) if not same}
    assert len(blurred) == 12 - sum(unchanged)
    np.testing.assert_array_equal(
        RandomGaussianBlur(5, probability=0.0)(images, seed=SEED).numpy(), images
    )


@pytest.mark.parametrize(
    "kernel_size, match",
    [
        (0, r"`kernel_size` must be an integer >= 1; received 0\. Fix: pass an odd size"),
        (3.0, r"`kernel_size` must be an integer >= 1; received 3\.0"),
        (True, r"`kernel_size` must be an integer >= 1; received True"),
        (4, r"`kernel_size` must be odd .*; received 4\. Fix: pass an odd size"),
    ],
)
def test_bad_kernel_size_raises(kernel_size, match):
    with pytest.raises(ValueError, match=match):
        RandomGaussianBlur(kernel_size)


def test_kernel_larger_than_the_image_allows_raises():
    with pytest.raises(ValueError, match=r"received shape \(3, 4, 4, 3\) with kernel_size=9.*Fix"):
        RandomGaussianBlur(9)(_images(height=4, width=4))
    assert RandomGaussianBlur(7)(_images(height=4, width=4)).shape == (3, 4, 4, 3)


def test_bad_sigma_raises():
    with pytest.raises(ValueError, match=r"`sigma` must be .*received \(0.0, 1.0\).*Fix"):
        RandomGaussianBlur(3, sigma=(0.0, 1.0))
