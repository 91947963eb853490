"""Unsupervised clustering accuracy: the best one-to-one matching of clusters to classes.

:func:`clustering_accuracy` scores cluster ids against labels;
``keras_ssl.callbacks.ClusteringProbe`` logs it during ``fit`` for methods that predict clusters
(``model.predict_clusters(images)``: IIC, DeepCluster).
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

from keras_ssl.evaluation.features import check_labels


def contingency_table(labels, clusters, num_classes=None, num_clusters=None):
    """Counts ``table[k, c]`` of examples in cluster ``k`` with class ``c``.

    Args:
        labels: ``[N]`` integer class ids.
        clusters: ``[N]`` integer cluster ids (e.g. ``argmax`` of a clustering head).
        num_classes: number of classes (default: ``max(labels) + 1``).
        num_clusters: number of clusters (default: ``max(clusters) + 1``).

    Returns:
        ``int64`` NumPy array ``[num_clusters, num_classes]``.
    """
    labels_array = np.asarray(labels)
    labels = check_labels(labels_array, len(labels_array) if labels_array.ndim else 0, num_classes)
    clusters = check_labels(
        clusters, len(labels), num_clusters, name="clusters", features_name="labels"
    )
    if np.any(labels < 0) or np.any(clusters < 0):
        raise ValueError(
            "`labels` and `clusters` must be non-negative integer ids; received negative values. "
            "Fix: pass class ids in [0, C) and cluster ids in [0, K)."
        )
    num_classes = num_classes or int(labels.max(initial=0)) + 1
    num_clusters = num_clusters or int(clusters.max(initial=0)) + 1
    table = np.zeros((num_clusters, num_classes), np.int64)
    np.add.at(table, (clusters, labels), 1)
    return table


def clustering_accuracy(
    labels, clusters, num_classes=None, num_clusters=None, return_mapping=False
):
    """Unsupervised clustering accuracy (ACC) under the best one-to-one cluster-to-class map.

    ``ACC = max_m (1 / N) sum_i [labels_i == m(clusters_i)]`` over one-to-one maps ``m`` from
    clusters to classes, found with the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment`` on the contingency table), as IIC and the
    clustering literature report it. With more clusters than classes (over-clustering) only
    ``num_classes`` clusters get a class and the examples of the others count as errors.

    Args:
        labels: ``[N]`` integer ground-truth classes.
        clusters: ``[N]`` integer cluster ids.
        num_classes: number of classes (default: ``max(labels) + 1``).
        num_clusters: number of clusters (default: ``max(clusters) + 1``).
        return_mapping: also return the map as a dict ``{cluster: class}``.

    Returns:
        The accuracy in ``[0, 1]`` as a float; with ``return_mapping=True`` a tuple
        ``(accuracy, mapping)``.

    Raises:
        ValueError: for labels and clusters of different lengths, the wrong rank, non-integer,
            negative or out-of-range ids, or no examples.

    References:
        Ji, Henriques & Vedaldi 2019, "Invariant Information Clustering", Sec. 4.1,
        https://arxiv.org/abs/1807.06653
    """
    if np.asarray(labels).size == 0:
        raise ValueError(
            "`labels` must hold at least one example; received an empty array. Fix: pass the "
            "labels and cluster ids of the evaluation set."
        )
    table = contingency_table(labels, clusters, num_classes, num_clusters)
    rows, cols = linear_sum_assignment(table, maximize=True)
    accuracy = float(table[rows, cols].sum() / table.sum())
    if return_mapping:
        return accuracy, {int(k): int(c) for k, c in zip(rows, cols)}
    return accuracy
