"""Per-pixel classification head of the colour methods (colorization, split-brain)."""

import keras

from keras_ssl.layers.batch_norm import BatchNormalization


def pixel_classifier(map_shape, image_size, num_classes, hidden_dim, synchronized_bn, name):
    """Feature maps ``[batch, h, w, c]`` -> per-pixel logits ``[batch, H, W, num_classes]``.

    A 3x3 convolution with BatchNorm and ReLU, bilinear upsampling to the image size and a 1x1
    convolution to the class logits.

    Args:
        map_shape: ``(h, w, c)`` of the encoder's last feature maps.
        image_size: ``(H, W)`` of the images, multiples of ``(h, w)``.
        num_classes: logits per pixel.
        hidden_dim: channels of the 3x3 convolution.
        synchronized_bn: synchronise the BatchNorm statistics across replicas.
        name: name of the model and prefix of its layers' names.

    Returns:
        A functional ``keras.Model`` (built).

    Raises:
        ValueError: when the image size is not a multiple of the feature-map size.
    """
    height, width = image_size
    factor = (height // map_shape[0], width // map_shape[1])
    if height % map_shape[0] or width % map_shape[1]:
        raise ValueError(
            f"The image size {image_size} must be a multiple of the encoder's feature-map size "
            f"{tuple(map_shape[:2])} for the per-pixel head. Fix: use an image size divisible by "
            f"{tuple(map_shape[:2])} (e.g. a power of two for the keras_ssl ResNets)."
        )
    maps = keras.Input(tuple(map_shape), name="feature_maps")
    x = keras.layers.Conv2D(hidden_dim, 3, padding="same", use_bias=False, name=f"{name}_conv")(
        maps
    )
    x = BatchNormalization(synchronized=synchronized_bn, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    if factor != (1, 1):
        x = keras.layers.UpSampling2D(factor, interpolation="bilinear", name=f"{name}_up")(x)
    logits = keras.layers.Conv2D(num_classes, 1, name=f"{name}_logits")(x)
    return keras.Model(maps, logits, name=name)
