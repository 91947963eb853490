"""Classification losses of the colour methods: class-rebalanced cross-entropy."""

import keras
import tensorflow as tf


def rebalanced_cross_entropy(targets, logits, class_weights):
    """Class-rebalanced multinomial cross-entropy (Zhang et al. 2016, Eq. 2).

    Per pixel: ``-v(q*) sum_q Z_q log softmax(s)_q`` where ``Z`` is the (soft-encoded) target
    distribution over the ab bins, ``s`` the predicted logits and ``v(q*)`` the rebalancing
    weight of the target's most likely bin ``q* = argmax_q Z_q``.

    Args:
        targets: ``[..., Q]`` target distributions (rows sum to 1).
        logits: ``[..., Q]`` predicted logits.
        class_weights: ``[Q]`` weights ``v`` (``color.rebalancing_weights``; ones for the plain
            cross-entropy).

    Returns:
        float32 ``[...]`` per-pixel losses.

    References:
        Zhang, Isola, Efros 2016, "Colorful Image Colorization", https://arxiv.org/abs/1603.08511
    """
    targets = tf.cast(tf.convert_to_tensor(targets), tf.float32)
    logits = tf.cast(tf.convert_to_tensor(logits), tf.float32)
    class_weights = tf.cast(tf.convert_to_tensor(class_weights), tf.float32)
    if targets.shape[-1] is not None and logits.shape[-1] is not None:
        if targets.shape[-1] != logits.shape[-1] or class_weights.shape[-1] != logits.shape[-1]:
            raise ValueError(
                f"`targets`, `logits` and `class_weights` must have the same number of bins Q "
                f"on the last axis; received shapes {tuple(targets.shape)}, "
                f"{tuple(logits.shape)} and {tuple(class_weights.shape)}. Fix: soft-encode the "
                "targets over the same bins the model predicts."
            )
    cross_entropy = -tf.reduce_sum(targets * tf.nn.log_softmax(logits, axis=-1), axis=-1)
    return tf.gather(class_weights, tf.argmax(targets, axis=-1)) * cross_entropy


@keras.saving.register_keras_serializable(package="keras_ssl")
class RebalancedCrossEntropy(keras.losses.Loss):
    """``keras.losses.Loss`` wrapper of :func:`rebalanced_cross_entropy`.

    ``y_true`` are target distributions ``[..., Q]``, ``y_pred`` logits ``[..., Q]``.

    Args:
        class_weights: ``Q`` rebalancing weights (a list, or ``None`` for all ones).
    """

    def __init__(self, class_weights=None, name="rebalanced_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]

    def call(self, y_true, y_pred):
        weights = self.class_weights
        if weights is None:
            weights = tf.ones(tf.shape(y_pred)[-1:], tf.float32)
        return rebalanced_cross_entropy(y_true, y_pred, weights)

    def get_config(self):
        return {**super().get_config(), "class_weights": self.class_weights}
