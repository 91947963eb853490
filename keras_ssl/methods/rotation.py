"""RotationPrediction: learn features by predicting which of four rotations an image shows."""

import keras
import tensorflow as tf

from keras_ssl.layers.mlp_head import MLPHead
from keras_ssl.methods.base import SSLMethod
from keras_ssl.pretext.rotation import NUM_ROTATIONS, rotation_batch


def classification_terms(logits, labels):
    """Mean sparse softmax cross-entropy and accuracy of pretext logits (float32 scalars).

    Args:
        logits: ``[m, classes]`` scores.
        labels: int ``[m]`` pretext labels.

    Returns:
        ``(loss, accuracy)``.
    """
    logits = tf.cast(logits, tf.float32)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
    return tf.reduce_mean(losses), tf.reduce_mean(tf.cast(hits, tf.float32))


def check_hidden_dims(value, name):
    """``value`` as a tuple of positive ints, or a ``ValueError`` saying how to fix it."""
    try:
        dims = tuple(value)
        valid = all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims)
    except TypeError:
        valid = False
    if not valid:
        raise ValueError(
            f"`{name}` must be a sequence of positive ints (hidden layer sizes); received "
            f"{value!r}. Fix: pass e.g. {name}=(256,), or () for a linear classifier."
        )
    return dims


@keras.saving.register_keras_serializable(package="keras_ssl")
class RotationPrediction(SSLMethod):
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

    default_preset = "crop_flip"

    loss_terms = ("loss", "pretext_accuracy")

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
            augmenter=augmenter,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        height, width = self.image_shape[:2]
        if height != width:
            raise ValueError(
                f"RotationPrediction needs square images (a quarter turn of an {height}x{width} "
                f"image is {width}x{height}); received an encoder for images {self.image_shape}. "
                "Fix: build the encoder for square images and resize or crop them to a square."
            )
        self.head_hidden_dims = check_hidden_dims(head_hidden_dims, "head_hidden_dims")
        self.classifier = MLPHead(
            hidden_dims=self.head_hidden_dims,
            output_dim=NUM_ROTATIONS,
            synchronized=self.batch_norm_synchronized,
            name="rotation_classifier",
        )

    def build_heads(self, feature_shape):
        self.classifier.build(feature_shape)

    def compute_ssl_loss(self, views, training):
        view = views[0]
        rotated, labels = rotation_batch(view)
        features = self.encoder(rotated, training=training)
        logits = self.classifier(features, training=training)
        loss, accuracy = classification_terms(logits, labels)
        # Rows 0 .. n - 1 are the unrotated images.
        return {"loss": loss, "pretext_accuracy": accuracy}, features[: tf.shape(view)[0]]

    def get_config(self):
        return {
            **super().get_config(),
            "head_hidden_dims": self.head_hidden_dims,
        }
