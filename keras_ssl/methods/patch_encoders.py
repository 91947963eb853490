"""Patch encoders: the same network run on patches (CPC, jigsaw, relative patch location) and
on whole images (what the probes and the export use)."""

import keras
import tensorflow as tf

from keras_ssl.methods.base import check_encoder


def encoder_for_patches(encoder, patch_shape):
    """A copy of a convolutional image encoder taking ``patch_shape`` inputs, same weights."""
    try:
        inputs = keras.Input(patch_shape, name=encoder.inputs[0].name)
        patch_encoder = keras.models.clone_model(encoder, input_tensors=inputs)
        patch_encoder.set_weights(encoder.get_weights())
        output_shape = tuple(patch_encoder.output_shape)
    except (AttributeError, ValueError, TypeError, NotImplementedError, tf.errors.OpError) as error:
        raise ValueError(
            f"Could not rebuild the image encoder {encoder.name!r} (input "
            f"{tuple(encoder.input_shape)}) for patches of shape {patch_shape}: {error}. Expected "
            "a functional/Sequential encoder whose layers accept any spatial size (convolutions "
            "and global pooling). Fix: build the encoder for patches yourself, e.g. "
            f"SmallResNet({patch_shape}), and pass image_shape=(height, width, channels)."
        ) from error
    if len(output_shape) != 2:
        raise ValueError(
            f"The image encoder rebuilt for patches {patch_shape} outputs shape {output_shape}; "
            "expected pooled features [batch, D]. Fix: end the encoder with global pooling."
        )
    return patch_encoder


def check_image_shape(image_shape, encoder):
    try:
        shape = tuple(image_shape)
        valid = len(shape) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape
        )
    except TypeError:
        valid = False
    if not valid:
        raise ValueError(
            f"`image_shape` must be (height, width, channels) with positive ints; received "
            f"{image_shape!r}. Fix: pass e.g. image_shape=(28, 28, 1), or None when `encoder` "
            "takes whole images."
        )
    channels = encoder.input_shape[-1]
    if shape[2] != channels:
        raise ValueError(
            f"`image_shape` {shape} has {shape[2]} channels but the patch encoder takes "
            f"{channels} (input shape {tuple(encoder.input_shape)}). Fix: build the patch "
            f"encoder for {shape[2]} channels."
        )
    return shape


def patch_and_image_encoders(encoder, image_shape, patch_size, method):
    """The patch encoder that trains and the whole-image encoder that shares its layers.

    Args:
        encoder: an encoder for whole images (``image_shape=None``), rebuilt for patches with
            :func:`encoder_for_patches` (same layers, weights copied); or an
            encoder for patches of ``patch_size`` (``image_shape`` given).
        image_shape: ``(H, W, C)`` of the images when ``encoder`` takes patches, else ``None``.
        patch_size: ``(height, width)`` of the patches.
        method: the method's name, for error messages.

    Returns:
        ``(patch_encoder, image_encoder, image_shape)``: ``image_encoder`` is the patch
        encoder's own layers (the same variables) applied to whole images, so it always holds
        the trained weights.
    """
    check_encoder(encoder)
    if image_shape is None:
        image_shape = tuple(encoder.input_shape[1:])
        patch_encoder = encoder_for_patches(encoder, (*patch_size, image_shape[2]))
    else:
        image_shape = check_image_shape(image_shape, encoder)
        if tuple(encoder.input_shape[1:3]) != tuple(patch_size):
            raise ValueError(
                f"{method}: the patch encoder takes inputs of size "
                f"{tuple(encoder.input_shape[1:3])} but the patches are {tuple(patch_size)}; "
                "expected them equal when `image_shape` is given (the encoder takes patches). "
                "Fix: build the patch encoder for that size, or pass an image encoder with "
                "image_shape=None."
            )
        patch_encoder = encoder
    try:
        shared = keras.models.clone_model(
            patch_encoder,
            input_tensors=keras.Input(image_shape, name="images"),
            clone_function=lambda layer: layer,  # reuse every layer: one set of weights
        )
    except (AttributeError, ValueError, TypeError, NotImplementedError) as error:
        raise ValueError(
            f"{method} could not apply the patch encoder {patch_encoder.name!r} (input "
            f"{tuple(patch_encoder.input_shape)}) to whole images {image_shape}: {error}. "
            "Expected a functional/Sequential encoder whose layers accept any spatial size "
            "(convolutions and global pooling). Fix: use a keras_ssl.backbones model."
        ) from error
    name = f"{patch_encoder.name}_image"
    image_encoder = keras.Model(shared.inputs[0], shared.outputs[0], name=name)
    return patch_encoder, image_encoder, image_shape
