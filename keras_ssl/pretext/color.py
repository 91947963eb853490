"""CIE Lab colour for the colorization pretext tasks (Zhang et al. 2016, 2017).

Everything a colour method needs, in TensorFlow so it runs inside a training step: sRGB <-> CIE
Lab (D65), the quantised ab colour bins and lightness bins, soft-encoded targets, empirical bin
frequencies, the class-rebalancing weights and the annealed-mean decoding of predicted
distributions.

Conventions: RGB images are float in ``[0, 1]`` (``uint8`` is accepted where noted); Lab has
``L`` in ``[0, 100]`` and ``a, b`` roughly in ``[-110, 110]``. The white point is the sRGB
white ``M @ (1, 1, 1)`` (D65 as the sRGB matrix rounds it), so every neutral grey maps to
``a = b = 0`` exactly.
"""

import functools

import numpy as np
import tensorflow as tf

from keras_ssl.images import to_float_images
from keras_ssl.validation import check_int, check_positive_number

# sRGB (IEC 61966-2-1, D65) linear RGB -> XYZ; the inverse is computed, so round trips are exact.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = _RGB_TO_XYZ.sum(axis=1)
_DELTA = 6.0 / 29.0

#: Zhang et al.'s defaults: ab grid size, soft-encoding kernel and neighbours, prior smoothing,
#: mixing with the uniform distribution, annealed-mean temperature.
GRID_SIZE = 10
SIGMA = 5.0
NEIGHBOURS = 5
MIX = 0.5
TEMPERATURE = 0.38
#: Zhang et al. (2017) quantise the lightness L in [0, 100] into 50 bins of width 2.
LIGHTNESS_BINS = 50


def _float_dtype(x):
    return x.dtype if x.dtype in (tf.float32, tf.float64) else tf.float32


def rgb_to_lab(images):
    """Converts sRGB images to CIE Lab (D65).

    Args:
        images: ``[..., 3]`` RGB, ``uint8`` in ``[0, 255]`` or float in ``[0, 1]`` (float64 is
            kept as float64, other types compute in float32).

    Returns:
        ``[..., 3]`` Lab: ``L`` in ``[0, 100]``, ``a`` and ``b`` in about ``[-110, 110]``.

    Raises:
        ValueError: when the last axis is not 3 (RGB).
    """
    images = tf.convert_to_tensor(images)
    _check_last_axis(images, 3, "images", "RGB images [..., 3]")
    if images.dtype != tf.float64:
        images = to_float_images(images)
    dtype = images.dtype
    linear = tf.where(
        images <= 0.04045,
        images / 12.92,
        tf.pow((tf.maximum(images, 0.04045) + 0.055) / 1.055, 2.4),
    )
    xyz = tf.tensordot(linear, tf.constant(_RGB_TO_XYZ.T / _WHITE, dtype), axes=1)
    f = tf.where(
        xyz > _DELTA**3,
        tf.pow(tf.maximum(xyz, _DELTA**3), 1.0 / 3.0),
        xyz / (3 * _DELTA**2) + 4.0 / 29.0,
    )
    fx, fy, fz = tf.unstack(f, axis=-1)
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab, clip=True):
    """Converts CIE Lab (D65) to sRGB.

    Args:
        lab: ``[..., 3]`` float Lab (float64 stays float64, else float32).
        clip: clip to ``[0, 1]``; with ``clip=False`` colours outside the sRGB gamut give
            values outside ``[0, 1]`` (what the gamut computation checks).

    Returns:
        ``[..., 3]`` RGB floats.

    Raises:
        ValueError: when the last axis is not 3 (Lab).
    """
    lab = tf.convert_to_tensor(lab)
    _check_last_axis(lab, 3, "lab", "Lab values [..., 3]")
    lab = tf.cast(lab, _float_dtype(lab))
    lightness, a, b = tf.unstack(lab, axis=-1)
    fy = (lightness + 16.0) / 116.0
    f = tf.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
    xyz = tf.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0))
    linear = tf.tensordot(xyz, tf.constant((_XYZ_TO_RGB * _WHITE).T, lab.dtype), axes=1)
    rgb = tf.where(
        linear <= 0.0031308,
        12.92 * linear,
        1.055 * tf.pow(tf.maximum(linear, 0.0031308), 1.0 / 2.4) - 0.055,
    )
    return tf.clip_by_value(rgb, 0.0, 1.0) if clip else rgb


