"""Overlapping patch grids: cut images into patches, and encode every patch in one batched call.

CPC (van den Oord et al. 2018, https://arxiv.org/abs/1807.03748) cuts a 256-px image into a 7x7
grid of 64-px patches with a 32-px overlap (stride 32). :class:`PatchGrid` does the cutting for
any patch size and stride; :class:`PatchGridEncoder` runs an encoder built for patches over the
whole grid at once, giving a feature map ``[batch, rows, cols, D]``.
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
