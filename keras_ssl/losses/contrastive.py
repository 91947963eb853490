"""Contrastive losses: NT-Xent (SimCLR) and InfoNCE (CPC, MoCo, MoCo v3).

Pure functions return one loss per example so that callers choose the reduction; under a
``tf.distribute`` strategy the caller passes the embeddings gathered from every replica
(``keras_ssl.distribute.gather``) and this replica's offset, and the mean of the returned losses
over all replicas equals the single-device loss on the global batch.
"""

import keras
import tensorflow as tf

_MASKED_LOGIT = -1e9


def _check_temperature(temperature):
    if not isinstance(temperature, (int, float)) or temperature <= 0:
        raise ValueError(
            f"`temperature` must be a positive number; received {temperature!r}. "
            "Fix: use a value such as 0.1-0.5 for SimCLR or 0.07-0.2 for MoCo."
        )


def _shape_of(value):
    """``None``, or the shape of a tensor or array, for error messages."""
    return None if value is None else tuple(tf.convert_to_tensor(value).shape)


def _check_pair(a, b, names):
    if a.shape.rank != 2 or b.shape.rank != 2:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must be rank 2 [batch, dim]; received shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}. Fix: flatten or pool the embeddings first."
        )
    if a.shape[-1] is not None and b.shape[-1] is not None and a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have the same embedding size; received "
            f"{a.shape[-1]} and {b.shape[-1]}. Fix: project both with the same head."
        )


def nt_xent(z_a, z_b, temperature=0.5, all_z_a=None, all_z_b=None, offset=0):
    """NT-Xent: each of the 2N views must find its partner among the other 2N - 1 views.

    With cosine similarities ``s`` the loss of view ``i`` with partner ``j`` is
    ``-log(exp(s_ij / t) / sum_{k != i} exp(s_ik / t))`` (SimCLR, Algorithm 1).

    Args:
        z_a: ``[n, d]`` projections of the first view of this replica's ``n`` images.
        z_b: ``[n, d]`` projections of the second view of the same images, row for row.
        temperature: softmax temperature ``t`` (SimCLR: 0.5 on CIFAR, 0.1 on ImageNet).
        all_z_a: ``[N, d]`` first-view projections of the global batch (``z_a`` gathered over
            replicas). Defaults to ``z_a`` (one device).
        all_z_b: ``[N, d]`` second-view projections of the global batch. Defaults to ``z_b``.
        offset: row of this replica's first image in the global batch
            (``replica_id * n``).

    Returns:
        ``[2n]`` float32 losses: the ``n`` first-view rows, then the ``n`` second-view rows.
        Their mean over the global batch is the SimCLR loss ``L``.

    References:
        Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
        Representations", https://arxiv.org/abs/2002.05709
    """
    _check_temperature(temperature)
    z_a = tf.cast(tf.convert_to_tensor(z_a), tf.float32)
    z_b = tf.cast(tf.convert_to_tensor(z_b), tf.float32)
    _check_pair(z_a, z_b, ("z_a", "z_b"))
    all_z_a = z_a if all_z_a is None else tf.cast(all_z_a, tf.float32)
    all_z_b = z_b if all_z_b is None else tf.cast(all_z_b, tf.float32)
    global_batch = all_z_a.shape[0]
    if global_batch is not None and global_batch < 2:
        raise ValueError(
            f"NT-Xent needs at least 2 images per (global) batch to have negatives; received a "
            f"batch of {global_batch}. Fix: use a batch size of 2 or more (SimCLR uses 256-8192)."
        )
    n = tf.shape(z_a)[0]
    total = tf.shape(all_z_a)[0]
    queries = tf.math.l2_normalize(tf.concat([z_a, z_b], axis=0), axis=1)
    keys = tf.math.l2_normalize(tf.concat([all_z_a, all_z_b], axis=0), axis=1)
    logits = tf.matmul(queries, keys, transpose_b=True) / temperature
    rows = tf.range(n) + offset
    self_index = tf.concat([rows, rows + total], axis=0)
    partner_index = tf.concat([rows + total, rows], axis=0)
    self_mask = tf.one_hot(self_index, 2 * total, on_value=True, off_value=False)
    logits = tf.where(self_mask, _MASKED_LOGIT, logits)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=partner_index, logits=logits)


