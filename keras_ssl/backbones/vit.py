"""Vision Transformers (Dosovitskiy et al. 2021, arXiv:2010.11929) as SSL encoders.

The architecture is the one DINO trains (Caron et al. 2021, arXiv:2104.14294, which uses DeiT's
sizes, Touvron et al. 2021, arXiv:2012.12877): non-overlapping ``patch_size`` patches embedded by
a strided convolution, a learned class token, learned position embeddings, pre-norm transformer
blocks (``x + MHA(LN(x))``, then ``x + MLP(LN(x))`` with a GELU MLP of ``mlp_ratio * dim``) and
a final LayerNorm (epsilon 1e-6). The encoder's output is the class token after the final
LayerNorm, ``[batch, dim]``.

Like every keras_ssl backbone the result is a functional ``keras.Model`` with a fixed input size
``input_shape`` (the size its position embeddings were made for). Its layers also run on other
sizes that are multiples of the patch size: the position embeddings are then resampled
bicubically to the new patch grid, as DINO does for its 96-pixel local crops. ``SSLMethod``s
reach that path through the model's graph (see ``keras_ssl.methods.multicrop_views``).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.layers.drop_path import DropPath

_CUBIC_A = -0.75  # PyTorch's bicubic kernel coefficient (DINO resizes with PyTorch).


def _check_input_shape(input_shape):
    shape = tuple(input_shape) if input_shape is not None else None
    if (
        shape is None
        or len(shape) != 3
        or any(d is None or isinstance(d, bool) or int(d) < 1 for d in shape)
    ):
        raise ValueError(
            f"`input_shape` must be (height, width, channels) with positive sizes; received "
            f"{input_shape!r}. Fix: pass e.g. input_shape=(28, 28, 1) with patch_size=4, or "
            "(224, 224, 3) with patch_size=16."
        )
    return tuple(int(d) for d in shape)


def _cubic_weight(distance):
    """Keys' cubic convolution kernel with ``a = -0.75`` (PyTorch's bicubic)."""
    x = abs(distance)
    if x <= 1.0:
        return (_CUBIC_A + 2.0) * x**3 - (_CUBIC_A + 3.0) * x**2 + 1.0
    if x < 2.0:
        return _CUBIC_A * x**3 - 5.0 * _CUBIC_A * x**2 + 8.0 * _CUBIC_A * x - 4.0 * _CUBIC_A
    return 0.0


def bicubic_resize_matrix(in_size, out_size):
    """The ``[out_size, in_size]`` matrix of a 1-D bicubic resize.

    Matches ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False, size=...)``
    along one axis: output ``i`` samples the input at ``(i + 0.5) * in_size / out_size - 0.5``
    with the ``a = -0.75`` cubic kernel on the 4 nearest inputs; taps outside the input are
    clamped to the border (so every row sums to 1). Built from static sizes, so resizing is two
    matrix products: exact under XLA (TensorFlow's ``ResizeBicubic`` has no XLA kernel).

    Args:
        in_size: input length (positive int).
        out_size: output length (positive int).

    Returns:
        ``float32`` NumPy array ``[out_size, in_size]``.
    """
    matrix = np.zeros((out_size, in_size), np.float64)
    scale = in_size / out_size
    for row in range(out_size):
        source = (row + 0.5) * scale - 0.5
        base = math.floor(source)
        fraction = source - base
        for offset in (-1, 0, 1, 2):
            index = min(max(base + offset, 0), in_size - 1)
            matrix[row, index] += _cubic_weight(offset - fraction)
    return matrix.astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_ssl")
class PatchEmbedding(keras.layers.Layer):
    """Patches -> tokens: strided-conv patch embedding, class token and position embeddings.

    Maps images ``[batch, H, W, C]`` to tokens ``[batch, 1 + (H / p) * (W / p), dim]``: the
    learned class token first, then one token per ``p x p`` patch (row-major), each plus its
    learned position embedding. The position embeddings are learned for the patch grid of the
    build shape; for other image sizes (multiples of ``p``) the patch part is resampled with
    :func:`bicubic_resize_matrix` along both axes (DINO's ``interpolate_pos_encoding``) and the
    class token's embedding is kept.

    Args:
        patch_size: patch side ``p`` in pixels.
        dim: token width.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, patch_size, dim, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.dim = int(dim)
        self.projection = keras.layers.Conv2D(
            self.dim, self.patch_size, strides=self.patch_size, padding="valid", name="projection"
        )

    def _grid(self, height, width):
        p = self.patch_size
        if height is None or width is None or height % p or width % p:
            raise ValueError(
                f"PatchEmbedding needs images whose static height and width are multiples of "
                f"the patch size {p}; received images of size ({height}, {width}). Fix: crop or "
                f"resize to a multiple of {p} (e.g. {max(p, (height or p) // p * p)}), or choose "
                "a patch size that divides the image size."
            )
        return height // p, width // p

    def build(self, input_shape):
        self.grid_size = self._grid(input_shape[1], input_shape[2])
        self.projection.build(input_shape)
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.class_token = self.add_weight(
            shape=(1, 1, self.dim), initializer=init, name="class_token"
        )
        tokens = 1 + self.grid_size[0] * self.grid_size[1]
        self.position_embedding = self.add_weight(
            shape=(1, tokens, self.dim), initializer=init, name="position_embedding"
        )

    def position_embeddings(self, grid_size):
        """Position embeddings ``[1, 1 + gh * gw, dim]`` for a patch grid ``(gh, gw)``."""
        embedding = tf.convert_to_tensor(self.position_embedding)
        if tuple(grid_size) == tuple(self.grid_size):
            return embedding
        rows = tf.constant(bicubic_resize_matrix(self.grid_size[0], grid_size[0]))
        columns = tf.constant(bicubic_resize_matrix(self.grid_size[1], grid_size[1]))
        patches = tf.reshape(embedding[:, 1:], [*self.grid_size, self.dim])
        rows, columns = tf.cast(rows, patches.dtype), tf.cast(columns, patches.dtype)
        resized = tf.einsum("ih,jw,hwd->ijd", rows, columns, patches)
        resized = tf.reshape(resized, [1, grid_size[0] * grid_size[1], self.dim])
        return tf.concat([embedding[:, :1], resized], axis=1)

    def call(self, images):
        grid = self._grid(images.shape[1], images.shape[2])
        patches = self.projection(images)
        tokens = tf.reshape(patches, [-1, grid[0] * grid[1], self.dim])
        class_token = tf.cast(self.class_token, tokens.dtype)
        class_tokens = tf.tile(class_token, [tf.shape(tokens)[0], 1, 1])
        tokens = tf.concat([class_tokens, tokens], axis=1)
        return tokens + tf.cast(self.position_embeddings(grid), tokens.dtype)

    def patch_tokens(self, images):
        """The patch tokens of ``images`` plus their position embeddings, without the class
        token: ``[batch, gh * gw, dim]``, row-major (``call``'s tokens ``[:, 1:]``).

        Masked image models (``keras_ssl.methods.MAE``) embed every patch, keep a subset and
        prepend :meth:`class_token_embedding`; the layer must be built (it is inside a ViT).
        """
        grid = self._grid(images.shape[1], images.shape[2])
        patches = self.projection(images)
        tokens = tf.reshape(patches, [-1, grid[0] * grid[1], self.dim])
        return tokens + tf.cast(self.position_embeddings(grid)[:, 1:], tokens.dtype)

    def class_token_embedding(self, dtype="float32"):
        """The class token plus its position embedding, ``[1, 1, dim]`` (``call``'s token 0)."""
        token = tf.cast(self.class_token, dtype)
        return token + tf.cast(tf.convert_to_tensor(self.position_embedding)[:, :1], dtype)

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            return (input_shape[0], None, self.dim)
        grid = self._grid(height, width)
        return (input_shape[0], 1 + grid[0] * grid[1], self.dim)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "dim": self.dim}


@keras.saving.register_keras_serializable(package="keras_ssl")
class ClassToken(keras.layers.Layer):
    """Takes the class token: ``[batch, tokens, dim]`` -> ``[batch, dim]`` (token 0)."""

    def call(self, tokens):
        return tokens[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


def _transformer_block(x, dim, num_heads, mlp_ratio, drop_path, name):
    dense_init = keras.initializers.TruncatedNormal(stddev=0.02)
    y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(x)
    y = keras.layers.MultiHeadAttention(
        num_heads, dim // num_heads, kernel_initializer=dense_init, name=f"{name}_attention"
    )(y, y)
    if drop_path:
        y = DropPath(drop_path, name=f"{name}_drop_path1")(y)
    x = keras.layers.Add(name=f"{name}_add1")([x, y])
    y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(x)
    y = keras.layers.Dense(
        int(dim * mlp_ratio),
        activation="gelu",
        kernel_initializer=dense_init,
        name=f"{name}_mlp1",
    )(y)
    y = keras.layers.Dense(dim, kernel_initializer=dense_init, name=f"{name}_mlp2")(y)
    if drop_path:
        y = DropPath(drop_path, name=f"{name}_drop_path2")(y)
    return keras.layers.Add(name=f"{name}_add2")([x, y])


def transformer_block(x, dim, num_heads, mlp_ratio=4.0, drop_path=0.0, name="block"):
    """One pre-norm transformer block of :func:`ViT` applied to the symbolic tokens ``x``:
    ``x + MHA(LN(x))``, then ``x + MLP(LN(x))`` (GELU MLP of ``mlp_ratio * dim``, LayerNorm
    epsilon 1e-6, truncated-normal(0.02) kernels), with stochastic depth ``drop_path``.

    For building other transformers from the same blocks (MAE's decoder); returns the block's
    output tensor.
    """
    return _transformer_block(x, dim, num_heads, mlp_ratio, float(drop_path), name)


class ViTParts:
    """The pieces of a :func:`ViT` encoder, to run it on a subset of its tokens.

    MAE (He et al. 2021, arXiv:2111.06377) encodes only the visible patches: it embeds every
    patch (:meth:`embed`), keeps some tokens, prepends the class token (:meth:`class_tokens`)
    and runs the transformer blocks and the final LayerNorm on that shorter sequence
    (:meth:`encode`). The parts share the encoder's layers and weights; nothing is copied, and
    ``encoder(images)`` is unchanged (it equals ``encode(concat(class_tokens, embed))[:, 0]``).

    Args:
        encoder: a model built by :func:`ViT` (or loaded from one), whose layers are named
            ``patch_embedding``, ``class_token`` and ``norm``.

    Raises:
        ValueError: if ``encoder`` is not such a ViT.
    """

    def __init__(self, encoder):
        names = [layer.name for layer in getattr(encoder, "layers", [])]
        embedding = encoder.get_layer("patch_embedding") if "patch_embedding" in names else None
        if (
            not isinstance(embedding, PatchEmbedding)
            or "class_token" not in names
            or "norm" not in names
        ):
            raise ValueError(
                f"Expected a keras_ssl ViT (backbones.ViT, ViTTiny, ViTSmall) with layers "
                f"'patch_embedding', 'class_token' and 'norm'; received "
                f"{getattr(encoder, 'name', type(encoder).__name__)!r}. Fix: build the encoder "
                "with keras_ssl.backbones.ViT(input_shape, patch_size=..., ...)."
            )
        #: The ``PatchEmbedding`` layer.
        self.patch_embedding = embedding
        #: The final ``LayerNormalization`` (per token, so it applies to any sequence).
        self.norm = encoder.get_layer("norm")
        #: A model sharing the encoder's transformer blocks: tokens -> tokens.
        self.blocks = keras.Model(
            embedding.output, encoder.get_layer("class_token").input, name=f"{encoder.name}_blocks"
        )
        self.grid_size = tuple(embedding.grid_size)
        self.patch_size = embedding.patch_size
        self.dim = embedding.dim

    def embed(self, images):
        """Patch tokens with position embeddings ``[batch, gh * gw, dim]`` (no class token)."""
        return self.patch_embedding.patch_tokens(images)

    def class_tokens(self, batch, dtype="float32"):
        """The class token with its position embedding, tiled to ``[batch, 1, dim]``."""
        token = self.patch_embedding.class_token_embedding(dtype)
        return tf.tile(token, tf.stack([batch, 1, 1]))

    def encode(self, tokens, training=False):
        """The transformer blocks and the final LayerNorm on ``tokens`` ``[batch, n, dim]``
        of any length ``n``; returns every normalised token ``[batch, n, dim]``."""
        # The graph's call skips the input-shape check (n differs from the full sequence);
        # every layer in it works on any number of tokens.
        return self.norm(self.blocks.call(tokens, training=training))


def ViT(
    input_shape,
    patch_size=16,
    dim=192,
    depth=12,
    num_heads=3,
    mlp_ratio=4.0,
    drop_path_rate=0.0,
    name="vit",
):
    """Builds a Vision Transformer encoder as a functional ``keras.Model``.

    Args:
        input_shape: ``(height, width, channels)`` of the float ``[0, 1]`` input images; height
            and width must be multiples of ``patch_size``.
        patch_size: patch side in pixels (16 for 224-pixel images; 4 suits 28-32 px images,
            giving a 7x7 or 8x8 grid).
        dim: token width (embedding dimension).
        depth: number of transformer blocks.
        num_heads: attention heads; must divide ``dim``.
        mlp_ratio: hidden width of each block's MLP as a multiple of ``dim``.
        drop_path_rate: stochastic-depth rate of the last block, rising linearly from 0 over
            the blocks (DINO trains ViT-S with 0.1).
        name: model name.

    Returns:
        A ``keras.Model`` from images ``[batch, H, W, C]`` to the final class token
        ``[batch, dim]``.
    """
    input_shape = _check_input_shape(input_shape)
    for arg, value in (("patch_size", patch_size), ("dim", dim), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{arg}` must be a positive int; received {value!r}. Fix: e.g. patch_size=4, "
                "dim=192, depth=12 (ViT-Tiny)."
            )
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"`num_heads` must be a positive int; received {num_heads!r}.")
    if dim % num_heads:
        raise ValueError(
            f"`dim` must be a multiple of `num_heads`; received dim={dim}, num_heads={num_heads}."
            " Fix: e.g. dim=192 with 3 heads (ViT-Tiny) or dim=384 with 6 heads (ViT-S)."
        )
    if input_shape[0] % patch_size or input_shape[1] % patch_size:
        raise ValueError(
            f"The image size must be a multiple of `patch_size`; received input_shape="
            f"{input_shape} with patch_size={patch_size}. Fix: use a patch size that divides "
            "the image size (4 or 7 for 28 px, 4 or 8 for 32 px, 16 for 224 px)."
        )
    if isinstance(drop_path_rate, bool) or not 0 <= drop_path_rate < 1:
        raise ValueError(f"`drop_path_rate` must be in [0, 1); received {drop_path_rate!r}.")
    inputs = keras.Input(shape=input_shape, name="images")
    x = PatchEmbedding(patch_size, dim, name="patch_embedding")(inputs)
    rates = np.linspace(0.0, drop_path_rate, depth) if depth > 1 else [drop_path_rate]
    for index in range(depth):
        x = _transformer_block(
            x, dim, num_heads, mlp_ratio, float(rates[index]), f"block{index + 1}"
        )
    x = ClassToken(name="class_token")(x)
    # LayerNorm acts per token, so normalising only the class token equals DINO's norm-then-take.
    features = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    return keras.Model(inputs, features, name=name)


def ViTTiny(input_shape, patch_size=16, dim=192, depth=12, num_heads=3, **kwargs):
    """ViT-Tiny / DeiT-Ti (dim 192, 12 blocks, 3 heads; 5.5M parameters at 224 px, patch 16).

    See :func:`ViT`; ``dim``, ``depth`` and ``num_heads`` can be shrunk for quick experiments.
    """
    kwargs.setdefault("name", "vit_tiny")
    return ViT(input_shape, patch_size, dim, depth, num_heads, **kwargs)


def ViTSmall(input_shape, patch_size=16, dim=384, depth=12, num_heads=6, **kwargs):
    """ViT-S / DeiT-S (dim 384, 12 blocks, 6 heads; 21.7M parameters at 224 px, patch 16).

    DINO's main ViT (ViT-S/16 and ViT-S/8). See :func:`ViT`.
    """
    kwargs.setdefault("name", "vit_small")
    return ViT(input_shape, patch_size, dim, depth, num_heads, **kwargs)
