"""Invariant Information Clustering: the negative mutual information of paired cluster outputs.

IIC's loss is a function of the joint distribution of the two views' cluster assignments over
the whole batch, not a sum of per-example losses. :func:`iic_joint` all-reduces the *sum*
``sum_i p_i p'_i^T`` and the example count with :mod:`keras_ssl.distribute`, so under a
``tf.distribute`` strategy every replica holds the joint distribution of the global batch and
the same loss ``L``. As for the redundancy losses (see ``keras_ssl.losses.redundancy``), the
gradient of an all-reduce sum is the all-reduce sum of the upstream gradients, so minimising
``L / N`` on each of ``N`` replicas gives every replica's rows the single-device gradient and
the strategy's sum of weight gradients is the gradient of one device on the global batch.
"""

import sys

import keras
import tensorflow as tf

from keras_ssl import distribute

#: Default floor for the joint and marginal probabilities (the official IIC code's
#: ``sys.float_info.epsilon``): keeps ``ln`` finite where an entry is 0.
EPSILON = sys.float_info.epsilon


def check_epsilon(epsilon):
    """Raises a ``ValueError`` unless ``epsilon`` is a number in ``(0, 1)``."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon < 1:
        raise ValueError(
            f"`epsilon` must be a number in (0, 1); received {epsilon!r}. Fix: keep the default "
            f"({EPSILON}) or use a small value such as 1e-8."
        )


def _check_probabilities(probs_a, probs_b):
    probs_a = tf.cast(tf.convert_to_tensor(probs_a), tf.float32)
    probs_b = tf.cast(tf.convert_to_tensor(probs_b), tf.float32)
    if probs_a.shape.rank != 2 or probs_b.shape.rank != 2:
        raise ValueError(
            f"`probs_a` and `probs_b` must be rank 2 [batch, clusters]; received shapes "
            f"{tuple(probs_a.shape)} and {tuple(probs_b.shape)}. Fix: pass the softmax outputs "
            "of the clustering head for the two views."
        )
    if (
        probs_a.shape.is_fully_defined()
        and probs_b.shape.is_fully_defined()
        and probs_a.shape != probs_b.shape
    ):
        raise ValueError(
            f"`probs_a` and `probs_b` must have the same shape (row i of both = the two views "
            f"of image i); received {tuple(probs_a.shape)} and {tuple(probs_b.shape)}. Fix: "
            "run both views through the same head."
        )
    clusters = probs_a.shape[-1]
    if clusters is not None and clusters < 2:
        raise ValueError(
            f"IIC needs at least 2 clusters; received probabilities over {clusters}. Fix: use "
            "a softmax head with C >= 2 outputs (e.g. the number of classes)."
        )
    return probs_a, probs_b


def iic_joint(probs_a, probs_b):
    """The symmetrised joint distribution ``P`` of the two views' clusters over the global batch.

    ``P = sym(sum_i p_i p'_i^T / n)`` with ``sym(M) = (M + M^T) / 2``, renormalised to sum to 1,
    where the sum runs over the ``n`` images of the global batch (all replicas).

    Args:
        probs_a: ``[n, C]`` cluster probabilities (softmax outputs) of the first view of this
            replica's ``n`` images.
        probs_b: ``[n, C]`` cluster probabilities of the second view of the same images.

    Returns:
        ``[C, C]`` float32 joint distribution, symmetric, non-negative, summing to 1.
    """
    probs_a, probs_b = _check_probabilities(probs_a, probs_b)
    outer = tf.matmul(probs_a, probs_b, transpose_a=True)
    count = tf.cast(tf.shape(probs_a)[0], tf.float32)
    outer = distribute.all_reduce_sum(outer)
    count = distribute.all_reduce_sum(count)
    joint = outer / count
    joint = (joint + tf.transpose(joint)) / 2.0
    return joint / tf.reduce_sum(joint)


def iic_loss(probs_a, probs_b, epsilon=EPSILON):
    """IIC: minus the mutual information between the cluster assignments of two views.

    With ``P`` the symmetrised ``[C, C]`` joint distribution of the global batch
    (:func:`iic_joint`) and ``P_c``, ``P_c'`` its row and column marginals, the loss is
    ``-I(z, z') = -sum_{c, c'} P_cc' ln(P_cc' / (P_c P_c'))``. Entries of ``P`` and of the
    marginals below ``epsilon`` are raised to ``epsilon`` before the logarithm (as the official
    code does), so the value and its gradient stay finite when some clusters are empty. The
    loss lies in ``[-ln C, 0]``: ``0`` for independent (e.g. constant) outputs, ``-ln C`` for a
    perfect one-to-one assignment with uniform marginals (``P = I / C``).

    Args:
        probs_a: ``[n, C]`` cluster probabilities (softmax outputs) of the first view of this
            replica's ``n`` images.
        probs_b: ``[n, C]`` cluster probabilities of the second view of the same images.
        epsilon: floor of the probabilities inside the logarithm.

    Returns:
        A float32 scalar, the loss of the global batch (the same on every replica under a
        ``tf.distribute`` strategy; see the module docstring for the gradients).

    References:
        Ji, Henriques & Vedaldi 2019, "Invariant Information Clustering for Unsupervised Image
        Classification and Segmentation", Eq. 1-3, https://arxiv.org/abs/1807.06653
    """
    check_epsilon(epsilon)
    joint = tf.maximum(iic_joint(probs_a, probs_b), epsilon)
    marginal_rows = tf.maximum(tf.reduce_sum(joint, axis=1, keepdims=True), epsilon)
    marginal_cols = tf.maximum(tf.reduce_sum(joint, axis=0, keepdims=True), epsilon)
    log_ratio = tf.math.log(joint) - tf.math.log(marginal_rows) - tf.math.log(marginal_cols)
    return -tf.reduce_sum(joint * log_ratio)


@keras.saving.register_keras_serializable(package="keras_ssl")
class IICLoss(keras.losses.Loss):
    """``keras.losses.Loss`` form of :func:`iic_loss`.

    Call it as ``loss(probs_a, probs_b)``: the cluster probabilities of the two views. The value
    is a batch-level scalar (no per-example reduction applies).

    Args:
        epsilon: floor of the probabilities inside the logarithm.
        name: name of the loss.
    """

    def __init__(self, epsilon=EPSILON, name="iic", **kwargs):
        super().__init__(name=name, **kwargs)
        check_epsilon(epsilon)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        return iic_loss(y_true, y_pred, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
