"""Colour distortion with per-image factors: brightness, contrast, saturation, hue, grayscale.

Every colour operation here is a per-image affine map of the channel vector,
``x -> M_i x + w_i * mean_i(x)``, where ``M_i`` is a ``[C, C]`` matrix, ``w_i`` a scalar and
``mean_i(x)`` the per-channel mean of image ``i``:

* brightness ``f``: ``M = f I``, ``w = 0`` (multiplicative, as SimCLR v2 and torchvision);
* contrast ``f``: ``M = f I``, ``w = 1 - f`` (blend with the per-channel mean, as
  ``tf.image.adjust_contrast``);
* saturation ``f``: ``M = f I + (1 - f) 1 l^T`` with the luma weights ``l`` (blend with the
  grayscale image, as torchvision; ``tf.image.adjust_saturation`` scales HSV saturation instead);
* hue ``d``: a rotation by ``2 pi d`` of the chroma plane of the YIQ colour space (an
  approximation of shifting the HSV hue by ``d`` of a turn, as ``tf.image.adjust_hue``; it keeps
  the luma of every pixel).

So a whole batch with different factors per image is a handful of broadcast multiply-adds, and
the random order of the four operations (SimCLR, Chen et al. 2020, arXiv:2002.05709, appendix A)
is a per-image gather of the matrices. Results are clipped to ``[0, 1]`` after every operation,
as SimCLR does.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.augment.base import (
    BaseAugmentation,
    apply_mask,
    batch_size_of,
    check_channels,
    check_probability,
    check_range,
    clip_unit,
)
from keras_ssl.augment.seeds import fold_in, lerp, uniform_per_image

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights for R, G, B: ``Y = 0.299 R + 0.587 G + 0.114 B``."""

_GRAY_MATRIX = np.ones((3, 1)) * np.array([LUMA_WEIGHTS])

_RGB_TO_YIQ = np.array(
    [LUMA_WEIGHTS, (0.596, -0.274, -0.322), (0.211, -0.523, 0.312)], dtype=np.float64
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)
# Hue rotation by angle a in YIQ: M(a) = LUMA_PART + cos(a) COS_PART + sin(a) SIN_PART.
_HUE_LUMA_PART = _YIQ_TO_RGB[:, :1] @ _RGB_TO_YIQ[:1]
_HUE_COS_PART = _YIQ_TO_RGB[:, 1:] @ _RGB_TO_YIQ[1:]
_HUE_SIN_PART = _YIQ_TO_RGB[:, 1:] @ np.array([[0.0, -1.0], [1.0, 0.0]]) @ _RGB_TO_YIQ[1:]


def rgb_to_luma(images):
    """The luma ``0.299 R + 0.587 G + 0.114 B`` of RGB images, ``[batch, H, W, 1]``."""
    return tf.reduce_sum(images * tf.constant(LUMA_WEIGHTS, tf.float32), axis=-1, keepdims=True)


def _identity(batch_size, channels):
    return tf.eye(channels, batch_shape=tf.reshape(batch_size, [1]), dtype=tf.float32)


def brightness_matrices(factors, channels):
    """Matrices ``[batch, C, C]`` scaling every channel of image ``i`` by ``factors[i]``."""
    return factors[:, None, None] * _identity(tf.shape(factors)[0], channels)


def saturation_matrices(factors):
    """Matrices ``[batch, 3, 3]`` blending RGB image ``i`` with its luma by ``factors[i]``."""
    gray = tf.constant(_GRAY_MATRIX, tf.float32)
    identity = _identity(tf.shape(factors)[0], 3)
    return factors[:, None, None] * identity + (1.0 - factors)[:, None, None] * gray


def hue_matrices(deltas):
    """Matrices ``[batch, 3, 3]`` rotating the YIQ chroma of image ``i`` by ``deltas[i]`` turns.

    The sign follows ``tf.image.adjust_hue``: a positive delta turns red towards yellow.
    """
    angle = -2.0 * math.pi * deltas
    parts = [tf.constant(p, tf.float32) for p in (_HUE_LUMA_PART, _HUE_COS_PART, _HUE_SIN_PART)]
    return (
        parts[0] + tf.cos(angle)[:, None, None] * parts[1] + tf.sin(angle)[:, None, None] * parts[2]
    )


