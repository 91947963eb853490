"""Approximate cosine search with faiss (``pip install keras-ssl[retrieval]``).

faiss is imported only when this backend is used, so keras_ssl works without it. Vectors are
L2-normalised by :class:`keras_ssl.retrieval.Index` and searched by inner product
(``faiss.METRIC_INNER_PRODUCT``), which on unit vectors is cosine similarity.
"""

import math
import os

import numpy as np

from keras_ssl.validation import check_int

INSTALL_HINT = "pip install keras-ssl[retrieval]  (or: pip install 'faiss-cpu>=1.8')"
FAISS_FILE = "faiss.index"
KINDS = ("hnsw", "ivf_flat")


def import_faiss():
    """Imports and returns the ``faiss`` module.

    Raises:
        ImportError: when faiss is not installed, naming the fix
            (``pip install keras-ssl[retrieval]``).
    """
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "The faiss index backend needs the faiss package, which is not installed "
            f"(received: {error}). Fix: {INSTALL_HINT}; or use the exact backend "
            "(Index(backend='exact'))."
        ) from error
    return faiss


def default_nlist(size):
    """IVF lists for ``size`` vectors: ``4 * sqrt(size)``, at most ``size // 39`` (faiss wants
    about 39 training vectors per list), at least 1."""
    return max(1, min(int(round(4 * math.sqrt(size))), size // 39))


class FaissBackend:
    """faiss search on unit vectors by inner product: HNSW (default) or IVF-Flat.

    ``kind="hnsw"`` (``faiss.IndexHNSWFlat``): a graph over the vectors; no training, items can
    be added at any time. Its parameters: ``hnsw_m`` neighbours per node (memory and accuracy
    grow with it), ``ef_construction`` candidates while inserting, ``ef_search`` candidates while
    searching (raised to ``k`` when ``k`` is larger). Higher ``ef_search`` trades speed for
    recall.

    ``kind="ivf_flat"`` (``faiss.IndexIVFFlat``): vectors are bucketed into ``nlist`` k-means
    cells trained on the first vectors added (``None``: :func:`default_nlist` of their count);
    a search scans the ``nprobe`` nearest cells exhaustively. Higher ``nprobe`` trades speed for
    recall; ``nprobe = nlist`` is exact. Items added later go into the trained cells.

    Args:
        kind: ``"hnsw"`` or ``"ivf_flat"``.
        hnsw_m: HNSW graph degree (default 32).
        ef_construction: HNSW insertion breadth (default 64).
        ef_search: HNSW search breadth (default 128).
        nlist: IVF cells (default ``None``: chosen from the first build's size).
        nprobe: IVF cells scanned per query (default 16, at most ``nlist``).
        seed: seed of the IVF k-means (default 0).

    Raises:
        ValueError: for an unknown ``kind`` or a non-positive parameter.
        ImportError: when faiss is not installed.
    """

    name = "faiss"

    def __init__(
        self,
        kind="hnsw",
        hnsw_m=32,
        ef_construction=64,
        ef_search=128,
        nlist=None,
        nprobe=16,
        seed=0,
    ):
        if kind not in KINDS:
            raise ValueError(
                f"Unknown faiss index kind {kind!r}; expected one of {KINDS}. Fix: pass "
                "kind='hnsw' (graph, no training) or kind='ivf_flat' (inverted lists)."
            )
        self.kind = kind
        self.hnsw_m = check_int(hnsw_m, "hnsw_m", minimum=2)
        self.ef_construction = check_int(ef_construction, "ef_construction")
        self.ef_search = check_int(ef_search, "ef_search")
        self.nlist = None if nlist is None else check_int(nlist, "nlist")
        self.nprobe = check_int(nprobe, "nprobe")
        self.seed = check_int(seed, "seed", minimum=0)
        self._faiss = import_faiss()
        self._index = None
        self._trained_nlist = None

    @property
    def options(self):
        """The constructor arguments, with ``nlist`` resolved once an IVF index is trained."""
        return {
            "kind": self.kind,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "nlist": self._trained_nlist or self.nlist,
            "nprobe": self.nprobe,
            "seed": self.seed,
        }

    def __len__(self):
        return 0 if self._index is None else int(self._index.ntotal)

    def reset(self):
        """Removes every vector; an IVF index is trained again on the next :meth:`add`."""
        self._index, self._trained_nlist = None, None

    def add(self, vectors):
        """Adds L2-normalised ``float32`` vectors ``[n, D]`` (trains IVF cells on the first)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._index is None:
            self._index = self._create(vectors)
        self._index.add(vectors)

    def _create(self, vectors):
        faiss, dim = self._faiss, vectors.shape[1]
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            return index
        nlist = self.nlist or default_nlist(len(vectors))
        if nlist > len(vectors):
            raise ValueError(
                f"`nlist` must be at most the {len(vectors)} vectors the IVF cells are trained "
                f"on; received nlist={nlist}. Fix: pass nlist=None (automatic) or build with "
                "more vectors."
            )
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = self.seed
        index.train(vectors)
        self._quantizer, self._trained_nlist = quantizer, nlist  # keep the quantizer alive
        return index

    def search(self, queries, k, exclude_positions):
        """Top-``k`` positions (``-1`` where none was found) and scores of unit ``queries``."""
        extra = int(exclude_positions is not None)
        depth = min(k + extra, len(self))
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = max(self.ef_search, depth)
        else:
            self._index.nprobe = min(self.nprobe, self._index.nlist)
        scores, positions = self._index.search(np.ascontiguousarray(queries, np.float32), depth)
        positions = positions.astype(np.int64)
        if extra:
            # Drop the excluded item where it was found, else the last (k+1-th) neighbour.
            excluded = exclude_positions[:, None]
            keep = (positions != excluded) | (excluded < 0)
            keep[keep.all(axis=1), -1] = False
            positions = positions[keep].reshape(len(queries), depth - 1)
            scores = scores[keep].reshape(len(queries), depth - 1)
        scores = np.where(positions < 0, -np.inf, scores).astype(np.float32)
        return positions, scores

    def save(self, folder):
        """Writes ``faiss.index`` into ``folder`` (``faiss.write_index``)."""
        if self._index is not None:
            self._faiss.write_index(self._index, os.path.join(folder, FAISS_FILE))

    @classmethod
    def load(cls, folder, options, dim, size):
        """Reads what :meth:`save` wrote (raises ImportError without faiss)."""
        backend = cls(**options)
        path = os.path.join(folder, FAISS_FILE)
        if size or os.path.exists(path):
            if not os.path.exists(path):
                raise ValueError(
                    f"Saved faiss index {folder} is incomplete: {FAISS_FILE} is missing. Fix: "
                    "save the index again."
                )
            backend._index = backend._faiss.read_index(path)
            backend._trained_nlist = options.get("nlist") if backend.kind == "ivf_flat" else None
            if backend._index.d != dim:
                raise ValueError(
                    f"Saved faiss index {folder} is inconsistent: {FAISS_FILE} has dimension "
                    f"{backend._index.d}; expected {dim}. Fix: save the index again."
                )
        return backend
