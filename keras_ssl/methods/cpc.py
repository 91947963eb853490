"""CPC for images: predict the encodings of lower rows of patches from a causal context."""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.augment.flip import RandomHorizontalFlip
from keras_ssl.augment.multi_view import MultiViewAugmenter
from keras_ssl.layers.masked_conv import causal_context, causal_context_layers
from keras_ssl.losses.predictive_coding import cpc_terms
from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.patch_encoders import patch_grid_encoders
from keras_ssl.validation import check_int


@keras.saving.register_keras_serializable(package="keras_ssl")
class CPC(SSLMethod):
    """Contrastive Predictive Coding for images (van den Oord et al. 2018, "Representation
    Learning with Contrastive Predictive Coding", https://arxiv.org/abs/1807.03748; Hénaff et al.
    2019, "Data-Efficient Image Recognition with Contrastive Predictive Coding",
    https://arxiv.org/abs/1905.09272).

    Each image is cut into an overlapping grid of patches (the paper: 64-px patches with stride
    32 on 256-px images, a 7x7 grid); the patch encoder ``g_enc`` encodes every patch of the
    batch in one call into ``z[i, r, c]``; a PixelCNN-style context network ``g_ar`` of masked
    convolutions (:func:`keras_ssl.layers.masked_conv.causal_context`: row ``r`` sees only rows
    ``<= r``) gives the context ``c[i, r, c]``; one linear map ``W_k`` per step ``k =
    first_step..K`` predicts ``z[i, r + k, c]`` from ``c[i, r, c]``. The InfoNCE loss makes each
    prediction pick its target among all patches of all images of the global batch (encodings
    gathered from every replica); the loss is the mean over steps of each step's mean loss and
    ``cpc_accuracy`` how often the target gets the highest score
    (:func:`keras_ssl.losses.predictive_coding.cpc_terms`).

    Encoders (:func:`keras_ssl.methods.patch_encoders.patch_grid_encoders`). ``patch_encoder``
    is ``g_enc`` (input shape: the PATCH shape). ``encoder``, which the base class, the probes
    and ``keras_ssl.export`` use, maps WHOLE images ``[batch, H, W, C]`` to the mean over the
    grid of the patch encodings ``[batch, D]``, so everything downstream works unchanged. The
    grid's defaults give the paper's 64/32 geometry at 256 px; 7-px patches with stride 3, an
    8x8 grid, at 28 px; 8/4, a 7x7 grid, at 32 px.

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
        patch_normalization: ``"layer"`` (CPC v2, section 4.1): every BatchNorm of ``g_enc``,
            which would mix the statistics of all patches, targets included, becomes per-patch
            layer normalisation, so each patch's encoding depends on that patch alone (and
            ``g_enc`` also runs on whole images: ``keras.models.clone_model(model.patch_encoder,
            input_tensors=keras.Input((H, W, C)), clone_function=lambda layer: layer)``);
            ``None``: ``g_enc`` keeps its own normalisation.
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
        grid = patch_grid_encoders(
            encoder, image_shape, patch_size, patch_stride, grid_size, patch_normalization
        )
        rows = grid.grid_size[0]
        check_int(prediction_steps, "prediction_steps", fix="pass e.g. prediction_steps=3.")
        if prediction_steps >= rows:
            raise ValueError(
                f"CPC predicts up to `prediction_steps` rows below a context row, so it needs more "
                f"grid rows than steps; received prediction_steps={prediction_steps} for a grid "
                f"of {rows} rows (images {grid.image_shape[:2]}, patches {grid.patch_size}, "
                f"stride {grid.patch_stride}). Fix: use prediction_steps <= {rows - 1}, or a "
                "smaller patch or stride for more rows."
            )
        if first_step is None:  # the first row that shares no pixels with the context row
            first_step = min(-(-grid.patch_size[0] // grid.patch_stride[0]), prediction_steps)
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
        super().__init__(
            grid.image_encoder, augmenter=augmenter, probe_classes=probe_classes, **kwargs
        )
        self.patch_encoder = grid.patch_encoder
        self.grid_encoder = grid.grid_encoder
        self.patch_size = grid.patch_size
        self.patch_stride = grid.patch_stride
        self.grid_size = grid.grid_size
        self.prediction_steps = prediction_steps
        self.first_step = first_step
        self.context_dim = context_dim or self.feature_dim
        self.context_blocks = context_blocks
        self.context_kernel_size = context_kernel_size
        self.patch_normalization = patch_normalization
        self.context_projection, self.masked_convs, self.context_mixers = causal_context_layers(
            self.context_dim, context_blocks, context_kernel_size, input_dim=self.feature_dim
        )
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
        return causal_context(z, self.masked_convs, self.context_mixers, self.context_projection)

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
        all_z = distribute.gather_batch(z32)
        offset = distribute.replica_offset(tf.shape(view)[0])
        loss, accuracy = cpc_terms(predictions, all_z, offset, self.first_step)
        return {"loss": loss, "cpc_accuracy": accuracy}, tf.reduce_mean(z32, axis=(1, 2))

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
