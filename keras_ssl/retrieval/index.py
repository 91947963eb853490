"""A nearest-neighbour index over embeddings, with one interface for two backends.

``Index(backend="exact")`` searches exhaustively in TensorFlow; ``Index(backend="faiss")``
searches approximately with faiss (``pip install keras-ssl[retrieval]``). Both score by cosine
similarity: vectors and queries are L2-normalised and compared by inner product, so a score is
in ``[-1, 1]`` and higher is nearer::

    index = Index().build(train_embeddings, labels=train_labels)
    ids, scores = index.search(query_embeddings, k=10)  # [Q, 10] each, nearest first
    index.labels_for(ids)                               # their labels
    index.save("index/")                                # atomic; Index.load("index/")

Items are identified by integer ``ids`` (by default ``0, 1, ...`` in the order they were added),
and may carry integer ``labels`` and JSON-able ``metadata`` (one entry per item, e.g. a file
path). A saved index records its backend, so :func:`load_index` rebuilds the right one.
"""

import json
import os
import shutil
import uuid

import numpy as np

from keras_ssl.evaluation.features import check_features, check_labels, l2_normalize
from keras_ssl.export import move_into_place
from keras_ssl.retrieval import faiss_backend
from keras_ssl.retrieval.exact_backend import ExactBackend
from keras_ssl.validation import check_int

#: Saved-index layout: ``index.json`` (this format's description) plus ``ids.npy`` and, when
#: present, ``labels.npy``, ``metadata.json`` and the backend's own files.
INDEX_FILE = "index.json"
FORMAT = "keras_ssl.retrieval.Index"
FORMAT_VERSION = 1

BACKENDS = {"exact": ExactBackend, "faiss": faiss_backend.FaissBackend}