def transform_channels(images, matrices, mean_weights=None):
    """Applies ``x -> M_i x + w_i mean_i(x)`` to every pixel of image ``i`` (no clipping).

    Args:
        images: ``float32`` ``[batch, H, W, C]``.
        matrices: ``float32`` ``[batch, C, C]``.
        mean_weights: optional ``float32`` ``[batch]``; the weight of the per-channel mean.

    Returns:
        ``float32`` ``[batch, H, W, C]``.
    """
    channels = images.shape[-1]
    shape = tf.shape(images)
    if channels == 1:
        out = images * tf.reshape(matrices, [-1, 1, 1, 1])
        if mean_weights is not None:
            mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
            out = out + tf.reshape(mean_weights, [-1, 1, 1, 1]) * mean
        return out
    pixels = tf.reshape(images, [shape[0], -1, channels])
    out = tf.matmul(pixels, matrices, transpose_b=True)
    if mean_weights is not None:
        mean = tf.reduce_mean(pixels, axis=1, keepdims=True)
        out = out + mean_weights[:, None, None] * mean
    return tf.reshape(out, shape)


def apply_color_transform(images, matrices, mean_weights):
    """Applies ``x -> M_i x + w_i mean_i(x)`` per image and clips to ``[0, 1]``.

    Args:
        images: ``float32`` ``[batch, H, W, C]``.
        matrices: ``float32`` ``[batch, C, C]``.
        mean_weights: ``float32`` ``[batch]``, the weight of the per-channel image mean, or
            ``None`` for no mean term.

    Returns:
        ``float32`` ``[batch, H, W, C]`` in ``[0, 1]``.
    """
    return clip_unit(transform_channels(images, matrices, mean_weights))


def _apply_color_steps(images, matrices, weights, needs_mean):
    """Runs several clipped ``x -> M x + w mean(x)`` steps on RGB images.

    Between steps the pixels carry a fourth channel of ones, so each step's mean term rides in
    the matrix (``[M, w mean; 0, 1]``) and a step costs one mean, one batched matmul and one
    clip; the last step drops the ones channel again. Same result as chaining
    :func:`apply_color_transform` (up to float rounding).

    Args:
        images: ``float32`` ``[batch, H, W, 3]``.
        matrices: ``float32`` ``[batch, steps, 3, 3]``.
        weights: ``float32`` ``[batch, steps]``.
        needs_mean: per step, whether its mean weight can be non-zero (Python bools).

    Returns:
        ``float32`` ``[batch, H, W, 3]`` in ``[0, 1]``.
    """
    shape = tf.shape(images)
    steps = len(needs_mean)
    pixels = tf.reshape(images, [shape[0], -1, 3])
    zeros = tf.zeros_like(matrices[:, 0, :1, :])  # [batch, 1, 3]
    for step in range(steps):
        matrix = matrices[:, step]
        last = step == steps - 1
        if step == 0:
            bias = tf.zeros_like(matrix[:, :1, :])  # [batch, 1, 3]
            if needs_mean[step]:
                mean = tf.reduce_mean(pixels, axis=1, keepdims=True)
                bias = weights[:, step, None, None] * mean
            if last:
                pixels = pixels @ tf.linalg.matrix_transpose(matrix) + bias
            else:  # output the ones channel: x @ [M; 0]^T + [b, 1]
                extended = tf.concat([matrix, zeros], axis=1)  # [batch, 4, 3]
                ones = tf.ones_like(bias[..., :1])
                pixels = pixels @ tf.linalg.matrix_transpose(extended) + tf.concat(
                    [bias, ones], axis=-1
                )
        else:
            column = tf.zeros_like(matrix[:, :, :1])  # [batch, 3, 1]
            if needs_mean[step]:
                mean = tf.reduce_mean(pixels, axis=1)[:, :3]  # [batch, 3]
                column = (weights[:, step, None] * mean)[:, :, None]
            extended = tf.concat([matrix, column], axis=2)  # [batch, 3, 4]
            if not last:
                unit = tf.one_hot(tf.fill(tf.shape(matrix)[:1], 3), 4)[:, None, :]
                extended = tf.concat([extended, unit], axis=1)  # [batch, 4, 4]
            pixels = pixels @ tf.linalg.matrix_transpose(extended)
        pixels = clip_unit(pixels)
    return tf.reshape(pixels, shape)


