"""``ConvDecoder``: codes to images, for reconstruction and generative methods.

Autoencoders, the context encoder, VAEs and BiGAN's generator all map a code ``[batch, D]`` back
to an image. The decoder follows DCGAN (Radford et al. 2016, arXiv:1511.06434) as the context
encoder does: a fully connected layer to a small feature map, then stride-2 transposed
convolutions with BatchNorm and ReLU that double the resolution at each stage, and a final
3x3 convolution to the image channels.
"""

import math

import keras

from keras_ssl.layers.batch_norm import BatchNormalization
from keras_ssl.validation import check_int


def ConvDecoder(
    code_dim,
    image_shape,
    widths=(64, 32),
    output_activation="sigmoid",
    synchronized_bn=False,
    name="conv_decoder",
):
    """A functional decoder from codes ``[batch, code_dim]`` to images ``[batch, H, W, C]``.

    The first feature map is ``ceil(H / 2**n) x ceil(W / 2**n) x widths[0]`` for ``n =
    len(widths)`` upsampling stages (stage ``i`` has ``widths[i]`` channels); when ``H`` or ``W``
    is not a multiple of ``2**n`` the output is centre-cropped to ``(H, W)``.

    Args:
        code_dim: size ``D`` of the input codes.
        image_shape: ``(H, W, C)`` of the output images.
        widths: channels of the upsampling stages, coarse to fine; one 2x stage each.
        output_activation: ``"sigmoid"`` for images in ``[0, 1]`` (MSE or Bernoulli
            likelihoods), ``None`` for logits or unbounded outputs, or any Keras activation.
        synchronized_bn: synchronise BatchNorm statistics across replicas.
        name: model name.

    Returns:
        A ``keras.Model``.

    Raises:
        ValueError: for a non-positive ``code_dim``, a malformed ``image_shape`` or empty
            ``widths``.
    """
    check_int(
        code_dim, "code_dim", fix="pass the size of the codes, e.g. the encoder's feature size."
    )
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(isinstance(d, int) and d >= 1 for d in shape):
        raise ValueError(
            f"`image_shape` must be (height, width, channels) with positive ints; received "
            f"{image_shape!r}. Fix: pass e.g. image_shape=(28, 28, 1)."
        )
    widths = tuple(widths)
    if not widths or not all(isinstance(w, int) and w >= 1 for w in widths):
        raise ValueError(
            f"`widths` must be a non-empty sequence of positive ints; received {widths!r}. "
            "Fix: pass e.g. widths=(64, 32)."
        )
    height, width, channels = shape
    scale = 2 ** len(widths)
    start = (math.ceil(height / scale), math.ceil(width / scale))
    codes = keras.Input((code_dim,), name="codes")
    x = keras.layers.Dense(start[0] * start[1] * widths[0], name=f"{name}_fc")(codes)
    x = keras.layers.Reshape((*start, widths[0]), name=f"{name}_reshape")(x)
    for index, filters in enumerate(widths):
        x = keras.layers.Conv2DTranspose(
            filters, 4, strides=2, padding="same", use_bias=False, name=f"{name}_up{index}"
        )(x)
        x = BatchNormalization(synchronized=synchronized_bn, name=f"{name}_bn{index}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{index}")(x)
    extra = (start[0] * scale - height, start[1] * scale - width)
    if any(extra):
        x = keras.layers.Cropping2D(
            ((extra[0] // 2, extra[0] - extra[0] // 2), (extra[1] // 2, extra[1] - extra[1] // 2)),
            name=f"{name}_crop",
        )(x)
    images = keras.layers.Conv2D(
        channels, 3, padding="same", activation=output_activation, name=f"{name}_out"
    )(x)
    return keras.Model(codes, images, name=name)
