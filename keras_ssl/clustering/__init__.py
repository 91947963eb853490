"""Clustering in TensorFlow ops: seeded k-means (k-means++ or random initialisation, empty-cluster
re-seeding, chunked assignment) and PCA-whitening, as DeepCluster's per-epoch clustering uses
them. All functions run eagerly, in ``tf.function`` and under XLA, deterministically by seed."""

from keras_ssl.clustering.kmeans import (
    INITIALIZATIONS,
    assign,
    initial_centroids,
    kmeans,
    reseed_empty_clusters,
    squared_distances,
)
from keras_ssl.clustering.pca import apply_pca, fit_pca

__all__ = [
    "INITIALIZATIONS",
    "apply_pca",
    "assign",
    "fit_pca",
    "initial_centroids",
    "kmeans",
    "reseed_empty_clusters",
    "squared_distances",
]