def info_nce(
    query,
    positive,
    negatives=None,
    temperature=0.07,
    normalize=True,
    all_positives=None,
    offset=0,
):
    """InfoNCE: ``-log(exp(q.k+/t) / (exp(q.k+/t) + sum_k- exp(q.k-/t)))``.

    Args:
        query: ``[n, d]`` queries (predictions, or the query encoder's embeddings).
        positive: ``[n, d]`` the positive key of each query, row for row (``None`` when
            ``all_positives`` is given).
        negatives: ``[m, d]`` keys shared as negatives by every query (a MoCo queue, a memory
            bank, passed in: the loss never mutates it), ``[n, m, d]`` negatives per query, or
            ``None`` for in-batch negatives (the other rows of ``positive``).
        temperature: softmax temperature ``t`` (MoCo v1: 0.07, v2: 0.2).
        normalize: L2-normalise queries and keys first (cosine similarity), as MoCo does. CPC
            uses raw dot products (``normalize=False``).
        all_positives: instead of ``positive``, with in-batch negatives under a
            ``tf.distribute`` strategy: ``[N, d]`` the positives of the global batch (gathered
            over replicas, in replica order); every row is a key and row ``offset + i`` is
            query ``i``'s positive.
        offset: row of this replica's first query in the global batch (``replica_id * n``),
            with ``all_positives``.

    Returns:
        ``[n]`` float32 losses.

    References:
        van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding",
        https://arxiv.org/abs/1807.03748; He et al. 2020, "Momentum Contrast for Unsupervised
        Visual Representation Learning", https://arxiv.org/abs/1911.05722
    """
    _check_temperature(temperature)
    in_batch, gathered = negatives is None, all_positives is not None
    if (positive is None) != gathered or (gathered and not in_batch):
        raise ValueError(
            "info_nce takes each query's `positive` (with or without `negatives`) or, with "
            "in-batch negatives only, `all_positives`; received positive="
            f"{_shape_of(positive)}, negatives={_shape_of(negatives)}, all_positives="
            f"{_shape_of(all_positives)}. Fix: pass positive=[n, d], or positive=None and "
            "all_positives=[N, d] with the offset of this replica's rows."
        )
    query = tf.cast(tf.convert_to_tensor(query), tf.float32)
    keys = tf.cast(tf.convert_to_tensor(all_positives if gathered else positive), tf.float32)
    _check_pair(query, keys, ("query", "all_positives" if gathered else "positive"))
    if normalize:
        query = tf.math.l2_normalize(query, axis=1)
        keys = tf.math.l2_normalize(keys, axis=1)
    if in_batch:
        logits = tf.matmul(query, keys, transpose_b=True) / temperature
        labels = tf.range(tf.shape(query)[0]) + tf.cast(offset, tf.int32)
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    negatives = tf.cast(tf.convert_to_tensor(negatives), tf.float32)
    if negatives.shape.rank not in (2, 3):
        raise ValueError(
            f"`negatives` must be [m, d] (shared) or [n, m, d] (per query); received shape "
            f"{tuple(negatives.shape)}. Fix: reshape the negative keys accordingly."
        )
    if normalize:
        negatives = tf.math.l2_normalize(negatives, axis=-1)
    positive_logit = tf.reduce_sum(query * keys, axis=1, keepdims=True)
    if negatives.shape.rank == 2:
        negative_logits = tf.matmul(query, negatives, transpose_b=True)
    else:
        negative_logits = tf.einsum("nd,nmd->nm", query, negatives)
    logits = tf.concat([positive_logit, negative_logits], axis=1) / temperature
    labels = tf.zeros(tf.shape(query)[:1], dtype=tf.int32)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def moco_v3_contrastive(queries, all_keys, temperature, offset=0):
    """MoCo v3's ``ctr(q, k)``: InfoNCE of each query against every key of the batch, times 2t.

    With L2-normalised queries ``q_i`` and keys ``k_j``, the loss of query ``i`` is
    ``2 t * -log(exp(q_i . k_pos / t) / sum_j exp(q_i . k_j / t))`` where ``pos = offset + i``
    is the index of its own key in the (global) key batch; every other key is a negative
    (the paper's Algorithm 1: ``CrossEntropyLoss(q @ k.T / t, arange(N)) * 2 t``). This is
    ``2 t`` times :func:`info_nce` with in-batch negatives ``all_positives=all_keys``.

    Args:
        queries: ``[n, d]`` predictions of this replica's ``n`` images.
        all_keys: ``[N, d]`` momentum-encoder keys of the global batch (gathered over
            replicas, in replica order); row ``offset + i`` is the key of query ``i``.
        temperature: softmax temperature ``t`` (paper: 0.2 for ViT, 1.0 for ResNet).
        offset: row of this replica's first image in the global batch.

    Returns:
        ``[n]`` float32 losses; their mean over the global batch is ``ctr(q, k)``.

    References:
        Chen, Xie & He 2021, "An Empirical Study of Training Self-Supervised Vision
        Transformers", https://arxiv.org/abs/2104.02057
    """
    losses = info_nce(queries, None, temperature=temperature, all_positives=all_keys, offset=offset)
    return 2.0 * temperature * losses


