"""Intermediate feature maps of any keras_ssl backbone, and backbones rebuilt at a new input size.

Dense tasks (segmentation, detection) take skip connections from several depths of a pretrained
encoder. These functions work on the encoder models themselves (built here, loaded from a
``.keras`` file or taken from a trained method's ``export_encoder``), so nothing has to be
rebuilt or remembered when the encoder was made:

- :func:`feature_levels` names one layer per resolution ("pyramid level"), finest first. For
  convolutional backbones (ResNets, models wrapped by ``from_keras_model``) a level is the last
  layer whose output has that spatial size, e.g. ``stage1_block1_out``, ``stage2_block1_out``,
  ... for a SmallResNet with the CIFAR stem, or ``stem_relu``, ``stage1_block2_out``, ... with
  the ImageNet stem. Layers that grow the map (zero padding) are skipped. A ViT has one
  resolution, ``H / patch_size``; its levels are up to four evenly spaced transformer blocks
  ending with the last (as ViT dense-prediction heads such as SETR take them), each reshaped
  from tokens to a ``[batch, H / p, W / p, dim]`` grid (the class token is dropped).
- :func:`pyramid_outputs` gives ``{level name: feature map}`` symbolic tensors of the
  encoder's own graph, ready to be wired into a decoder.
- :func:`feature_extractor` is the ``keras.Model`` from images to those maps; it shares the
  encoder's layers and weights.
- :func:`with_input_shape` rebuilds an encoder for another image size and copies its weights
  (SSL encoders here are trained on 28 px Fashion-MNIST; segmentation canvases are 56 px). The
  convolutional weights do not depend on the size; a ViT's position embeddings are resampled
  bicubically to the new patch grid (DINO's interpolation).
"""

import keras
import tensorflow as tf

from keras_ssl.backbones.vit import PatchEmbedding
from keras_ssl.validation import check_int_tuple


