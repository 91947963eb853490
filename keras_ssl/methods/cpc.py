"""CPC for images: predict the encodings of lower rows of patches from a causal context."""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.augment.flip import RandomHorizontalFlip
from keras_ssl.augment.multi_view import MultiViewAugmenter
from keras_ssl.layers.masked_conv import MaskedConv2D
from keras_ssl.layers.patch_grid import (
    PatchGridEncoder,
    _pair,
    grid_geometry,
    per_patch_normalized,
)
from keras_ssl.losses.contrastive import step_logits
from keras_ssl.methods.base import SSLMethod, check_encoder
from keras_ssl.methods.patch_encoders import (
    check_image_shape,
    encoder_for_patches,
)
from keras_ssl.validation import check_int

#: Values of ``CPC(patch_normalization=...)``.
PATCH_NORMALIZATIONS = ("layer", None)


@keras.saving.register_keras_serializable(package="keras_ssl")
class CPC(SSLMethod):
    """Contrastive Predictive Coding for images (van den Oord et al. 2018, "Representation
    Learning with Contrastive Predictive Coding", https://arxiv.org/abs/1807.03748; Hénaff et al.
    2019, "Data-Efficient Image Recognition with Contrastive Predictive Coding",
    https://arxiv.org/abs/1905.09272).

    Each image is cut into an overlapping grid of patches (the paper: 64-px patches with stride
    32 on 256-px images, a 7x7 grid); the patch encoder ``g_enc`` encodes every patch of the
    batch in one call into ``z[i, r, c]``; a PixelCNN-style context network ``g_ar`` of masked
    convolutions (row ``r`` sees only rows ``<= r``) gives the context ``c[i, r, c]``; one linear
    map ``W_k`` per step ``k = first_step..K`` predicts ``z[i, r + k, c]`` from ``c[i, r, c]``; the
    InfoNCE loss (:func:`cpc_info_nce`) makes each prediction pick its target among all patches
    of all images of the global batch (encodings gathered from every replica, targets offset by
    the replica's first image). The loss is the mean over steps of each step's mean loss;
    ``cpc_accuracy`` is how often the target gets the highest score.

    Encoders. ``patch_encoder`` is ``g_enc`` (input shape: the PATCH shape). ``encoder``, which
    the base class, the probes and ``keras_ssl.export`` use, maps WHOLE images ``[batch, H, W,
    C]`` to the mean over the grid of the patch encodings ``[batch, D]`` (a functional model:
    ``PatchGridEncoder`` then ``GlobalAveragePooling2D``), so it meets the ``SSLMethod`` contract
    and everything downstream works unchanged. Two ways to give ``g_enc``:

    - ``CPC(patch_encoder, image_shape=(H, W, C))``: an encoder built for patches; the patch
      size is its input size.
    - ``CPC(image_encoder)`` (``image_shape=None``, what ``keras-ssl train`` does): an encoder
      built for whole images is rebuilt for patches of ``patch_size`` with
      ``keras.models.clone_model`` and keeps its weights; its layers must accept any spatial
      size (convolutions and global pooling, as every ``keras_ssl.backbones`` model does).

    The grid: ``patch_size`` defaults to a quarter of the image side and ``patch_stride`` to
    half the patch (the paper's 64/32 geometry at 256 px; 7-px patches with stride 3, an 8x8
    grid, at 28 px; 8/4, a 7x7 grid, at 32 px); ``grid_size`` ``None`` takes every patch that
    fits, centred.

    Normalisation (CPC v2, section 4.1). All patches of the batch go through ``g_enc`` in one
    call, so a BatchNorm there would normalise every patch with statistics of all the others,
    the target patches included: information flows between patches around the context's
    receptive field, a shortcut that Hénaff et al. found to harm the features. With
    ``patch_normalization="layer"`` (the default, as CPC v2) ``g_enc`` is a structural copy of
    the given encoder with every BatchNormalization replaced by layer normalisation (Ba et al.
    2016: each patch normalised over the height, width and channels of the feature map, a
    ``gamma`` and ``beta`` per channel copied from the BatchNorm, moving statistics dropped;
    ``keras_ssl.layers.patch_grid.per_patch_normalized``), so each patch's encoding depends on
    that patch alone, in training as in inference. An encoder without
    BatchNorm is used as given. ``patch_normalization=None`` keeps the encoder as it is.
    The normalised ``g_enc`` has no weight tied to the spatial size, so besides the exported
    grid-mean ``encoder`` its layers also run on whole images, e.g.
    ``keras.models.clone_model(model.patch_encoder, input_tensors=keras.Input((H, W, C)),
    clone_function=lambda layer: layer)`` (shared weights).

    Augmentation: CPC v1 uses none; the default ``augmenter`` makes one view with a random
    horizontal flip (it keeps rows in place). CPC uses ``views[0]`` and ignores further views,
    so a two-view preset also works (one view is wasted).

    Args:
        encoder: ``g_enc``: a patch encoder (with ``image_shape``) or an image encoder to be
            rebuilt for patches (without); ``keras.Model`` to ``[batch, D]``.
        augmenter: view generator; default: one view, random horizontal flip.
        image_shape: ``(H, W, C)`` of the images when ``encoder`` takes patches; ``None`` when
            ``encoder`` takes whole images.
        patch_size: patch side or ``(height, width)``; ``None``: the patch encoder's input
            size, or a quarter of the image side for an image encoder.
        patch_stride: step between patches; ``None``: half the patch size.
        grid_size: ``(rows, cols)`` of patches, or ``None`` for all that fit.
        prediction_steps: ``K``, the farthest row below a context row that is predicted
            (paper: up to 5 rows of a 7x7 grid); must be smaller than the number of grid rows.
        first_step: the nearest row predicted (steps ``first_step..K`` each get a ``W_k``);
            ``None``: the first patch row that shares no pixels with the context row,
            ``ceil(patch_height / stride)`` capped at ``K`` (2 for 50% overlap, as in the paper's
            figure, where ``c_t`` predicts rows ``t + 2`` onwards). Overlapping targets can be
            found by matching the shared pixels, a low-level shortcut; ``first_step=1`` includes
            them.
        context_dim: channels of the context ``c``; ``None`` uses the feature size ``D``.
        context_blocks: residual blocks in ``g_ar`` (each ReLU, masked conv, ReLU, 1x1 conv);
            each lets the context see ``context_kernel_size // 2`` more rows above.
        context_kernel_size: odd kernel size of the masked convolutions.
        patch_normalization: ``"layer"``: BatchNorm in ``g_enc`` becomes per-patch layer
            normalisation (CPC v2); ``None``: ``g_enc`` is used with its own normalisation.
        probe_classes: classes of the online linear probe, or ``None``.
    """

    loss_terms = ("loss", "cpc_accuracy")

    def __init__(
        self,
        encoder,
        augmenter=None,
        image_shape=None,
        patch_size=None,
        patch_stride=None,
        grid_size=None,
        prediction_steps=5,
        first_step=None,
        context_dim=None,
        context_blocks=3,
        context_kernel_size=3,
        patch_normalization="layer",
        probe_classes=None,
        **kwargs,
    ):
        check_encoder(encoder)
        if patch_normalization not in PATCH_NORMALIZATIONS:
            raise ValueError(
                f"`patch_normalization` must be one of {PATCH_NORMALIZATIONS}; received "
                f"{patch_normalization!r}. Fix: pass 'layer' (per-patch LayerNorm, CPC v2) or "
                "None (keep the encoder's own normalisation)."
            )
        rebuild = image_shape is None  # an image encoder, to be rebuilt for patches
        if rebuild:
            image_shape = tuple(encoder.input_shape[1:])
            if patch_size is None:
                patch_size = tuple(max(1, side // 4) for side in image_shape[:2])
            patch_size = _pair(patch_size, "patch_size", "pass e.g. patch_size=8")
        else:
            image_shape = check_image_shape(image_shape, encoder)
            encoder_patch = tuple(encoder.input_shape[1:3])
            if (
                patch_size is not None
                and _pair(patch_size, "patch_size", "pass e.g. patch_size=8") != encoder_patch
            ):
                raise ValueError(
                    f"`patch_size` {patch_size!r} does not match the patch encoder's input size "
                    f"{encoder_patch}; expected them equal when `image_shape` is given (the "
                    "encoder takes patches). Fix: leave patch_size=None, or build the encoder for "
                    "patches of that size."
                )
            patch_size = encoder_patch
        if patch_stride is None:
            patch_stride = tuple(max(1, side // 2) for side in patch_size)
        patch_stride = _pair(patch_stride, "patch_stride", "pass e.g. patch_stride=4")
        if grid_size is not None:
            grid_size = _pair(grid_size, "grid_size", "pass e.g. grid_size=6, or None")
        grid_size, _ = grid_geometry(image_shape[:2], patch_size, patch_stride, grid_size)
        check_int(prediction_steps, "prediction_steps", fix="pass e.g. prediction_steps=3.")
        if prediction_steps >= grid_size[0]:
            raise ValueError(
                f"CPC predicts up to `prediction_steps` rows below a context row, so it needs more "
                f"grid rows than steps; received prediction_steps={prediction_steps} for a grid "
                f"of {grid_size[0]} rows (images {image_shape[:2]}, patches {patch_size}, stride "
                f"{patch_stride}). Fix: use prediction_steps <= {grid_size[0] - 1}, or a smaller "
                "patch or stride for more rows."
            )
        if first_step is None:
            first_step = min(-(-patch_size[0] // patch_stride[0]), prediction_steps)
        check_int(first_step, "first_step", fix="pass e.g. first_step=2, or None.")
        if first_step > prediction_steps:
            raise ValueError(
                f"`first_step` must be at most `prediction_steps` (steps first_step..K are "
                f"predicted); received first_step={first_step}, prediction_steps="
                f"{prediction_steps}. Fix: lower first_step or raise prediction_steps."
            )
        if context_dim is not None:
            check_int(context_dim, "context_dim", fix="pass e.g. context_dim=256, or None.")
        check_int(context_blocks, "context_blocks", fix="pass e.g. context_blocks=3.")
        patch_encoder = (
            encoder_for_patches(encoder, (*patch_size, image_shape[2])) if rebuild else encoder
        )
        if patch_normalization == "layer":
            patch_encoder = per_patch_normalized(patch_encoder)

        grid_encoder = PatchGridEncoder(
            patch_encoder, patch_stride, grid_size, name="patch_grid_encoder"
        )
        images = keras.Input(image_shape, name="images")
        pooled = keras.layers.GlobalAveragePooling2D(name="grid_mean")(grid_encoder(images))
        image_encoder = keras.Model(images, pooled, name=f"{patch_encoder.name}_patch_grid")
        super().__init__(image_encoder, augmenter=augmenter, probe_classes=probe_classes, **kwargs)
        self.patch_encoder = patch_encoder
        self.grid_encoder = grid_encoder
        self.patch_size = patch_size
        self.patch_stride = patch_stride
        self.grid_size = grid_size
        self.prediction_steps = prediction_steps
        self.first_step = first_step
        self.context_dim = context_dim or self.feature_dim
        self.context_blocks = context_blocks
        self.context_kernel_size = context_kernel_size
        self.patch_normalization = patch_normalization
        self.context_projection = (
            keras.layers.Conv2D(self.context_dim, 1, name="context_projection")
            if self.context_dim != self.feature_dim
            else None
        )
        self.masked_convs = [
            MaskedConv2D(self.context_dim, context_kernel_size, name=f"context_masked_conv_{i}")
            for i in range(context_blocks)
        ]
        self.context_mixers = [
            keras.layers.Conv2D(self.context_dim, 1, name=f"context_mix_{i}")
            for i in range(context_blocks)
        ]
        self.predictors = [
            keras.layers.Dense(self.feature_dim, use_bias=False, name=f"predictor_{k}")
            for k in range(first_step, prediction_steps + 1)
        ]

    def default_augmenter(self):
        return MultiViewAugmenter([[RandomHorizontalFlip(0.5)]])

    def build_heads(self, feature_shape):
        grid_shape = (None, *self.grid_size, self.feature_dim)
        context_shape = (None, *self.grid_size, self.context_dim)
        if self.context_projection is not None:
            self.context_projection.build(grid_shape)
        for masked, mixer in zip(self.masked_convs, self.context_mixers):
            masked.build(context_shape)
            mixer.build(context_shape)
        for predictor in self.predictors:
            predictor.build(context_shape)

    def context(self, z):
        """``g_ar``: the context grid ``[n, rows, cols, context_dim]`` of a patch-encoding grid.

        Row ``r`` of the output depends only on rows ``<= r`` of ``z``.
        """
        c = z if self.context_projection is None else self.context_projection(z)
        for masked, mixer in zip(self.masked_convs, self.context_mixers):
            h = masked(tf.nn.relu(c))
            c = c + mixer(tf.nn.relu(h))
        return c

    def predict_rows(self, context):
        """``[W_k c]`` for ``k = first_step..K``: step ``k`` uses context rows ``0 .. rows-k-1``."""
        rows = self.grid_size[0]
        return [
            predictor(context[:, : rows - step])
            for step, predictor in enumerate(self.predictors, start=self.first_step)
        ]

    def compute_ssl_loss(self, views, training):
        view = views[0]
        z = self.grid_encoder(view, training=training)
        z32 = tf.cast(z, tf.float32)
        predictions = self.predict_rows(self.context(z))
        all_z = tf.reshape(distribute.gather(z32), [-1, *z32.shape[1:]])
        offset = distribute.replica_offset(tf.shape(view)[0])
        step_losses, step_hits = [], []
        for step, prediction in enumerate(predictions, start=self.first_step):
            prediction = tf.cast(prediction, tf.float32)
            logits, labels = step_logits(prediction, all_z, step, offset)
            step_losses.append(
                tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
                )
            )
            hits = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels)
            step_hits.append(tf.reduce_mean(tf.cast(hits, tf.float32)))
        terms = {"loss": tf.add_n(step_losses) / len(step_losses)}
        terms["cpc_accuracy"] = tf.add_n(step_hits) / len(step_hits)
        return terms, tf.reduce_mean(z32, axis=(1, 2))

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.patch_encoder),
            "image_shape": self.image_shape,
            "patch_size": self.patch_size,
            "patch_stride": self.patch_stride,
            "grid_size": self.grid_size,
            "prediction_steps": self.prediction_steps,
            "first_step": self.first_step,
            "context_dim": self.context_dim,
            "context_blocks": self.context_blocks,
            "context_kernel_size": self.context_kernel_size,
            "patch_normalization": self.patch_normalization,
        }
