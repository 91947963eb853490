"""Cross-entropy and accuracy of pretext labels: the loss of the methods that classify a label
they make themselves (rotation, jigsaw permutation, relative patch location, CPC's targets,
split-brain's per-pixel channel bins)."""

import tensorflow as tf


def classification_terms(logits, labels):
    """Mean sparse softmax cross-entropy ``-log softmax(logits)[label]`` and accuracy.

    Args:
        logits: ``[..., classes]`` scores (any float dtype; computed in float32), e.g.
            ``[m, classes]`` per example or ``[b, H, W, classes]`` per pixel.
        labels: int32 ``[...]`` labels, the shape of ``logits`` without its last axis.

    Returns:
        ``(loss, accuracy)``: float32 scalars, the mean cross-entropy over all the examples
        (or pixels) and the fraction whose label gets the highest score.

    References:
        Gidaris et al. 2018, "Unsupervised Representation Learning by Predicting Image
        Rotations", https://arxiv.org/abs/1803.07728 (the rotation classifier's loss).
    """
    logits = tf.cast(logits, tf.float32)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
    return tf.reduce_mean(losses), tf.reduce_mean(tf.cast(hits, tf.float32))
