"""SwAV's queue of large-crop projections across replicas: each replica's share of it scored
against the prototypes, and the enqueue of the global batch.

The queue (a :class:`~keras_ssl.layers.MemoryQueue`, the same on every replica) holds one row
``[z_1 | z_2]`` per image: the unit projections of its large crops. Each replica scores its
``1 / N`` share of the rows, so the union of the replicas' Sinkhorn batches is the single
device's.
"""

import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.methods.multicrop_views import LARGE_CROPS


def queue_scores(queue, crop, kernel):
    """Scores ``[queue.size / replicas, K]`` of this replica's share of the queued projections
    of large crop ``crop`` against the prototypes ``kernel`` ``[d, K]`` (no gradient)."""
    replicas = distribute.num_replicas()
    share = queue.size // replicas
    keys = tf.convert_to_tensor(queue.keys)
    keys = tf.reshape(keys, [replicas, share, LARGE_CROPS, queue.dim // LARGE_CROPS])
    keys = tf.gather(keys, distribute.replica_id())[:, crop]
    return tf.matmul(keys, tf.stop_gradient(kernel))


def enqueue_global_batch(queue, fill, projections, active):
    """Enqueues the large-crop projections ``[n, 2 d]`` of every replica (gathered, so each
    replica writes the same keys) and adds them to the ``fill`` count, up to the queue size,
    when ``active`` (a bool tensor: the queue's start epoch has come)."""
    keys = distribute.gather_batch(projections)
    queue.enqueue(keys)
    added = tf.where(active, tf.shape(keys)[0], 0)
    fill.assign(tf.minimum(fill + added, queue.size))
