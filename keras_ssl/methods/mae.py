"""MAE: a ViT encodes a random 25% of the patches; a light decoder predicts the rest's pixels."""

import keras
import tensorflow as tf

from keras_ssl.backbones.vit import ViTParts
from keras_ssl.layers.mae_decoder import MAEDecoder, check_decoder_arguments
from keras_ssl.layers.patch_masking import (
    num_visible_patches,
    patchify,
    random_masking,
    take_tokens,
)
from keras_ssl.losses.masked_patches import check_norm_pix, masked_patch_loss
from keras_ssl.methods.base import SSLMethod, check_single_view
from keras_ssl.methods.masked_reconstruction import MaskedReconstruction
from keras_ssl.methods.step_random import global_batch_noise, new_seed, step_seed


@keras.saving.register_keras_serializable(package="keras_ssl")
class MAE(MaskedReconstruction, SSLMethod):
    """MAE (He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners",
    https://arxiv.org/abs/2111.06377).

    Each image is cut into the ViT's ``L`` patches; a random ``mask_ratio`` (75%) of them is
    masked per image, the same number ``k = int(L * (1 - mask_ratio))`` visible in every image
    (``layers.random_masking``: static shapes, so the step compiles with XLA). The encoder (a
    keras_ssl ViT, ``backbones.ViT``) runs on the visible patches only: their embeddings, plus
    its class token, through its transformer blocks and final LayerNorm
    (``backbones.vit.ViTParts``). A lightweight ``layers.MAEDecoder`` (mask tokens, sine-cosine
    positions) predicts every patch's pixels. The loss is the MSE on the MASKED patches only,
    against per-patch normalised pixels (``norm_pix_loss``; ``losses.masked_patch_loss``).
    ``model.encoder`` (what ``model(images)``, the probes and ``keras_ssl.export`` use) is the
    full ViT on all patches without masking (its class token after the final LayerNorm); the
    online probe, when asked for, is fed that representation (an extra forward pass of the
    whole image, without gradients). :meth:`reconstruct` and :meth:`reconstruction_error`
    (``methods.masked_reconstruction``) show and score reconstructions of held-out images.

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
        decoder_dim, decoder_depth, decoder_num_heads = check_decoder_arguments(
            decoder_dim, decoder_depth, decoder_num_heads, decoder_mlp_ratio, prefix="decoder_"
        )
        channels = self.image_shape[-1]
        check_norm_pix(norm_pix_loss, "norm_pix_loss", (self.patch_size, self.patch_size, channels))
        self.patch_dim = self.patch_size**2 * channels
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

    def patch_losses(self, images, seed, training):
        """Per-image losses ``[batch]`` of the masked patches (``losses.masked_patch_loss``) and
        the encoded visible tokens."""
        predictions, mask, encoded = self.predict_patches(images, seed, training)
        target = patchify(images, self.patch_size)
        return masked_patch_loss(target, predictions, mask, self.norm_pix_loss), encoded

    def compute_ssl_loss(self, views, training):
        check_single_view(views, "MAE")
        images = views[0]
        losses, encoded = self.patch_losses(
            images, step_seed(self, self.mask_seed, training), training
        )
        if self.probe is not None:  # the probe sees the exported representation
            features = self.encoder(images, training=False)
        else:
            features = encoded[:, 0]
        return {"loss": tf.reduce_mean(losses)}, features

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
