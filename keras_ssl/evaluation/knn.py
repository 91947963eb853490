"""Weighted k-nearest-neighbour classification of frozen embeddings (Wu et al., 2018), and the
kNN evaluation protocol of an encoder (:func:`knn_eval`, :func:`knn_sweep`)."""

import math

import numpy as np
import tensorflow as tf

from keras_ssl.evaluation.features import (
    check_features,
    check_labels,
    extract_labelled_features,
    l2_normalize,
)
from keras_ssl.validation import check_int

#: The kNN temperature everywhere in keras_ssl (probes, protocols, configs): 0.07 as in
#: Wu et al. 2018 (InstDisc) and DINO.
TEMPERATURE = 0.07
#: k=200 is the InstDisc protocol (Wu et al. 2018), k=20 the other usual setting.
KS = (20, 200)


def knn_predict(
    train_features,
    train_labels,
    query_features,
    num_classes=None,
    k=20,
    temperature=TEMPERATURE,
    batch_size=1024,
    return_votes=False,
):
    """Classifies queries by a similarity-weighted vote of their ``k`` nearest training examples.

    Both feature sets are L2-normalised, so similarity is the cosine similarity ``s``. Each of
    the ``k`` most similar training examples votes for its class with weight
    ``exp(s / temperature)``; the prediction is the class with the largest summed vote.

    Ties are resolved deterministically: among training examples with equal similarity the one
    with the lower index is the nearer neighbour (so it is kept when the tie straddles the
    ``k``-th place), and among classes with equal votes the lowest class id wins.

    Queries are processed ``batch_size`` at a time, so memory holds at most a
    ``[batch_size, N_train]`` similarity block, never the full query-by-train matrix. Within a
    query the weights are computed as ``exp((s - s_max) / temperature)``: a common factor that
    leaves the vote ranking unchanged and cannot overflow for small temperatures.

    Args:
        train_features: ``[N_train, D]`` embeddings of the labelled reference set.
        train_labels: ``[N_train]`` integer class ids in ``[0, num_classes)``.
        query_features: ``[N_query, D]`` embeddings to classify.
        num_classes: number of classes; ``None`` uses ``max(train_labels) + 1``.
        k: number of neighbours, ``1 <= k <= N_train``.
        temperature: positive softness of the vote weights (0.07 in Wu et al.).
        batch_size: queries per similarity block.
        return_votes: also return the votes.

    Returns:
        ``int64`` array ``[N_query]`` of predicted classes; with ``return_votes=True`` a tuple
        ``(predictions, votes)`` where ``votes`` is ``float32 [N_query, num_classes]``, each
        row the summed weights divided by their total (a distribution over classes).

    Raises:
        ValueError: for mismatched shapes or labels, ``k`` outside ``[1, N_train]``,
            ``temperature <= 0`` or ``batch_size < 1``.

    References:
        Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
        CVPR 2018, https://arxiv.org/abs/1805.01978
    """
    train_features = check_features(train_features, "train_features")
    query_features = check_features(query_features, "query_features")
    if train_features.shape[1] != query_features.shape[1]:
        raise ValueError(
            f"`query_features` must have the same feature dimension as `train_features`; "
            f"received {query_features.shape[1]} and {train_features.shape[1]}. Fix: compute "
            "both with the same encoder."
        )
    num_classes = _check_num_classes(num_classes, train_labels)
    train_labels = check_labels(
        train_labels, len(train_features), num_classes, "train_labels", "train_features"
    )
    check_knn_arguments(k, temperature, len(train_features))
    check_int(batch_size, "batch_size")

    train = tf.constant(l2_normalize(train_features))
    labels = tf.constant(train_labels)
    queries = l2_normalize(query_features)
    block = min(int(batch_size), len(queries))
    predictions, votes = [], []
    for start in range(0, len(queries), block):
        chunk = queries[start : start + block]
        count = len(chunk)
        if count < block:  # Pad so that every block has one shape and one trace.
            chunk = np.concatenate([chunk, np.zeros((block - count, chunk.shape[1]), np.float32)])
        prediction, vote = _knn_block(
            train, labels, tf.constant(chunk), int(k), int(num_classes), float(temperature)
        )
        predictions.append(prediction.numpy()[:count])
        votes.append(vote.numpy()[:count])
    predictions = np.concatenate(predictions).astype(np.int64)
    if not return_votes:
        return predictions
    votes = np.concatenate(votes)
    return predictions, (votes / np.sum(votes, axis=1, keepdims=True)).astype(np.float32)


def knn_accuracy(
    train_features,
    train_labels,
    query_features,
    query_labels,
    num_classes=None,
    k=20,
    temperature=TEMPERATURE,
    batch_size=1024,
):
    """Top-1 accuracy of :func:`knn_predict` on labelled queries.

    Args:
        train_features: ``[N_train, D]`` embeddings of the labelled reference set.
        train_labels: ``[N_train]`` integer class ids.
        query_features: ``[N_query, D]`` embeddings to classify.
        query_labels: ``[N_query]`` true class ids of the queries.
        num_classes: number of classes; ``None`` uses the largest label in either set plus one.
        k: number of neighbours.
        temperature: positive softness of the vote weights.
        batch_size: queries per similarity block.

    Returns:
        Python float in ``[0, 1]``.
    """
    query_features = check_features(query_features, "query_features")
    query_labels = check_labels(
        query_labels, len(query_features), num_classes, "query_labels", "query_features"
    )
    if num_classes is None:
        train_max = int(np.max(check_labels(train_labels, len(np.asarray(train_labels)))))
        num_classes = max(train_max, int(query_labels.max())) + 1
    predictions = knn_predict(
        train_features, train_labels, query_features, num_classes, k, temperature, batch_size
    )
    return float(np.mean(predictions == query_labels))


