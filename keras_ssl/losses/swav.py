"""SwAV's losses: Sinkhorn-Knopp codes and the swapped prediction of one crop's code by another.

The codes are an equipartitioned assignment of the (global) batch to the prototypes, computed
without gradient by a few Sinkhorn-Knopp iterations on ``exp(scores / epsilon)``. Under a
``tf.distribute`` strategy :func:`sinkhorn_knopp` all-reduces the two batch-level statistics
(the total mass and the per-prototype row sums) and counts the examples of every replica, so
each replica's codes are the rows of the single-device codes of the global batch; the column
normalisation is per example and stays local. :func:`swav_loss` has no cross-example terms, so
each replica's mean over its own examples averages to the global-batch loss.
"""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.validation import check_positive_number


def _check_positive(value, name, example):
    if not (tf.is_tensor(value) or isinstance(value, keras.Variable)):
        check_positive_number(value, name, f"use SwAV's {name}={example}.")


def sinkhorn_knopp(scores, epsilon=0.05, iterations=3, mask=None):
    """SwAV's codes: ``Q = diag(u) exp(scores / epsilon) diag(v)`` with equal prototype mass.

    Starting from ``Q = exp(scores / epsilon)`` normalised to total mass 1, each iteration
    rescales every prototype (row of the paper's ``K x B`` matrix) to mass ``1 / K`` and then
    every example (column) to mass ``1 / B``; the result is multiplied by ``B`` so that each
    example's code sums to 1 (the paper's Eq. 3 solved as in its Algorithm 1 /
    ``distributed_sinkhorn``). Scores are shifted by their global maximum first (a constant,
    which the first normalisation cancels), so small ``epsilon`` neither overflows nor
    underflows.

    Under ``tf.distribute`` the total mass, the row sums, the shift and ``B`` are global (all-
    reduced / gathered over replicas), so N replicas give the codes of one device on the global
    batch.

    Args:
        scores: ``[n, K]`` scores ``z^T c_k`` of this replica's ``n`` examples (cast to float32;
            no gradient flows back).
        epsilon: entropy regularisation (SwAV: 0.05).
        iterations: Sinkhorn-Knopp iterations (SwAV: 3).
        mask: optional ``[n]`` weights in ``{0, 1}``; rows with weight 0 take no part (their
            codes are 0 and they are not counted in ``B``). SwAV's method masks its queue
            before the queue is full.

    Returns:
        ``[n, K]`` float32 codes, each row summing to 1 (0 for masked rows), gradient stopped.

    References:
        Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
        Assignments", https://arxiv.org/abs/2006.09882
    """
    _check_positive(epsilon, "epsilon", 0.05)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(
            f"`iterations` must be a positive integer; received {iterations!r}. Fix: use "
            "SwAV's iterations=3."
        )
    scores = tf.stop_gradient(tf.cast(tf.convert_to_tensor(scores), tf.float32))
    if scores.shape.rank != 2:
        raise ValueError(
            f"`scores` must be [batch, prototypes]; received shape {tuple(scores.shape)}. Fix: "
            "pass the scores of one crop, z @ C."
        )
    if mask is None:
        weights = tf.ones_like(scores[:, 0])
    else:
        weights = tf.cast(tf.reshape(mask, [-1]), tf.float32)
    prototypes = tf.cast(tf.shape(scores)[1], tf.float32)
    examples = distribute.all_reduce_sum(tf.reduce_sum(weights))
    local_max = tf.reduce_max(tf.where(weights[:, None] > 0, scores, scores.dtype.min))
    shift = tf.reduce_max(distribute.gather(tf.reshape(local_max, [1])))
    codes = tf.exp((scores - shift) / tf.cast(epsilon, tf.float32)) * weights[:, None]
    codes = codes / distribute.all_reduce_sum(tf.reduce_sum(codes))
    for _ in range(iterations):
        rows = distribute.all_reduce_sum(tf.reduce_sum(codes, axis=0, keepdims=True))
        codes = tf.math.divide_no_nan(codes, rows) / prototypes
        columns = tf.reduce_sum(codes, axis=1, keepdims=True)
        codes = tf.math.divide_no_nan(codes, columns) / examples
    return tf.stop_gradient(codes * examples)


