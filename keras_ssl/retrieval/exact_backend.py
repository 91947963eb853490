"""Exact cosine search in TensorFlow: the default backend of :class:`keras_ssl.retrieval.Index`."""

import os

import numpy as np
import tensorflow as tf

from keras_ssl.validation import check_int

#: The exact backend's default block: queries per matmul are chosen so that a block of scores
#: holds at most this many entries (2**24 float32 = 64 MiB; 279 queries against 60,000 items).
MAX_BLOCK_SCORES = 2**24


class ExactBackend:
    """Exhaustive cosine search in TensorFlow: one matmul and ``tf.math.top_k`` per block.

    Queries are processed in blocks of ``batch_size`` rows, so memory holds at most a
    ``[batch_size, N]`` block of scores, never ``[Q, N]``. Ties are broken by insertion order
    (the earlier item ranks first), as ``tf.math.top_k`` does.

    On Ampere and newer NVIDIA GPUs TensorFlow computes float32 matmuls in TensorFloat-32 by
    default (about 3 significant digits); call
    ``tf.config.experimental.enable_tensor_float_32_execution(False)`` for full-precision
    scores there.

    Args:
        batch_size: queries per block; ``None`` picks the largest block of at most
            ``MAX_BLOCK_SCORES`` scores.
    """

    name = "exact"

    def __init__(self, batch_size=None):
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", fix="pass e.g. 256, or None.")
        self.batch_size = batch_size
        self._chunks, self._vectors, self._tensor = [], None, None

    @property
    def options(self):
        """The constructor arguments (saved with the index)."""
        return {"batch_size": self.batch_size}

    def __len__(self):
        return sum(len(chunk) for chunk in self._chunks)

    def reset(self):
        """Removes every vector (the options stay)."""
        self._chunks, self._vectors, self._tensor = [], None, None

    def add(self, vectors):
        """Appends L2-normalised ``float32`` vectors ``[n, D]``."""
        self._chunks.append(vectors)
        self._vectors = self._tensor = None

    def vectors(self):
        """All stored (normalised) vectors, ``float32 [N, D]``."""
        if self._vectors is None:
            self._vectors = np.concatenate(self._chunks)
            self._chunks = [self._vectors]
        return self._vectors

    def search(self, queries, k, exclude_positions):
        """Top-``k`` positions and scores of normalised ``queries`` (see :meth:`Index.search`)."""
        if self._tensor is None:
            self._tensor = tf.constant(self.vectors())
        size = len(self)
        rows = self.batch_size or max(1, MAX_BLOCK_SCORES // size)
        positions, scores = [], []
        for start in range(0, len(queries), rows):
            block = tf.constant(queries[start : start + rows])
            similarity = tf.linalg.matmul(block, self._tensor, transpose_b=True)
            if exclude_positions is not None:
                # one_hot of -1 is an all-False row: queries with nothing to exclude keep all.
                excluded = tf.one_hot(exclude_positions[start : start + rows], size, True, False)
                similarity = tf.where(excluded, -np.inf, similarity)
            values, indices = tf.math.top_k(similarity, k=k)
            positions.append(indices.numpy().astype(np.int64))
            scores.append(values.numpy())
        return np.concatenate(positions), np.concatenate(scores).astype(np.float32)

    def save(self, folder):
        """Writes ``vectors.npy`` into ``folder``."""
        np.save(os.path.join(folder, "vectors.npy"), self.vectors() if len(self) else [])

    @classmethod
    def load(cls, folder, options, dim, size):
        """Reads what :meth:`save` wrote."""
        backend = cls(**options)
        vectors = np.load(os.path.join(folder, "vectors.npy")).astype(np.float32)
        if size:
            if vectors.shape != (size, dim):
                raise ValueError(
                    f"Saved index {folder} is inconsistent: vectors.npy has shape "
                    f"{vectors.shape}; expected ({size}, {dim}) from index.json. Fix: save "
                    "the index again."
                )
            backend.add(vectors)
        return backend
