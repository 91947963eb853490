"""U-Net (Ronneberger et al. 2015, arXiv:1505.04597) decoder on a keras_ssl encoder.

The encoder's pyramid levels (:func:`keras_ssl.backbones.feature_levels`) are the skip
connections. From the coarsest level up, each decoder stage upsamples bilinearly to the next
finer level, concatenates it and applies two 3x3 convolutions with BatchNorm and ReLU; a last
stage upsamples to the input size, and a 1x1 convolution gives per-pixel class logits.

Sizes: every level's size must divide the input size exactly (for a stride-2 ResNet with ``n``
downsamplings, height and width must be multiples of ``2**n``). Other sizes raise a
``ValueError`` naming the nearest valid size; pad or resize the images to it.
"""

import math

import keras

from keras_ssl.backbones.features import feature_extractor, with_input_shape
from keras_ssl.layers.batch_norm import BatchNormalization
from keras_ssl.validation import check_int


def _conv_block(x, width, name):
    for index in (1, 2):
        x = keras.layers.Conv2D(
            width, 3, padding="same", use_bias=False, name=f"{name}_conv{index}"
        )(x)
        x = BatchNormalization(name=f"{name}_bn{index}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


def UNet(
    encoder,
    num_classes,
    input_shape=None,
    decoder_widths=None,
    freeze_encoder=False,
    name="unet",
):
    """A U-Net segmentation model from images ``[batch, H, W, C]`` to logits ``[batch, H, W, K]``.

    Args:
        encoder: a keras_ssl backbone (pretrained or not). It is copied (with its weights) at
            ``input_shape``, so the caller's encoder is never modified.
        num_classes: ``K``, classes per pixel (background included).
        input_shape: ``(H, W, C)`` of the images (default: the encoder's).
        decoder_widths: channels of the decoder stages, one per level, finest first (default:
            each level's own channels).
        freeze_encoder: keep the encoder's weights fixed (BatchNorm in inference mode) and
            train only the decoder; False fine-tunes the whole network.
        name: model name.

    Returns:
        A functional ``keras.Model``; ``model.get_layer(<encoder name>_features)`` holds the
        encoder copy.

    Raises:
        ValueError: for a bad ``num_classes``, ``decoder_widths`` of the wrong length, or an
            input size the encoder does not downsample exactly.
    """
    fix = "pass the number of mask classes including background, e.g. 11."
    check_int(num_classes, "num_classes", fix=fix)
    input_shape = tuple(input_shape or encoder.input_shape[1:])
    encoder = with_input_shape(encoder, input_shape)
    extractor = feature_extractor(encoder)
    maps = extractor.outputs
    sizes = [tuple(m.shape[1:3]) for m in maps]
    height, width = input_shape[:2]
    if any(height % h or width % w for h, w in sizes):
        factor = max(round(height / sizes[-1][0]), round(width / sizes[-1][1]), 1)
        good = (math.ceil(height / factor) * factor, math.ceil(width / factor) * factor)
        raise ValueError(
            f"UNet received input size ({height}, {width}), which encoder {encoder.name!r} "
            f"maps to feature sizes {sizes}; expected sizes that divide the input exactly "
            f"(height and width multiples of {factor}). Fix: pad or resize the images to {good}."
        )
    widths = tuple(decoder_widths or [int(m.shape[-1]) for m in maps])
    if len(widths) != len(maps):
        raise ValueError(
            f"`decoder_widths` needs one width per encoder level ({len(maps)}: {sizes}); "
            f"received {widths!r}. Fix: pass {len(maps)} ints, finest first, or None."
        )
    encoder.trainable = not freeze_encoder
    inputs = keras.Input(shape=input_shape, name="images")
    skips = extractor(inputs, training=False) if freeze_encoder else extractor(inputs)
    skips = skips if isinstance(skips, (list, tuple)) else [skips]
    x = _conv_block(skips[-1], widths[-1], f"decoder_level{len(skips)}")
    for level in range(len(skips) - 2, -1, -1):
        factor = sizes[level][0] // sizes[level + 1][0], sizes[level][1] // sizes[level + 1][1]
        if factor != (1, 1):
            x = keras.layers.UpSampling2D(factor, interpolation="bilinear", name=f"up{level + 1}")(
                x
            )
        x = keras.layers.Concatenate(name=f"skip{level + 1}")([x, skips[level]])
        x = _conv_block(x, widths[level], f"decoder_level{level + 1}")
    factor = height // sizes[0][0], width // sizes[0][1]
    if factor != (1, 1):
        x = keras.layers.UpSampling2D(factor, interpolation="bilinear", name="up0")(x)
        x = _conv_block(x, widths[0], "decoder_full")
    logits = keras.layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)
