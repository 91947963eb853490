"""``ClusteringMethod``: the base of methods trained on k-means pseudo-labels of their own
features, re-clustered before every epoch (DeepCluster).

It owns the clustering arguments and state, the clustering step (:meth:`cluster`, run by
:class:`~keras_ssl.methods.DeepClusterCallback`), the pseudo-label of every dataset index, and
``fit`` on batches that carry each image's dataset index
(:mod:`keras_ssl.methods.indexed_batches`). A subclass builds its heads and trains them on
:meth:`pseudo_labels` in ``compute_ssl_loss``.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.clustering import INITIALIZATIONS
from keras_ssl.clustering.features import balancing_weights, cluster_features, embed_images
from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.deepcluster_callback import DeepClusterCallback
from keras_ssl.methods.indexed_batches import (
    INDEXED_BATCHES,
    INDEXED_FIX,
    IndexedViews,
    batch_indices,
    check_indices,
    image_array,
    index_fit_input,
)
from keras_ssl.validation import check_int


class ClusteringMethod(SSLMethod):
    """Base of the methods trained on the k-means clusters of their features (see the module).

    **Clustering** (:meth:`cluster`): the current encoder (inference mode) embeds every
    un-augmented training image; the features are PCA-whitened to ``pca_dim`` dimensions,
    L2-normalised and clustered by k-means into ``num_clusters`` groups (TensorFlow ops: seeded
    k-means++, empty clusters re-seeded, deterministic by ``seed`` and the clustering round), and
    the cluster of every image is stored in ``assignments``, indexed by the image's position in
    the training set; :meth:`after_clustering` then resets what the cluster numbering invalidates.

    State (``keras.Variable``\\ s, saved with the model and restored by checkpoints):
    ``assignments`` (``int32 [clustering_examples]``, ``-1`` for indices not clustered),
    ``cluster_weights``, the last clustering's ``pca_mean``, ``pca_projection`` and
    ``centroids``, and ``clustering_round`` (seeds the next clustering). Clustering runs outside
    the step on the primary copies of the variables and assigns the mirrored state, so all
    replicas use the same assignments.

    Args:
        encoder, augmenter, probe_classes: see :class:`SSLMethod`.
        num_clusters: ``k``, about 10x the expected number of classes (DeepCluster: 10 000 on
            ImageNet; 100 for 10-class data).
        pca_dim: PCA output dimension (DeepCluster: 256); capped at the feature dimension ``D``.
        whiten: whiten the PCA components (DeepCluster's PCA-whitening).
        kmeans_iterations: Lloyd iterations per clustering (faiss default: 20).
        kmeans_init: ``"kmeans++"`` or ``"random"``.
        clustering_examples: the most training images (dataset indices ``0 ..
            clustering_examples - 1``); sizes ``assignments``. All training images are
            clustered every epoch, as in DeepCluster.
        balanced: weight examples inversely to their cluster's size
            (:func:`~keras_ssl.clustering.features.balancing_weights`, ``cluster_weights``).
        seed: seed of the k-means initialisations (and of :meth:`after_clustering`).
    """

    #: Batches must carry each image's dataset index (``keras_ssl.experiment`` reads this).
    needs_example_indices = True

    def __init__(
        self,
        encoder,
        augmenter=None,
        num_clusters=100,
        pca_dim=256,
        whiten=True,
        kmeans_iterations=20,
        kmeans_init="kmeans++",
        clustering_examples=100_000,
        balanced=True,
        seed=0,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(encoder, augmenter=augmenter, probe_classes=probe_classes, **kwargs)
        check_int(num_clusters, "num_clusters", 2, "use about 10x the expected classes.")
        check_int(pca_dim, "pca_dim", 1, "use 256 (the paper) or the feature dimension.")
        check_int(kmeans_iterations, "kmeans_iterations", 1, "use 20.")
        check_int(
            clustering_examples,
            "clustering_examples",
            num_clusters,
            f"use at least num_clusters={num_clusters}, and at least the number of training "
            "images.",
        )
        check_int(seed, "seed", 0, "use a non-negative integer seed, e.g. 0.")
        if kmeans_init not in INITIALIZATIONS:
            raise ValueError(
                f"`kmeans_init` must be one of {INITIALIZATIONS}; received {kmeans_init!r}. "
                "Fix: use 'kmeans++'."
            )
        self.num_clusters = num_clusters
        self.pca_dim = pca_dim
        self.whiten = whiten
        self.kmeans_iterations = kmeans_iterations
        self.kmeans_init = kmeans_init
        self.clustering_examples = clustering_examples
        self.balanced = balanced
        self.seed = seed
        self.projected_dim = min(pca_dim, self.feature_dim)
        self.clustering_images = None  # set by adapt(): what fit(dataset) clusters

        def state(name, shape, dtype="float32", initializer="zeros"):
            return self.add_weight(
                shape=shape,
                dtype=dtype,
                initializer=initializer,
                trainable=False,
                autocast=False,
                name=name,
            )

        self.pca_mean = state("pca_mean", (self.feature_dim,))
        self.pca_projection = state("pca_projection", (self.feature_dim, self.projected_dim))
        self.centroids = state("centroids", (num_clusters, self.projected_dim))
        self.cluster_weights = state("cluster_weights", (num_clusters,), initializer="ones")
        self.assignments = state(
            "assignments", (clustering_examples,), "int32", keras.initializers.Constant(-1)
        )
        self.clustering_round = state("clustering_round", (), "int32")

    # --------------------------------------------------------------------- clustering
    def adapt(self, images):
        """Sets the un-augmented training images that ``fit`` on a dataset clusters.

        ``images[i]`` must be the image whose batches carry index ``i``, as
        ``make_ssl_dataset(images, indices=True, ...)`` numbers them; ``keras-ssl train`` calls
        this with its training images. ``fit`` on a NumPy array clusters that array instead.

        Args:
            images: ``[N, H, W, C]`` training images (``uint8`` or float in ``[0, 1]``),
                ``num_clusters <= N <= clustering_examples``.

        Returns:
            The images as a rank-4 NumPy array.
        """
        images = image_array(images, self.image_shape)
        self._check_count(len(images))
        self.clustering_images = images
        return images

    def cluster(self, images, indices=None, batch_size=512):
        """The clustering step: k-means on the current features of the un-augmented ``images``.

        Embeds ``images`` with the current encoder (inference mode), fits the PCA(-whitening),
        L2-normalises and clusters with k-means (seed: ``seed`` and the clustering round), then
        stores every image's cluster at its index in ``assignments`` (other indices get
        ``-1``), the balancing weights, PCA and centroids, and calls :meth:`after_clustering`.

        Args:
            images: ``[n, H, W, C]`` un-augmented training images (``uint8`` or float in
                ``[0, 1]``), ``n >= num_clusters``.
            indices: the dataset index of each image (``[n]`` distinct integers in
                ``[0, clustering_examples)``); default ``0 .. n - 1``.
            batch_size: images per encoder call.

        Returns:
            ``int32`` NumPy array ``[n]``: the cluster of each image.
        """
        images = image_array(images, self.image_shape)
        indices = check_indices(indices, len(images), self.clustering_examples)
        round_seed = self._round_seed(self.clustering_round)
        mean, projection, centroids, assignments = self._cluster_images(
            images, batch_size, round_seed
        )
        assignments = assignments.numpy()
        weights = balancing_weights(assignments, self.num_clusters, self.balanced)
        table = np.full(self.clustering_examples, -1, np.int32)
        table[indices] = assignments
        self.pca_mean.assign(mean)
        self.pca_projection.assign(projection)
        self.centroids.assign(centroids)
        self.cluster_weights.assign(weights)
        self.assignments.assign(table)
        self.after_clustering(round_seed)
        self.clustering_round.assign_add(1)
        return assignments

    def after_clustering(self, round_seed):
        """Hook: resets what a new cluster numbering invalidates (DeepCluster: its classifier);
        ``round_seed`` is the clustering's seed (an int64 scalar tensor)."""

    def predict_clusters(self, images, batch_size=512):
        """The clustering of ``images`` by the current encoder, leaving the model's state
        alone: PCA-whitening, L2 normalisation and k-means of their features with the seed of
        the last clustering (so right after :meth:`cluster` on the same images it returns the
        same assignments).

        Args:
            images: ``[N, H, W, C]`` images, ``N >= num_clusters``.
            batch_size: images per encoder call.

        Returns:
            ``int32`` NumPy array ``[N]`` of cluster ids.
        """
        images = image_array(images, self.image_shape)
        last = tf.maximum(tf.cast(self.clustering_round, tf.int64) - 1, 0)
        *_, clusters = self._cluster_images(images, batch_size, self._round_seed(last), False)
        return clusters.numpy()

    def pseudo_labels(self, indices):
        """The pseudo-labels of the images with these dataset indices: their clusters in the
        last clustering (``assignments[indices]``); ``-1`` for an index that was not clustered.

        Args:
            indices: integer tensor ``[n]`` of dataset indices.

        Returns:
            ``int32 [n]`` tensor of cluster ids.
        """
        indices = tf.reshape(tf.cast(indices, tf.int32), [-1])
        inside = (indices >= 0) & (indices < self.clustering_examples)
        safe = tf.clip_by_value(indices, 0, self.clustering_examples - 1)
        return tf.where(inside, tf.gather(self.assignments, safe), -1)

    def _cluster_images(self, images, batch_size, round_seed, capacity=True):
        """``(mean, projection, centroids, assignments)`` of the current features of
        ``images`` (see :func:`~keras_ssl.clustering.features.cluster_features`)."""
        self._check_count(len(images), capacity)
        features = embed_images(self.encoder, images, batch_size)
        return cluster_features(
            tf.constant(features, tf.float32),
            self.projected_dim,
            self.whiten,
            self.num_clusters,
            self.kmeans_iterations,
            round_seed,
            self.kmeans_init,
        )

    def _round_seed(self, clustering_round):
        return tf.constant(self.seed * 100_003, tf.int64) + tf.cast(clustering_round, tf.int64)

    def _check_count(self, count, capacity=True):
        if count < self.num_clusters:
            raise ValueError(
                f"{type(self).__name__} needs at least num_clusters={self.num_clusters} images to "
                f"cluster; received {count}. Fix: train on more images or lower num_clusters."
            )
        if capacity and count > self.clustering_examples:
            raise ValueError(
                f"{type(self).__name__} stores the cluster of at most clustering_examples="
                f"{self.clustering_examples} images; received {count} training images. Fix: "
                f"construct it with clustering_examples={count} (or more)."
            )

    # --------------------------------------------------------------------------- step
    def unpack_batch(self, data):
        """``(IndexedViews(views, indices), labels)``: the views of
        :meth:`SSLMethod.unpack_batch` with the batch's dataset indices (a ``ValueError`` when
        the batch has none)."""
        indices = batch_indices(data)
        views, labels = super().unpack_batch(data)
        if indices is None:
            raise ValueError(f"{INDEXED_BATCHES}; received a batch without them. {INDEXED_FIX}")
        return IndexedViews(views, tf.reshape(tf.cast(indices, tf.int32), [-1])), labels

    def fit(self, x=None, y=None, batch_size=None, callbacks=None, **kwargs):
        """``SSLMethod.fit`` on batches that carry each image's dataset index, with a
        :class:`DeepClusterCallback` (clustering before every epoch) added when ``callbacks``
        has none.

        ``x`` is a NumPy array of images (numbered ``0 .. N - 1`` here and clustered), a dict
        of NumPy arrays (``"images"`` and/or ``"views"``, optional ``"labels"`` and
        ``"indices"``), or a ``tf.data.Dataset`` whose batches hold ``"indices"``; the added
        callback clusters the images given to :meth:`adapt`, else the dataset's ``"images"``.
        """
        callbacks = list(callbacks or [])
        explicit = any(isinstance(c, DeepClusterCallback) for c in callbacks)
        x, images = index_fit_input(
            x,
            check_images=lambda images: self._check_fit_input(images, batch_size),
            adapted=self.clustering_images,
            needs_images=not explicit,
        )
        if not explicit:
            callbacks.insert(0, DeepClusterCallback(images))
        return super().fit(x, y, batch_size=batch_size, callbacks=callbacks, **kwargs)

    def get_config(self):
        return {
            **super().get_config(),
            "num_clusters": self.num_clusters,
            "pca_dim": self.pca_dim,
            "whiten": self.whiten,
            "kmeans_iterations": self.kmeans_iterations,
            "kmeans_init": self.kmeans_init,
            "clustering_examples": self.clustering_examples,
            "balanced": self.balanced,
            "seed": self.seed,
        }
