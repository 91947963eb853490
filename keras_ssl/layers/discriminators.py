"""Discriminators of the adversarial methods: BiGAN's joint D(x, z), the context encoder's D(x)."""

import keras


def JointDiscriminator(image_shape, latent_dim, widths=(32, 64), hidden_dim=256, name="d"):
    """BiGAN's discriminator ``D(x, z)`` on joint pairs: logits ``[batch, 1]``.

    ``x`` goes through stride-2 4x4 convolutions with LeakyReLU(0.2), ``z`` through a Dense
    layer with LeakyReLU, and their concatenation through a hidden Dense layer to one logit
    (the paper's permutation-invariant MNIST discriminator, with convolutions for ``x``). No
    BatchNorm: the real and generated pairs go through D in one batch, and batch statistics
    would let D tell them apart by their mix.
    """
    images = keras.Input(image_shape, name="images")
    codes = keras.Input((latent_dim,), name="codes")
    x = _conv_features(images, widths, name)
    z = keras.layers.Dense(hidden_dim, name=f"{name}_code_fc")(codes)
    z = keras.layers.LeakyReLU(0.2, name=f"{name}_code_lrelu")(z)
    joint = keras.layers.Concatenate(name=f"{name}_joint")([x, z])
    joint = keras.layers.Dense(hidden_dim, name=f"{name}_joint_fc")(joint)
    joint = keras.layers.LeakyReLU(0.2, name=f"{name}_joint_lrelu")(joint)
    logits = keras.layers.Dense(1, name=f"{name}_logit")(joint)
    return keras.Model([images, codes], logits, name=name)


def ConvDiscriminator(image_shape, widths=(32, 64), name="discriminator"):
    """A small DCGAN-style discriminator: stride-2 4x4 convolutions with LeakyReLU(0.2) and a
    linear layer to one logit. No BatchNorm, so its statistics never mix real and inpainted
    images and replicas need no synchronisation."""
    images = keras.Input(image_shape, name="images")
    x = _conv_features(images, widths, name)
    logits = keras.layers.Dense(1, name=f"{name}_logit")(x)
    return keras.Model(images, logits, name=name)


def check_widths(widths, name="widths"):
    """Returns ``widths`` as a tuple if it is a non-empty sequence of positive ints (the
    channels of a discriminator's convolutions); raises a ``ValueError`` otherwise."""
    widths = tuple(widths)
    if not widths or not all(
        isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths
    ):
        raise ValueError(
            f"`{name}` must be a non-empty sequence of positive ints; received {widths!r}. "
            "Fix: pass e.g. (32, 64)."
        )
    return widths


def _conv_features(images, widths, name):
    """Stride-2 4x4 convolutions with LeakyReLU(0.2), flattened."""
    x = images
    for index, filters in enumerate(widths):
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"{name}_conv{index}")(
            x
        )
        x = keras.layers.LeakyReLU(0.2, name=f"{name}_lrelu{index}")(x)
    return keras.layers.Flatten(name=f"{name}_flatten")(x)
