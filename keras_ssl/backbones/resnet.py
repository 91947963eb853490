"""ResNets (He et al. 2016, arXiv:1512.03385) with a small-image stem option.

Every backbone maps float32 images in ``[0, 1]`` shaped ``[batch, H, W, C]`` to pooled features
``[batch, D]``. Small images (CIFAR, Fashion-MNIST) use the "CIFAR stem" of the SSL literature
(SimCLR appendix B.9): a 3x3 stride-1 convolution and no max-pool, so 28-32 px inputs keep their
resolution through the first stage.
"""

import keras

from keras_ssl.layers.batch_norm import BatchNormalization

_STEMS = ("auto", "cifar", "imagenet")
_BLOCKS = ("basic", "bottleneck")


def _check_input_shape(input_shape):
    shape = tuple(input_shape) if input_shape is not None else None
    if shape is None or len(shape) != 3 or any(d is None or int(d) < 1 for d in shape):
        raise ValueError(
            f"`input_shape` must be (height, width, channels) with positive sizes; received "
            f"{input_shape!r}. Fix: pass e.g. input_shape=(28, 28, 1) for Fashion-MNIST or "
            "(32, 32, 3) for CIFAR."
        )
    return tuple(int(d) for d in shape)


def _batch_norm(options, name, zero_gamma=False):
    return BatchNormalization(
        momentum=options["momentum"],
        epsilon=1e-5,
        synchronized=options["synchronized"],
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )


def _conv(filters, kernel_size, strides, name):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )


def _basic_block(x, filters, strides, options, name):
    shortcut = x
    y = _conv(filters, 3, strides, f"{name}_conv1")(x)
    y = _batch_norm(options, f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(filters, 3, 1, f"{name}_conv2")(y)
    y = _batch_norm(options, f"{name}_bn2", zero_gamma=options["zero_init_residual"])(y)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, f"{name}_proj")(x)
        shortcut = _batch_norm(options, f"{name}_proj_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _bottleneck_block(x, filters, strides, options, name):
    shortcut = x
    y = _conv(filters, 1, 1, f"{name}_conv1")(x)
    y = _batch_norm(options, f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(filters, 3, strides, f"{name}_conv2")(y)
    y = _batch_norm(options, f"{name}_bn2")(y)
    y = keras.layers.ReLU(name=f"{name}_relu2")(y)
    y = _conv(4 * filters, 1, 1, f"{name}_conv3")(y)
    y = _batch_norm(options, f"{name}_bn3", zero_gamma=options["zero_init_residual"])(y)
    if strides != 1 or x.shape[-1] != 4 * filters:
        shortcut = _conv(4 * filters, 1, strides, f"{name}_proj")(x)
        shortcut = _batch_norm(options, f"{name}_proj_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def ResNet(
    input_shape,
    stage_blocks,
    stage_widths,
    block="basic",
    stem="auto",
    stem_width=None,
    synchronized_bn=False,
    batch_norm_momentum=0.9,
    zero_init_residual=False,
    name="resnet",
):
    """Builds a ResNet encoder as a functional ``keras.Model``.

    Args:
        input_shape: ``(height, width, channels)`` of the float ``[0, 1]`` input images.
        stage_blocks: number of residual blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        stage_widths: filters per stage, e.g. ``(64, 128, 256, 512)``; each stage after the
            first halves the resolution.
        block: ``"basic"`` (two 3x3 convolutions) or ``"bottleneck"`` (1x1-3x3-1x1, 4x wider).
        stem: ``"cifar"`` (3x3 stride-1 conv, no max-pool), ``"imagenet"`` (7x7 stride-2 conv
            and 3x3 stride-2 max-pool) or ``"auto"`` (CIFAR stem when the smaller image side is
            at most 64 px).
        stem_width: filters of the stem convolution (default: the first stage's width).
        synchronized_bn: synchronise BatchNorm statistics across replicas.
        batch_norm_momentum: Keras BatchNorm momentum (0.9 equals PyTorch's default 0.1).
        zero_init_residual: start each residual branch's last BatchNorm at zero (Goyal et al.
            2017), so every block starts as the identity.
        name: model name.

    Returns:
        A ``keras.Model`` from images ``[batch, H, W, C]`` to pooled features ``[batch, D]``.
    """
    input_shape = _check_input_shape(input_shape)
    if stem not in _STEMS:
        raise ValueError(f"`stem` must be one of {_STEMS}; received {stem!r}.")
    if block not in _BLOCKS:
        raise ValueError(f"`block` must be one of {_BLOCKS}; received {block!r}.")
    if len(stage_blocks) != len(stage_widths) or not stage_blocks:
        raise ValueError(
            f"`stage_blocks` and `stage_widths` must be non-empty and of equal length; received "
            f"{stage_blocks!r} and {stage_widths!r}. Fix: give one width per stage."
        )
    if stem == "auto":
        stem = "cifar" if min(input_shape[:2]) <= 64 else "imagenet"
    options = {
        "momentum": batch_norm_momentum,
        "synchronized": synchronized_bn,
        "zero_init_residual": zero_init_residual,
    }
    make_block = _basic_block if block == "basic" else _bottleneck_block
    inputs = keras.Input(shape=input_shape, name="images")
    width = stem_width or stage_widths[0]
    if stem == "cifar":
        x = _conv(width, 3, 1, "stem_conv")(inputs)
    else:
        x = _conv(width, 7, 2, "stem_conv")(inputs)
    x = _batch_norm(options, "stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    if stem == "imagenet":
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, (blocks, filters) in enumerate(zip(stage_blocks, stage_widths)):
        for index in range(blocks):
            strides = 2 if stage > 0 and index == 0 else 1
            x = make_block(x, filters, strides, options, f"stage{stage + 1}_block{index + 1}")
    features = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, features, name=name)


def ResNet18(input_shape, synchronized_bn=False, **kwargs):
    """ResNet-18 (basic blocks 2-2-2-2, widths 64-512, 512-d features). See :func:`ResNet`."""
    return ResNet(
        input_shape,
        (2, 2, 2, 2),
        (64, 128, 256, 512),
        "basic",
        name="resnet18",
        synchronized_bn=synchronized_bn,
        **kwargs,
    )


def ResNet34(input_shape, synchronized_bn=False, **kwargs):
    """ResNet-34 (basic blocks 3-4-6-3, 512-d features). See :func:`ResNet`."""
    return ResNet(
        input_shape,
        (3, 4, 6, 3),
        (64, 128, 256, 512),
        "basic",
        name="resnet34",
        synchronized_bn=synchronized_bn,
        **kwargs,
    )


def ResNet50(input_shape, synchronized_bn=False, **kwargs):
    """ResNet-50 (bottleneck blocks 3-4-6-3, 2048-d features). See :func:`ResNet`."""
    return ResNet(
        input_shape,
        (3, 4, 6, 3),
        (64, 128, 256, 512),
        "bottleneck",
        name="resnet50",
        synchronized_bn=synchronized_bn,
        **kwargs,
    )


def SmallResNet(input_shape, widths=(32, 64, 128), synchronized_bn=False, **kwargs):
    """A fast ResNet for CPU demos and tests: one basic block per stage, CIFAR stem by default.

    With the default widths it has about 0.3M parameters and 128-d features.
    """
    return ResNet(
        input_shape,
        (1,) * len(widths),
        tuple(widths),
        "basic",
        name="small_resnet",
        synchronized_bn=synchronized_bn,
        **kwargs,
    )