@keras.saving.register_keras_serializable(package="keras_ssl")
class TokenGrid(keras.layers.Layer):
    """ViT tokens ``[batch, 1 + gh * gw, dim]`` -> patch grid ``[batch, gh, gw, dim]``.

    Drops the class token (token 0) and lays the patch tokens out row-major, the order
    ``PatchEmbedding`` makes them in.

    Args:
        grid_size: ``(gh, gw)``, the patch grid of the images.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, grid_size, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = tuple(int(g) for g in grid_size)

    def call(self, tokens):
        patches = tokens[:, 1:]
        return tf.reshape(patches, [-1, *self.grid_size, tokens.shape[-1]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.grid_size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "grid_size": self.grid_size}


def _check_encoder(encoder):
    if not isinstance(encoder, keras.Model) or not hasattr(encoder, "layers"):
        raise ValueError(
            f"`encoder` must be a functional keras.Model (a keras_ssl backbone); received "
            f"{type(encoder).__name__}. Fix: pass e.g. keras_ssl.backbones.SmallResNet(...) or "
            "a trained method's `export_encoder`."
        )
    try:
        shape = tuple(encoder.input_shape)
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"`encoder` must be a built functional model with one image input; received "
            f"{encoder.name!r}, which has none ({error}). Fix: build it with keras.Input."
        ) from error
    if len(shape) != 4 or None in shape[1:]:
        raise ValueError(
            f"`encoder` must take images [batch, H, W, C] of a fixed size; received input shape "
            f"{shape}. Fix: build the backbone with input_shape=(H, W, C)."
        )
    return shape[1:]


def _patch_embedding(encoder):
    layers = [layer for layer in encoder.layers if isinstance(layer, PatchEmbedding)]
    return layers[0] if layers else None


def _nested_model(encoder):
    for layer in encoder.layers:
        if isinstance(layer, keras.Model) and len(layer.output.shape) == 4:
            return layer
    return None


def _vit_levels(encoder):
    blocks = [
        layer.name
        for layer in encoder.layers
        if layer.name.startswith("block") and layer.name.endswith("_add2")
    ]
    if not blocks:
        raise ValueError(
            f"ViT encoder {encoder.name!r} has no transformer blocks named 'block<i>_add2'; "
            "expected a keras_ssl.backbones.ViT. Fix: build it with keras_ssl.backbones.ViT."
        )
    depth = len(blocks)
    picks = sorted({max(1, round(depth * k / 4)) for k in range(1, 5)})
    return [blocks[i - 1] for i in picks]


def _conv_levels(model):
    levels = []
    current = tuple(model.input_shape[1:3])
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        output = layer.output
        if not hasattr(output, "shape") or len(output.shape) != 4:
            if levels:
                break
            continue
        size = tuple(output.shape[1:3])
        if size[0] > current[0] or size[1] > current[1]:
            continue  # zero padding grows the map; not a level
        if size == current and levels:
            levels[-1] = layer.name
        else:
            levels.append(layer.name)
            current = size
    return levels


def feature_levels(encoder):
    """Names of the encoder's pyramid levels, finest (largest map) first.

    Args:
        encoder: a keras_ssl backbone (functional ``keras.Model`` with a fixed image input).

    Returns:
        A list of layer names. For a model made by ``from_keras_model`` they name layers of the
        wrapped model.

    Raises:
        ValueError: for a model that is not a functional image encoder or has no feature maps.
    """
    _check_encoder(encoder)
    if _patch_embedding(encoder) is not None:
        return _vit_levels(encoder)
    nested = _nested_model(encoder)
    levels = _conv_levels(nested if nested is not None else encoder)
    if not levels:
        raise ValueError(
            f"Encoder {encoder.name!r} has no layer with a 4-D feature map [batch, h, w, c]; "
            "expected a convolutional backbone or a ViT. Fix: pass a keras_ssl backbone."
        )
    return levels


def _check_names(names, available, encoder):
    names = list(names)
    unknown = [name for name in names if name not in available]
    if unknown or not names:
        raise ValueError(
            f"Unknown feature levels {unknown or names!r} for encoder {encoder.name!r}; "
            f"expected a non-empty list of layer names such as {available}. Fix: pass names "
            "from keras_ssl.backbones.feature_levels(encoder)."
        )
    return names


def pyramid_outputs(encoder, names=None):
    """Feature maps of the encoder's own graph, as ``{name: KerasTensor}``, finest first.

    Args:
        encoder: a keras_ssl backbone.
        names: layer names to take (default: :func:`feature_levels`). Any layer with a 4-D
            output may be named (any ``block<i>_add2`` for a ViT).

    Returns:
        A dict from level name to the symbolic ``[batch, h, w, c]`` map, which can be wired
        into new layers and a ``keras.Model(encoder.input, ...)``.

    Raises:
        ValueError: for an unknown name, or an encoder wrapping a nested model (use
            :func:`feature_extractor` there).
    """
    _check_encoder(encoder)
    names = feature_levels(encoder) if names is None else names
    if _nested_model(encoder) is not None:
        raise ValueError(
            f"Encoder {encoder.name!r} wraps the nested model "
            f"{_nested_model(encoder).name!r}, whose inner maps are not part of its graph. "
            "Fix: use keras_ssl.backbones.feature_extractor(encoder), which handles it."
        )
    layer_names = [layer.name for layer in encoder.layers]
    names = _check_names(names, layer_names, encoder)
    embedding = _patch_embedding(encoder)
    outputs = {}
    for name in names:
        output = encoder.get_layer(name).output
        if embedding is not None and len(output.shape) == 3:
            output = TokenGrid(embedding.grid_size, name=f"{name}_grid")(output)
        if len(output.shape) != 4:
            raise ValueError(
                f"Layer {name!r} of {encoder.name!r} outputs shape {tuple(output.shape)}; "
                "expected a feature map [batch, h, w, c]. Fix: name a convolutional layer."
            )
        outputs[name] = output
    return outputs


def feature_extractor(encoder, names=None):
    """A ``keras.Model`` from the encoder's images to a list of its feature maps.

    It shares the encoder's layers (and so its weights): training one trains the other.

    Args:
        encoder: a keras_ssl backbone, including models made by ``from_keras_model``.
        names: layer names (default: :func:`feature_levels`), finest first.

    Returns:
        A functional ``keras.Model`` whose outputs are the maps ``[batch, h_i, w_i, c_i]`` in
        the order of ``names``.
    """
    input_shape = _check_encoder(encoder)
    names = feature_levels(encoder) if names is None else list(names)
    nested = _nested_model(encoder)
    if nested is None:
        outputs = list(pyramid_outputs(encoder, names).values())
        return keras.Model(encoder.input, outputs, name=f"{encoder.name}_features")
    names = _check_names(names, [layer.name for layer in nested.layers], nested)
    inner = keras.Model(
        nested.input, [nested.get_layer(name).output for name in names], name=f"{nested.name}_maps"
    )
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for layer in encoder.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer is nested:
            break
        x = layer(x)
    outputs = inner(x)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return keras.Model(inputs, list(outputs), name=f"{encoder.name}_features")


def _set_input_shapes(config, input_shape):
    for layer_config in config.get("layers", []):
        layer_config.pop("build_config", None)  # layers are rebuilt by the new input
        if layer_config.get("class_name") == "InputLayer":
            batch_shape = layer_config["config"]["batch_shape"]
            layer_config["config"]["batch_shape"] = [batch_shape[0], *input_shape]
        elif "layers" in layer_config.get("config", {}):
            _set_input_shapes(layer_config["config"], input_shape)


def _copy_weights(source, target):
    for source_layer, target_layer in zip(source.layers, target.layers):
        if isinstance(source_layer, keras.Model):
            _copy_weights(source_layer, target_layer)
            continue
        for source_weight, target_weight in zip(source_layer.weights, target_layer.weights):
            value = source_weight
            if tuple(source_weight.shape) != tuple(target_weight.shape):
                if isinstance(source_layer, PatchEmbedding) and "position" in source_weight.path:
                    value = source_layer.position_embeddings(target_layer.grid_size)
                else:
                    raise ValueError(
                        f"Weight {source_weight.path!r} has shape {tuple(source_weight.shape)} "
                        f"at the old input size but {tuple(target_weight.shape)} at the new one; "
                        "expected size-independent weights (convolutions, norms, ViT position "
                        "embeddings). Fix: keep the original input size for this encoder."
                    )
            target_weight.assign(keras.ops.convert_to_numpy(value))


def with_input_shape(encoder, input_shape, copy_weights=True):
    """Rebuilds a backbone for images of ``input_shape`` and copies its weights.

    Convolutional weights and norms are size-independent and copied as they are, so at the
    original size the rebuilt encoder computes exactly the same features; a ViT's position
    embeddings are resampled bicubically to the new patch grid (the size must stay a multiple
    of the patch size). Layers whose weights depend on the size in other ways (a ``Flatten``
    followed by ``Dense``) raise an error.

    Args:
        encoder: a keras_ssl backbone (functional model, including ``from_keras_model`` ones).
        input_shape: ``(height, width, channels)``; channels must match the encoder's.
        copy_weights: copy the weights (True) or keep the fresh random initialisation (False,
            the "same architecture from random init" baseline).

    Returns:
        A new functional ``keras.Model`` with the same layer names; ``encoder`` is unchanged.

    Raises:
        ValueError: for a malformed ``input_shape``, a channel change or size-dependent weights.
    """
    old_shape = _check_encoder(encoder)
    form = "(height, width, channels)"
    shape = check_int_tuple(input_shape, "input_shape", form, (3,), "pass e.g. (56, 56, 1).")
    if shape[2] != old_shape[2]:
        raise ValueError(
            f"`input_shape` has {shape[2]} channels but encoder {encoder.name!r} takes "
            f"{old_shape[2]}; expected the same channels. Fix: convert the images to "
            f"{old_shape[2]} channel(s), or pass input_shape=({shape[0]}, {shape[1]}, "
            f"{old_shape[2]})."
        )
    config = encoder.get_config()
    _set_input_shapes(config, shape)
    rebuilt = encoder.__class__.from_config(config)
    if copy_weights:
        _copy_weights(encoder, rebuilt)
    return rebuilt
