"""Use the embeddings: nearest-neighbour search and retrieval metrics.

- :class:`Index`: cosine search over embeddings with one interface for an exact TensorFlow
  backend and an approximate faiss backend (``pip install keras-ssl[retrieval]``); ``build``,
  ``add``, ``search``, atomic ``save`` / :func:`load_index`.
- :func:`recall_at_k`, :func:`precision_at_k`, :func:`map_at_r` on ranked neighbour labels, and
  :func:`retrieval_metrics` of queries against a labelled index (TensorFlow Similarity's
  definitions; leave-one-out with ``exclude_ids=index.ids``).
- :func:`retrieval_protocol`: ``keras-ssl eval --protocol=retrieval``;
  :func:`search_workdir`: ``keras-ssl search``.
"""

from keras_ssl.retrieval.faiss_backend import FaissBackend, import_faiss
from keras_ssl.retrieval.index import BACKENDS, ExactBackend, Index, load_index
from keras_ssl.retrieval.metrics import (
    map_at_r,
    precision_at_k,
    recall_at_k,
    relevant_counts,
    retrieval_metrics,
)
from keras_ssl.retrieval.protocol import RETRIEVAL_OPTIONS, retrieval_protocol
from keras_ssl.retrieval.search import plot_neighbours, search_workdir

__all__ = [
    "BACKENDS",
    "ExactBackend",
    "FaissBackend",
    "Index",
    "RETRIEVAL_OPTIONS",
    "import_faiss",
    "load_index",
    "map_at_r",
    "plot_neighbours",
    "precision_at_k",
    "recall_at_k",
    "relevant_counts",
    "retrieval_metrics",
    "retrieval_protocol",
    "search_workdir",
]
