"""Image tensor conventions shared by every part of keras_ssl.

Images enter keras_ssl as ``uint8`` in ``[0, 255]`` or floats already in ``[0, 1]``, shaped
``[batch, height, width, channels]``. Encoders, augmentations and exports all work on
``float32`` images in ``[0, 1]``; :func:`to_float_images` is the one place that converts.
"""

import tensorflow as tf


def to_float_images(images):
    """Converts a batch of images to ``float32`` in ``[0, 1]``.

    Args:
        images: tensor ``[..., height, width, channels]``; ``uint8`` is divided by 255,
            floating point input is assumed to be in ``[0, 1]`` already and only cast.

    Returns:
        A ``float32`` tensor of the same shape.
    """
    images = tf.convert_to_tensor(images)
    check_image_dtype(images.dtype)
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    if images.dtype.is_integer:
        raise ValueError(
            f"Integer images must be uint8 in [0, 255]; received dtype {images.dtype.name}. "
            "Fix: cast to uint8, or to float32 scaled to [0, 1]."
        )
    return tf.cast(images, tf.float32)


def check_image_dtype(dtype):
    """Raises a ``ValueError`` unless ``dtype`` is a numeric image dtype."""
    dtype = tf.as_dtype(dtype)
    if not (dtype.is_integer or dtype.is_floating) or dtype == tf.bool:
        raise ValueError(
            f"Images must be numeric (uint8 in [0, 255] or float in [0, 1]); received dtype "
            f"{dtype.name}. Fix: decode the images (e.g. tf.io.decode_image) before passing them."
        )


def check_image_batch(images, expected_shape=None, name="images"):
    """Validates the static shape and dtype of a batch of images.

    Args:
        images: a tensor (or anything with ``shape`` and ``dtype``).
        expected_shape: optional ``(height, width, channels)``; ``None`` entries are not checked.
        name: how the tensor is named in error messages.

    Raises:
        ValueError: naming the received and expected shape or dtype and how to fix it.
    """
    check_image_dtype(images.dtype)
    shape = tuple(images.shape)
    if len(shape) != 4:
        fix = (
            "add a channel axis (x[..., None]) for grayscale images"
            if len(shape) == 3
            else "batch the images ([batch, height, width, channels])"
        )
        raise ValueError(
            f"`{name}` must have rank 4 [batch, height, width, channels]; received shape "
            f"{shape} (rank {len(shape)}). Fix: {fix}."
        )
    if expected_shape is None:
        return
    for axis, (got, want) in enumerate(zip(shape[1:], expected_shape)):
        if got is not None and want is not None and got != want:
            what = ("height", "width", "channels")[axis]
            raise ValueError(
                f"`{name}` {what} does not match the encoder: received images of shape "
                f"{shape}, expected [batch, {', '.join(str(d) for d in expected_shape)}]. "
                "Fix: resize/convert the images or build the encoder with "
                f"input_shape={tuple(shape[1:])}."
            )
