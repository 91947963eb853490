"""Retrieval metrics on ranked neighbour labels: recall@k, precision@k and mAP@R.

The definitions are those of TensorFlow Similarity's retrieval metrics. For a query with label
``y`` and its ranked neighbours ``n_1, n_2, ...`` (most similar first), neighbour ``i`` is
*relevant* when its label is ``y``:

- **recall@k**: 1 when at least one of ``n_1..n_k`` is relevant, else 0; averaged over queries.
- **precision@k**: the fraction of ``n_1..n_k`` that are relevant; averaged over queries.
- **mAP@R**: with ``R`` the number of items in the index labelled ``y`` (the query itself left
  out when it is in the index and excluded), ``(1 / R) * sum_{i <= R} precision@i * [n_i
  relevant]``; averaged over queries. A query whose label has no item in the index (``R = 0``)
  scores 0.

Neighbour label ``-1`` marks a position with no neighbour (an approximate index that found
fewer than ``k`` items); it is never relevant. Class labels are therefore non-negative.
"""

import keras
import numpy as np

from keras_ssl.evaluation.features import check_features, check_labels
from keras_ssl.validation import check_int

#: The metrics ``keras-ssl eval --protocol=retrieval`` reports.
RECALL_KS = (1, 5, 10)
PRECISION_KS = (10,)


def recall_at_k(query_labels, neighbour_labels, k):
    """Fraction of queries with at least one same-label item among their ``k`` nearest.

    Args:
        query_labels: ``[Q]`` non-negative integer labels of the queries.
        neighbour_labels: ``[Q, K]`` labels of each query's neighbours, most similar first
            (``-1``: no neighbour at that rank).
        k: how many leading neighbours count, ``1 <= k <= K``.

    Returns:
        A ``float`` in ``[0, 1]``.

    Raises:
        ValueError: for mismatched shapes, negative or non-integer query labels, or ``k``
            outside ``[1, K]``.
    """
    relevant = _relevance(query_labels, neighbour_labels)
    k = _check_k(k, relevant.shape[1])
    return float(np.mean(_recall_per_query(relevant, k)))


def precision_at_k(query_labels, neighbour_labels, k):
    """Mean over queries of the fraction of the ``k`` nearest that share the query's label.

    Args:
        query_labels: ``[Q]`` non-negative integer labels of the queries.
        neighbour_labels: ``[Q, K]`` labels of each query's neighbours, most similar first
            (``-1``: no neighbour at that rank; it counts as not relevant).
        k: how many leading neighbours count, ``1 <= k <= K``.

    Returns:
        A ``float`` in ``[0, 1]``.

    Raises:
        ValueError: as :func:`recall_at_k`.
    """
    relevant = _relevance(query_labels, neighbour_labels)
    k = _check_k(k, relevant.shape[1])
    return float(np.mean(_precision_per_query(relevant, k)))


def map_at_r(query_labels, neighbour_labels, relevant_counts):
    """Mean average precision at R (Musgrave et al., 2020), averaged over queries.

    For a query with ``R`` relevant items in the index: ``(1 / R) * sum_{i <= R} precision@i *
    [neighbour i relevant]``. It is 1 only when the ``R`` nearest are exactly the ``R`` relevant
    items; a query with ``R = 0`` scores 0.

    Args:
        query_labels: ``[Q]`` non-negative integer labels of the queries.
        neighbour_labels: ``[Q, K]`` labels of each query's neighbours, most similar first, with
            ``K >= max(relevant_counts)``.
        relevant_counts: ``[Q]`` the ``R`` of each query: items in the index with its label
            (less the query itself when it is in the index and excluded from its results).
            :func:`relevant_counts` computes it.

    Returns:
        A ``float`` in ``[0, 1]``.

    Raises:
        ValueError: for mismatched shapes, negative counts, or fewer neighbour columns than the
            largest ``R``.

    References:
        Musgrave, Belongie and Lim, "A Metric Learning Reality Check", ECCV 2020,
        https://arxiv.org/abs/2003.08505
    """
    relevant = _relevance(query_labels, neighbour_labels)
    counts = _check_counts(relevant_counts, relevant.shape)
    return float(np.mean(_map_at_r_per_query(relevant, counts)))


