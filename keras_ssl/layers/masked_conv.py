"""Masked (causal, top-to-bottom) 2-D convolution for autoregressive context networks, and the
residual context network of CPC built from it."""

import keras
import tensorflow as tf
from keras import ops


def _odd_pair(value):
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        valid = len(pair) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 and v % 2 == 1 for v in pair
        )
    except TypeError:
        valid = False
    if not valid:
        raise ValueError(
            f"`kernel_size` must be an odd positive int or a pair of them (height, width), so "
            f"that the kernel has a centre row; received {value!r}. Fix: pass e.g. "
            "kernel_size=3."
        )
    return tuple(int(v) for v in pair)


@keras.saving.register_keras_serializable(package="keras_ssl")
class MaskedConv2D(keras.layers.Layer):
    """A ``kh x kw`` convolution whose kernel rows below the centre are masked out.

    Output row ``r`` depends only on input rows ``<= r`` (``include_center_row=True``, PixelCNN's
    mask "B" applied to whole rows) or ``< r`` (``False``, mask "A"), in every column within the
    kernel's width: no information flows upward from lower rows. This is the causal,
    top-to-bottom convolution of CPC's PixelCNN-style context network (van den Oord et al. 2018,
    https://arxiv.org/abs/1807.03748; van den Oord et al. 2016, https://arxiv.org/abs/1601.06759).

    Only the unmasked rows are stored (the kernel variable is ``[kh // 2 + 1, kw, in, filters]``,
    or ``[kh // 2, ...]`` without the centre row): the layer computes exactly a ``"same"``-padded
    stride-1 convolution with the full ``kh x kw`` kernel whose lower rows are zero, without
    storing or multiplying the zeros. Stacking ``n`` layers lets row ``r`` see ``n * (kh // 2)``
    rows above it.

    Args:
        filters: number of output channels.
        kernel_size: odd kernel size ``kh`` (and ``kw``), or a pair ``(kh, kw)`` of odd sizes.
        include_center_row: whether output row ``r`` may see input row ``r``.
        use_bias: add a learned bias.
        kernel_initializer: initializer of the stored kernel rows.
        bias_initializer: initializer of the bias.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        include_center_row=True,
        use_bias=True,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(
                f"`filters` must be a positive int; received {filters!r}. Fix: pass e.g. "
                "filters=64."
            )
        self.filters = filters
        self.kernel_size = _odd_pair(kernel_size)
        if not include_center_row and self.kernel_size[0] < 3:
            raise ValueError(
                f"A masked convolution that excludes the centre row needs a kernel at least 3 "
                f"rows tall (it sees only the rows above); received kernel_size="
                f"{self.kernel_size} with include_center_row=False. Fix: use kernel_size=3 or "
                "include_center_row=True."
            )
        self.include_center_row = bool(include_center_row)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    @property
    def visible_rows(self):
        """Number of kernel rows stored (the rows at and above the centre, or above it)."""
        return self.kernel_size[0] // 2 + (1 if self.include_center_row else 0)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"MaskedConv2D takes feature maps [batch, rows, cols, channels] with known "
                f"channels; received shape {tuple(input_shape)}. Fix: reshape the input to "
                "rank 4."
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.visible_rows, self.kernel_size[1], input_shape[-1], self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
            if self.use_bias
            else None
        )
        self.built = True

    def call(self, inputs):
        half_h, half_w = self.kernel_size[0] // 2, self.kernel_size[1] // 2
        # Pad kh // 2 rows on top only: the kernel's last stored row lines up with row r (with
        # the centre row) or with row r - 1 (without it; the extra last output row is dropped).
        padded = ops.pad(inputs, [[0, 0], [half_h, 0], [half_w, half_w], [0, 0]])
        outputs = ops.conv(padded, self.kernel, strides=1, padding="valid")
        if not self.include_center_row:
            outputs = outputs[:, :-1]
        if self.bias is not None:
            outputs = outputs + self.bias
        return outputs

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "include_center_row": self.include_center_row,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


def causal_context_layers(filters, blocks, kernel_size=3, input_dim=None, prefix="context"):
    """The layers of :func:`causal_context`: an input projection, masked convolutions, mixers.

    Args:
        filters: channels of the context (kept by every block).
        blocks: number of residual blocks.
        kernel_size: odd kernel size of the masked convolutions (see :class:`MaskedConv2D`).
        input_dim: channels of the input grid; when given and not ``filters``, a 1x1
            convolution projects the input to ``filters`` channels first.
        prefix: name prefix: layers ``{prefix}_projection``, ``{prefix}_masked_conv_{i}`` and
            ``{prefix}_mix_{i}``.

    Returns:
        ``(projection, masked_convs, mixers)``: a ``Conv2D`` or ``None``, and two lists of
        ``blocks`` layers.
    """
    projection = (
        keras.layers.Conv2D(filters, 1, name=f"{prefix}_projection")
        if input_dim is not None and input_dim != filters
        else None
    )
    masked_convs = [
        MaskedConv2D(filters, kernel_size, name=f"{prefix}_masked_conv_{i}") for i in range(blocks)
    ]
    mixers = [keras.layers.Conv2D(filters, 1, name=f"{prefix}_mix_{i}") for i in range(blocks)]
    return projection, masked_convs, mixers


def causal_context(inputs, masked_convs, mixers, projection=None):
    """A residual stack of masked convolutions: CPC's PixelCNN-style context network ``g_ar``.

    The input grid, projected by ``projection`` when given, goes through the blocks: block
    ``i`` adds ``mixers[i](relu(masked_convs[i](relu(c))))`` to its input ``c`` (ReLU, masked
    convolution, ReLU, 1x1 convolution). With every masked convolution seeing its own row
    (``include_center_row=True``), row ``r`` of the output depends only on rows ``<= r`` of
    ``inputs``; each block lets it see ``kernel_size // 2`` more rows above.

    Args:
        inputs: ``[batch, rows, cols, channels]`` feature grid.
        masked_convs: the blocks' :class:`MaskedConv2D` layers (:func:`causal_context_layers`).
        mixers: the blocks' 1x1 convolutions, one per masked convolution.
        projection: a 1x1 convolution applied to ``inputs`` first, or ``None``.

    Returns:
        ``[batch, rows, cols, filters]``.
    """
    context = inputs if projection is None else projection(inputs)
    for masked, mixer in zip(masked_convs, mixers):
        context = context + mixer(tf.nn.relu(masked(tf.nn.relu(context))))
    return context
