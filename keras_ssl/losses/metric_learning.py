"""Margin-based metric-learning losses: contrastive (Chopra et al.), triplet, N-pair.

Pure functions take explicit pairs / triplets and return one loss per example. The
``keras.losses.Loss`` wrappers of the margin losses take ``(labels, embeddings)`` and form every
pair / triplet of the batch ("batch all"), so they plug into ``model.compile(loss=...)``.
"""

import keras
import tensorflow as tf


def _check_margin(margin):
    if not isinstance(margin, (int, float)) or margin <= 0:
        raise ValueError(
            f"`margin` must be a positive number; received {margin!r}. Fix: use the distance "
            "below which negatives are pushed apart, e.g. margin=1.0."
        )


def _as_embeddings(*tensors, names):
    out = [tf.cast(tf.convert_to_tensor(t), tf.float32) for t in tensors]
    for tensor, name in zip(out, names):
        if tensor.shape.rank != 2:
            raise ValueError(
                f"`{name}` must be rank 2 [batch, dim]; received shape {tuple(tensor.shape)}. "
                "Fix: flatten or pool the embeddings first."
            )
    dims = {t.shape[-1] for t in out if t.shape[-1] is not None}
    if len(dims) > 1:
        raise ValueError(
            f"{', '.join(f'`{n}`' for n in names)} must share the embedding size; received "
            f"sizes {[t.shape[-1] for t in out]}. Fix: embed them with the same network."
        )
    return out


def _distance(a, b, squared):
    square = tf.reduce_sum(tf.square(a - b), axis=-1)
    return square if squared else tf.sqrt(tf.maximum(square, 1e-12))


def contrastive_margin(x_a, x_b, same, margin=1.0):
    """Chopra et al.'s contrastive loss: pull similar pairs together, push others past a margin.

    ``same * ||a - b||^2 + (1 - same) * max(0, margin - ||a - b||)^2`` per pair.

    Args:
        x_a: ``[n, d]`` embeddings of the first element of each pair.
        x_b: ``[n, d]`` embeddings of the second element.
        same: ``[n]`` 1 for similar pairs (same class / same image), 0 for dissimilar ones.
        margin: distance ``epsilon`` beyond which dissimilar pairs cost nothing.

    Returns:
        ``[n]`` float32 losses.

    References:
        Chopra, Hadsell & LeCun 2005, "Learning a Similarity Metric Discriminatively, with
        Application to Face Verification", http://yann.lecun.com/exdb/publis/pdf/chopra-05.pdf
    """
    _check_margin(margin)
    x_a, x_b = _as_embeddings(x_a, x_b, names=("x_a", "x_b"))
    same = tf.cast(tf.reshape(same, [-1]), tf.float32)
    distance = _distance(x_a, x_b, squared=False)
    push = tf.square(tf.nn.relu(margin - distance))
    return same * tf.square(distance) + (1.0 - same) * push


def triplet_margin(anchor, positive, negative, margin=0.2, squared=True):
    """Triplet loss: the anchor must be closer to its positive than to its negative by a margin.

    ``max(0, d(a, p) - d(a, n) + margin)`` with squared Euclidean distances (FaceNet) or plain
    ones (``squared=False``).

    Args:
        anchor, positive, negative: ``[n, d]`` embeddings, row for row.
        margin: required gap between the two distances.
        squared: use squared Euclidean distances.

    Returns:
        ``[n]`` float32 losses.

    References:
        Schroff, Kalenichenko & Philbin 2015, "FaceNet: A Unified Embedding for Face
        Recognition and Clustering", https://arxiv.org/abs/1503.03832
    """
    _check_margin(margin)
    anchor, positive, negative = _as_embeddings(
        anchor, positive, negative, names=("anchor", "positive", "negative")
    )
    gap = _distance(anchor, positive, squared) - _distance(anchor, negative, squared)
    return tf.nn.relu(gap + margin)