# -------------------------------------------------------------------------------- bins
@functools.lru_cache(maxsize=8)
def _gamut_bins(grid_size, resolution):
    # The Lab image of the RGB cube is a solid whose projection onto the ab plane is the
    # projection of its surface, so sampling the 6 faces of the cube densely finds every ab cell
    # any sRGB colour reaches, at any L.
    steps = np.linspace(0.0, 1.0, resolution + 1)
    u, v = (x.ravel() for x in np.meshgrid(steps, steps, indexing="ij"))
    faces = []
    for axis in range(3):
        for value in (0.0, 1.0):
            face = [u, v]
            face.insert(axis, np.full_like(u, value))
            faces.append(np.stack(face, axis=-1))
    ab = rgb_to_lab(tf.constant(np.concatenate(faces), tf.float64)).numpy()[:, 1:]
    cells = np.unique(np.round(ab / grid_size).astype(np.int64), axis=0)
    return (cells * grid_size).astype(np.float32)


def ab_gamut_bins(grid_size=GRID_SIZE, resolution=256):
    """The quantised ab colours: centres of the ab grid cells that sRGB colours reach.

    The ab plane is cut into ``grid_size`` squares centred on multiples of ``grid_size``; a
    cell is kept when some in-gamut sRGB colour (at any ``L``) quantises to it, i.e. lies in the
    square. Computed by converting a dense sampling of the RGB cube's faces
    (``(resolution + 1)**2`` points per face) to Lab; the result is cached.

    Zhang et al. (2016) report Q = 313 in-gamut bins at grid size 10 and release them as a
    fixed table. That count is not what the sRGB gamut gives: sRGB (D65) colours reach 262
    cells of the grid (255-264 for other samplings and white points, 268 for the convex hull of
    the gamut), and the released table includes cells such as ``(a, b) = (-90, 50)`` that no
    sRGB colour reaches. keras_ssl computes the bins from the gamut instead of copying the
    table; the number of classes follows (262 at grid size 10).

    Args:
        grid_size: side of the ab grid cells (paper: 10).
        resolution: samples per edge of each RGB cube face (the count is the same at 256, 512
            and 1024).

    Returns:
        float32 NumPy array ``[Q, 2]`` of ``(a, b)`` bin centres, sorted by ``a`` then ``b``.

    Raises:
        ValueError: for a non-positive ``grid_size`` or ``resolution``.
    """
    grid_size = check_positive_number(grid_size, "grid_size", "use 10 (Zhang et al.).")
    resolution = check_int(resolution, "resolution", 1, "use 256.")
    return _gamut_bins(grid_size, resolution).copy()


def _squared_distances(ab, bins):
    ab = tf.cast(tf.reshape(ab, [-1, 2]), tf.float32)
    bins = tf.constant(bins, tf.float32) if isinstance(bins, np.ndarray) else bins
    bins = tf.cast(bins, tf.float32)
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2 (clamped: rounding can make it slightly negative).
    squared = (
        tf.reduce_sum(ab**2, axis=1, keepdims=True)
        - 2.0 * tf.matmul(ab, bins, transpose_b=True)
        + tf.reduce_sum(bins**2, axis=1)[None, :]
    )
    return tf.maximum(squared, 0.0)


def nearest_bin(ab, bins):
    """Index of the nearest bin centre of every ab value.

    Args:
        ab: ``[..., 2]`` float ab values.
        bins: ``[Q, 2]`` bin centres (:func:`ab_gamut_bins`).

    Returns:
        int32 ``[...]`` indices into ``bins``.
    """
    ab = tf.convert_to_tensor(ab)
    _check_last_axis(ab, 2, "ab", "ab values [..., 2]")
    indices = tf.argmin(_squared_distances(ab, bins), axis=1, output_type=tf.int32)
    return tf.reshape(indices, tf.shape(ab)[:-1])


