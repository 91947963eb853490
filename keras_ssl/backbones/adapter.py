"""Use any Keras model (keras.applications, keras-cv/keras-hub backbones) as an SSL encoder."""

import keras

_POOLINGS = ("avg", "max")


def from_keras_model(model, pooling="avg", input_range=(0.0, 1.0), name=None):
    """Wraps ``model`` so that it maps ``[0, 1]`` images to pooled ``[batch, D]`` features.

    Args:
        model: a built ``keras.Model`` taking images ``[batch, H, W, C]`` (for example
            ``keras.applications.ResNet50(include_top=False, weights=None, input_shape=...)``).
        pooling: ``"avg"`` or ``"max"`` global pooling, applied when ``model`` outputs feature
            maps ``[batch, h, w, D]``; rank-2 outputs are used as they are.
        input_range: the ``(low, high)`` pixel range ``model`` expects; keras_ssl feeds ``[0, 1]``
            images and rescales them linearly (e.g. ``(-1, 1)`` for MobileNet, ``(0, 255)`` for
            models that normalise internally).
        name: name of the returned model (default: ``<model.name>_encoder``).

    Returns:
        A functional ``keras.Model`` encoder.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a keras.Model; received {type(model).__name__}. Fix: pass a Keras "
            "model such as keras.applications.ResNet50(include_top=False, weights=None)."
        )
    input_shape = tuple(model.input_shape[1:]) if _has_input_shape(model) else None
    if input_shape is None or len(input_shape) != 3 or None in input_shape:
        raise ValueError(
            f"`model` must have a fixed image input shape (height, width, channels); received "
            f"input shape {input_shape!r}. Fix: build it with input_shape=(H, W, C)."
        )
    if pooling not in _POOLINGS:
        raise ValueError(f"`pooling` must be one of {_POOLINGS}; received {pooling!r}.")
    low, high = (float(v) for v in input_range)
    if not high > low:
        raise ValueError(
            f"`input_range` must be (low, high) with high > low; received {input_range!r}. "
            "Fix: e.g. (0, 1), (-1, 1) or (0, 255)."
        )
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    if (low, high) != (0.0, 1.0):
        x = keras.layers.Rescaling(scale=high - low, offset=low, name="rescale")(x)
    x = model(x)
    if len(x.shape) == 4:
        pool = (
            keras.layers.GlobalAveragePooling2D
            if pooling == "avg"
            else keras.layers.GlobalMaxPooling2D
        )
        x = pool(name="pool")(x)
    elif len(x.shape) != 2:
        raise ValueError(
            f"`model` must output feature maps [batch, h, w, d] or features [batch, d]; received "
            f"output shape {tuple(x.shape)}. Fix: pass the backbone without its classifier head."
        )
    return keras.Model(inputs, x, name=name or f"{model.name}_encoder")


def _has_input_shape(model):
    try:
        return model.input_shape is not None
    except (AttributeError, ValueError):
        return False
