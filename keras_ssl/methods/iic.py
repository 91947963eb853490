"""IIC: clustering by maximising the mutual information of two views' cluster assignments."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.images import to_float_images
from keras_ssl.losses.mutual_information import EPSILON, check_epsilon, iic_loss
from keras_ssl.methods.base import SSLMethod
from keras_ssl.validation import check_in_range, check_int


@keras.saving.register_keras_serializable(package="keras_ssl")
class IIC(SSLMethod):
    """Invariant Information Clustering (Ji, Henriques & Vedaldi 2019, "Invariant Information
    Clustering for Unsupervised Image Classification and Segmentation",
    https://arxiv.org/abs/1807.06653).

    An image ``x`` and a random transform ``x'`` of it go through the shared encoder (one pass
    over the concatenated views, so BatchNorm sees both) and a linear softmax head ``Phi`` with
    ``C`` outputs. Their cluster probabilities over the batch give the joint distribution
    ``P = sym(1/n sum_i Phi(x_i) Phi(x'_i)^T)``, and the loss is ``-I(z, z')``
    (:func:`keras_ssl.losses.mutual_information.iic_loss`), minimal (``-ln C``) when the two
    views always fall in the same cluster and all clusters are equally used: the entropy term
    inside the mutual information forbids the degenerate one-cluster solution without any
    negatives or re-balancing. The joint distribution is summed over the global batch across
    replicas, so N replicas give the loss and gradients of one device.

    As in the paper, there are ``num_heads`` independently initialised sub-heads (the loss is
    their mean; the one with the lowest loss is used for prediction) and an auxiliary
    over-clustering head with ``overclustering_clusters > C`` outputs whose IIC loss, trained
    on the same views, helps the representation with more clusters than classes. The paper
    alternates epochs between the two heads; here both losses are added every step
    (``loss = iic + overclustering_weight * overclustering``). The paper's Sobel
    pre-processing of colour images is not applied (use a grayscale augmentation instead).

    :meth:`predict_clusters` gives cluster ids for images (report them with
    ``keras_ssl.evaluation.clustering.clustering_accuracy``, Hungarian matching); the probes
    use the encoder's features as for every method. Paper optimiser: Adam, learning rate 1e-4.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.simclr`` with crops of
            at least half the image (the paper: random crops, flips and colour jitter).
        num_clusters: ``C``, the main head's number of clusters (the expected number of
            classes; 10 for CIFAR-10, MNIST, Fashion-MNIST).
        overclustering_clusters: number of clusters of the over-clustering head (paper: 50
            on MNIST, 70 on CIFAR-10); ``None`` trains the main head only.
        num_heads: sub-heads per head (paper: 5).
        overclustering_weight: weight of the over-clustering head's loss.
        head_loss_momentum: momentum of the running mean of each sub-head's loss that picks
            the best sub-head.
        epsilon: floor of the probabilities inside the logarithm.
        probe_classes: classes of the online linear probe, or ``None``.
    """

    default_preset = "simclr"
    default_preset_kwargs = {"crop_scale": (0.5, 1.0)}

    loss_terms = ("loss", "iic", "overclustering")

    def __init__(
        self,
        encoder,
        augmenter=None,
        num_clusters=10,
        overclustering_clusters=70,
        num_heads=5,
        overclustering_weight=1.0,
        head_loss_momentum=0.99,
        epsilon=EPSILON,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(encoder, augmenter=augmenter, probe_classes=probe_classes, **kwargs)
        check_int(num_clusters, "num_clusters", 2, "use the number of classes, e.g. 10.")
        if overclustering_clusters is not None:
            check_int(
                overclustering_clusters,
                "overclustering_clusters",
                2,
                "use more clusters than classes (paper: 50-70), or None for no such head.",
            )
        check_int(num_heads, "num_heads", 1, "use 5 (the paper) or 1.")
        check_in_range(overclustering_weight, "overclustering_weight", 0, fix="use 1.0.")
        check_in_range(head_loss_momentum, "head_loss_momentum", 0, 1, "use 0.99.", high_open=True)
        check_epsilon(epsilon)
        self.num_clusters = num_clusters
        self.overclustering_clusters = overclustering_clusters
        self.num_heads = num_heads
        self.overclustering_weight = overclustering_weight
        self.head_loss_momentum = head_loss_momentum
        self.epsilon = epsilon
        # Each head is one Dense layer holding all its sub-heads (one matmul for all of them).
        self.cluster_head = keras.layers.Dense(
            num_heads * num_clusters, dtype="float32", name="cluster_head"
        )
        self.overclustering_head = (
            keras.layers.Dense(
                num_heads * overclustering_clusters, dtype="float32", name="overclustering_head"
            )
            if overclustering_clusters
            else None
        )
        # Running mean of each sub-head's IIC loss (picks the sub-head used for prediction).
        self.head_losses = self.add_weight(
            shape=(num_heads,), initializer="zeros", trainable=False, name="head_losses"
        )

    def build_heads(self, feature_shape):
        self.cluster_head.build(feature_shape)
        if self.overclustering_head is not None:
            self.overclustering_head.build(feature_shape)

    def _probabilities(self, head, features, clusters):
        """``[heads, n, clusters]`` softmax outputs of every sub-head of ``head``."""
        logits = tf.reshape(head(tf.cast(features, tf.float32)), [-1, self.num_heads, clusters])
        return tf.transpose(tf.nn.softmax(logits, axis=-1), [1, 0, 2])

    def _head_losses(self, head, features, clusters, batch):
        probabilities = self._probabilities(head, features, clusters)
        return tf.stack(
            [
                iic_loss(p[:batch], p[batch:], self.epsilon)
                for p in tf.unstack(probabilities, num=self.num_heads)
            ]
        )

    def compute_ssl_loss(self, views, training):
        if len(views) != 2:
            raise ValueError(
                f"IIC uses exactly 2 views per image (x and its transform x'); received "
                f"{len(views)}. Fix: use an augmenter with two views "
                "(keras_ssl.augment.presets.simclr)."
            )
        batch = tf.shape(views[0])[0]
        features = self.encoder(tf.concat(views, axis=0), training=training)
        main = self._head_losses(self.cluster_head, features, self.num_clusters, batch)
        overclustering = tf.constant(0.0)
        if self.overclustering_head is not None:
            over = self._head_losses(
                self.overclustering_head, features, self.overclustering_clusters, batch
            )
            overclustering = tf.reduce_mean(over)
        iic = tf.reduce_mean(main)
        terms = {
            "loss": iic + self.overclustering_weight * overclustering,
            "iic": iic,
            "overclustering": overclustering,
        }
        return terms, features[:batch], {"head_losses": main}

    def after_optimizer_step(self, head_losses):
        # The first step starts the running mean at the step's losses.
        m = tf.where(self.optimizer.iterations > 1, self.head_loss_momentum, 0.0)
        self.head_losses.assign(m * self.head_losses + (1.0 - m) * head_losses)

    @property
    def best_head(self):
        """Index of the sub-head with the lowest running-mean loss (used for prediction)."""
        return int(np.argmin(keras.ops.convert_to_numpy(self.head_losses)))

    def cluster_probabilities(self, images, head=None, batch_size=256):
        """Cluster probabilities of the main head for ``images``.

        Args:
            images: ``[N, H, W, C]`` NumPy images (``uint8`` or float in ``[0, 1]``).
            head: sub-head index; ``None`` uses :attr:`best_head`.
            batch_size: images per encoder call.

        Returns:
            ``float32`` NumPy array ``[N, num_clusters]``.
        """
        head = self.best_head if head is None else head
        if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < self.num_heads:
            raise ValueError(
                f"`head` must be a sub-head index in [0, {self.num_heads}) or None; received "
                f"{head!r}. Fix: pass None to use the sub-head with the lowest loss."
            )
        outputs = []
        for start in range(0, len(images), batch_size):
            chunk = to_float_images(tf.convert_to_tensor(images[start : start + batch_size]))
            features = self(chunk, training=False)
            outputs.append(self._probabilities(self.cluster_head, features, self.num_clusters))
        return np.concatenate([keras.ops.convert_to_numpy(p[head]) for p in outputs])

    def predict_clusters(self, images, head=None, batch_size=256):
        """Cluster ids ``[N]`` (``argmax`` of :meth:`cluster_probabilities`)."""
        return np.argmax(self.cluster_probabilities(images, head, batch_size), axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_clusters": self.num_clusters,
            "overclustering_clusters": self.overclustering_clusters,
            "num_heads": self.num_heads,
            "overclustering_weight": self.overclustering_weight,
            "head_loss_momentum": self.head_loss_momentum,
            "epsilon": self.epsilon,
        }
