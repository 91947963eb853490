"""Colorization: predict the colour (ab) of a photo from its lightness (L) as a classification."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.losses.classification import rebalanced_cross_entropy
from keras_ssl.methods.lab import LabMethod, check_rgb, spatial_backbone
from keras_ssl.pretext import color
from keras_ssl.validation import check_in_range, check_int, check_positive_number


@keras.saving.register_keras_serializable(package="keras_ssl")
class Colorization(LabMethod):
    """Colorization (Zhang, Isola, Efros 2016, "Colorful Image Colorization",
    https://arxiv.org/abs/1603.08511).

    RGB images are converted to CIE Lab in the step; the encoder sees the lightness ``L / 100``
    (one channel) and a per-pixel head on its last feature maps predicts, for every pixel, a
    distribution over the quantised ab colours (``color.ab_gamut_bins``: grid size 10 cells
    reached by sRGB colours). Targets are soft-encoded over the 5 nearest bins with a Gaussian
    kernel (sigma 5); the class-rebalanced cross-entropy weights each pixel by the inverse of
    the smoothed empirical frequency of its colour, mixed with uniform (lambda = 0.5), so rare
    saturated colours are not washed out by the common greys. :meth:`colorize` decodes the
    predictions with the annealed mean (T = 0.38).

    The empirical bin frequencies are a non-trainable weight (``bin_frequencies``, saved with
    the model), uniform until :meth:`adapt` counts them from the training images; with uniform
    frequencies the weights are close to 1 (0.98-1.16: the smoothing thins the prior at the
    gamut's edge), nearly the plain cross-entropy.

    Inputs are RGB images ``[batch, H, W, 3]``; ``model(images)``, the probes and
    ``keras_ssl.export`` use :attr:`export_encoder`, RGB -> L -> encoder features.

    Distribution: the loss is a mean over this replica's pixels (equal local batches, so the
    mean over replicas is the global mean); the frequencies are fixed during training; the
    head's BatchNorm can be synchronised (``synchronized_bn``).

    Args:
        encoder: a convolutional encoder ending in global pooling; built for 1-channel inputs
            (the L channel) or for RGB, then rebuilt (fresh weights) for one channel.
        augmenter: view generator (RGB); default: random resized crop and flip, one view.
        grid_size: ab quantisation grid (paper: 10).
        sigma: soft-encoding kernel width and prior smoothing width, ab units (paper: 5).
        neighbours: nearest bins of the soft encoding (paper: 5).
        mix: weight lambda of the uniform distribution in the rebalancing (paper: 0.5).
        temperature: annealed-mean temperature of :meth:`colorize` (paper: 0.38).
        head_dim: channels of the per-pixel head's hidden convolution (``None``: the feature
            maps' channels).
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    loss_terms = ("loss", "bin_accuracy")

    def __init__(
        self,
        encoder,
        augmenter=None,
        grid_size=color.GRID_SIZE,
        sigma=color.SIGMA,
        neighbours=color.NEIGHBOURS,
        mix=color.MIX,
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
        check_positive_number(grid_size, "grid_size", "use 10 (Zhang et al.).")
        check_positive_number(sigma, "sigma", "use 5 (Zhang et al.).")
        check_positive_number(temperature, "temperature", "use 0.38 (Zhang et al.).")
        check_int(neighbours, "neighbours", 1, "use 5 (Zhang et al.).")
        check_in_range(mix, "mix", 0, 1, "use 0.5 (Zhang et al.).", low_open=True)
        self.grid_size = grid_size
        self.sigma = sigma
        self.neighbours = neighbours
        self.mix = mix
        self.temperature = temperature
        self.head_dim = head_dim
        self.bins = color.ab_gamut_bins(grid_size)
        self.num_bins = len(self.bins)
        self.backbone = spatial_backbone(self.encoder, "Colorization")
        self.head = self.pixel_head(self.backbone, self.num_bins, head_dim, "ab_head")
        self.rgb_encoder = self._rgb_model([(lambda lab: lab[0], self.encoder)], "rgb_encoder")
        self.bin_frequencies = self.add_weight(
            shape=(self.num_bins,),
            initializer=keras.initializers.Constant(1.0 / self.num_bins),
            trainable=False,
            name="bin_frequencies",
        )

    def ab_logits(self, lightness, training=False):
        """Per-pixel ab-bin logits ``[batch, H, W, Q]`` and pooled features of ``L / 100``."""
        maps, features = self.backbone(lightness, training=training)
        return tf.cast(self.head(maps, training=training), tf.float32), features

    def class_weights(self):
        """The rebalancing weights ``[Q]`` of the current ``bin_frequencies``."""
        return color.rebalancing_weights(self.bin_frequencies, self.bins, self.sigma, self.mix)

    def compute_ssl_loss(self, views, training):
        lab = color.rgb_to_lab(views[0])
        logits, features = self.ab_logits(lab[..., :1] / 100.0, training=training)
        targets = color.soft_encode(lab[..., 1:], self.bins, self.sigma, self.neighbours)
        losses = rebalanced_cross_entropy(targets, logits, self.class_weights())
        hits = tf.equal(tf.argmax(logits, axis=-1), tf.argmax(targets, axis=-1))
        accuracy = tf.reduce_mean(tf.cast(hits, tf.float32))
        return {"loss": tf.reduce_mean(losses), "bin_accuracy": accuracy}, features

    def adapt(self, data, max_batches=None):
        """Sets ``bin_frequencies`` to the empirical ab-bin frequencies of ``data``.

        Args:
            data: RGB training images (array or dataset, see ``color.ab_bin_frequencies``).
            max_batches: count at most this many batches.

        Returns:
            The frequencies ``[Q]`` (NumPy).
        """
        frequencies = color.ab_bin_frequencies(data, self.bins, max_batches=max_batches)
        self.bin_frequencies.assign(frequencies.astype(np.float32))
        return frequencies

    def colorize(self, images, temperature=None):
        """Colours images from their lightness with the annealed mean of the predictions.

        Args:
            images: ``[batch, H, W, 3]`` RGB or ``[batch, H, W, 1]`` grayscale (``uint8`` or
                float in ``[0, 1]``); only the lightness is used.
            temperature: annealed-mean ``T`` (default: the model's, 0.38).

        Returns:
            float32 NumPy RGB images ``[batch, H, W, 3]`` in ``[0, 1]``.
        """
        images = to_float_images(images)
        check_image_batch(images, (*self.image_shape[:2], None))
        if images.shape[-1] == 1:
            images = tf.image.grayscale_to_rgb(images)
        check_rgb(images, "Colorization.colorize")
        lightness = color.rgb_to_lab(images)[..., :1]
        logits, _ = self.ab_logits(lightness / 100.0, training=False)
        ab = color.annealed_mean(logits, self.bins, temperature or self.temperature)
        return color.lab_to_rgb(tf.concat([lightness, ab], axis=-1)).numpy()

    def get_config(self):
        return {
            **super().get_config(),
            "grid_size": self.grid_size,
            "sigma": self.sigma,
            "neighbours": self.neighbours,
            "mix": self.mix,
            "temperature": self.temperature,
            "head_dim": self.head_dim,
        }
