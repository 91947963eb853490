"""Overlapping patch grids: cut images into patches, and encode every patch in one batched call.

CPC (van den Oord et al. 2018, https://arxiv.org/abs/1807.03748) cuts a 256-px image into a 7x7
grid of 64-px patches with a 32-px overlap (stride 32). :class:`PatchGrid` does the cutting for
any patch size and stride; :class:`PatchGridEncoder` runs an encoder built for patches over the
whole grid at once, giving a feature map ``[batch, rows, cols, D]``. :func:`per_patch_normalized`
turns a BatchNorm encoder into one that normalises each patch on its own (CPC v2).
"""

import keras
import tensorflow as tf


def _pair(value, name, fix):
    """``value`` as a pair of positive ints (an int means the same for height and width)."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        valid = len(pair) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair
        )
    except TypeError:
        valid = False
    if not valid:
        raise ValueError(
            f"`{name}` must be a positive int or a pair of positive ints (height, width); "
            f"received {value!r}. Fix: {fix}."
        )
    return tuple(int(v) for v in pair)


def grid_geometry(image_size, patch_size, stride, grid_size=None):
    """Where a patch grid lies in an image.

    Args:
        image_size: ``(height, width)`` of the images.
        patch_size: ``(height, width)`` of one patch.
        stride: ``(height, width)`` distance between the tops / lefts of neighbouring patches.
        grid_size: ``(rows, cols)``, or ``None`` for as many patches as fit.

    Returns:
        ``((rows, cols), (top, left))``: the grid size and the pixel position of the top-left
        patch. A grid that does not cover the whole image is centred (the spare pixels are split
        between the two sides, the smaller half on the top / left).

    Raises:
        ValueError: when a patch or the grid does not fit in the image.
    """
    grid, origin = [], []
    for axis, name in enumerate(("height", "width")):
        size, patch, step = image_size[axis], patch_size[axis], stride[axis]
        if patch > size:
            raise ValueError(
                f"Patches of {name} {patch} do not fit in images of {name} {size} (received "
                f"patch_size={tuple(patch_size)} for images {tuple(image_size)}); expected "
                f"patches no larger than the image. Fix: use a patch size of at most {size}."
            )
        fitting = (size - patch) // step + 1
        count = fitting if grid_size is None else grid_size[axis]
        if count > fitting:
            raise ValueError(
                f"A grid of {count} patches along the {name} needs {(count - 1) * step + patch} "
                f"pixels (patch {patch}, stride {step}) but the images have {size}; received "
                f"grid_size={tuple(grid_size)}. Expected at most {fitting} patches along the "
                f"{name}. Fix: lower grid_size, the patch size or the stride."
            )
        spare = size - ((count - 1) * step + patch)
        grid.append(count)
        origin.append(spare // 2)
    return tuple(grid), tuple(origin)


def per_patch_normalized(encoder):
    """A structural copy of ``encoder`` with every BatchNormalization replaced by LayerNorm.

    CPC v2 (Hénaff et al. 2019, "Data-Efficient Image Recognition with Contrastive Predictive
    Coding", https://arxiv.org/abs/1905.09272, section 4.1) replaces batch normalisation in the
    patch encoder by layer normalisation: when all patches of a batch are normalised together,
    the batch statistics carry information from one patch to another (including the patches
    that are to be predicted), a shortcut around the context's receptive field. Each
    ``BatchNormalization`` becomes a :class:`PatchLayerNormalization` (each example normalised
    over its height, width and channels, Ba et al.'s layer normalisation) with the same epsilon,
    centring, scaling and dtype policy, and its ``gamma`` / ``beta`` copied (the moving
    statistics are dropped); all other layers and weights are copied. Each patch's features
    are then a function of that patch alone, in training and inference alike, and no weight
    depends on the spatial size, so the copy still runs on whole images
    (``keras.models.clone_model`` with new inputs; the statistics are then the image's).

    Normalising over the channels only, at each position, would also be per patch, but it
    makes every pixel's feature vector scale-free: after the first convolution of a flat
    region (``conv(a * 1) = a * w``) it erases the brightness ``a``. On the smooth images of
    ``tests/methods/test_cpc.py`` it learned much slower (24 epochs: loss 6.06 -> 5.45 against
    6.00 -> 4.66 with normalisation over the whole feature map, 6.44 -> 4.70 with BatchNorm).

    Args:
        encoder: a functional or Sequential ``keras.Model`` (nested ones are converted too).

    Returns:
        ``encoder`` itself when it holds no BatchNormalization, else the converted copy.

    Raises:
        ValueError: when the encoder cannot be copied layer by layer, or holds BatchNorm inside
            a layer that is not a functional/Sequential model (which cannot be rewritten).
    """
    if not any(_is_batch_norm(layer) for layer in _all_layers(encoder)):
        return encoder

    def convert(layer):
        if not _is_batch_norm(layer):
            return layer.__class__.from_config(layer.get_config())
        rank = getattr(layer.input_spec, "ndim", None)
        if layer.axis != -1 and (rank is None or layer.axis != rank - 1):
            raise ValueError(
                f"BatchNormalization layer {layer.name!r} normalises axis {layer.axis}; expected "
                "the channel axis (-1) to convert it to a per-patch LayerNormalization. Fix: "
                "build the encoder channels-last, or pass patch_normalization=None."
            )
        return PatchLayerNormalization(
            epsilon=layer.epsilon,
            center=layer.center,
            scale=layer.scale,
            dtype=layer.dtype_policy,
            name=f"{layer.name}_ln",
        )

    fix = (
        "Fix: build the encoder with layer normalisation yourself, or pass "
        "patch_normalization=None to keep BatchNorm."
    )
    try:
        copy = keras.models.clone_model(encoder, clone_function=convert, recursive=True)
    except (AttributeError, ValueError, TypeError, NotImplementedError) as error:
        raise ValueError(
            f"Could not copy the encoder {encoder.name!r} with its BatchNormalization layers "
            f"replaced by LayerNormalization: {error}. Expected a functional or Sequential "
            f"encoder. {fix}"
        ) from error
    left = [layer.name for layer in _all_layers(copy) if _is_batch_norm(layer)]
    sources, targets = _leaf_layers(encoder), _leaf_layers(copy)
    if left or len(sources) != len(targets):
        raise ValueError(
            f"The encoder {encoder.name!r} keeps BatchNormalization layers {left} inside layers "
            "that cannot be rewritten; expected BatchNorm only as a layer of a functional or "
            f"Sequential model. {fix}"
        )
    for source, target in zip(sources, targets):
        if _is_batch_norm(source):
            values = ([source.gamma] if source.scale else []) + (
                [source.beta] if source.center else []
            )
            target.set_weights([keras.ops.convert_to_numpy(v) for v in values])
        elif source.weights:
            target.set_weights(source.get_weights())
    return copy


@keras.saving.register_keras_serializable(package="keras_ssl")
class PatchLayerNormalization(keras.layers.Layer):
    """Layer normalisation (Ba et al. 2016, https://arxiv.org/abs/1607.06450) of each example
    on its own: ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the mean and variance
    over all of the example's units (height, width and channels of a feature map, the
    features of a vector) and one ``gamma`` / ``beta`` per channel, the parameters of the
    BatchNorm it replaces (:func:`per_patch_normalized`).

    No batch statistics: each example's output depends on that example alone, the same in
    training and inference, and the weights do not depend on the spatial size, so the layer
    runs on patches and on whole images. Statistics are computed in float32 under mixed
    precision. Takes and ignores BatchNorm's ``training`` and ``mask`` call arguments, so it
    can stand where a BatchNorm was called in a functional graph.

    Args:
        epsilon: added to the variance.
        center: learn ``beta``.
        scale: learn ``gamma``.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.center = center
        self.scale = scale

    def build(self, input_shape):
        channels = input_shape[-1]
        if len(input_shape) < 2 or channels is None:
            raise ValueError(
                f"PatchLayerNormalization takes [batch, ..., channels] with known channels; "
                f"received shape {tuple(input_shape)}. Fix: give the input a static last axis."
            )
        self.gamma = (
            self.add_weight(name="gamma", shape=(channels,), initializer="ones")
            if self.scale
            else None
        )
        self.beta = (
            self.add_weight(name="beta", shape=(channels,), initializer="zeros")
            if self.center
            else None
        )
        self.built = True

    def call(self, inputs, training=None, mask=None):
        del training, mask
        x = tf.cast(inputs, tf.float32)
        mean, variance = tf.nn.moments(x, axes=list(range(1, x.shape.rank)), keepdims=True)
        y = (x - mean) * tf.math.rsqrt(variance + self.epsilon)
        if self.scale:
            y = y * tf.cast(self.gamma, tf.float32)
        if self.center:
            y = y + tf.cast(self.beta, tf.float32)
        return tf.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }


def _is_batch_norm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def _all_layers(model):
    """Every layer inside ``model``, nested layers included."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def _leaf_layers(model):
    """The layers of a functional/Sequential model in order, nested models expanded."""
    leaves = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            leaves.extend(_leaf_layers(layer))
        else:
            leaves.append(layer)
    return leaves


@keras.saving.register_keras_serializable(package="keras_ssl")
class PatchGrid(keras.layers.Layer):
    """Cuts each image into a grid of (possibly overlapping) patches.

    Patch ``(r, c)`` of an image is ``image[top + r * sh : top + r * sh + ph,
    left + c * sw : left + c * sw + pw]`` for patch size ``(ph, pw)`` and stride ``(sh, sw)``;
    a stride smaller than the patch size makes neighbours overlap (CPC: 64-px patches, stride
    32, on 256-px images give a 7x7 grid). The patches are taken with two gathers of static
    indices, so the layer works for any dtype, under ``tf.data`` and under XLA.

    Args:
        patch_size: patch side, or ``(height, width)``.
        stride: step between neighbouring patches, or ``(height, width)``; ``None`` uses the
            patch size (no overlap).
        grid_size: ``(rows, cols)`` (or an int for a square grid) of patches to take, centred in
            the image; ``None`` takes as many as fit, starting from the centred position.
        **kwargs: passed to ``keras.layers.Layer``.

    Call arguments:
        images: ``[batch, height, width, channels]`` with static height and width.

    Returns:
        ``[batch, rows, cols, patch_height, patch_width, channels]``.
    """

    def __init__(self, patch_size, stride=None, grid_size=None, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = _pair(patch_size, "patch_size", "pass e.g. patch_size=8")
        self.stride = (
            self.patch_size
            if stride is None
            else _pair(stride, "stride", "pass e.g. stride=4 (half the patch size)")
        )
        self.grid_size = (
            None
            if grid_size is None
            else _pair(grid_size, "grid_size", "pass e.g. grid_size=6, or None for all that fit")
        )

    def geometry(self, input_shape):
        """``((rows, cols), (top, left))`` of the grid for images of ``input_shape``."""
        shape = tuple(input_shape)
        if len(shape) != 4 or shape[1] is None or shape[2] is None:
            raise ValueError(
                f"PatchGrid takes images [batch, height, width, channels] with known height and "
                f"width; received shape {shape}. Fix: batch the images and give them a fixed "
                "size (e.g. resize them first)."
            )
        return grid_geometry(shape[1:3], self.patch_size, self.stride, self.grid_size)

    def build(self, input_shape):
        self.geometry(input_shape)
        self.built = True

    def call(self, images):
        images = tf.convert_to_tensor(images)
        (rows, cols), (top, left) = self.geometry(images.shape)
        (patch_h, patch_w), (stride_h, stride_w) = self.patch_size, self.stride
        row_index = top + stride_h * tf.range(rows)[:, None] + tf.range(patch_h)[None, :]
        col_index = left + stride_w * tf.range(cols)[:, None] + tf.range(patch_w)[None, :]
        patches = tf.gather(images, row_index, axis=1)  # [b, rows, ph, W, C]
        patches = tf.gather(patches, col_index, axis=3)  # [b, rows, ph, cols, pw, C]
        return tf.transpose(patches, [0, 1, 3, 2, 4, 5])

    def compute_output_shape(self, input_shape):
        (rows, cols), _ = self.geometry(input_shape)
        return (input_shape[0], rows, cols, *self.patch_size, input_shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "patch_size": self.patch_size,
            "stride": self.stride,
            "grid_size": self.grid_size,
        }


@keras.saving.register_keras_serializable(package="keras_ssl")
class PatchGridEncoder(keras.layers.Layer):
    """Encodes every patch of a :class:`PatchGrid` with one encoder call: images -> feature grid.

    The patches of the whole batch are flattened into one batch ``[batch * rows * cols, ph, pw,
    C]``, encoded in a single call (so BatchNorm sees all patches together), and reshaped to a
    grid of patch features ``[batch, rows, cols, D]`` (CPC's ``z``).

    Args:
        encoder: a ``keras.Model`` from patches ``[n, ph, pw, C]`` to features ``[n, D]``; its
            input shape sets the patch size.
        stride: step between neighbouring patches (int or pair); ``None`` means no overlap.
        grid_size: ``(rows, cols)`` of patches, or ``None`` for as many as fit (see
            :class:`PatchGrid`).
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, encoder, stride=None, grid_size=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, keras.Model):
            raise ValueError(
                f"PatchGridEncoder `encoder` must be a keras.Model taking patches; received "
                f"{type(encoder).__name__}. Fix: build a patch encoder, e.g. "
                "keras_ssl.backbones.SmallResNet((8, 8, 1))."
            )
        input_shape, output_shape = tuple(encoder.input_shape), tuple(encoder.output_shape)
        if len(input_shape) != 4 or None in input_shape[1:] or len(output_shape) != 2:
            raise ValueError(
                f"PatchGridEncoder needs an encoder from patches [n, height, width, channels] of a "
                f"fixed size to features [n, D]; received input shape {input_shape} and output "
                f"shape {output_shape}. Fix: build it with input_shape=(patch height, patch "
                "width, channels) and global pooling."
            )
        self.encoder = encoder
        self.patch_grid = PatchGrid(input_shape[1:3], stride, grid_size, name="patch_grid")
        self.stride = self.patch_grid.stride
        self.grid_size = self.patch_grid.grid_size
        self.channels = input_shape[3]
        self.feature_dim = int(output_shape[-1])

    def _check_channels(self, input_shape):
        if len(input_shape) == 4 and input_shape[3] not in (None, self.channels):
            raise ValueError(
                f"PatchGridEncoder got images with {input_shape[3]} channels but its encoder "
                f"takes patches with {self.channels}; received shape {tuple(input_shape)}. Fix: "
                f"build the patch encoder for {input_shape[3]} channels."
            )

    def build(self, input_shape):
        self._check_channels(tuple(input_shape))
        self.patch_grid.build(input_shape)
        self.built = True

    def call(self, images, training=False):
        patches = self.patch_grid(images)
        shape = tf.shape(patches)
        rows, cols = patches.shape[1], patches.shape[2]
        flat = tf.reshape(patches, [-1, *patches.shape[3:]])
        features = self.encoder(flat, training=training)
        return tf.reshape(features, [shape[0], rows, cols, self.feature_dim])

    def compute_output_shape(self, input_shape):
        self._check_channels(tuple(input_shape))
        (rows, cols), _ = self.patch_grid.geometry(input_shape)
        return (input_shape[0], rows, cols, self.feature_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "stride": self.stride,
            "grid_size": self.grid_size,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


def grid_mean_encoder(patch_encoder, image_shape, stride=None, grid_size=None):
    """A whole-image encoder made of a patch encoder: the mean of its encodings over a grid.

    Images ``[batch, H, W, C]`` go through a :class:`PatchGridEncoder` (every patch of the grid
    encoded in one call: ``[batch, rows, cols, D]``) and a ``GlobalAveragePooling2D`` to
    ``[batch, D]``. The result is a functional ``keras.Model`` on whole images sharing the patch
    encoder's weights, so a method trained on patches (CPC) exports, probes and serves like any
    other.

    Args:
        patch_encoder: a ``keras.Model`` from patches ``[n, ph, pw, C]`` to ``[n, D]``.
        image_shape: ``(H, W, C)`` of the images.
        stride: step between neighbouring patches (int or pair); ``None`` means no overlap.
        grid_size: ``(rows, cols)`` of patches, or ``None`` for as many as fit.

    Returns:
        ``(grid_encoder, image_encoder)``: the :class:`PatchGridEncoder` and the model.
    """
    grid_encoder = PatchGridEncoder(patch_encoder, stride, grid_size, name="patch_grid_encoder")
    images = keras.Input(image_shape, name="images")
    pooled = keras.layers.GlobalAveragePooling2D(name="grid_mean")(grid_encoder(images))
    image_encoder = keras.Model(images, pooled, name=f"{patch_encoder.name}_patch_grid")
    return grid_encoder, image_encoder
