"""MAE's lightweight transformer decoder: encoded visible tokens -> pixels of every patch."""

import keras
import tensorflow as tf

from keras_ssl.backbones.vit import transformer_block
from keras_ssl.layers.patch_masking import restore_tokens, sincos_position_embedding
from keras_ssl.validation import check_int, check_positive_number


def check_decoder_arguments(dim, depth, num_heads, mlp_ratio, prefix=""):
    """Validates the size of an :class:`MAEDecoder`; returns ``(dim, depth, num_heads)`` as ints.

    Args:
        dim, depth, num_heads, mlp_ratio: as :class:`MAEDecoder` takes them.
        prefix: put before the names in the errors (``"decoder_"`` for MAE's arguments).

    Raises:
        ValueError: unless ``dim``, ``depth`` and ``num_heads`` are integers >= 1 with ``dim``
            a multiple of 4 (2-D sine-cosine positions) and of ``num_heads``, and ``mlp_ratio``
            is a positive number.
    """
    fix = "use the paper's decoder (512 wide, 8 blocks, 16 heads) or a smaller one."
    dim = check_int(dim, f"{prefix}dim", fix=fix)
    depth = check_int(depth, f"{prefix}depth", fix=fix)
    num_heads = check_int(num_heads, f"{prefix}num_heads", fix=fix)
    if dim % 4 or dim % num_heads:
        raise ValueError(
            f"`{prefix}dim` must be a multiple of 4 (2-D sine-cosine positions) and of "
            f"`{prefix}num_heads`; received {prefix}dim={dim}, {prefix}num_heads={num_heads}. "
            "Fix: e.g. 512 with 16 heads (the paper) or 64 with 4."
        )
    check_positive_number(mlp_ratio, f"{prefix}mlp_ratio", fix="pass 4.0 (MAE).")
    return dim, depth, num_heads


@keras.saving.register_keras_serializable(package="keras_ssl")
class MAEDecoder(keras.layers.Layer):
    """MAE's decoder: encoded visible tokens -> predicted pixels of every patch.

    The encoded tokens (class token first) are embedded to ``dim`` by a linear layer; a shared
    learned mask token fills the masked positions (``layers.restore_tokens``); fixed 2-D
    sine-cosine position embeddings are added (``layers.sincos_position_embedding``, zeros for
    the class token); ``depth`` pre-norm transformer blocks, a LayerNorm and a linear layer map
    each token to its patch's ``patch_dim`` pixels. Returns ``[batch, L, patch_dim]`` float32,
    the class token dropped. Build it with the encoded tokens' shape ``(None, 1 + k, D)``.

    Args:
        grid_size: ``(rows, columns)`` of the patch grid (``L = rows * columns``).
        patch_dim: pixels per patch, ``p * p * C``.
        dim: decoder width (MAE: 512).
        depth: transformer blocks (MAE: 8).
        num_heads: attention heads, dividing ``dim`` (MAE: 16).
        mlp_ratio: MLP width of each block as a multiple of ``dim`` (MAE: 4).
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(
        self, grid_size, patch_dim, dim=512, depth=8, num_heads=16, mlp_ratio=4.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.grid_size = tuple(int(g) for g in grid_size)
        self.patch_dim = int(patch_dim)
        self.dim = int(dim)
        self.depth = int(depth)
        self.num_heads = int(num_heads)
        self.mlp_ratio = float(mlp_ratio)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.positions = sincos_position_embedding(self.dim, self.grid_size)[None]
        self.embedding = keras.layers.Dense(self.dim, name="embedding")
        tokens = keras.Input(shape=(1 + self.num_patches, self.dim), name="tokens")
        x = tokens
        for index in range(self.depth):
            x = transformer_block(
                x, self.dim, self.num_heads, self.mlp_ratio, 0.0, f"block{index + 1}"
            )
        x = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
        pixels = keras.layers.Dense(self.patch_dim, name="prediction")(x)
        self.body = keras.Model(tokens, pixels, name="body")

    def build(self, input_shape):
        self.embedding.build(input_shape)
        self.mask_token = self.add_weight(
            shape=(1, 1, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="mask_token",
        )

    def call(self, encoded, ids_restore, training=False):
        x = self.embedding(encoded)
        patches = restore_tokens(x[:, 1:], self.mask_token, ids_restore)
        x = tf.concat([x[:, :1], patches], axis=1) + tf.cast(self.positions, x.dtype)
        return tf.cast(self.body(x, training=training)[:, 1:], tf.float32)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_patches, self.patch_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "grid_size": self.grid_size,
            "patch_dim": self.patch_dim,
            "dim": self.dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
        }
