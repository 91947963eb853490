"""DeepCluster: alternate k-means on the network's features and classification of the clusters."""

import keras
import tensorflow as tf

from keras_ssl.losses.pseudo_labels import pseudo_label_terms
from keras_ssl.methods.clustering_method import ClusteringMethod
from keras_ssl.methods.deepcluster_callback import DeepClusterCallback
from keras_ssl.methods.indexed_batches import view_indices

__all__ = ["DeepCluster", "DeepClusterCallback"]


@keras.saving.register_keras_serializable(package="keras_ssl")
class DeepCluster(ClusteringMethod):
    """DeepCluster (Caron, Bojanowski, Joulin & Douze 2018, "Deep Clustering for Unsupervised
    Learning of Visual Features", https://arxiv.org/abs/1807.05520).

    Alternates two steps. **Clustering**, before every epoch (:meth:`cluster`, run by
    :class:`DeepClusterCallback`, which ``fit`` adds by itself): k-means of the current
    encoder's PCA-whitened, L2-normalised features of every un-augmented training image,
    stored per dataset index in ``assignments`` (see :class:`ClusteringMethod`). **Training**,
    during the epoch: each batch carries its images' dataset indices (``"indices"``), and every
    augmented view of image ``i`` is trained on the pseudo-label ``assignments[i]`` by a linear
    classifier on the encoder's features, as in the paper. The classifier is re-initialised (and
    its optimizer slots reset) after every clustering, because the cluster numbering changes.

    Data: ``fit(images)`` with a NumPy array numbers the images itself. A ``tf.data`` pipeline
    must put the indices in its batches (``make_ssl_dataset(images, indices=True, ...)``) and
    give DeepCluster the un-augmented images the indices refer to: :meth:`adapt` (what
    ``keras-ssl train`` does), an explicit :class:`DeepClusterCallback`, or ``"images"`` in the
    dataset's own batches. Anything that cannot carry indices is refused with a ``ValueError``.

    Balanced classes: the paper samples images uniformly over the clusters. Here every
    example's loss is weighted by ``n / (K' * n_k)`` (``n`` clustered images, ``K'`` non-empty
    clusters, ``n_k`` images in the example's cluster): the expected loss and gradient equal
    those of sampling uniformly over clusters, while the input pipeline keeps its ordinary,
    seeded, resumable and evenly sharded order (``balanced=False`` gives weights of 1).

    Distribution: all replicas use the same assignments (see :class:`ClusteringMethod`); the
    step gathers the targets of its own images and its loss is a mean of per-example terms (no
    batch-level statistics), so N replicas match one device. XLA: the gather is a static-shape
    op.

    Paper settings: AlexNet/VGG, k = 10 000 for ImageNet (10x the classes), PCA to 256
    dimensions, SGD with momentum 0.9, learning rate 0.05, weight decay 1e-5, random resized
    crops and flips (plus Sobel filtering, not applied here).

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.crop_flip`` (one view).
        num_clusters, pca_dim, whiten, kmeans_iterations, kmeans_init, clustering_examples,
            balanced: the clustering (see :class:`ClusteringMethod`; the paper: 10 000
            clusters on ImageNet, PCA-whitening to 256 dimensions).
        seed: seed of the k-means initialisations and the classifier re-initialisations.
        probe_classes: classes of the online linear probe, or ``None``.
    """

    default_preset = "crop_flip"

    loss_terms = ("loss", "pseudo_label_accuracy")

    def build_heads(self, feature_shape):
        # Created here rather than in __init__ (the signature is ClusteringMethod's).
        self.classifier = keras.layers.Dense(self.num_clusters, dtype="float32", name="classifier")
        self.classifier.build(feature_shape)

    def after_clustering(self, round_seed):
        """Re-initialises the classifier (Glorot-uniform kernel seeded by ``round_seed``, zero
        bias) and resets its optimizer slots: the cluster numbering has changed."""
        seed = int(round_seed.numpy()) % (2**31 - 1)
        kernel = keras.initializers.GlorotUniform(seed=seed)(self.classifier.kernel.shape)
        self.classifier.kernel.assign(kernel)
        self.classifier.bias.assign(tf.zeros_like(self.classifier.bias))
        optimizer = getattr(self, "optimizer", None)
        if optimizer is None:
            return
        prefixes = tuple(f"{v.path.replace('/', '_')}_" for v in self.classifier.weights)
        for slot in optimizer.variables:
            if slot.name.startswith(prefixes):
                slot.assign(tf.zeros_like(slot))

    def compute_ssl_loss(self, views, training):
        indices = view_indices(views)
        views = tuple(views)
        batch = tf.shape(views[0])[0]
        # Every view of image j is labelled with the cluster of image j.
        labels = tf.tile(self.pseudo_labels(indices), [len(views)])
        features = self.encoder(tf.concat(views, axis=0), training=training)
        logits = self.classifier(tf.cast(features, tf.float32))
        loss, accuracy = pseudo_label_terms(logits, labels, self.cluster_weights)
        return {"loss": loss, "pseudo_label_accuracy": accuracy}, features[:batch]