def relevant_counts(query_labels, index_labels, excluded_labels=None):
    """The ``R`` of mAP@R for each query: how many index items carry the query's label.

    Args:
        query_labels: ``[Q]`` non-negative integer labels of the queries.
        index_labels: ``[N]`` non-negative integer labels of the index's items.
        excluded_labels: optional ``[Q]`` label of the item left out of each query's results
            (leave-one-out: the query's own label); ``-1`` where nothing is left out.

    Returns:
        ``int64`` array ``[Q]``.

    Raises:
        ValueError: for negative or non-integer labels or mismatched lengths.
    """
    index_labels = _check_class_labels(index_labels, None, "index_labels")
    query_labels = _check_class_labels(query_labels, None, "query_labels")
    size = int(max(index_labels.max(initial=-1), query_labels.max(initial=-1))) + 1
    per_class = np.bincount(index_labels, minlength=size)
    counts = per_class[query_labels].astype(np.int64)
    if excluded_labels is not None:
        excluded = check_labels(
            excluded_labels, len(query_labels), name="excluded_labels", features_name="queries"
        )
        counts -= (excluded == query_labels).astype(np.int64)
    return counts


def retrieval_metrics(
    index,
    queries,
    query_labels,
    recall_ks=RECALL_KS,
    precision_ks=PRECISION_KS,
    include_map_at_r=True,
    exclude_ids=None,
    batch_size=1024,
    verbose=0,
):
    """recall@k, precision@k and mAP@R of ``queries`` against a labelled index.

    Queries are searched ``batch_size`` at a time, each to the depth the metrics need (the
    largest ``k``, and the largest ``R`` for mAP@R), and the per-query values are accumulated:
    nothing of size ``[Q, N]`` is ever held.

    Leave-one-out (the queries are the index's own items): pass ``exclude_ids=index.ids`` so that
    no query finds itself; ``R`` then counts the other items of its class.

    Args:
        index: a labelled :class:`keras_ssl.retrieval.Index`.
        queries: ``[Q, D]`` query embeddings (normalised by the index).
        query_labels: ``[Q]`` non-negative integer labels.
        recall_ks: the ``k`` of each recall@k.
        precision_ks: the ``k`` of each precision@k.
        include_map_at_r: also compute mAP@R (searches each query to depth ``R``, the size of
            its class in the index).
        exclude_ids: optional ``[Q]`` id of an index item to leave out of each query's results.
        batch_size: queries per search call.
        verbose: 1 shows a ``keras.utils.Progbar`` over the queries.

    Returns:
        A dict with ``"recall@k"`` and ``"precision@k"`` for each ``k``, ``"map@R"`` (when
        asked), ``"queries"`` and ``"index_size"``.

    Raises:
        ValueError: for an index without labels, mismatched query shapes or labels, a ``k``
            larger than the items a query can find, or bad ``batch_size``.
    """
    if index.labels is None:
        raise ValueError(
            "`index` has no labels; received an Index built without `labels`; expected a "
            "labelled index for retrieval metrics. Fix: index.build(vectors, labels=labels)."
        )
    queries = check_features(queries, "queries")
    query_labels = _check_class_labels(query_labels, len(queries), "query_labels")
    check_int(batch_size, "batch_size")
    recall_ks = [check_int(k, "recall_ks entry") for k in recall_ks]
    precision_ks = [check_int(k, "precision_ks entry") for k in precision_ks]
    excluded_labels = None
    if exclude_ids is not None:
        excluded_labels = index.labels_for(np.asarray(exclude_ids, dtype=np.int64)[:, None])[:, 0]
        if len(excluded_labels) != len(queries):
            raise ValueError(
                f"`exclude_ids` must hold one id per query; received {len(excluded_labels)} ids "
                f"for {len(queries)} queries. Fix: pass index.ids for leave-one-out."
            )
    counts = relevant_counts(query_labels, index.labels, excluded_labels)
    searchable = len(index) - (exclude_ids is not None)
    depth = max([*recall_ks, *precision_ks, 1])
    if depth > searchable:
        raise ValueError(
            f"Every k must be at most the {searchable} items a query can find; received "
            f"k={depth}. Fix: use smaller recall_ks / precision_ks or a larger index."
        )
    if include_map_at_r:
        depth = max(depth, int(counts.max(initial=0)))
    totals = {f"recall@{k}": 0.0 for k in recall_ks}
    totals.update({f"precision@{k}": 0.0 for k in precision_ks})
    if include_map_at_r:
        totals["map@R"] = 0.0
    progbar = keras.utils.Progbar(len(queries), unit_name="query") if verbose else None
    for start in range(0, len(queries), batch_size):
        stop = min(start + batch_size, len(queries))
        block_exclude = None if exclude_ids is None else np.asarray(exclude_ids)[start:stop]
        ids, _ = index.search(queries[start:stop], depth, exclude_ids=block_exclude)
        relevant = index.labels_for(ids) == query_labels[start:stop, None]
        for k in recall_ks:
            totals[f"recall@{k}"] += float(np.sum(_recall_per_query(relevant, k)))
        for k in precision_ks:
            totals[f"precision@{k}"] += float(np.sum(_precision_per_query(relevant, k)))
        if include_map_at_r:
            totals["map@R"] += float(np.sum(_map_at_r_per_query(relevant, counts[start:stop])))
        if progbar is not None:
            progbar.update(stop)
    result = {name: total / len(queries) for name, total in totals.items()}
    result.update(queries=len(queries), index_size=len(index))
    return result


