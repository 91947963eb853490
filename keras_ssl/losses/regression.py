"""Regression losses of the non-contrastive methods: BYOL's normalised MSE, SimSiam's cosine.

Both compare a prediction with a target embedding of the other view, row for row, and need no
negatives, so they are per-example and need nothing from other replicas: the mean of the
returned losses over all replicas equals the single-device loss on the global batch. The
target is passed in as a value; the caller applies the stop-gradient (``tf.stop_gradient``)
the method requires, so the same function serves the ablations without one.
"""

import keras
import tensorflow as tf


def _check_pair(prediction, target):
    if prediction.shape.rank != 2 or target.shape.rank != 2:
        raise ValueError(
            f"`prediction` and `target` must be rank 2 [batch, dim]; received shapes "
            f"{tuple(prediction.shape)} and {tuple(target.shape)}. Fix: flatten or pool the "
            "embeddings first."
        )
    if (
        prediction.shape[-1] is not None
        and target.shape[-1] is not None
        and (prediction.shape[-1] != target.shape[-1])
    ):
        raise ValueError(
            f"`prediction` and `target` must have the same embedding size; received "
            f"{prediction.shape[-1]} and {target.shape[-1]}. Fix: give the predictor the "
            "projector's output size."
        )


def cosine_similarity(prediction, target):
    """Row-wise cosine similarity ``<p, z> / (|p| |z|)`` in float32, ``[batch]``.

    A zero row has similarity 0 with everything (``tf.math.l2_normalize`` maps it to 0).
    """
    prediction = tf.cast(tf.convert_to_tensor(prediction), tf.float32)
    target = tf.cast(tf.convert_to_tensor(target), tf.float32)
    _check_pair(prediction, target)
    prediction = tf.math.l2_normalize(prediction, axis=1)
    target = tf.math.l2_normalize(target, axis=1)
    return tf.reduce_sum(prediction * target, axis=1)


def normalized_mse(prediction, target):
    """BYOL's loss: the squared distance of the L2-normalised rows, ``2 - 2 cos(p, z)``.

    ``|| p / |p| - z / |z| ||^2 = 2 - 2 <p, z> / (|p| |z|)``, in ``[0, 4]``.

    Args:
        prediction: ``[n, d]`` online predictions ``q`` of one view.
        target: ``[n, d]`` target projections ``z'`` of the other view, row for row (pass
            ``tf.stop_gradient(z')`` for BYOL).

    Returns:
        ``[n]`` float32 losses.

    References:
        Grill et al. 2020, "Bootstrap Your Own Latent: A New Approach to Self-Supervised
        Learning", Eq. 2, https://arxiv.org/abs/2006.07733
    """
    return 2.0 - 2.0 * cosine_similarity(prediction, target)


def negative_cosine_similarity(prediction, target):
    """SimSiam's ``D(p, z) = -cos(p, z) = -<p, z> / (|p| |z|)``, in ``[-1, 1]``.

    Args:
        prediction: ``[n, d]`` predictions ``p`` of one view.
        target: ``[n, d]`` projections ``z`` of the other view, row for row (pass
            ``tf.stop_gradient(z)`` for SimSiam).

    Returns:
        ``[n]`` float32 losses.

    References:
        Chen & He 2021, "Exploring Simple Siamese Representation Learning", Eq. 1,
        https://arxiv.org/abs/2011.10566
    """
    return -cosine_similarity(prediction, target)


@keras.saving.register_keras_serializable(package="keras_ssl")
class NormalizedMSE(keras.losses.Loss):
    """``keras.losses.Loss`` form of :func:`normalized_mse`.

    Call it as ``loss(target, prediction)`` (Keras' ``y_true, y_pred`` order); the value is
    symmetric in the two arguments.
    """

    def __init__(self, name="normalized_mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return normalized_mse(y_pred, y_true)


@keras.saving.register_keras_serializable(package="keras_ssl")
class NegativeCosineSimilarity(keras.losses.Loss):
    """``keras.losses.Loss`` form of :func:`negative_cosine_similarity`.

    Call it as ``loss(target, prediction)`` (Keras' ``y_true, y_pred`` order); the value is
    symmetric in the two arguments.
    """

    def __init__(self, name="negative_cosine_similarity", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return negative_cosine_similarity(y_pred, y_true)