def adjust_brightness(images, factors):
    """Multiplies image ``i`` by ``factors[i]`` (``[batch]``) and clips to ``[0, 1]``."""
    channels = images.shape[-1]
    return apply_color_transform(images, brightness_matrices(factors, channels), None)


def adjust_contrast(images, factors):
    """Scales image ``i`` about its per-channel mean by ``factors[i]`` and clips to ``[0, 1]``."""
    channels = images.shape[-1]
    return apply_color_transform(images, brightness_matrices(factors, channels), 1.0 - factors)


def adjust_saturation(images, factors):
    """Blends RGB image ``i`` with its luma: ``f x + (1 - f) Y``, clipped to ``[0, 1]``."""
    return apply_color_transform(images, saturation_matrices(factors), None)


def adjust_hue(images, deltas):
    """Rotates the hue of RGB image ``i`` by ``deltas[i]`` turns (YIQ), clipped to ``[0, 1]``."""
    return apply_color_transform(images, hue_matrices(deltas), None)


def select_matrix(mask, matrices, identity=None):
    """Per image: ``matrices`` where ``mask`` is True, else the identity matrix."""
    if identity is None:
        identity = _identity(tf.shape(matrices)[0], matrices.shape[-1])
    return tf.where(mask[:, None, None], matrices, identity)


def _factor_range(value, name):
    """``f`` -> ``(max(0, 1 - f), 1 + f)``; a pair ``(a, b)`` with ``0 <= a <= b`` is kept."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(
                f"ColorJitter `{name}` must be >= 0 (factors are drawn from "
                f"[max(0, 1 - {name}), 1 + {name}]); received {value!r}. Fix: pass e.g. "
                f"{name}=0.4, or a pair (min_factor, max_factor)."
            )
        return (max(0.0, 1.0 - value), 1.0 + value)
    return check_range(value, name, low=0.0)


def _hue_range(value):
    """``h`` -> ``(-h, h)`` with ``0 <= h <= 0.5``; a pair inside ``[-0.5, 0.5]`` is kept."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 <= value <= 0.5:
            raise ValueError(
                f"ColorJitter `hue` must be in [0, 0.5] (a fraction of a full hue turn); "
                f"received {value!r}. Fix: pass e.g. hue=0.1."
            )
        return (-float(value), float(value))
    return check_range(value, "hue", low=-0.5, high=0.5)


