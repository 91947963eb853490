"""Split-brain autoencoder: two half-networks predict L from ab and ab from L, as classification."""

import keras
import tensorflow as tf

from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.losses.pretext_classification import classification_terms
from keras_ssl.methods.lab import LabMethod, check_rgb, rebuild_encoder, spatial_backbone
from keras_ssl.pretext import color
from keras_ssl.validation import check_int, check_positive_number


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
        num_lightness_bins=color.LIGHTNESS_BINS,
        grid_size=color.GRID_SIZE,
        temperature=color.TEMPERATURE,
        head_dim=None,
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
        check_int(num_lightness_bins, "num_lightness_bins", 2, "use 50 (Zhang et al. 2017).")
        check_positive_number(grid_size, "grid_size", "use 10 (Zhang et al.).")
        check_positive_number(temperature, "temperature", "use 0.38 (Zhang et al.).")
        self.num_lightness_bins = num_lightness_bins
        self.grid_size = grid_size
        self.temperature = temperature
        self.head_dim = head_dim
        self.ab_bins = color.ab_gamut_bins(grid_size)
        self.l_bins = color.lightness_bins(num_lightness_bins)
        self.l_backbone = spatial_backbone(self.encoder, "SplitBrain")
        # The ab half: the L half's architecture for 2 channels (fresh weights), renamed so
        # both halves can sit side by side in the exported model.
        self.ab_encoder = _named(
            rebuild_encoder(self.encoder, 2, "SplitBrain"), f"ab_{self.encoder.name}"
        )
        self.feature_dim = 2 * self.feature_dim
        self.ab_backbone = spatial_backbone(self.ab_encoder, "SplitBrain")
        self.ab_head = self.pixel_head(self.l_backbone, len(self.ab_bins), head_dim, "ab_head")
        self.lightness_head = self.pixel_head(
            self.ab_backbone, num_lightness_bins, head_dim, "lightness_head"
        )
        self.rgb_encoder = self._rgb_model(
            [(lambda lab: lab[0], self.encoder), (lambda lab: lab[1], self.ab_encoder)],
            "rgb_encoder",
        )

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
        l_targets = color.quantize_lightness(lab[..., 0], self.num_lightness_bins)
        # The paper's -sum_q H(X)_q log softmax(s)_q with H one-hot: the sparse cross-entropy.
        ab_loss, ab_accuracy = classification_terms(ab_logits, ab_targets)
        lightness_loss, lightness_accuracy = classification_terms(lightness_logits, l_targets)
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