class Index:
    """Cosine nearest-neighbour search over embeddings (exact or with faiss).

    Args:
        backend: ``"exact"`` (TensorFlow, exhaustive; see :class:`ExactBackend`) or ``"faiss"``
            (approximate, needs ``pip install keras-ssl[retrieval]``; see
            :class:`keras_ssl.retrieval.faiss_backend.FaissBackend` for its options and their
            defaults).
        **options: the backend's options, e.g. ``Index("faiss", kind="ivf_flat", nprobe=32)``.

    Attributes:
        info: a JSON-able dict saved with the index (e.g. which encoder made the vectors).

    Raises:
        ValueError: for an unknown backend or option.
        ImportError: for ``backend="faiss"`` without faiss installed.
    """

    def __init__(self, backend="exact", **options):
        if backend not in BACKENDS:
            raise ValueError(
                f"Unknown index backend {backend!r}; expected one of {sorted(BACKENDS)}. Fix: "
                "pass backend='exact' (TensorFlow) or backend='faiss' (approximate)."
            )
        try:
            self._backend = BACKENDS[backend](**options)
            self._requested = dict(options)
        except TypeError as error:
            raise ValueError(
                f"Bad options for the {backend!r} index backend: received {sorted(options)} "
                f"({error}). Fix: see the docstring of {BACKENDS[backend].__name__}."
            ) from error
        self.info = {}
        self._dim = None
        self._ids = np.zeros((0,), np.int64)
        self._labels = None
        self._metadata = None
        self._lookup_table = None

    # ------------------------------------------------------------------------- contents
    @property
    def backend(self):
        """The backend's name: ``"exact"`` or ``"faiss"``."""
        return self._backend.name

    @property
    def options(self):
        """The backend's options (what the index was created with, resolved defaults)."""
        return dict(self._backend.options)

    @property
    def dim(self):
        """The vector dimension, ``None`` before anything is added."""
        return self._dim

    @property
    def ids(self):
        """``int64 [N]`` ids of the items, in insertion order (read-only)."""
        return _read_only(self._ids)

    @property
    def labels(self):
        """``int64 [N]`` labels of the items, or ``None`` for an unlabelled index."""
        return None if self._labels is None else _read_only(self._labels)

    @property
    def metadata(self):
        """The items' metadata (a list, one entry per item), or ``None``."""
        return None if self._metadata is None else list(self._metadata)

    def __len__(self):
        return len(self._ids)

    def __repr__(self):
        return f"Index(backend={self.backend!r}, items={len(self)}, dim={self.dim})"

    # ------------------------------------------------------------------------- building
    def build(self, vectors, labels=None, ids=None, metadata=None):
        """Replaces the index's contents with ``vectors`` (see :meth:`add` for the arguments).

        The new contents are built aside and swapped in, so a build that raises leaves the
        index as it was. ``info`` is kept.

        Returns:
            The index itself, so ``Index().build(x)`` reads naturally.
        """
        fresh = Index(self.backend, **self._requested)
        fresh.add(vectors, labels=labels, ids=ids, metadata=metadata)
        info = self.info
        self.__dict__.update(fresh.__dict__)
        self.info = info
        return self

    def add(self, vectors, labels=None, ids=None, metadata=None):
        """Adds items to the index.

        Args:
            vectors: ``[n, D]`` finite numeric embeddings (L2-normalised here; an all-zero row
                scores 0 against everything).
            labels: optional ``[n]`` non-negative integer labels. An index is either labelled
                throughout or not at all: pass labels on every ``add`` of a labelled index.
            ids: optional ``[n]`` non-negative unique integer ids; default: consecutive ids
                after the largest present (``0, 1, ...`` for a new index).
            metadata: optional sequence of ``n`` JSON-able entries (e.g. file names); like
                labels, all or nothing.

        Returns:
            The index itself.

        Raises:
            ValueError: for a bad shape or dtype, a dimension other than the index's, labels,
                ids or metadata of the wrong length or kind, duplicate ids, or labels/metadata
                given to an index built without them (or missing from one built with them).
        """
        vectors = check_features(vectors, "vectors")
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise ValueError(
                f"`vectors` must have the index's dimension {self._dim}; received shape "
                f"{vectors.shape}. Fix: embed with the encoder that built the index, or build "
                "a new index."
            )
        count = len(vectors)
        new_ids = self._new_ids(ids, count)
        new_labels = self._new_labels(labels, count)
        new_metadata = self._new_metadata(metadata, count)
        self._backend.add(l2_normalize(vectors))
        self._dim = int(vectors.shape[1])
        self._ids = np.concatenate([self._ids, new_ids])
        if new_labels is not None:
            self._labels = np.concatenate([self._labels, new_labels])
        if new_metadata is not None:
            self._metadata.extend(new_metadata)
        self._lookup_table = None
        return self

    def _new_ids(self, ids, count):
        if ids is None:
            first = int(self._ids.max()) + 1 if len(self._ids) else 0
            return np.arange(first, first + count, dtype=np.int64)
        ids = check_labels(ids, count, name="ids", features_name="vectors")
        if len(ids) and ids.min() < 0:
            raise ValueError(
                f"`ids` must be non-negative integers; received a minimum of {ids.min()}. Fix: "
                "use ids >= 0 (-1 marks 'no neighbour' in search results)."
            )
        unique, repeats = np.unique(np.concatenate([self._ids, ids]), return_counts=True)
        if np.any(repeats > 1):
            duplicates = unique[repeats > 1][:5].tolist()
            raise ValueError(
                f"`ids` must be unique in the index; received duplicates such as {duplicates}. "
                "Fix: pass distinct ids, or leave ids=None for consecutive ones."
            )
        return ids

    def _new_labels(self, labels, count):
        labelled = self._labels is not None
        if len(self._ids) and labelled != (labels is not None):
            have = "labelled" if labelled else "unlabelled"
            raise ValueError(
                f"This index is {have}; received labels={'None' if labels is None else '...'}. "
                f"Expected {'labels for every item' if labelled else 'no labels'}. Fix: "
                f"{'pass labels=' if labelled else 'drop labels=, or build a labelled index'}."
            )
        if labels is None:
            return None
        if self._labels is None:
            self._labels = np.zeros((0,), np.int64)
        labels = check_labels(labels, count, name="labels", features_name="vectors")
        if len(labels) and labels.min() < 0:
            raise ValueError(
                f"`labels` must be non-negative class ids; received a minimum of "
                f"{labels.min()}. Fix: remap the classes to 0..C-1."
            )
        return labels

    def _new_metadata(self, metadata, count):
        has = self._metadata is not None
        if len(self._ids) and has != (metadata is not None):
            raise ValueError(
                f"This index {'has' if has else 'has no'} metadata; received "
                f"metadata={'None' if metadata is None else '...'}. Fix: "
                f"{'pass metadata= for every add' if has else 'drop metadata='}."
            )
        if metadata is None:
            return None
        if isinstance(metadata, (str, bytes, dict)) or not hasattr(metadata, "__len__"):
            raise ValueError(
                f"`metadata` must be a sequence with one entry per vector; received "
                f"{type(metadata).__name__}. Fix: pass a list, e.g. [{{'path': ...}}, ...]."
            )
        metadata = list(metadata)
        if len(metadata) != count:
            raise ValueError(
                f"`metadata` has {len(metadata)} entries but `vectors` has {count} rows; "
                "expected one entry per vector. Fix: pass the metadata of exactly these items."
            )
        try:
            json.dumps(metadata)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"`metadata` must be JSON-serialisable (it is saved as JSON); received entries "
                f"that are not ({error}). Fix: use str, int, float, bool, None, lists and dicts."
            ) from error
        if self._metadata is None:
            self._metadata = []
        return metadata

    # ------------------------------------------------------------------------ searching
    def search(self, queries, k, exclude_ids=None):
        """The ``k`` nearest items of each query by cosine similarity.

        Args:
            queries: ``[Q, D]`` finite numeric embeddings (L2-normalised here).
            k: neighbours per query, ``1 <= k <=`` the items a query can find (``len(index)``,
                less one with ``exclude_ids``).
            exclude_ids: optional ``[Q]`` ids; query ``i`` never returns item
                ``exclude_ids[i]`` (``-1``: exclude nothing). ``exclude_ids=index.ids`` with
                ``queries`` the index's own vectors is leave-one-out search.

        Returns:
            ``(ids, scores)``: ``int64 [Q, k]`` item ids, nearest first, and ``float32 [Q, k]``
            cosine similarities. An approximate backend that finds fewer than ``k`` items
            fills the rest with id ``-1`` and score ``-inf``.

        Raises:
            ValueError: for an empty index, queries of the wrong rank, dtype or dimension, a
                bad ``k``, or ``exclude_ids`` of the wrong length or naming unknown ids.
        """
        if not len(self):
            raise ValueError(
                "The index is empty; received a search before any vectors were added. Fix: "
                "index.build(vectors) first."
            )
        queries = check_features(queries, "queries")
        if queries.shape[1] != self._dim:
            raise ValueError(
                f"`queries` must have the index's dimension {self._dim}; received shape "
                f"{queries.shape}. Fix: embed the queries with the encoder that built the index."
            )
        exclude_positions = None
        if exclude_ids is not None:
            exclude_positions = self._positions(exclude_ids, len(queries))
        searchable = len(self) - (exclude_ids is not None)
        k = check_int(k, "k")
        if k > searchable:
            raise ValueError(
                f"`k` must be at most the {searchable} items a query can find in this index of "
                f"{len(self)}; received k={k}. Fix: pass k <= {searchable}."
            )
        positions, scores = self._backend.search(l2_normalize(queries), k, exclude_positions)
        missing = positions < 0
        ids = np.where(missing, -1, self._ids[np.maximum(positions, 0)])
        return ids.astype(np.int64), np.where(missing, -np.inf, scores).astype(np.float32)

    def labels_for(self, ids):
        """The labels of items given by id (any shape; ``-1`` ids give label ``-1``).

        Raises:
            ValueError: for an unlabelled index or ids not in the index.
        """
        if self._labels is None:
            raise ValueError(
                "This index has no labels; received a labels_for call. Fix: build the index "
                "with labels=..."
            )
        ids = np.asarray(ids, dtype=np.int64)
        positions = self._lookup(ids)
        return np.where(ids < 0, -1, self._labels[np.maximum(positions, 0)])

    def metadata_for(self, ids):
        """The metadata of items given by id, as nested lists shaped like ``ids`` (``None`` for
        id ``-1``).

        Raises:
            ValueError: for an index without metadata or ids not in the index.
        """
        if self._metadata is None:
            raise ValueError(
                "This index has no metadata; received a metadata_for call. Fix: build the "
                "index with metadata=[...]."
            )
        ids = np.asarray(ids, dtype=np.int64)
        positions = self._lookup(ids)
        flat = [None if p < 0 else self._metadata[p] for p in positions.ravel()]
        return np.array(flat + [None], dtype=object)[:-1].reshape(ids.shape).tolist()

    def _lookup(self, ids):
        """Positions of ``ids`` (``-1`` stays ``-1``), by binary search in the sorted ids;
        unknown ids are an error."""
        if self._lookup_table is None:
            order = np.argsort(self._ids, kind="stable")
            self._lookup_table = (self._ids[order], order)
        sorted_ids, order = self._lookup_table
        flat = ids.ravel()
        slots = np.minimum(np.searchsorted(sorted_ids, flat), max(len(sorted_ids) - 1, 0))
        wanted = flat >= 0
        found = wanted & (sorted_ids[slots] == flat) if len(sorted_ids) else wanted & False
        if np.any(wanted & ~found):
            unknown = flat[wanted & ~found]
            raise ValueError(
                f"Ids not in the index: received {unknown[:5].tolist()}"
                f"{' ...' if len(unknown) > 5 else ''}; expected ids of index.ids (or -1). Fix: "
                "pass ids returned by search."
            )
        positions = np.where(wanted, order[slots] if len(order) else -1, -1)
        return positions.astype(np.int64).reshape(ids.shape)

    def _positions(self, exclude_ids, count):
        exclude_ids = np.asarray(exclude_ids)
        if exclude_ids.shape != (count,) or not np.issubdtype(exclude_ids.dtype, np.integer):
            raise ValueError(
                f"`exclude_ids` must be integer ids, one per query, shape ({count},); received "
                f"shape {exclude_ids.shape}, dtype {exclude_ids.dtype}. Fix: pass index.ids "
                "for leave-one-out, or -1 where nothing is excluded."
            )
        return self._lookup(exclude_ids.astype(np.int64))

    # --------------------------------------------------------------------- saving, loading
    def save(self, path, overwrite=False):
        """Writes the index to the folder ``path``, atomically.

        The folder is written to a temporary sibling and moved into place when complete, so a
        failed save leaves any earlier index at ``path`` untouched.

        Args:
            path: destination folder.
            overwrite: replace an index already saved there.

        Returns:
            The absolute path as a string.

        Raises:
            ValueError: when ``path`` holds an index and ``overwrite`` is False, or holds
                anything other than a saved index.
        """
        path = os.path.abspath(os.fspath(path))
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            if not os.path.exists(os.path.join(path, INDEX_FILE)):
                raise ValueError(
                    f"Index path {path!r} holds other files; expected an empty or missing "
                    "folder, or a saved index. Fix: choose another path."
                )
            if not overwrite:
                raise ValueError(
                    f"Index path {path!r} already holds a saved index; received "
                    "overwrite=False. Fix: pass overwrite=True to replace it, or another path."
                )
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        staging = os.path.join(parent, f".{os.path.basename(path)}.partial-{uuid.uuid4().hex[:8]}")
        try:
            os.makedirs(staging)
            np.save(os.path.join(staging, "ids.npy"), self._ids)
            if self._labels is not None:
                np.save(os.path.join(staging, "labels.npy"), self._labels)
            if self._metadata is not None:
                with open(os.path.join(staging, "metadata.json"), "w") as file:
                    json.dump(self._metadata, file)
            self._backend.save(staging)
            description = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "backend": self.backend,
                "options": self._backend.options,
                "dim": self._dim,
                "size": len(self),
                "labels": self._labels is not None,
                "metadata": self._metadata is not None,
                "metric": "cosine",
                "info": self.info,
            }
            with open(os.path.join(staging, INDEX_FILE), "w") as file:
                json.dump(description, file, indent=2)
            move_into_place(staging, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path):
        """Reads an index written by :meth:`save`, with the backend it was saved with.

        Raises:
            ValueError: for a folder that holds no (or an inconsistent) saved index.
            ImportError: for a faiss index without faiss installed (the message names the fix,
                ``pip install keras-ssl[retrieval]``).
        """
        path = os.path.abspath(os.fspath(path))
        description = _read_description(path)
        backend_name = description.get("backend")
        if backend_name not in BACKENDS:
            raise ValueError(
                f"Saved index {path} names backend {backend_name!r}; expected one of "
                f"{sorted(BACKENDS)}. Fix: save the index again with this keras_ssl version."
            )
        size, dim = int(description["size"]), description["dim"]
        index = cls.__new__(cls)
        index._backend = BACKENDS[backend_name].load(path, description["options"], dim, size)
        index._requested = dict(description["options"])
        index.info = dict(description.get("info") or {})
        index._dim = dim
        index._ids = np.load(os.path.join(path, "ids.npy")).astype(np.int64)
        index._labels = index._metadata = index._lookup_table = None
        if description.get("labels"):
            index._labels = np.load(os.path.join(path, "labels.npy")).astype(np.int64)
        if description.get("metadata"):
            with open(os.path.join(path, "metadata.json")) as file:
                index._metadata = json.load(file)
        lengths = {
            "ids.npy": len(index._ids),
            "labels.npy": size if index._labels is None else len(index._labels),
            "metadata.json": size if index._metadata is None else len(index._metadata),
            "the backend's vectors": len(index._backend),
        }
        wrong = {name: length for name, length in lengths.items() if length != size}
        if wrong:
            raise ValueError(
                f"Saved index {path} is inconsistent: {INDEX_FILE} says {size} items but "
                f"received {wrong}. Fix: save the index again."
            )
        return index


def load_index(path):
    """Reads a saved index (see :meth:`Index.load`)."""
    return Index.load(path)


def _read_description(path):
    file_path = os.path.join(path, INDEX_FILE)
    try:
        with open(file_path) as file:
            description = json.load(file)
    except FileNotFoundError:
        raise ValueError(
            f"No saved index in {path!r}: {INDEX_FILE} is missing. Expected a folder written "
            "by Index.save. Fix: check the path, or build and save the index first."
        ) from None
    except ValueError as error:
        raise ValueError(
            f"Saved index {path} has an unreadable {INDEX_FILE} ({error}). Fix: save the "
            "index again."
        ) from error
    if description.get("format") != FORMAT or description.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{file_path} is not a keras_ssl index of format version {FORMAT_VERSION}; received "
            f"format {description.get('format')!r}, version {description.get('version')!r}. "
            "Fix: save the index again with this keras_ssl version."
        )
    return description


def _read_only(array):
    view = array.view()
    view.flags.writeable = False
    return view