def soft_encode(ab, bins, sigma=SIGMA, neighbours=NEIGHBOURS):
    """Soft-encodes ab values over the bins (Zhang et al. 2016, Sec. 2.1).

    Each value spreads over its ``neighbours`` nearest bin centres with weights proportional to
    a Gaussian ``exp(-d^2 / (2 sigma^2))`` of the distance ``d``, summing to 1.

    Args:
        ab: ``[..., 2]`` float ab values.
        bins: ``[Q, 2]`` bin centres.
        sigma: kernel width in ab units (paper: 5).
        neighbours: number of nearest bins (paper: 5).

    Returns:
        float32 ``[..., Q]`` target distributions.
    """
    ab = tf.convert_to_tensor(ab)
    _check_last_axis(ab, 2, "ab", "ab values [..., 2]")
    num_bins = int(bins.shape[0])
    squared = _squared_distances(ab, bins)
    negative, indices = tf.math.top_k(-squared, k=min(neighbours, num_bins))
    kernel = tf.nn.softmax(negative / (2.0 * sigma**2), axis=1)  # exp(-d^2/2s^2), normalised
    targets = tf.zeros_like(squared)
    for k in range(kernel.shape[1]):
        targets += tf.one_hot(indices[:, k], num_bins) * kernel[:, k : k + 1]
    return tf.reshape(targets, tf.concat([tf.shape(ab)[:-1], [num_bins]], axis=0))


def lightness_bins(num_bins=LIGHTNESS_BINS):
    """Centres of ``num_bins`` equal bins of the lightness range ``[0, 100]``.

    Args:
        num_bins: number of bins (paper: 50, width 2).

    Returns:
        float32 NumPy array ``[num_bins, 1]`` (the ``[Q, k]`` layout :func:`annealed_mean`
        decodes with).
    """
    width = 100.0 / num_bins
    return ((np.arange(num_bins) + 0.5) * width).astype(np.float32)[:, None]


def quantize_lightness(lightness, num_bins=LIGHTNESS_BINS):
    """Index of the lightness bin (nearest centre) of every ``L`` value.

    Args:
        lightness: float ``[...]`` values of ``L`` in ``[0, 100]`` (clipped to the range).
        num_bins: number of equal bins of ``[0, 100]``.

    Returns:
        int32 ``[...]`` bin indices in ``[0, num_bins)``.
    """
    lightness = tf.cast(tf.convert_to_tensor(lightness), tf.float32)
    index = tf.cast(tf.floor(lightness * (num_bins / 100.0)), tf.int32)
    return tf.clip_by_value(index, 0, num_bins - 1)


def ab_bin_frequencies(data, bins, max_batches=None, batch_size=64):
    """Empirical probability of every ab bin over the pixels of a data set.

    Every pixel counts for its nearest bin (Zhang et al. estimate this from ImageNet).

    Args:
        data: RGB images: a NumPy array / tensor ``[N, H, W, 3]``, or a ``tf.data.Dataset`` of
            batches (images, ``(images, labels)``, ``{"images": ...}`` or ``{"views": ...}``).
        bins: ``[Q, 2]`` bin centres.
        max_batches: stop after this many batches (``None``: the whole data set).
        batch_size: batch size used for arrays.

    Returns:
        float64 NumPy array ``[Q]`` summing to 1.

    Raises:
        ValueError: for data without RGB images or without any pixel.
    """
    if not isinstance(data, tf.data.Dataset):
        data = tf.data.Dataset.from_tensor_slices(np.asarray(data)).batch(batch_size)
    num_bins = int(bins.shape[0])
    counts = np.zeros(num_bins, np.float64)
    for index, batch in enumerate(data):
        if max_batches is not None and index >= max_batches:
            break
        images = _images_of(batch)
        _check_last_axis(images, 3, "images", "RGB images [..., 3]")
        ab = rgb_to_lab(images)[..., 1:]
        hits = tf.math.bincount(tf.reshape(nearest_bin(ab, bins), [-1]), minlength=num_bins)
        counts += hits.numpy()[:num_bins]
    if counts.sum() == 0:
        raise ValueError(
            "No pixels to count ab bin frequencies from: the data set is empty. Expected RGB "
            "images [N, H, W, 3]. Fix: pass the training images."
        )
    return counts / counts.sum()


