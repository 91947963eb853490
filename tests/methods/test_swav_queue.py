import numpy as np
import tensorflow as tf

from keras_ssl.layers import MemoryQueue
from keras_ssl.methods.swav_queue import enqueue_global_batch, queue_scores


def test_one_replica_scores_the_whole_queue_of_one_crop():
    queue = MemoryQueue(6, 2 * 3, name="queue")
    kernel = tf.constant(np.random.default_rng(0).normal(size=(3, 4)), tf.float32)
    keys = queue.keys.numpy()
    for crop in (0, 1):
        expected = keys[:, crop * 3 : (crop + 1) * 3] @ kernel.numpy()
        np.testing.assert_allclose(queue_scores(queue, crop, kernel), expected, rtol=1e-5)


def test_enqueue_counts_the_fill_only_once_active_and_up_to_the_size():
    queue = MemoryQueue(4, 2, name="queue")
    fill = tf.Variable(0, dtype=tf.int32)
    new = tf.ones((2, 2))
    enqueue_global_batch(queue, fill, new, tf.constant(False))
    assert int(fill.numpy()) == 0 and int(queue.pointer.numpy()) == 2
    for expected in (2, 4, 4):
        enqueue_global_batch(queue, fill, new, tf.constant(True))
        assert int(fill.numpy()) == expected
    np.testing.assert_array_equal(queue.keys.numpy(), 1.0)