def n_pair(anchors, positives, l2_weight=0.0):
    """N-pair loss: each anchor must score its own positive above the other N - 1 positives.

    ``log(1 + sum_{j != i} exp(a_i . p_j - a_i . p_i))`` per anchor (a softmax cross-entropy over
    the anchors-by-positives dot products), plus ``l2_weight`` times the mean squared norm of
    the anchor and positive embeddings (the paper's regulariser, 0.002 there).

    Args:
        anchors: ``[n, d]`` embeddings, one per class (or instance).
        positives: ``[n, d]`` the positive of each anchor, row for row; row ``j`` is a
            negative for every anchor ``i != j``.
        l2_weight: weight of the embedding-norm regulariser.

    Returns:
        ``[n]`` float32 losses.

    References:
        Sohn 2016, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective",
        NeurIPS, https://papers.nips.cc/paper/6200
    """
    if not isinstance(l2_weight, (int, float)) or l2_weight < 0:
        raise ValueError(
            f"`l2_weight` must be a number >= 0; received {l2_weight!r}. Fix: use 0 or e.g. 0.002."
        )
    anchors, positives = _as_embeddings(anchors, positives, names=("anchors", "positives"))
    logits = tf.matmul(anchors, positives, transpose_b=True)
    labels = tf.range(tf.shape(anchors)[0])
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    norms = tf.reduce_sum(tf.square(anchors), -1) + tf.reduce_sum(tf.square(positives), -1)
    return losses + l2_weight * 0.5 * norms


def _pairwise_distances(embeddings, squared):
    square = tf.reduce_sum(tf.square(embeddings[:, None, :] - embeddings[None, :, :]), axis=-1)
    return square if squared else tf.sqrt(tf.maximum(square, 1e-12))


@keras.saving.register_keras_serializable(package="keras_ssl")
class ContrastiveMargin(keras.losses.Loss):
    """:func:`contrastive_margin` over every pair ``i < j`` of a labelled batch.

    Call it as ``loss(labels, embeddings)``: pairs with equal labels are similar.
    """

    def __init__(self, margin=1.0, name="contrastive_margin", **kwargs):
        super().__init__(name=name, **kwargs)
        _check_margin(margin)
        self.margin = margin

    def call(self, y_true, y_pred):
        (embeddings,) = _as_embeddings(y_pred, names=("embeddings",))
        labels = tf.reshape(y_true, [-1])
        distance = _pairwise_distances(embeddings, squared=False)
        same = tf.cast(tf.equal(labels[:, None], labels[None, :]), tf.float32)
        losses = same * tf.square(distance) + (1 - same) * tf.square(
            tf.nn.relu(self.margin - distance)
        )
        size = tf.shape(labels)[0]
        upper = tf.linalg.band_part(tf.ones([size, size]), 0, -1) - tf.eye(size)
        return tf.reduce_sum(losses * upper) / tf.maximum(tf.reduce_sum(upper), 1.0)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="keras_ssl")
class TripletMargin(keras.losses.Loss):
    """:func:`triplet_margin` averaged over every valid triplet of a labelled batch.

    Call it as ``loss(labels, embeddings)``: a triplet ``(a, p, n)`` is valid when
    ``a != p``, ``label[a] == label[p]`` and ``label[a] != label[n]``.
    """

    def __init__(self, margin=0.2, squared=True, name="triplet_margin", **kwargs):
        super().__init__(name=name, **kwargs)
        _check_margin(margin)
        self.margin = margin
        self.squared = squared

    def call(self, y_true, y_pred):
        (embeddings,) = _as_embeddings(y_pred, names=("embeddings",))
        labels = tf.reshape(y_true, [-1])
        distance = _pairwise_distances(embeddings, self.squared)
        same = tf.equal(labels[:, None], labels[None, :])
        not_self = tf.logical_not(tf.cast(tf.eye(tf.shape(labels)[0]), tf.bool))
        positive = tf.logical_and(same, not_self)[:, :, None]
        negative = tf.logical_not(same)[:, None, :]
        valid = tf.cast(tf.logical_and(positive, negative), tf.float32)
        losses = tf.nn.relu(distance[:, :, None] - distance[:, None, :] + self.margin)
        return tf.reduce_sum(losses * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "squared": self.squared}


@keras.saving.register_keras_serializable(package="keras_ssl")
class NPair(keras.losses.Loss):
    """:func:`n_pair` as a Loss; call it as ``loss(anchors, positives)``."""

    def __init__(self, l2_weight=0.0, name="n_pair", **kwargs):
        super().__init__(name=name, **kwargs)
        self.l2_weight = l2_weight

    def call(self, y_true, y_pred):
        return n_pair(y_true, y_pred, l2_weight=self.l2_weight)

    def get_config(self):
        return {**super().get_config(), "l2_weight": self.l2_weight}
