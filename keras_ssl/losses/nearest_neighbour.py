"""NNCLR's nearest-neighbour positives and its contrastive loss (Dwibedi et al. 2021,
arXiv:2104.14548)."""

import tensorflow as tf

from keras_ssl.validation import check_positive_number


def _check_pair(a, b, names):
    if a.shape.rank != 2 or b.shape.rank != 2 or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must be [rows, dim] with the same dim; received "
            f"shapes {tuple(a.shape)} and {tuple(b.shape)}. Fix: pass projections of the size "
            "the support set was built for (projection_dim)."
        )


def nearest_neighbours(projections, support):
    """The support-set row closest to each projection by cosine similarity (``NN(z, Q)``).

    Args:
        projections: ``[n, d]`` queries ``z``.
        support: ``[m, d]`` support set ``Q``.

    Returns:
        ``(neighbours [n, d], indices [n])``: ``neighbours[i] = support[indices[i]]`` with
        ``indices[i] = argmax_j cos(z_i, Q_j)`` (float32; ties go to the lowest row).
    """
    projections = tf.cast(tf.convert_to_tensor(projections), tf.float32)
    support = tf.cast(tf.convert_to_tensor(support), tf.float32)
    _check_pair(projections, support, ("projections", "support"))
    similarity = tf.matmul(
        tf.math.l2_normalize(projections, axis=1),
        tf.math.l2_normalize(support, axis=1),
        transpose_b=True,
    )
    indices = tf.argmax(similarity, axis=1, output_type=tf.int32)
    return tf.gather(support, indices), indices


def nnclr_loss(neighbours, predictions, temperature=0.1, all_predictions=None, offset=0):
    """NNCLR's loss (Eq. 2): each neighbour must pick its own image's prediction of the other view.

    With cosine similarities, the loss of image ``i`` is
    ``-log(exp(cos(NN_i, p_i) / t) / sum_k exp(cos(NN_i, p_k) / t))``, ``k`` over the
    ``N`` images of the (global) batch: the other images' predictions are the negatives.

    Args:
        neighbours: ``[n, d]`` nearest neighbours ``NN(z_i, Q)`` of this replica's projections
            of one view (constants: the caller stops their gradient).
        predictions: ``[n, d]`` predictions ``p_i`` of the other view of the same images.
        temperature: softmax temperature ``t`` (paper: 0.1).
        all_predictions: ``[N, d]`` predictions of the global batch (``predictions``
            gathered over replicas); defaults to ``predictions`` (one device).
        offset: row of this replica's first image in the global batch.

    Returns:
        ``[n]`` float32 losses; their mean over the global batch is one direction of the loss.

    References:
        Dwibedi et al. 2021, "With a Little Help from My Friends: Nearest-Neighbor Contrastive
        Learning of Visual Representations", https://arxiv.org/abs/2104.14548
    """
    temperature = check_positive_number(temperature, "temperature", fix="use 0.1 (NNCLR).")
    neighbours = tf.cast(tf.convert_to_tensor(neighbours), tf.float32)
    predictions = tf.cast(tf.convert_to_tensor(predictions), tf.float32)
    _check_pair(neighbours, predictions, ("neighbours", "predictions"))
    keys = predictions if all_predictions is None else tf.cast(all_predictions, tf.float32)
    logits = tf.matmul(
        tf.math.l2_normalize(neighbours, axis=1),
        tf.math.l2_normalize(keys, axis=1),
        transpose_b=True,
    )
    labels = tf.range(tf.shape(neighbours)[0]) + tf.cast(offset, tf.int32)
    logits = logits / temperature
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