def _images_of(batch):
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    if isinstance(batch, dict):
        batch = batch["images"] if "images" in batch else batch["views"][0]
    return tf.convert_to_tensor(batch)


def smoothing_kernel(bins, sigma=SIGMA):
    """``[Q, Q]`` Gaussian kernel ``exp(-|c_i - c_j|^2 / (2 sigma^2))`` between bin centres."""
    squared = _squared_distances(tf.constant(np.asarray(bins), tf.float32), np.asarray(bins))
    return tf.exp(-squared / (2.0 * sigma**2))


def rebalancing_weights(frequencies, bins, sigma=SIGMA, mix=MIX):
    """Class-rebalancing weights of Zhang et al. (2016), Eq. 4.

    The empirical distribution ``p`` is smoothed with a Gaussian kernel over the bin centres
    (``p~ = normalise(K p)``), mixed with the uniform distribution and inverted:
    ``w = ((1 - mix) p~ + mix / Q)^-1``, normalised so that ``sum_q p~_q w_q = 1`` (the expected
    weight of a pixel is 1).

    Args:
        frequencies: ``[Q]`` empirical bin probabilities (:func:`ab_bin_frequencies`).
        bins: ``[Q, 2]`` bin centres.
        sigma: smoothing kernel width in ab units (paper: 5).
        mix: weight ``lambda`` of the uniform distribution (paper: 0.5).

    Returns:
        float32 ``[Q]`` weights.
    """
    frequencies = tf.cast(tf.convert_to_tensor(frequencies), tf.float32)
    smoothed = tf.linalg.matvec(smoothing_kernel(bins, sigma), frequencies)
    smoothed = smoothed / tf.reduce_sum(smoothed)
    num_bins = tf.cast(tf.shape(smoothed)[0], tf.float32)
    weights = 1.0 / ((1.0 - mix) * smoothed + mix / num_bins)
    return weights / tf.reduce_sum(smoothed * weights)


def annealed_mean(logits, bins, temperature=TEMPERATURE):
    """Decodes predicted bin distributions to ab values (Zhang et al. 2016, Eq. 5).

    ``f_T(z) = exp(log z / T) / sum exp(log z / T)`` re-sharpens the distribution ``z``; the ab
    value is the mean of the bin centres under ``f_T(z)``. From logits ``s`` (``z =
    softmax(s)``), ``f_T(z) = softmax(s / T)``. ``T = 1`` is the mean, ``T -> 0`` the mode.

    Args:
        logits: ``[..., Q]`` unnormalised log-probabilities.
        bins: ``[Q, 2]`` bin centres.
        temperature: ``T`` (paper: 0.38).

    Returns:
        float32 ``[..., 2]`` ab values.
    """
    logits = tf.cast(tf.convert_to_tensor(logits), tf.float32)
    probabilities = tf.nn.softmax(logits / temperature, axis=-1)
    return tf.tensordot(probabilities, tf.constant(np.asarray(bins), tf.float32), axes=1)


def _check_last_axis(x, size, name, expected):
    last = x.shape[-1] if x.shape.rank else None
    if last is not None and last != size:
        fix = (
            "colour methods need RGB images; grayscale images have no colour to learn from. "
            "Use an RGB dataset (e.g. keras_ssl.datasets.sample_photos, or tfds cifar10)"
            if size == 3 and last == 1
            else f"pass {expected}"
        )
        raise ValueError(
            f"`{name}` must have {size} values on the last axis ({expected}); received shape "
            f"{tuple(x.shape)}. Fix: {fix}."
        )
