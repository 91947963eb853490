"""Random resized crops for a whole batch at once (Inception-style crops, as in SimCLR)."""

import math

import keras
import tensorflow as tf

from keras_ssl.augment.base import (
    BaseAugmentation,
    batch_size_of,
    check_range,
    in_xla_context,
)
from keras_ssl.augment.seeds import lerp, uniform_per_image
from keras_ssl.validation import check_int


def sample_crop_boxes(batch_size, image_height, image_width, scale, ratio, seed):
    """Draws one crop box per image, in ``tf.image.crop_and_resize`` box coordinates.

    Each image gets an area fraction ``s ~ U(scale)`` and an aspect ratio (width / height)
    ``r ~ logU(ratio)``; the box is ``sqrt(s * r)`` of the image side wide and ``sqrt(s / r)``
    tall (in pixels, so non-square images keep the requested pixel aspect ratio), clipped to the
    image, and placed uniformly at random inside it. Clipping replaces torchvision's rejection
    sampling so that every image is handled in one vectorised draw.

    Args:
        batch_size: number of boxes (int or scalar int32 tensor).
        image_height: input height in pixels (int or scalar tensor).
        image_width: input width in pixels (int or scalar tensor).
        scale: ``(min, max)`` fraction of the image area.
        ratio: ``(min, max)`` aspect ratio width / height.
        seed: integer tensor of shape ``[2]``.

    Returns:
        ``float32`` boxes ``[batch, 4]`` as ``(y1, x1, y2, x2)`` with ``0 <= y1 < y2 <= 1`` and
        ``0 <= x1 < x2 <= 1``.
    """
    draws = uniform_per_image(batch_size, 4, seed)
    area = lerp(scale[0], scale[1], draws[:, 0])
    aspect = tf.exp(lerp(math.log(ratio[0]), math.log(ratio[1]), draws[:, 1]))
    pixel_aspect = tf.cast(image_height, tf.float32) / tf.cast(image_width, tf.float32)
    height = tf.minimum(tf.sqrt(area / (aspect * pixel_aspect)), 1.0)
    width = tf.minimum(tf.sqrt(area * aspect * pixel_aspect), 1.0)
    top = draws[:, 2] * (1.0 - height)
    left = draws[:, 3] * (1.0 - width)
    bottom = tf.minimum(top + height, 1.0)
    right = tf.minimum(left + width, 1.0)
    return tf.stack([top, left, bottom, right], axis=1)


def _sample_positions(start, end, in_size, out_size):
    """Sampling positions ``[batch, out_size]`` in input pixels, as crop_and_resize uses."""
    last = float(in_size - 1) if isinstance(in_size, int) else tf.cast(in_size - 1, tf.float32)
    if out_size == 1:
        return (0.5 * (start + end) * last)[:, None]
    step = (end - start) * last / float(out_size - 1)
    steps = tf.range(out_size, dtype=tf.float32)
    return (start * last)[:, None] + steps[None, :] * step[:, None]


def _interpolate(images, positions, axis, in_size):
    """Linear interpolation of ``images`` along ``axis`` at per-image ``positions``."""
    lower = tf.floor(positions)
    fraction = positions - lower
    lower_index = tf.clip_by_value(tf.cast(lower, tf.int32), 0, in_size - 1)
    upper_index = tf.clip_by_value(tf.cast(tf.math.ceil(positions), tf.int32), 0, in_size - 1)
    low = tf.gather(images, lower_index, axis=axis, batch_dims=1)
    high = tf.gather(images, upper_index, axis=axis, batch_dims=1)
    shape = [-1, 1, 1, 1]
    shape[axis] = positions.shape[1]
    return low + (high - low) * tf.reshape(fraction, shape)


def crop_and_resize(images, boxes, size):
    """Bilinear crop-and-resize of image ``i`` to box ``i`` in one batched call.

    Runs ``tf.image.crop_and_resize(images, boxes, tf.range(batch), size)`` (box corners map to
    pixel centres ``0 .. side - 1``). That op has no XLA kernel, so inside an XLA-compiled
    function (``jit_compile=True``, TPU) the same sampling is done with batched gathers that
    interpolate in the same order (width, then height) and give bit-identical results on CPU.
    Boxes must lie inside ``[0, 1]`` (the gather path clamps instead of extrapolating).

    Args:
        images: ``float32`` ``[batch, height, width, channels]``.
        boxes: ``float32`` ``[batch, 4]`` as ``(y1, x1, y2, x2)`` in ``[0, 1]``.
        size: ``(out_height, out_width)`` Python ints.

    Returns:
        ``float32`` ``[batch, out_height, out_width, channels]``.
    """
    if not in_xla_context():
        batch_indices = tf.range(tf.shape(images)[0])
        return tf.image.crop_and_resize(images, boxes, batch_indices, size)
    return crop_and_resize_gather(images, boxes, size)


def crop_and_resize_gather(images, boxes, size):
    """The XLA-compilable twin of :func:`crop_and_resize` (same arguments and result)."""
    height = images.shape[1] if images.shape[1] is not None else tf.shape(images)[1]
    width = images.shape[2] if images.shape[2] is not None else tf.shape(images)[2]
    columns = _sample_positions(boxes[:, 1], boxes[:, 3], width, size[1])
    rows = _sample_positions(boxes[:, 0], boxes[:, 2], height, size[0])
    images = _interpolate(images, columns, 2, width)
    return _interpolate(images, rows, 1, height)


@keras.saving.register_keras_serializable(package="keras_ssl")
class RandomResizedCrop(BaseAugmentation):
    """Crops a random region of every image and resizes it to ``(height, width)``.

    The Inception-style crop used by SimCLR (Chen et al. 2020, arXiv:2002.05709, appendix A):
    a region covering ``scale`` of the area with aspect ratio in ``ratio`` (drawn log-uniformly)
    is drawn per image, clipped into the image and resized bilinearly to the output size. The
    whole batch is cropped in one batched gather that samples like ``tf.image.crop_and_resize``
    (see :func:`crop_and_resize`). Output sizes larger than the input (upsampling) are allowed.

    Args:
        height: output height in pixels (positive int).
        width: output width in pixels (positive int).
        scale: ``(min, max)`` fraction of the image area to crop, inside ``(0, 1]``.
        ratio: ``(min, max)`` aspect ratio width / height, both positive.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), **kwargs):
        super().__init__(**kwargs)
        for name, value in (("height", height), ("width", width)):
            check_int(value, name, fix=f"pass the output size in pixels, e.g. {name}=32.")
        self.height = height
        self.width = width
        self.scale = check_range(scale, "scale", low=0.0, high=1.0, low_open=True)
        self.ratio = check_range(ratio, "ratio", low=0.0, low_open=True)

    def augment(self, images, seed):
        in_height = images.shape[1] if images.shape[1] is not None else tf.shape(images)[1]
        in_width = images.shape[2] if images.shape[2] is not None else tf.shape(images)[2]
        boxes = sample_crop_boxes(
            batch_size_of(images), in_height, in_width, self.scale, self.ratio, seed
        )
        return crop_and_resize(images, boxes, (self.height, self.width))

    def sample_boxes(self, images, seed):
        """The boxes ``call(images, seed)`` crops, ``[batch, 4]`` as ``(y1, x1, y2, x2)``."""
        return sample_crop_boxes(
            tf.shape(images)[0],
            tf.shape(images)[1],
            tf.shape(images)[2],
            self.scale,
            self.ratio,
            seed,
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, scale=self.scale, ratio=self.ratio)
        return config