@keras.saving.register_keras_serializable(package="keras_ssl")
class ColorJitter(BaseAugmentation):
    """SimCLR's colour distortion with independent random factors for every image.

    With probability ``probability`` an image gets brightness, contrast, saturation and hue
    changes (in a random order per image when ``random_order``), each followed by clipping to
    ``[0, 1]``. SimCLR (Chen et al. 2020, arXiv:2002.05709, appendix A) uses strength ``s``:
    ``brightness = contrast = saturation = 0.8 s``, ``hue = 0.2 s``, probability 0.8; the
    defaults are ``s = 0.5`` (SimCLR's CIFAR-10 setting). See the module docstring for the exact
    formulas. 1-channel images get brightness and contrast only (saturation and hue do not exist
    for them); images with other channel counts raise ``ValueError``.

    Args:
        brightness: ``b`` draws factors from ``[max(0, 1 - b), 1 + b]``; or a pair of factors.
        contrast: like ``brightness``, for the contrast factor.
        saturation: like ``brightness``, for the saturation factor.
        hue: ``h`` in ``[0, 0.5]`` draws hue shifts (in turns) from ``[-h, h]``; or a pair.
        probability: chance that an image is distorted at all, in ``[0, 1]``.
        random_order: apply the four operations in a random order per image (SimCLR); if False
            the order is brightness, contrast, saturation, hue.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(
        self,
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.1,
        probability=0.8,
        random_order=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.probability = check_probability(probability, "probability")
        self.random_order = bool(random_order)
        self._ranges = (
            _factor_range(brightness, "brightness"),
            _factor_range(contrast, "contrast"),
            _factor_range(saturation, "saturation"),
            _hue_range(hue),
        )

    def augment(self, images, seed):
        channels = check_channels(images, (1, 3), "ColorJitter")
        batch_size = batch_size_of(images)
        identities = ((1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (0.0, 0.0))
        operations = [
            index
            for index in range(2 if channels == 1 else 4)
            if self._ranges[index] != identities[index]
        ]
        if not operations or self.probability == 0:
            return images
        draws = uniform_per_image(batch_size, 4, fold_in(seed, 0))
        values = [lerp(*self._ranges[i], draws[:, i]) for i in range(4)]
        builders = {
            0: lambda v: (brightness_matrices(v, channels), tf.zeros_like(v)),
            1: lambda v: (brightness_matrices(v, channels), 1.0 - v),
            2: lambda v: (saturation_matrices(v), tf.zeros_like(v)),
            3: lambda v: (hue_matrices(v), tf.zeros_like(v)),
        }
        built = [builders[i](values[i]) for i in operations]
        mask = apply_mask(batch_size, self.probability, fold_in(seed, 1))
        matrices = tf.stack([select_matrix(mask, m, None) for m, _ in built], axis=1)
        weights = tf.stack([tf.where(mask, w, tf.zeros_like(w)) for _, w in built], axis=1)
        shuffled = self.random_order and len(operations) > 1
        if shuffled:
            keys = uniform_per_image(batch_size, len(operations), fold_in(seed, 2))
            order = tf.argsort(keys, axis=1)
            matrices = tf.gather(matrices, order, axis=1, batch_dims=1)
            weights = tf.gather(weights, order, axis=1, batch_dims=1)
        # In a fixed order only the contrast step needs the image mean.
        needs_mean = [shuffled or operation == 1 for operation in operations]
        if channels == 3:
            return _apply_color_steps(images, matrices, weights, needs_mean)
        for step, needed in enumerate(needs_mean):
            step_weights = weights[:, step] if needed else None
            images = apply_color_transform(images, matrices[:, step], step_weights)
        return images

    def get_config(self):
        config = super().get_config()
        config.update(
            brightness=self.brightness,
            contrast=self.contrast,
            saturation=self.saturation,
            hue=self.hue,
            probability=self.probability,
            random_order=self.random_order,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_ssl")
class RandomGrayscale(BaseAugmentation):
    """Replaces each RGB image by its luma (kept as 3 equal channels) with ``probability``.

    Luma is ``0.299 R + 0.587 G + 0.114 B``. 1-channel images are returned unchanged; other
    channel counts raise ``ValueError``.

    Args:
        probability: chance that an image is converted, in ``[0, 1]`` (SimCLR uses 0.2).
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, probability=0.2, **kwargs):
        super().__init__(**kwargs)
        self.probability = check_probability(probability, "probability")

    def augment(self, images, seed):
        if check_channels(images, (1, 3), "RandomGrayscale") == 1:
            return images
        batch_size = batch_size_of(images)
        mask = apply_mask(batch_size, self.probability, seed)
        gray = tf.constant(_GRAY_MATRIX, tf.float32)
        matrices = select_matrix(mask, tf.broadcast_to(gray, [batch_size, 3, 3]), None)
        return clip_unit(transform_channels(images, matrices))

    def get_config(self):
        config = super().get_config()
        config.update(probability=self.probability)
        return config
