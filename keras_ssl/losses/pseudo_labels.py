"""DeepCluster's loss: cross-entropy of every example on its pseudo-label (the cluster of its
image in the last clustering), weighted to balance the clusters.

The loss is a mean of per-example terms with no batch-level statistic, so under
``tf.distribute`` each replica's mean over its own examples averages to the global-batch loss.
"""

import keras
import tensorflow as tf


def pseudo_label_terms(logits, labels, cluster_weights):
    """Cluster-balanced cross-entropy ``mean_i w[y_i] * -log softmax(logits_i)[y_i]`` and the
    accuracy on the pseudo-labels ``y``; examples with ``y_i = -1`` (images not clustered yet)
    weigh 0 and are never counted as correct.

    Args:
        logits: ``[m, K]`` float32 classifier scores.
        labels: ``int32 [m]`` pseudo-labels in ``[0, K)``, or ``-1``.
        cluster_weights: ``[K]`` weight of each cluster
            (``keras_ssl.clustering.features.balancing_weights``).

    Returns:
        ``(loss, accuracy)``: float32 scalars, means over all ``m`` examples.

    References:
        Caron et al. 2018, "Deep Clustering for Unsupervised Learning of Visual Features",
        https://arxiv.org/abs/1807.05520
    """
    targets = tf.maximum(labels, 0)
    losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    weights = tf.where(labels >= 0, tf.gather(cluster_weights, targets), 0.0)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
    return tf.reduce_mean(weights * losses), tf.reduce_mean(correct)
