"""Features to cluster: an encoder's features of NumPy images, DeepCluster's PCA-whitening,
L2 normalisation and k-means of them, and the loss weights that balance the clusters."""

import weakref

import numpy as np
import tensorflow as tf

from keras_ssl.clustering.kmeans import kmeans
from keras_ssl.clustering.pca import apply_pca, fit_pca
from keras_ssl.images import to_float_images
from keras_ssl.validation import check_int


@tf.function(reduce_retracing=True)
def cluster_features(features, pca_dim, whiten, num_clusters, iterations, seed, init):
    """DeepCluster's clustering of ``features`` (``float32 [N, D]``): PCA(-whitening) to
    ``pca_dim`` dimensions, L2 normalisation and k-means into ``num_clusters`` groups, as one
    traced computation.

    Returns:
        ``(mean, projection, centroids, assignments)``: the PCA, the centroids
        ``[num_clusters, pca_dim]`` and the cluster of every row (``int32 [N]``).
    """
    mean, projection = fit_pca(features, pca_dim, whiten=whiten)
    points = tf.math.l2_normalize(apply_pca(features, mean, projection), axis=1)
    centroids, assignments = kmeans(
        points, num_clusters, num_iterations=iterations, seed=seed, init=init
    )
    return mean, projection, centroids, assignments


_EMBEDDERS = weakref.WeakKeyDictionary()


def embed_images(encoder, images, batch_size=512):
    """``float32 [N, D]`` NumPy features of ``images`` under ``encoder(x, training=False)``.

    Fixed-size batches (the last one padded) go through one cached ``tf.function`` per
    encoder, so a pass traces once; an encoder built under a ``tf.distribute`` strategy is read
    in cross-replica context (the primary copies of its variables).

    Args:
        encoder: ``keras.Model`` mapping float ``[0, 1]`` images to ``[batch, D]``.
        images: ``[N, H, W, C]`` NumPy images (``uint8`` or float in ``[0, 1]``), ``N >= 1``.
        batch_size: images per encoder call.
    """
    check_int(batch_size, "batch_size", 1, "use e.g. 512.")
    embed = _EMBEDDERS.get(encoder)
    if embed is None:
        reference = weakref.ref(encoder)  # the cache must not keep the encoder alive

        @tf.function(reduce_retracing=True)
        def embed(batch):
            return tf.cast(reference()(to_float_images(batch), training=False), tf.float32)

        _EMBEDDERS[encoder] = embed
    size = min(batch_size, len(images))
    features = []
    for start in range(0, len(images), size):
        chunk = images[start : start + size]
        count = len(chunk)
        if count < size:
            chunk = np.concatenate([chunk, np.zeros((size - count, *chunk.shape[1:]), chunk.dtype)])
        features.append(embed(tf.constant(chunk)).numpy()[:count])
    return np.concatenate(features)


def balancing_weights(assignments, num_clusters, balanced=True):
    """DeepCluster's per-cluster loss weights ``n / (K' * n_k)`` (``float32 [num_clusters]``).

    ``n`` is the number of clustered examples, ``K'`` the number of non-empty clusters and
    ``n_k`` the size of cluster ``k`` (empty clusters count as size 1). Weighting every
    example's loss by its cluster's weight gives the expected loss and gradient of sampling
    uniformly over the clusters, as DeepCluster samples, with an ordinary input pipeline; the
    weights of the examples average to 1.

    Args:
        assignments: ``int [n]`` NumPy array, the cluster of every example.
        num_clusters: ``K``.
        balanced: ``False`` gives weights of 1.
    """
    counts = np.bincount(assignments, minlength=num_clusters).astype(np.float32)
    if not balanced:
        return np.ones_like(counts)
    weights = len(assignments) / (np.count_nonzero(counts) * np.maximum(counts, 1.0))
    return weights.astype(np.float32)