def queued_sinkhorn_knopp(scores, queue_scores, queue_full, epsilon=0.05, iterations=3):
    """:func:`sinkhorn_knopp` codes of ``scores`` computed with queued examples in the batch.

    The queue's rows join the equipartition once ``queue_full`` (before, they are masked and
    take no part); only the codes of ``scores`` are returned (SwAV drops the queue's codes).

    Args:
        scores: ``[n, K]`` scores of this replica's examples.
        queue_scores: ``[m, K]`` scores of this replica's queued examples.
        queue_full: bool scalar (tensor): whether the queue is full yet.
        epsilon, iterations: see :func:`sinkhorn_knopp`.

    Returns:
        ``[n, K]`` float32 codes, each row summing to 1, gradient stopped.

    References:
        Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
        Assignments", https://arxiv.org/abs/2006.09882
    """
    share = queue_scores.shape[0]
    full = tf.cast(queue_full, tf.float32)
    mask = tf.concat([tf.fill([share], full), tf.ones_like(scores[:, 0])], axis=0)
    batch = tf.concat([queue_scores, scores], axis=0)
    return sinkhorn_knopp(batch, epsilon, iterations, mask=mask)[share:]


def _as_crops(value, name):
    if isinstance(value, (list, tuple)):
        value = tf.stack([tf.cast(tf.convert_to_tensor(v), tf.float32) for v in value])
    value = tf.cast(tf.convert_to_tensor(value), tf.float32)
    if value.shape.rank != 3:
        raise ValueError(
            f"`{name}` must be [crops, batch, prototypes] (or a list of [batch, prototypes] "
            f"per crop); received shape {tuple(value.shape)}. Fix: stack the per-crop tensors."
        )
    return value


def swav_loss(codes, scores, temperature=0.1):
    """SwAV's swapped prediction: every crop's softmax predicts the codes of the OTHER crops.

    With ``p_v = softmax(scores_v / temperature)``, the loss of an image averages the cross-
    entropies ``-sum_k q_g[k] log p_v[k]`` over every pair of a coded crop ``g`` (the first
    ``G`` crops, SwAV's 2 large crops) and another crop ``v != g`` (the other large crop and
    every small crop): the paper's Eq. 1-2 with multi-crop, averaged over the ``G (V - 1)``
    pairs.

    Args:
        codes: ``[G, n, K]`` codes (Sinkhorn-Knopp) of the first ``G`` crops, or a list of
            ``G`` tensors ``[n, K]``; treated as constants.
        scores: ``[V, n, K]`` prototype scores ``z^T C`` of all ``V >= 2``
            crops, coded crops first in the order of ``codes`` (or a list of ``V`` tensors).
        temperature: softmax temperature (SwAV: 0.1).

    Returns:
        ``[n]`` float32 per-image losses; their mean over the (global) batch is the loss.

    References:
        Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
        Assignments", https://arxiv.org/abs/2006.09882
    """
    _check_positive(temperature, "temperature", 0.1)
    codes = tf.stop_gradient(_as_crops(codes, "codes"))
    scores = _as_crops(scores, "scores")
    coded, crops = codes.shape[0], scores.shape[0]
    if crops < 2 or crops < coded:
        raise ValueError(
            f"swav_loss needs at least 2 crops, the first ones being the {coded} coded crops; "
            f"received scores of {crops} crop(s). Fix: pass the scores of every crop, the coded "
            "(large) crops first."
        )
    for axis, what in ((1, "batch size"), (2, "number of prototypes")):
        a, b = codes.shape[axis], scores.shape[axis]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"`codes` and `scores` must have the same {what}; received codes of shape "
                f"{tuple(codes.shape)} and scores of shape {tuple(scores.shape)}. Fix: code the "
                "first crops of the same batch with the same prototypes."
            )
    log_probs = tf.nn.log_softmax(scores / tf.cast(temperature, tf.float32), axis=-1)
    # sum_g sum_{v != g} q_g . log p_v = sum_g q_g . (sum_v log p_v - log p_g)
    others = tf.reduce_sum(log_probs, axis=0, keepdims=True) - log_probs[:coded]
    return -tf.reduce_sum(codes * others, axis=[0, 2]) / float(coded * (crops - 1))


@keras.saving.register_keras_serializable(package="keras_ssl")
class SwAVLoss(keras.losses.Loss):
    """``keras.losses.Loss`` form of :func:`swav_loss`: ``loss(codes, scores)``.

    Codes come first (``y_true``, the targets); the SwAV method computes them with
    :func:`sinkhorn_knopp` and calls :func:`swav_loss` directly.

    Args:
        temperature: softmax temperature (SwAV: 0.1).
        name: loss name.
    """

    def __init__(self, temperature=0.1, name="swav_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        _check_positive(temperature, "temperature", 0.1)
        self.temperature = temperature

    def call(self, y_true, y_pred):
        return swav_loss(y_true, y_pred, temperature=self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
