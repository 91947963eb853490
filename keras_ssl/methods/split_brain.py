"""Split-brain autoencoder: two half-networks predict L from ab and ab from L, as classification."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.methods.colorization import (
    LabMethod,
    check_rgb,
    pixel_classifier,
    rebuild_encoder,
    spatial_backbone,
)
from keras_ssl.pretext import color

#: Zhang et al. (2017) quantise the lightness L in [0, 100] into 50 bins of width 2.
LIGHTNESS_BINS = 50


def lightness_bins(num_bins=LIGHTNESS_BINS):
    """Centres of ``num_bins`` equal bins of the lightness range ``[0, 100]``.

    Args:
        num_bins: number of bins (paper: 50, width 2).

    Returns:
        float32 NumPy array ``[num_bins, 1]`` (the ``[Q, k]`` layout ``color.annealed_mean``
        decodes with).
    """
    width = 100.0 / num_bins
    return ((np.arange(num_bins) + 0.5) * width).astype(np.float32)[:, None]


def quantize_lightness(lightness, num_bins=LIGHTNESS_BINS):
    """Index of the lightness bin (nearest centre) of every ``L`` value.

    Args:
        lightness: float ``[...]`` values of ``L`` in ``[0, 100]`` (clipped to the range).
        num_bins: number of equal bins of ``[0, 100]``.

    Returns:
        int32 ``[...]`` bin indices in ``[0, num_bins)``.
    """
    lightness = tf.cast(tf.convert_to_tensor(lightness), tf.float32)
    index = tf.cast(tf.floor(lightness * (num_bins / 100.0)), tf.int32)
    return tf.clip_by_value(index, 0, num_bins - 1)


def _sparse_cross_entropy(labels, logits):
    """Mean cross-entropy and accuracy of per-pixel logits against bin indices."""
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
    return tf.reduce_mean(losses), tf.reduce_mean(tf.cast(hits, tf.float32))


def _named(encoder, name):
    """``encoder``'s graph (same layers and weights) as a functional model called ``name``."""
    return keras.Model(encoder.inputs[0], encoder.outputs[0], name=name)