@keras.saving.register_keras_serializable(package="keras_ssl")
class NTXent(keras.losses.Loss):
    """``keras.losses.Loss`` form of :func:`nt_xent` on one device.

    Call it as ``loss(z_a, z_b)``: the two arguments are the projections of the two views.
    """

    def __init__(self, temperature=0.5, name="nt_xent", **kwargs):
        super().__init__(name=name, **kwargs)
        _check_temperature(temperature)
        self.temperature = temperature

    def call(self, y_true, y_pred):
        return nt_xent(y_true, y_pred, temperature=self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="keras_ssl")
class InfoNCE(keras.losses.Loss):
    """``keras.losses.Loss`` form of :func:`info_nce` with in-batch negatives.

    Call it as ``loss(query, positive)``.
    """

    def __init__(self, temperature=0.07, normalize=True, name="info_nce", **kwargs):
        super().__init__(name=name, **kwargs)
        _check_temperature(temperature)
        self.temperature = temperature
        self.normalize = normalize

    def call(self, y_true, y_pred):
        return info_nce(y_true, y_pred, temperature=self.temperature, normalize=self.normalize)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "normalize": self.normalize,
        }


def step_logits(prediction, all_z, step, offset):
    """Logits ``[m, N * rows * cols]`` and positive indices ``[m]`` of one prediction step."""
    # Static sizes come from the prediction: a gathered ``all_z`` may have lost them.
    rows, cols, dim = prediction.shape[1] + step, prediction.shape[2], prediction.shape[3]
    n = tf.shape(prediction)[0]
    keys = tf.reshape(all_z, [-1, dim])
    queries = tf.reshape(prediction, [-1, dim])
    logits = tf.matmul(queries, keys, transpose_b=True)
    # The target of prediction (i, r, c) is patch (offset + i, r + step, c) of the global batch.
    image = tf.range(n)[:, None, None] + tf.cast(offset, tf.int32)
    row = tf.range(rows - step)[None, :, None] + step
    col = tf.range(cols)[None, None, :]
    labels = tf.reshape((image * rows + row) * cols + col, [-1])
    return logits, labels


def cpc_info_nce(predictions, all_z, offset=0, first_step=1):
    """CPC's InfoNCE: each prediction must pick its target patch among all patch encodings.

    Prediction ``p = W_k c[i, r, c]`` of the encoding ``z[i, r + k, c]`` scores every patch
    ``j`` of every image in the (global) batch with the dot product ``p . z_j`` (no
    normalisation, no temperature); the loss is ``-log(exp(p . z_pos) / sum_j exp(p . z_j))``:
    the positive is the patch ``k`` rows below, the negatives are all other patches of the same
    image and of the other images. This is ``keras_ssl.losses.info_nce`` with
    ``normalize=False`` and temperature 1, scored against every patch of the batch rather than
    one key per query.

    Args:
        predictions: sequence of tensors, one per step ``k = first_step, first_step + 1, ...``;
            ``predictions[j]`` (step ``k = first_step + j``) is ``[n, rows - k, cols, d]``, the
            predictions made from context rows ``0 .. rows - k - 1``.
        all_z: ``[N, rows, cols, d]`` patch encodings of the global batch (this replica's ``n``
            images are ``all_z[offset : offset + n]``; on one device ``all_z`` is ``z``).
        offset: index of this replica's first image in the global batch.
        first_step: the step ``k`` of ``predictions[0]``.

    Returns:
        A list of float32 tensors ``[n, rows - k, cols]``, one per step: every prediction's loss.

    References:
        van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding",
        https://arxiv.org/abs/1807.03748; Hénaff et al. 2019, "Data-Efficient
        Image Recognition with Contrastive Predictive Coding", https://arxiv.org/abs/1905.09272
    """
    all_z = tf.cast(tf.convert_to_tensor(all_z), tf.float32)
    if all_z.shape.rank != 4:
        raise ValueError(
            f"`all_z` must be a grid of patch encodings [batch, rows, cols, dim]; received shape "
            f"{tuple(all_z.shape)}. Fix: pass the encoder's outputs reshaped to the patch grid."
        )
    losses = []
    for step, prediction in enumerate(predictions, start=first_step):
        prediction = tf.cast(tf.convert_to_tensor(prediction), tf.float32)
        rows, cols, dim = all_z.shape[1:]
        expected = (None if rows is None else rows - step, cols, dim)
        known = prediction.shape.rank == 4 and None not in prediction.shape[1:]
        if not known or any(
            want is not None and got != want for got, want in zip(prediction.shape[1:], expected)
        ):
            raise ValueError(
                f"predictions[{step - first_step}] (step k={step}) must be [n, rows - k, cols, "
                f"dim] = [n, {', '.join(str(d) for d in expected)}]; received shape "
                f"{tuple(prediction.shape)}. Fix: predict from context rows 0 .. rows - k - 1."
            )
        logits, labels = step_logits(prediction, all_z, step, offset)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        losses.append(tf.reshape(loss, tf.shape(prediction)[:3]))
    return losses
