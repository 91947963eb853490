"""Input corruptions of denoising autoencoders: Gaussian, masking and salt-and-pepper noise.

Vincent et al. 2008 ("Extracting and Composing Robust Features with Denoising Autoencoders",
ICML) corrupt an input by forcing a random fraction of its components to 0 (masking noise);
Vincent et al. 2010 (JMLR, "Stacked Denoising Autoencoders") add isotropic Gaussian noise and
salt-and-pepper noise. Every function here works on a batch, draws its randomness with stateless
ops from a ``[2]`` seed (the same numbers eagerly, in ``tf.data`` and under XLA: the uniforms are
built from random bits, see :mod:`keras_ssl.augment.seeds`) and corrupts each component
independently.
"""

import math

import tensorflow as tf

from keras_ssl.augment.seeds import canonical_seed, fold_in, resolve_seed
from keras_ssl.validation import check_in_range, check_positive_number

#: Names accepted by :func:`corrupt`.
NOISE_TYPES = ("gaussian", "masking", "salt_and_pepper")


def uniform(shape, seed):
    """U[0, 1) numbers of ``shape`` from the 24 top random bits (identical under XLA)."""
    bits = tf.random.stateless_uniform(
        shape, canonical_seed(seed), minval=None, maxval=None, dtype=tf.uint32
    )
    return tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (1.0 / (1 << 24))


def standard_normal(shape, seed):
    """N(0, 1) numbers of ``shape`` by the Box-Muller transform of two :func:`uniform` draws."""
    radius = tf.sqrt(-2.0 * tf.math.log(1.0 - uniform(shape, fold_in(seed, 0))))
    angle = (2.0 * math.pi) * uniform(shape, fold_in(seed, 1))
    return radius * tf.cos(angle)


def gaussian_noise(images, stddev, seed=None):
    """Adds isotropic Gaussian noise: ``x + N(0, stddev^2)`` per component (not clipped).

    Args:
        images: float tensor ``[batch, H, W, C]``.
        stddev: standard deviation of the noise.
        seed: int tensor ``[2]``; ``None`` draws a fresh one.

    Returns:
        The corrupted float32 images.
    """
    images = tf.cast(images, tf.float32)
    return images + stddev * standard_normal(tf.shape(images), resolve_seed(seed))


def masking_noise(images, fraction, seed=None):
    """Masking noise: each component is forced to 0 with probability ``fraction``.

    Args:
        images: float tensor ``[batch, H, W, C]``.
        fraction: probability ``nu`` that a component is destroyed.
        seed: int tensor ``[2]``; ``None`` draws a fresh one.

    Returns:
        The corrupted float32 images.
    """
    images = tf.cast(images, tf.float32)
    keep = uniform(tf.shape(images), resolve_seed(seed)) >= fraction
    return tf.where(keep, images, tf.zeros_like(images))


def salt_and_pepper_noise(images, fraction, seed=None, low=0.0, high=1.0):
    """Salt-and-pepper noise: with probability ``fraction`` a component is set to ``low`` or
    ``high`` (each with probability 1/2).

    Args:
        images: float tensor ``[batch, H, W, C]``.
        fraction: probability ``nu`` that a component is replaced.
        seed: int tensor ``[2]``; ``None`` draws a fresh one.
        low: the "pepper" value (the minimum of the image range).
        high: the "salt" value (the maximum of the image range).

    Returns:
        The corrupted float32 images.
    """
    images = tf.cast(images, tf.float32)
    seed = resolve_seed(seed)
    hit = uniform(tf.shape(images), fold_in(seed, 0)) < fraction
    salt = uniform(tf.shape(images), fold_in(seed, 1)) < 0.5
    replacement = tf.where(salt, tf.fill(tf.shape(images), high), tf.fill(tf.shape(images), low))
    return tf.where(hit, replacement, images)


def check_noise(noise, amount):
    """Validates a noise name and its amount (stddev or fraction).

    Raises:
        ValueError: naming the received value, the expected ones and the fix.
    """
    if noise is not None and noise not in NOISE_TYPES:
        raise ValueError(
            f"`noise` must be one of {NOISE_TYPES} or None; received {noise!r}. Fix: pass e.g. "
            "noise='masking' (Vincent et al. 2008), or None for a plain autoencoder."
        )
    if noise == "gaussian":
        fix = "pass the standard deviation of the Gaussian noise, e.g. noise_amount=0.3."
        check_positive_number(amount, "noise_amount", fix)
    elif noise is not None:
        fix = f"pass the share of pixels {noise} noise corrupts, a fraction in (0, 1), e.g. 0.25."
        check_in_range(amount, "noise_amount", 0, 1, fix, low_open=True, high_open=True)


def corrupt(images, noise, amount, seed=None):
    """Applies the named corruption (``None`` returns the images unchanged, as float32).

    Args:
        images: float tensor ``[batch, H, W, C]`` in ``[0, 1]``.
        noise: one of :data:`NOISE_TYPES` or ``None``.
        amount: the Gaussian standard deviation, or the masking / salt-and-pepper fraction.
        seed: int tensor ``[2]``; ``None`` draws a fresh one.

    Returns:
        The corrupted float32 images.
    """
    check_noise(noise, amount)
    if noise is None:
        return tf.cast(images, tf.float32)
    function = {
        "gaussian": gaussian_noise,
        "masking": masking_noise,
        "salt_and_pepper": salt_and_pepper_noise,
    }[noise]
    return function(images, amount, seed)
