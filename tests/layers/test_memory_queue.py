import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import testing
from keras_ssl.layers.memory_queue import MemoryQueue, check_queue_batch, random_unit_rows


def reference_ring(queue, pointer, batches):
    """NumPy FIFO: each batch overwrites the rows after the pointer, which then advances."""
    queue = queue.copy()
    for batch in batches:
        queue[pointer : pointer + len(batch)] = batch
        pointer = (pointer + len(batch)) % len(queue)
    return queue, pointer


def test_starts_with_random_unit_keys_and_pointer_zero():
    keras.utils.set_random_seed(0)
    queue = MemoryQueue(64, 5)
    keys = queue.keys.numpy()
    assert keys.shape == (64, 5) and keys.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(keys, axis=1), 1.0, rtol=1e-6, atol=1e-6)
    assert len(np.unique(keys.round(4), axis=0)) == 64  # random, not a constant
    assert abs(keys.mean()) < 0.2  # centred like normalised Gaussian draws
    assert int(queue.pointer.numpy()) == 0 and queue.pointer.dtype == "int32"
    assert not queue.trainable_weights and len(queue.non_trainable_weights) == 2
    np.testing.assert_array_equal(queue(None), keys)
    rows = random_unit_rows((3, 4)).numpy()
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-6, atol=1e-6)


def test_enqueue_is_a_ring_buffer_replacing_the_oldest_keys():
    queue = MemoryQueue(6, 2)
    initial = queue.keys.numpy()
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(2, 2)).astype(np.float32) for _ in range(5)]
    for count, batch in enumerate(batches, start=1):
        queue.enqueue(batch)
        expected, pointer = reference_ring(initial, 0, batches[:count])
        np.testing.assert_array_equal(queue.keys.numpy(), expected)
        assert int(queue.pointer.numpy()) == pointer
    # After 5 batches of 2 in 6 rows: rows 0-1 hold batch 4 (the 4th replaced the 1st), 2-3 batch
    # 5, 4-5 batch 3, and the pointer is at row 4 (the oldest keys).
    np.testing.assert_array_equal(queue.keys.numpy()[4:], batches[2])
    assert int(queue.pointer.numpy()) == 4


def test_enqueue_compiles_with_xla_and_matches_the_plain_update():
    plain, compiled = MemoryQueue(8, 3), MemoryQueue(8, 3)
    compiled.set_weights(plain.get_weights())
    step = tf.function(compiled.enqueue, jit_compile=True)
    rng = np.random.default_rng(1)
    for _ in range(3):
        keys = rng.normal(size=(4, 3)).astype(np.float32)
        plain.enqueue(keys)
        step(tf.constant(keys))
    np.testing.assert_array_equal(compiled.keys.numpy(), plain.keys.numpy())
    assert int(compiled.pointer.numpy()) == int(plain.pointer.numpy()) == 4


def test_replicas_that_enqueue_the_same_keys_keep_identical_copies():
    strategy = testing.two_replica_strategy()
    with strategy.scope():
        queue = MemoryQueue(8, 2)
    keys = np.arange(8, dtype=np.float32).reshape(4, 2)

    @tf.function
    def step():
        def replica_fn():
            queue.enqueue(tf.constant(keys))

        strategy.run(replica_fn)

    step()
    copies = [v.numpy() for v in queue.keys.value.values]
    np.testing.assert_array_equal(copies[0], copies[1])
    np.testing.assert_array_equal(copies[0][:4], keys)
    assert [int(p.numpy()) for p in queue.pointer.value.values] == [4, 4]


def test_config_round_trip():
    # Keys and pointer are weights: test_moco checks that .keras files restore them.
    queue = MemoryQueue(4, 3, name="bank")
    config = queue.get_config()
    assert config["size"] == 4 and config["dim"] == 3
    rebuilt = MemoryQueue.from_config(config)
    assert rebuilt.get_config() == config and rebuilt.keys.shape == (4, 3)


@pytest.mark.parametrize(
    "size, dim, match",
    [
        (0, 4, "`size` must be an integer >= 1; received 0"),
        (8, 2.5, "`dim` must be an integer >= 1; received 2.5"),
        (True, 4, "`size` must be an integer >= 1; received True"),
    ],
)
def test_bad_sizes(size, dim, match):
    with pytest.raises(ValueError, match=match):
        MemoryQueue(size, dim)


def test_bad_keys():
    queue = MemoryQueue(10, 4)
    with pytest.raises(ValueError, match=r"holds keys of size 4; received keys of shape \(2, 3\)"):
        queue.enqueue(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"size=10 and 4 keys per step. Fix: use size=8 or 12"):
        queue.enqueue(np.zeros((4, 4), np.float32))
    unknown = tf.function(queue.enqueue, input_signature=[tf.TensorSpec([None, 4])])
    with pytest.raises(ValueError, match="static number of keys.*drop_remainder=True"):
        unknown.get_concrete_function()


def test_check_queue_batch_needs_whole_steps_of_a_static_batch():
    check_queue_batch(24, 8, "MoCo")  # 3 steps fill the queue
    check_queue_batch(32, 8, "MoCo", keys_per_image=2)
    with pytest.raises(ValueError, match="MoCo needs batches of a fixed size.*drop_remainder=True"):
        check_queue_batch(24, None, "MoCo")
    with pytest.raises(
        ValueError,
        match=r"MoCo's queue_size must be .*received queue_size=20 with a global batch of 8 "
        r"\(8 per replica x 1 replicas\) = 8 keys per step\. Fix: use queue_size=16 or 24",
    ):
        check_queue_batch(20, 8, "MoCo")
    with pytest.raises(
        ValueError, match=r"of 8 \(8 per replica x 1 replicas\) x 2 views = 16 keys"
    ):
        check_queue_batch(24, 8, "MoCo", keys_per_image=2, views=" x 2 views")
    with pytest.raises(ValueError, match=r"SwAV's queue_length must .*use queue_length=16 or 24"):
        check_queue_batch(20, 8, "SwAV", argument="queue_length")
    # Under a strategy the keys per step are those of the global batch.
    strategy = testing.two_replica_strategy()
    with pytest.raises(ValueError, match=r"global batch of 8 \(4 per replica x 2 replicas\)"):
        strategy.run(lambda: check_queue_batch(12, 4, "MoCo"))
