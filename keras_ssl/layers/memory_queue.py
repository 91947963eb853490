"""``MemoryQueue``: a first-in-first-out ring buffer of keys held in ``keras.Variable``s.

MoCo's dictionary (He et al. 2020, https://arxiv.org/abs/1911.05722, Sec. 3.2): the keys of the
most recent batches serve as negatives; every step the newest batch of keys replaces the oldest.
Keys and pointer are model weights, so they are saved in ``.keras`` files and checkpoints and
restored on resume.
"""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.validation import check_int


def random_unit_rows(shape, dtype=None):
    """Rows drawn from a standard normal and L2-normalised: random unit vectors.

    MoCo's initial queue (its code draws ``randn(dim, K)`` and normalises every key).
    """
    normal = keras.initializers.RandomNormal(stddev=1.0)(shape, dtype="float32")
    return tf.cast(tf.math.l2_normalize(normal, axis=-1), dtype or "float32")


def check_queue_batch(queue_size, batch, method, keys_per_image=1, views="", argument="queue_size"):
    """Raises a ``ValueError`` unless a method's queue is filled by whole training steps.

    :meth:`MemoryQueue.enqueue` writes the keys of one step at once: the per-replica ``batch``
    must be static and ``queue_size`` a multiple of the keys enqueued per step,
    ``batch * replicas * keys_per_image``. Call it when the step is traced, so the error names
    the method's own argument and batch.

    Args:
        queue_size: the size of the method's queue (its argument ``argument``).
        batch: static per-replica batch size (``None`` when unknown at trace time).
        method: the method's name, for the messages.
        keys_per_image: keys enqueued for each image of the global batch.
        views: what the message says after the global batch when ``keys_per_image > 1``
            (e.g. ``" x 2 views (symmetric=True)"``).
        argument: the name of the method's argument that sets the queue size.
    """
    if batch is None:
        raise ValueError(
            f"{method} needs batches of a fixed size (the queue is filled one global batch at a "
            "time); received views whose batch size is unknown when the step is traced. Fix: "
            "pass a tf.data.Dataset batched with drop_remainder=True "
            "(keras_ssl.datasets.make_ssl_dataset does) instead of NumPy arrays."
        )
    replicas = distribute.num_replicas()
    per_step = batch * replicas * keys_per_image
    if queue_size % per_step:
        lower = max(per_step, queue_size - queue_size % per_step)
        raise ValueError(
            f"{method}'s {argument} must be a multiple of the keys enqueued per step; received "
            f"{argument}={queue_size} with a global batch of {batch * replicas} "
            f"({batch} per replica x {replicas} replicas){views} = {per_step} keys per step. "
            f"Fix: use {argument}={lower} or {lower + per_step}, or a global batch size "
            f"that divides {queue_size}."
        )


@keras.saving.register_keras_serializable(package="keras_ssl")
class MemoryQueue(keras.layers.Layer):
    """A queue of ``size`` keys of dimension ``dim`` with a write pointer.

    ``keys`` (``[size, dim]`` float32, initialised with random unit vectors) and ``pointer``
    (int32 scalar, the row the next batch is written to) are non-trainable weights.
    :meth:`enqueue` writes a batch of ``n`` keys at rows ``pointer .. pointer + n - 1`` (the oldest
    keys) and advances the pointer by ``n`` modulo ``size``; ``size`` must be a multiple of ``n``
    so that batches never straddle the end. The update is a ``tensor_scatter_nd_update`` at
    static shapes, so it compiles with XLA and runs inside ``tf.distribute`` replica steps.

    Under a ``tf.distribute`` strategy the weights are mirrored with no aggregation: every replica
    updates its own copy, so callers must enqueue the same keys on every replica (gather them
    with ``keras_ssl.distribute.gather``); the copies then stay identical with no communication.

    Args:
        size: number of keys ``K`` (MoCo: 65536 on ImageNet, 4096 on CIFAR).
        dim: size of each key (the projection size, MoCo: 128).
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, size, dim, **kwargs):
        super().__init__(**kwargs)
        check_int(size, "size", 1, "pass e.g. size=65536 (MoCo on ImageNet).")
        check_int(dim, "dim", 1, "pass e.g. dim=128 (MoCo's projections).")
        self.size = size
        self.dim = dim
        self.keys = self.add_weight(
            shape=(size, dim),
            initializer=random_unit_rows,
            dtype="float32",
            trainable=False,
            autocast=False,
            name="keys",
        )
        self.pointer = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False, name="pointer"
        )
        self.built = True

    def call(self, inputs=None):
        """Returns the keys ``[size, dim]`` (``inputs`` is ignored); read-only."""
        return tf.convert_to_tensor(self.keys)

    def enqueue(self, new_keys):
        """Replaces the ``n`` oldest keys by ``new_keys`` ``[n, dim]`` and advances the pointer.

        Raises:
            ValueError: when ``new_keys`` is not ``[n, dim]`` with a static ``n`` dividing
                ``size``.
        """
        new_keys = tf.cast(tf.convert_to_tensor(new_keys), tf.float32)
        shape = tuple(new_keys.shape)
        if len(shape) != 2 or shape[-1] != self.dim:
            raise ValueError(
                f"MemoryQueue {self.name!r} holds keys of size {self.dim}; received keys of shape "
                f"{shape}. Expected [n, {self.dim}]. Fix: enqueue the projections the queue was "
                "built for."
            )
        count = shape[0]
        if count is None:
            raise ValueError(
                f"MemoryQueue {self.name!r} needs a static number of keys per enqueue; received "
                f"keys of shape {shape}. Fix: batch the data with drop_remainder=True."
            )
        if self.size % count:
            lower = max(count, self.size - self.size % count)
            raise ValueError(
                f"MemoryQueue size must be a multiple of the keys enqueued per step; received "
                f"size={self.size} and {count} keys per step. Fix: use size={lower} or "
                f"{lower + count}, or enqueue a number of keys that divides {self.size}."
            )
        # Modulo keeps the rows in range even if callers mix batch sizes that each divide size.
        rows = (self.pointer + tf.range(count, dtype=tf.int32)) % self.size
        self.keys.assign(tf.tensor_scatter_nd_update(self.keys, rows[:, None], new_keys))
        self.pointer.assign((self.pointer + count) % self.size)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "dim": self.dim}
