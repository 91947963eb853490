"""MAE: a ViT encodes a random 25% of the patches; a light decoder predicts the rest's pixels."""

import keras
import tensorflow as tf

from keras_ssl.backbones.vit import ViTParts, transformer_block
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.layers.patch_masking import (
    num_visible_patches,
    patchify,
    random_masking,
    restore_tokens,
    sincos_position_embedding,
    take_tokens,
    unpatchify,
)
from keras_ssl.losses.masked_patches import masked_patch_loss
from keras_ssl.methods.base import SSLMethod, check_single_view
from keras_ssl.methods.step_random import global_batch_noise, new_seed, step_seed
from keras_ssl.validation import check_int, check_positive_number


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


@keras.saving.register_keras_serializable(package="keras_ssl")
class MAE(SSLMethod):
    """MAE (He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners",
    https://arxiv.org/abs/2111.06377).

    Each image is cut into the ViT's ``L`` patches; a random ``mask_ratio`` (75%) of them is
    masked per image: the patches are shuffled by the ``argsort`` of uniform noise and the first
    ``k = int(L * (1 - mask_ratio))`` stay visible (``layers.random_masking``; ``k`` is the
    same for every image, so shapes are static and the step compiles with XLA). The encoder
    (a keras_ssl ViT, ``backbones.ViT``) runs on the visible patches only: their embeddings with
    position embeddings, plus its class token, through its transformer blocks and final
    LayerNorm (``backbones.vit.ViTParts``). A lightweight :class:`MAEDecoder` adds a shared mask
    token at the masked positions and fixed 2-D sine-cosine position embeddings and predicts
    every patch's pixels. The loss is the MSE on the MASKED patches only, against per-patch
    normalised pixels (``norm_pix_loss``; ``losses.masked_patch_loss``)::

        t = (x - mean(x)) / sqrt(var(x) + 1e-6)  per patch,
        loss = mean_b [ sum_l m_bl * mean_j (y_blj - t_blj)^2 / sum_l m_bl ]

    with ``m_bl = 1`` for masked patches. ``model.encoder`` (what ``model(images)``, the probes
    and ``keras_ssl.export`` use) is the full ViT on all patches without masking (its class token
    after the final LayerNorm); the online probe, when asked for, is fed that representation
    (an extra forward pass of the whole image, without gradients).

    Distribution: the mask noise is drawn for the WHOLE global batch from a stateless seed (the
    variable ``mask_seed`` folded with ``optimizer.iterations``; fixed in evaluation) and each
    replica keeps its own rows (``step_random.global_batch_noise``), so global image ``i`` gets
    the same mask however the batch is split. The loss is a mean of per-example terms (every
    image has the same number of masked patches, so it also equals MAE's batch-level
    ``sum(m * e) / sum(m)``), and the ViT has no batch statistics: N replicas give the loss and
    gradients of one device on the global batch.

    Args:
        encoder: a keras_ssl ViT (``backbones.ViT`` / ``ViTTiny`` / ``ViTSmall``; paper:
            ViT-B/16, ViT-L/16, ViT-H/14).
        augmenter: view generator; default ``presets.crop_flip`` with crop area 0.2-1 and a
            horizontal flip (the paper's only augmentation).
        mask_ratio: share of patches masked per image (paper: 0.75).
        decoder_dim: decoder width (paper: 512).
        decoder_depth: decoder transformer blocks (paper: 8).
        decoder_num_heads: decoder attention heads (paper: 16).
        decoder_mlp_ratio: decoder MLP width over ``decoder_dim`` (paper: 4).
        norm_pix_loss: predict per-patch normalised pixels (paper: True, its best setting).
        seed: int seed of the masks (``None``: random); kept in the variable ``mask_seed``.
        synchronized_bn: kept for a uniform interface (a ViT has no BatchNorm).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    default_preset = "crop_flip"
    default_preset_kwargs = {"crop_scale": (0.2, 1.0)}

    def __init__(
        self,
        encoder,
        augmenter=None,
        mask_ratio=0.75,
        decoder_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
        decoder_mlp_ratio=4.0,
        norm_pix_loss=True,
        seed=None,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(
            encoder,
            augmenter=augmenter,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        vit = ViTParts(encoder)
        object.__setattr__(self, "_vit", vit)  # views of the encoder's layers: not tracked
        self.patch_size = vit.patch_size
        self.num_patches = vit.grid_size[0] * vit.grid_size[1]
        self.num_visible = num_visible_patches(self.num_patches, mask_ratio)
        fix = "use the paper's decoder (512 wide, 8 blocks, 16 heads) or a smaller one."
        decoder_dim = check_int(decoder_dim, "decoder_dim", fix=fix)
        decoder_depth = check_int(decoder_depth, "decoder_depth", fix=fix)
        decoder_num_heads = check_int(decoder_num_heads, "decoder_num_heads", fix=fix)
        if decoder_dim % 4 or decoder_dim % decoder_num_heads:
            raise ValueError(
                f"`decoder_dim` must be a multiple of 4 (2-D sine-cosine positions) and of "
                f"`decoder_num_heads`; received decoder_dim={decoder_dim}, decoder_num_heads="
                f"{decoder_num_heads}. Fix: e.g. 512 with 16 heads (the paper) or 64 with 4."
            )
        check_positive_number(decoder_mlp_ratio, "decoder_mlp_ratio", fix="pass 4.0 (MAE).")
        if not isinstance(norm_pix_loss, bool):
            raise ValueError(
                f"`norm_pix_loss` must be True or False; received {norm_pix_loss!r}. Fix: keep "
                "True (the paper's normalised pixel targets) or pass False for raw pixels."
            )
        self.patch_dim = self.patch_size**2 * self.image_shape[-1]
        if norm_pix_loss and self.patch_dim < 2:
            raise ValueError(
                f"`norm_pix_loss=True` normalises each patch's pixels, which needs at least 2 "
                f"values per patch; received 1x1 patches of {self.image_shape[-1]} channel. Fix: "
                "use a larger patch_size in the ViT or norm_pix_loss=False."
            )
        self.mask_ratio = mask_ratio
        self.decoder_dim = decoder_dim
        self.decoder_depth = decoder_depth
        self.decoder_num_heads = decoder_num_heads
        self.decoder_mlp_ratio = decoder_mlp_ratio
        self.norm_pix_loss = norm_pix_loss
        self.seed = seed
        self.decoder = MAEDecoder(
            vit.grid_size,
            self.patch_dim,
            dim=decoder_dim,
            depth=decoder_depth,
            num_heads=decoder_num_heads,
            mlp_ratio=decoder_mlp_ratio,
            name="decoder",
        )
        self.mask_seed = self.add_weight(
            shape=(2,),
            dtype="int32",
            initializer=keras.initializers.Constant(new_seed(seed)),
            trainable=False,
            name="mask_seed",
        )

    def build_heads(self, feature_shape):
        self.decoder.build((None, 1 + self.num_visible, self._vit.dim))

    # ----------------------------------------------------------------------------- steps
    def make_masks(self, local_batch, seed):
        """``(ids_keep, mask, ids_restore)`` of this replica's images (see
        ``layers.random_masking``), from noise drawn for the global batch from ``seed``."""
        noise = global_batch_noise(local_batch, self.num_patches, seed, "uniform")
        return random_masking(noise, self.num_visible)

    def encode_visible(self, images, ids_keep, training):
        """The encoder on the visible patches: ``[batch, 1 + k, D]`` normalised tokens (the
        class token first, then the patches of ``ids_keep`` in that order)."""
        tokens = self._vit.embed(images)
        visible = take_tokens(tokens, ids_keep)
        class_tokens = self._vit.class_tokens(tf.shape(images)[0], tokens.dtype)
        return self._vit.encode(tf.concat([class_tokens, visible], axis=1), training=training)

    def predict_patches(self, images, seed, training):
        """Returns ``(predictions, mask, encoded)``: the decoder's ``[batch, L, p * p * C]``
        pixels, the mask ``[batch, L]`` (1 = masked) and the encoded visible tokens."""
        batch = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
        ids_keep, mask, ids_restore = self.make_masks(batch, seed)
        encoded = self.encode_visible(images, ids_keep, training)
        return self.decoder(encoded, ids_restore, training=training), mask, encoded

    def compute_ssl_loss(self, views, training):
        check_single_view(views, "MAE")
        images = views[0]
        seed = step_seed(self, self.mask_seed, training)
        predictions, mask, encoded = self.predict_patches(images, seed, training)
        target = patchify(images, self.patch_size)
        losses = masked_patch_loss(target, predictions, mask, norm_pix=self.norm_pix_loss)
        if self.probe is not None:  # the probe sees the exported representation
            features = self.encoder(images, training=False)
        else:
            features = encoded[:, 0]
        return {"loss": tf.reduce_mean(losses)}, features

    # ------------------------------------------------------------------------ evaluation
    def reconstruct(self, images, seed=(0, 0)):
        """Masks and reconstructs ``images`` in inference mode.

        With ``norm_pix_loss`` the decoder predicts normalised pixels; for display each
        predicted patch is mapped back with the ORIGINAL patch's mean and standard deviation
        (as the paper's visualisations do), so the pictures use that much of the hidden patch.

        Args:
            images: ``[batch, H, W, C]`` uint8 or float in ``[0, 1]``.
            seed: ``[2]`` seed of the masks.

        Returns:
            ``(masks, predictions, reconstructions)`` float32 NumPy arrays: ``masks``
            ``[batch, H, W, 1]`` (1 = visible pixel), the decoder's image ``[batch, H, W, C]``
            and the visible pixels with the predicted masked patches pasted in.
        """
        images = to_float_images(images)
        check_image_batch(images, self.image_shape)
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
        predictions, mask, _ = self.predict_patches(images, seed, False)
        target = patchify(images, self.patch_size)
        if self.norm_pix_loss:
            mean = tf.reduce_mean(target, axis=-1, keepdims=True)
            variance = tf.reduce_sum(tf.square(target - mean), -1, keepdims=True) / (
                self.patch_dim - 1
            )
            predictions = predictions * tf.sqrt(variance + 1e-6) + mean
        masked = mask[..., None]
        pasted = target * (1.0 - masked) + predictions * masked
        shape = self.image_shape
        visible = tf.tile(1.0 - masked, [1, 1, self.patch_size**2])
        pixel_masks = unpatchify(visible, self.patch_size, (*shape[:2], 1))
        return (
            pixel_masks.numpy(),
            unpatchify(predictions, self.patch_size, shape).numpy(),
            unpatchify(pasted, self.patch_size, shape).numpy(),
        )

    def reconstruction_error(self, images, batch_size=256, seed=0):
        """The training loss (masked patches, normalised targets when ``norm_pix_loss``) on
        held-out ``images`` in inference mode, averaged over images.

        Args:
            images: ``[N, H, W, C]`` uint8 or float in ``[0, 1]``.
            batch_size: images per forward pass.
            seed: int seed of the masks (batch ``i`` uses ``(seed, i)``).
        """
        check_int(batch_size, "batch_size", fix="pass e.g. 256.")
        check_image_batch(images, self.image_shape)
        total, count = 0.0, 0
        for index, start in enumerate(range(0, len(images), batch_size)):
            batch = to_float_images(images[start : start + batch_size])
            seed_pair = tf.constant([int(seed) % (2**31 - 1), index], tf.int32)
            predictions, mask, _ = self.predict_patches(batch, seed_pair, False)
            target = patchify(batch, self.patch_size)
            losses = masked_patch_loss(target, predictions, mask, self.norm_pix_loss)
            total += float(tf.reduce_sum(losses))
            count += int(losses.shape[0])
        return total / max(count, 1)

    def get_config(self):
        return {
            **super().get_config(),
            "mask_ratio": self.mask_ratio,
            "decoder_dim": self.decoder_dim,
            "decoder_depth": self.decoder_depth,
            "decoder_num_heads": self.decoder_num_heads,
            "decoder_mlp_ratio": self.decoder_mlp_ratio,
            "norm_pix_loss": self.norm_pix_loss,
            "seed": self.seed,
        }