def _recall_per_query(relevant, k):
    return np.any(relevant[:, :k], axis=1).astype(np.float64)


def _precision_per_query(relevant, k):
    return np.sum(relevant[:, :k], axis=1) / k


def _map_at_r_per_query(relevant, counts):
    ranks = np.arange(1, relevant.shape[1] + 1)
    precision_at_i = np.cumsum(relevant, axis=1) / ranks
    within_r = ranks[None, :] <= counts[:, None]
    summed = np.sum(precision_at_i * relevant * within_r, axis=1)
    return np.where(counts > 0, summed / np.maximum(counts, 1), 0.0)


def _relevance(query_labels, neighbour_labels):
    neighbour_labels = np.asarray(neighbour_labels)
    if neighbour_labels.ndim != 2:
        raise ValueError(
            f"`neighbour_labels` must have rank 2 [num_queries, k]; received shape "
            f"{neighbour_labels.shape}. Fix: pass index.labels_for(ids) of Index.search's ids."
        )
    if not np.issubdtype(neighbour_labels.dtype, np.integer):
        raise ValueError(
            f"`neighbour_labels` must hold integer labels; received dtype "
            f"{neighbour_labels.dtype}. Fix: convert with .astype('int64')."
        )
    query_labels = _check_class_labels(query_labels, len(neighbour_labels), "query_labels")
    return neighbour_labels == query_labels[:, None]


def _check_class_labels(labels, count, name):
    labels = np.asarray(labels)
    labels = check_labels(
        labels, len(labels) if count is None else count, name=name, features_name="neighbours"
    )
    if len(labels) and labels.min() < 0:
        raise ValueError(
            f"`{name}` must be non-negative class ids; received a minimum of {labels.min()}. "
            "Fix: remap the classes to 0..C-1 (-1 is reserved for 'no neighbour')."
        )
    return labels


def _check_k(k, columns):
    k = check_int(k, "k")
    if k > columns:
        raise ValueError(
            f"`k` must be at most the {columns} neighbours given per query; received k={k}. "
            f"Fix: search with at least k={k} neighbours or lower k."
        )
    return k


def _check_counts(counts, shape):
    counts = np.asarray(counts)
    if counts.shape != (shape[0],) or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(
            f"`relevant_counts` must be integers, one per query, shape ({shape[0]},); received "
            f"shape {counts.shape}, dtype {counts.dtype}. Fix: use retrieval.relevant_counts."
        )
    if len(counts) and counts.min() < 0:
        raise ValueError(
            f"`relevant_counts` must be >= 0; received a minimum of {counts.min()}. Fix: use "
            "retrieval.relevant_counts."
        )
    if len(counts) and counts.max() > shape[1]:
        raise ValueError(
            f"mAP@R needs each query's R nearest neighbours; received {shape[1]} neighbours per "
            f"query but R up to {counts.max()}. Fix: search with k = max(relevant_counts)."
        )
    return counts.astype(np.int64)