def check_knn_arguments(k, temperature, num_train=None):
    """Validates ``k`` (against the training-set size when known) and ``temperature``.

    Raises:
        ValueError: for ``k < 1``, ``k > num_train`` or a non-positive temperature.
    """
    check_int(k, "k", fix="pass an int >= 1 (20 and 200 are the usual choices).")
    if num_train is not None and k > num_train:
        raise ValueError(
            f"`k`={k} is larger than the training set ({num_train} examples); expected "
            f"k <= {num_train}. Fix: lower k or use more labelled training examples."
        )
    try:
        temperature_value = float(temperature)
    except (TypeError, ValueError):
        temperature_value = float("nan")
    if not (math.isfinite(temperature_value) and temperature_value > 0):
        raise ValueError(
            f"`temperature` must be a finite number > 0; received {temperature!r}. "
            "Fix: pass a positive temperature such as 0.07."
        )


def _check_num_classes(num_classes, train_labels):
    if num_classes is None:
        labels = np.asarray(train_labels)
        if labels.size == 0 or not np.issubdtype(labels.dtype, np.number):
            return None  # check_labels reports the problem.
        return int(labels.max()) + 1
    fix = "pass the number of classes, or None to infer it from the training labels."
    return check_int(num_classes, "num_classes", fix=fix)


@tf.function
def _knn_block(train, labels, queries, k, num_classes, temperature):
    similarity = tf.matmul(queries, train, transpose_b=True)  # [block, N_train]
    top_similarity, top_index = tf.math.top_k(similarity, k=k)  # Lower index first on ties.
    top_labels = tf.gather(labels, top_index)  # [block, k]
    weights = tf.exp((top_similarity - top_similarity[:, :1]) / temperature)
    rows = tf.shape(queries)[0]
    segments = tf.range(rows, dtype=tf.int64)[:, None] * num_classes + top_labels
    votes = tf.math.unsorted_segment_sum(
        tf.reshape(weights, [-1]), tf.reshape(segments, [-1]), rows * num_classes
    )
    votes = tf.reshape(votes, [rows, num_classes])
    is_best = tf.equal(votes, tf.reduce_max(votes, axis=1, keepdims=True))
    classes = tf.range(num_classes, dtype=tf.int64)[None, :]
    prediction = tf.reduce_min(tf.where(is_best, classes, tf.cast(num_classes, tf.int64)), axis=1)
    return prediction, votes


def knn_eval(encoder, train, test, ks=KS, temperature=TEMPERATURE, num_classes=None, verbose=0):
    """Weighted kNN accuracy of a frozen encoder for several ``k`` (features computed once).

    Args:
        encoder: frozen encoder (``model.export_encoder``).
        train: labelled reference data, ``(images, labels)`` or a dataset of pairs.
        test: labelled queries, same forms.
        ks: numbers of neighbours to report (each at most the training-set size).
        temperature: softness of the vote weights ``exp(similarity / temperature)``.
        num_classes: number of classes; ``None`` infers it from the labels.
        verbose: 1 shows progress bars while embedding.

    Returns:
        JSON-able dict, see :func:`knn_sweep`.
    """
    train_features, train_labels = extract_labelled_features(encoder, train, verbose=verbose)
    test_features, test_labels = extract_labelled_features(encoder, test, verbose=verbose)
    return knn_sweep(
        train_features, train_labels, test_features, test_labels, ks, temperature, num_classes
    )


def knn_sweep(
    train_features,
    train_labels,
    test_features,
    test_labels,
    ks=KS,
    temperature=TEMPERATURE,
    num_classes=None,
):
    """:func:`~keras_ssl.evaluation.knn_accuracy` for every ``k`` in ``ks`` on one feature set.

    Args:
        train_features: ``[N_train, D]`` features (L2-normalised inside ``knn_predict``).
        train_labels: ``[N_train]`` integer class ids.
        test_features: ``[N_test, D]``.
        test_labels: ``[N_test]``.
        ks, temperature, num_classes: see :func:`knn_eval`.

    Returns:
        dict with ``accuracy`` (at the first ``k``), ``accuracies`` (``{str(k): accuracy}``),
        ``ks``, ``temperature``, ``train_examples`` and ``test_examples``.

    Raises:
        ValueError: for an empty ``ks``, a ``k`` larger than the training set, a non-positive
            temperature, or features and labels that do not match.
    """
    ks = [ks] if isinstance(ks, (int, np.integer)) else list(ks)
    if not ks:
        raise ValueError(
            "`ks` is empty; expected at least one number of neighbours. Fix: pass e.g. "
            "ks=(20, 200)."
        )
    train_features = check_features(train_features, "train_features")
    for k in ks:
        check_knn_arguments(k, temperature, len(train_features))
    if num_classes is None:
        num_classes = int(max(np.max(train_labels), np.max(test_labels))) + 1
    accuracies = {
        str(int(k)): knn_accuracy(
            train_features,
            train_labels,
            test_features,
            test_labels,
            num_classes,
            k=int(k),
            temperature=temperature,
        )
        for k in ks
    }
    return {
        "accuracy": accuracies[str(int(ks[0]))],
        "accuracies": accuracies,
        "ks": [int(k) for k in ks],
        "temperature": float(temperature),
        "train_examples": int(len(train_features)),
        "test_examples": int(len(test_labels)),
    }
