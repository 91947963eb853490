"""``keras-ssl eval --protocol=retrieval``: the probe test split searched against the train split.

Each test embedding is a query against an index of the probe training split's embeddings
(cosine similarity); a neighbour is relevant when it has the query's class. The protocol reports
recall@k, precision@k and mAP@R (definitions in :mod:`keras_ssl.retrieval.metrics`) and shares
the cached frozen features of the other protocols (``DIR/features/``).
"""

from keras_ssl.retrieval.index import Index
from keras_ssl.retrieval.metrics import PRECISION_KS, RECALL_KS, retrieval_metrics

#: Options of the retrieval protocol (``--eval_option=NAME=VALUE``), merged into
#: ``keras_ssl.evaluation.protocols.DEFAULT_OPTIONS``.
RETRIEVAL_OPTIONS = {
    "retrieval_recall_ks": RECALL_KS,
    "retrieval_precision_ks": PRECISION_KS,
    "retrieval_backend": "exact",  # or "faiss" (approximate; pip install keras-ssl[retrieval])
}


def retrieval_protocol(model, config, splits, workdir):
    """recall@1/5/10, precision@10 and mAP@R of the probe test split against the train split.

    Args:
        model: the trained method (its ``export_encoder`` embeds the images).
        config: the run's config (unused; part of the protocol signature).
        splits: ``keras_ssl.evaluation.protocols.EvalSplits``; its options may set
            ``retrieval_recall_ks``, ``retrieval_precision_ks`` and ``retrieval_backend``.
        workdir: the run folder (features are cached in ``DIR/features/``).

    Returns:
        A dict: ``"recall@k"``, ``"precision@k"``, ``"map@R"``, ``"queries"``,
        ``"index_size"``, ``"backend"``, ``"metric": "cosine"``.

    Raises:
        ValueError: for a bad option (unknown backend, the faiss backend without faiss
            installed, ``k`` larger than the training split).
    """
    del config
    from keras_ssl.evaluation import protocols  # imported here: protocols imports this module

    options = splits.options
    train_features, test_features = (
        protocols.cached_features(
            model.export_encoder, data[0], workdir, f"{splits.cache_key}_{name}"
        )
        for name, data in (("train", splits.train), ("test", splits.test))
    )
    try:
        index = Index(options.get("retrieval_backend", "exact"))
    except ImportError as error:  # faiss asked for but missing: a bad option, named with its fix
        raise ValueError(f"--eval_option=retrieval_backend=faiss: {error}") from error
    index.build(train_features, labels=splits.train[1])
    result = retrieval_metrics(
        index,
        test_features,
        splits.test[1],
        recall_ks=tuple(options.get("retrieval_recall_ks", RECALL_KS)),
        precision_ks=tuple(options.get("retrieval_precision_ks", PRECISION_KS)),
    )
    return {**result, "backend": index.backend, "metric": "cosine"}
