"""Patch encoders: the same network run on patches (CPC, jigsaw, relative patch location) and
on whole images (what the probes and the export use)."""

from typing import NamedTuple

import keras
import tensorflow as tf

from keras_ssl.layers.patch_grid import (
    _pair,
    grid_geometry,
    grid_mean_encoder,
    per_patch_normalized,
)
from keras_ssl.methods.base import check_encoder

#: Values of ``patch_normalization`` (:func:`patch_grid_encoders`, ``CPC``).
PATCH_NORMALIZATIONS = ("layer", None)


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


def image_shape_of(encoder, image_shape):
    """``(H, W, C)`` of the images a patch method trains on.

    Args:
        encoder: the encoder given to the method (checked with ``check_encoder``).
        image_shape: ``None`` when ``encoder`` takes whole images (their shape is its input
            shape), else the images' shape, checked against the patch encoder
            (:func:`check_image_shape`).
    """
    check_encoder(encoder)
    if image_shape is None:
        return tuple(encoder.input_shape[1:])
    return check_image_shape(image_shape, encoder)


def check_image_shape(image_shape, encoder):
    """``image_shape`` as ``(H, W, C)`` of positive ints with the patch encoder's channels, or a
    ``ValueError`` saying how to fix it."""
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


def patch_grid_geometry(encoder, image_shape, patch_size, patch_stride, grid_size):
    """The images and the grid of overlapping patches of a patch-grid method (CPC).

    With ``image_shape``, ``encoder`` takes patches and the patch size is its input size (a
    different ``patch_size`` raises); with ``image_shape=None`` it takes whole images, whose
    shape is its input shape, and ``patch_size`` defaults to a quarter of the image side.
    ``patch_stride`` defaults to half the patch; ``grid_size=None`` takes every patch that
    fits, centred (:func:`keras_ssl.layers.patch_grid.grid_geometry`).

    Returns:
        ``(image_shape, patch_size, patch_stride, grid_size)``, tuples of ints.
    """
    shape = image_shape_of(encoder, image_shape)
    if image_shape is None:
        if patch_size is None:
            patch_size = tuple(max(1, side // 4) for side in shape[:2])
        patch_size = _pair(patch_size, "patch_size", "pass e.g. patch_size=8")
    else:
        encoder_patch = tuple(encoder.input_shape[1:3])
        if (
            patch_size is not None
            and _pair(patch_size, "patch_size", "pass e.g. patch_size=8") != encoder_patch
        ):
            raise ValueError(
                f"`patch_size` {patch_size!r} does not match the patch encoder's input size "
                f"{encoder_patch}; expected them equal when `image_shape` is given (the "
                "encoder takes patches). Fix: leave patch_size=None, or build the encoder for "
                "patches of that size."
            )
        patch_size = encoder_patch
    if patch_stride is None:
        patch_stride = tuple(max(1, side // 2) for side in patch_size)
    patch_stride = _pair(patch_stride, "patch_stride", "pass e.g. patch_stride=4")
    if grid_size is not None:
        grid_size = _pair(grid_size, "grid_size", "pass e.g. grid_size=6, or None")
    grid_size, _ = grid_geometry(shape[:2], patch_size, patch_stride, grid_size)
    return shape, patch_size, patch_stride, grid_size


class PatchGridEncoders(NamedTuple):
    """The encoders and the geometry of a patch-grid method (:func:`patch_grid_encoders`)."""

    patch_encoder: keras.Model
    grid_encoder: keras.layers.Layer
    image_encoder: keras.Model
    image_shape: tuple
    patch_size: tuple
    patch_stride: tuple
    grid_size: tuple


def patch_grid_encoders(
    encoder, image_shape, patch_size, patch_stride, grid_size, patch_normalization
):
    """The patch encoder of a patch-grid method (CPC, ``g_enc``) and the image encoder of it.

    ``encoder`` is an encoder for patches (``image_shape`` given) or for whole images
    (``image_shape=None``), which is rebuilt for patches with :func:`encoder_for_patches` (same
    layers, weights copied; they must accept any spatial size, as every ``keras_ssl.backbones``
    model's do); the geometry is :func:`patch_grid_geometry`'s. All patches of a
    batch go through the patch encoder in one call, so its BatchNorm would mix the statistics
    of all patches; ``patch_normalization="layer"`` (CPC v2) turns every BatchNorm into
    per-patch layer normalisation (:func:`keras_ssl.layers.patch_grid.per_patch_normalized`),
    ``None`` keeps the encoder's own normalisation. The image encoder maps whole images to the
    mean of their patch encodings (:func:`keras_ssl.layers.patch_grid.grid_mean_encoder`).

    Returns:
        :class:`PatchGridEncoders`.
    """
    check_encoder(encoder)
    if patch_normalization not in PATCH_NORMALIZATIONS:
        raise ValueError(
            f"`patch_normalization` must be one of {PATCH_NORMALIZATIONS}; received "
            f"{patch_normalization!r}. Fix: pass 'layer' (per-patch LayerNorm, CPC v2) or "
            "None (keep the encoder's own normalisation)."
        )
    rebuild = image_shape is None  # an image encoder, to be rebuilt for patches
    geometry = patch_grid_geometry(encoder, image_shape, patch_size, patch_stride, grid_size)
    image_shape, patch_size, patch_stride, grid_size = geometry
    patch_encoder = (
        encoder_for_patches(encoder, (*patch_size, image_shape[2])) if rebuild else encoder
    )
    if patch_normalization == "layer":
        patch_encoder = per_patch_normalized(patch_encoder)
    grid_encoder, image_encoder = grid_mean_encoder(
        patch_encoder, image_shape, patch_stride, grid_size
    )
    return PatchGridEncoders(patch_encoder, grid_encoder, image_encoder, *geometry)


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