@keras.saving.register_keras_serializable(package="keras_ssl")
class SplitBrain(LabMethod):
    """Split-brain autoencoder (Zhang, Isola, Efros 2017, "Split-Brain Autoencoders:
    Unsupervised Learning by Cross-Channel Prediction", https://arxiv.org/abs/1611.09842).

    RGB images are converted to CIE Lab in the step and the network is split in two disjoint
    halves: ``encoder`` sees the lightness ``L / 100`` and a per-pixel head predicts the ab
    colour of every pixel; ``ab_encoder`` sees the colour ``(ab + 128) / 256`` and a per-pixel
    head predicts the lightness. Both are classifications over quantised values with the
    cross-entropy ``-sum_q H(X)_q log softmax(s)_q`` of the paper (``H`` one-hot on the nearest
    bin): ab over the in-gamut bins of ``color.ab_gamut_bins`` (grid 10: 262 bins; the paper's
    313-bin table includes cells no sRGB colour reaches, see ``color.ab_gamut_bins``), L over 50
    bins of width 2. The two losses are summed (each half only gets the gradient of its own
    loss). The representation is the concatenation of both halves' pooled features.

    Each half has half the channels of the network it replaces: pass an encoder of half the
    width you want (``widths=(16, 32)`` for a representation as wide as a ``(32, 64)``
    network's); the ab half is a copy of it built for two input channels, with fresh weights.

    Inputs are RGB images ``[batch, H, W, 3]``; ``model(images)``, the probes and
    ``keras_ssl.export`` use :attr:`export_encoder`, RGB -> Lab -> ``[f_L(L), f_ab(ab)]``
    (``2 D`` features). :meth:`colorize` and :meth:`predict_lightness` decode the predictions
    with the annealed mean (T = 0.38, Zhang et al. 2016).

    Distribution: each loss is a mean over this replica's pixels (equal local batches, so the
    mean over replicas is the global mean); the bins are constants; the heads' BatchNorm can be
    synchronised (``synchronized_bn``).

    Args:
        encoder: a convolutional encoder ending in global pooling, the L half; built for
            1-channel inputs or rebuilt (fresh weights) for them. The ab half is its copy for
            2 channels.
        augmenter: view generator (RGB); default: random resized crop and flip, one view.
        num_lightness_bins: bins of ``L`` in ``[0, 100]`` (paper: 50).
        grid_size: ab quantisation grid (paper: 10).
        temperature: annealed-mean temperature of the decoding methods (0.38).
        head_dim: channels of the per-pixel heads' hidden convolutions (``None``: the feature
            maps' channels).
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        probe_classes: classes of the online linear probe (on the concatenated features), or
            ``None``.
    """

    loss_terms = ("loss", "ab_loss", "lightness_loss", "ab_accuracy", "lightness_accuracy")

    def __init__(
        self,
        encoder,
        augmenter=None,
        num_lightness_bins=LIGHTNESS_BINS,
        grid_size=color.GRID_SIZE,
        temperature=color.TEMPERATURE,
        head_dim=None,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        encoder = rebuild_encoder(encoder, 1, "SplitBrain")
        if (
            isinstance(num_lightness_bins, bool)
            or not isinstance(num_lightness_bins, int)
            or num_lightness_bins < 2
        ):
            raise ValueError(
                f"`num_lightness_bins` must be an int >= 2; received {num_lightness_bins!r}. "
                "Fix: use 50 (Zhang et al. 2017)."
            )
        for name, value in (("grid_size", grid_size), ("temperature", temperature)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"`{name}` must be a positive number; received {value!r}. Fix: use "
                    f"{'10' if name == 'grid_size' else '0.38'} (Zhang et al.)."
                )
        super().__init__(
            encoder,
            augmenter=augmenter,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        self.image_shape = (*self.image_shape[:2], 3)
        self.num_lightness_bins = num_lightness_bins
        self.grid_size = grid_size
        self.temperature = temperature
        self.head_dim = head_dim
        self.ab_bins = color.ab_gamut_bins(grid_size)
        self.l_bins = lightness_bins(num_lightness_bins)
        self.l_backbone = spatial_backbone(self.encoder, "SplitBrain")
        # The ab half: the L half's architecture for 2 channels (fresh weights), renamed so
        # both halves can sit side by side in the exported model.
        self.ab_encoder = _named(
            rebuild_encoder(self.encoder, 2, "SplitBrain"), f"ab_{self.encoder.name}"
        )
        self.feature_dim = 2 * self.feature_dim
        self.ab_backbone = spatial_backbone(self.ab_encoder, "SplitBrain")
        heads = []
        for backbone, classes, name in (
            (self.l_backbone, len(self.ab_bins), "ab_head"),
            (self.ab_backbone, num_lightness_bins, "lightness_head"),
        ):
            map_shape = tuple(backbone.outputs[0].shape[1:])
            heads.append(
                pixel_classifier(
                    map_shape,
                    self.image_shape[:2],
                    classes,
                    head_dim or map_shape[-1],
                    self.batch_norm_synchronized,
                    name,
                )
            )
        self.ab_head, self.lightness_head = heads
        self.rgb_encoder = self._rgb_model(
            [(lambda lab: lab[0], self.encoder), (lambda lab: lab[1], self.ab_encoder)],
            "rgb_encoder",
        )

    def build_heads(self, feature_shape):
        for head in (self.ab_head, self.lightness_head):
            head.build((None, *head.input_shape[1:]))

    # ------------------------------------------------------------------------ predictions
    def cross_channel_logits(self, lab, training=False):
        """Both halves' predictions from Lab images ``[batch, H, W, 3]`` (``L`` in [0, 100]).

        Returns:
            ``(ab_logits [batch, H, W, Q_ab], lightness_logits [batch, H, W, Q_L], features
            [batch, 2 D])``: ab predicted from L, L predicted from ab (float32 logits), and the
            concatenated pooled features.
        """
        l_maps, l_features = self.l_backbone(lab[..., :1] / 100.0, training=training)
        ab_maps, ab_features = self.ab_backbone((lab[..., 1:] + 128.0) / 256.0, training=training)
        ab_logits = tf.cast(self.ab_head(l_maps, training=training), tf.float32)
        lightness_logits = tf.cast(self.lightness_head(ab_maps, training=training), tf.float32)
        features = tf.concat(
            [tf.cast(l_features, tf.float32), tf.cast(ab_features, tf.float32)], axis=-1
        )
        return ab_logits, lightness_logits, features

    def compute_ssl_loss(self, views, training):
        lab = color.rgb_to_lab(views[0])
        ab_logits, lightness_logits, features = self.cross_channel_logits(lab, training)
        ab_targets = color.nearest_bin(lab[..., 1:], self.ab_bins)
        l_targets = quantize_lightness(lab[..., 0], self.num_lightness_bins)
        ab_loss, ab_accuracy = _sparse_cross_entropy(ab_targets, ab_logits)
        lightness_loss, lightness_accuracy = _sparse_cross_entropy(l_targets, lightness_logits)
        terms = {
            "loss": ab_loss + lightness_loss,
            "ab_loss": ab_loss,
            "lightness_loss": lightness_loss,
            "ab_accuracy": ab_accuracy,
            "lightness_accuracy": lightness_accuracy,
        }
        return terms, features

    def _lab(self, images, method):
        images = to_float_images(images)
        check_rgb(images, method)  # first: its fix (colour data) is the one that applies
        check_image_batch(images, self.image_shape)
        return color.rgb_to_lab(images)

    def colorize(self, images, temperature=None):
        """Colours images from their lightness with the L half (annealed mean of ab).

        Args:
            images: RGB ``[batch, H, W, 3]`` (``uint8`` or float in ``[0, 1]``); only ``L`` is
                used (a gray image repeated over 3 channels works).
            temperature: annealed-mean ``T`` (default: the model's, 0.38).

        Returns:
            float32 NumPy RGB images ``[batch, H, W, 3]`` in ``[0, 1]``.
        """
        lab = self._lab(images, "SplitBrain.colorize")
        ab_logits, _, _ = self.cross_channel_logits(lab)
        ab = color.annealed_mean(ab_logits, self.ab_bins, temperature or self.temperature)
        return color.lab_to_rgb(tf.concat([lab[..., :1], ab], axis=-1)).numpy()

    def predict_lightness(self, images, temperature=None):
        """The lightness the ab half predicts from the colour (annealed mean of the L bins).

        Args:
            images: RGB ``[batch, H, W, 3]`` (``uint8`` or float in ``[0, 1]``); only ab is used.
            temperature: annealed-mean ``T`` (default: the model's, 0.38).

        Returns:
            float32 NumPy gray images ``L / 100`` ``[batch, H, W, 1]`` in ``[0, 1]``.
        """
        lab = self._lab(images, "SplitBrain.predict_lightness")
        _, lightness_logits, _ = self.cross_channel_logits(lab)
        lightness = color.annealed_mean(
            lightness_logits, self.l_bins, temperature or self.temperature
        )
        return (lightness / 100.0).numpy()

    def get_config(self):
        return {
            **super().get_config(),
            "num_lightness_bins": self.num_lightness_bins,
            "grid_size": self.grid_size,
            "temperature": self.temperature,
            "head_dim": self.head_dim,
        }
