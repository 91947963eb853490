"""RotationPrediction: learn features by predicting which of four rotations an image shows."""

import keras
import tensorflow as tf

from keras_ssl.methods.pretext_classification import PretextClassificationMethod
from keras_ssl.pretext.rotation import NUM_ROTATIONS, rotation_batch


@keras.saving.register_keras_serializable(package="keras_ssl")
class RotationPrediction(PretextClassificationMethod):
    """RotNet (Gidaris et al. 2018, "Unsupervised Representation Learning by Predicting Image
    Rotations", https://arxiv.org/abs/1803.07728).

    Every image of the (lightly augmented) view is turned by 0, 90, 180 and 270 degrees
    (:func:`keras_ssl.pretext.rotation.rotation_batch`); all four copies go through the encoder
    in the same batch, as the paper recommends, and a classifier predicts the number of quarter
    turns (4-way softmax). The loss is the mean sparse softmax cross-entropy over the ``4n``
    rotated images; ``pretext_accuracy`` is the fraction classified right. The exported encoder
    is the backbone itself, applied to whole (unrotated) images; the online probe sees the
    features of the unrotated copies.

    The task has no randomness and no batch-level term: each replica rotates its own images,
    and the mean of the per-replica means is the global mean (use synchronized BatchNorm in the
    backbone for identical statistics). Images must be square.

    Args:
        encoder: backbone ``keras.Model`` (square images -> ``[batch, D]`` features).
        augmenter: view generator; default ``presets.crop_flip`` (one view: a random resized
            crop of scale 0.5-1 and a horizontal flip). Only the first view is used.
        head_hidden_dims: hidden layer sizes of the rotation classifier; ``()`` (default) is a
            linear classifier on the pooled features, as the paper's ResNet/AlexNet variants use.
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    classifier_name = "rotation_classifier"

    def __init__(
        self,
        encoder,
        augmenter=None,
        head_hidden_dims=(),
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(
            encoder,
            NUM_ROTATIONS,
            augmenter=augmenter,
            head_hidden_dims=head_hidden_dims,
            synchronized_bn=synchronized_bn,
            probe_classes=probe_classes,
            **kwargs,
        )
        height, width = self.image_shape[:2]
        if height != width:
            raise ValueError(
                f"RotationPrediction needs square images (a quarter turn of an {height}x{width} "
                f"image is {width}x{height}); received an encoder for images {self.image_shape}. "
                "Fix: build the encoder for square images and resize or crop them to a square."
            )

    def pretext_logits(self, view, training):
        rotated, labels = rotation_batch(view)
        features = self.encoder(rotated, training=training)
        logits = self.classifier(features, training=training)
        # Rows 0 .. n - 1 are the unrotated images.
        return logits, labels, features[: tf.shape(view)[0]]
