"""CPC's training objective: the InfoNCE loss of every prediction step and how often the target
patch scores highest (van den Oord et al. 2018, https://arxiv.org/abs/1807.03748)."""

import tensorflow as tf

from keras_ssl.losses.contrastive import step_logits
from keras_ssl.losses.pretext_classification import classification_terms


def cpc_terms(predictions, all_z, offset=0, first_step=1):
    """CPC's loss, the mean over steps of each step's mean InfoNCE loss, and its accuracy.

    Each step's loss is the mean over its predictions of :func:`keras_ssl.losses.cpc_info_nce`
    (each prediction ``W_k c[i, r, c]`` picks its target ``z[offset + i, r + k, c]`` among every
    patch encoding of the global batch); the accuracy is the mean over steps of the fraction of
    predictions whose target gets the highest score. Under ``tf.distribute`` every replica
    passes the gathered ``all_z`` and its ``offset``: the mean over replicas is then the loss of
    one device on the global batch.

    Args:
        predictions: sequence of ``[n, rows - k, cols, d]`` tensors, one per step ``k =
            first_step, first_step + 1, ...`` (as for :func:`keras_ssl.losses.cpc_info_nce`).
        all_z: ``[N, rows, cols, d]`` patch encodings of the global batch.
        offset: index of this replica's first image in the global batch.
        first_step: the step ``k`` of ``predictions[0]``.

    Returns:
        ``(loss, accuracy)``: float32 scalars.

    References:
        van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding",
        https://arxiv.org/abs/1807.03748; Hénaff et al. 2019, "Data-Efficient Image Recognition
        with Contrastive Predictive Coding", https://arxiv.org/abs/1905.09272
    """
    step_losses, step_hits = [], []
    for step, prediction in enumerate(predictions, start=first_step):
        prediction = tf.cast(prediction, tf.float32)
        loss, accuracy = classification_terms(*step_logits(prediction, all_z, step, offset))
        step_losses.append(loss)
        step_hits.append(accuracy)
    return tf.add_n(step_losses) / len(step_losses), tf.add_n(step_hits) / len(step_hits)
