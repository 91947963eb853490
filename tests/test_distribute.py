import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import distribute, testing


def test_resolve_on_a_cpu_machine_is_the_default_strategy():
    assert distribute.resolve() is tf.distribute.get_strategy()


def test_resolve_with_an_unreachable_tpu_name_raises():
    with pytest.raises(ValueError, match="Could not reach the TPU"):
        distribute.resolve(tpu="no-such-tpu-xyz")


def test_per_replica_batch_size():
    strategy = testing.two_replica_strategy()
    assert distribute.per_replica_batch_size(256, strategy) == 128
    with pytest.raises(ValueError, match="batch_size=6 or 8"):
        distribute.per_replica_batch_size(7, strategy)


def test_gather_offset_and_reductions_across_two_replicas():
    strategy = testing.two_replica_strategy()

    def step(x):
        gathered = distribute.gather(x)
        offset = distribute.replica_offset(tf.shape(x)[0])
        total = distribute.all_reduce_sum(tf.reduce_sum(x))
        mean = distribute.all_reduce_mean(tf.reduce_sum(x))
        return gathered, offset, total, mean, distribute.num_replicas()

    x = tf.data.Dataset.from_tensor_slices(np.arange(6, dtype=np.float32)).batch(6)
    batch = next(iter(strategy.experimental_distribute_dataset(x)))
    gathered, offset, total, mean, replicas = strategy.run(tf.function(step), args=(batch,))
    for value in strategy.experimental_local_results(gathered):
        np.testing.assert_array_equal(value, np.arange(6))
    assert [int(v) for v in strategy.experimental_local_results(offset)] == [0, 3]
    assert {float(v) for v in strategy.experimental_local_results(total)} == {15.0}
    assert {float(v) for v in strategy.experimental_local_results(mean)} == {7.5}
    assert {int(v) for v in strategy.experimental_local_results(replicas)} == {2}


def test_gather_batch_concatenates_replicas_with_a_static_batch():
    strategy = testing.two_replica_strategy()
    shapes = {}

    def step(x):
        unknown = tf.compat.v1.placeholder_with_default(x, [None, 2])
        shapes["plain gather"] = distribute.gather(x).shape.as_list()
        shapes["unknown batch"] = distribute.gather_batch(unknown).shape.as_list()
        gathered = distribute.gather_batch(x)
        shapes["static batch"] = gathered.shape.as_list()
        return gathered

    x = tf.data.Dataset.from_tensor_slices(np.arange(12, dtype=np.float32).reshape(6, 2)).batch(6)
    gathered = strategy.run(
        tf.function(step), args=(next(iter(strategy.experimental_distribute_dataset(x))),)
    )
    for value in strategy.experimental_local_results(gathered):
        np.testing.assert_array_equal(value, np.arange(12).reshape(6, 2))
    assert shapes["plain gather"][0] is None  # what gather_batch restores
    assert shapes["static batch"] == [6, 2]  # 2 replicas x 3 rows
    assert shapes["unknown batch"] == [None, 2]


def test_bfloat16_collectives_across_two_replicas():
    # CPU collectives have no bfloat16 kernels; mixed_bfloat16 steps gather bfloat16 embeddings.
    strategy = testing.two_replica_strategy()

    def step(x):
        x = tf.cast(x, tf.bfloat16)
        with tf.GradientTape() as tape:
            tape.watch(x)
            gathered = distribute.gather(x)
            loss = tf.reduce_sum(tf.cast(gathered, tf.float32) * np.arange(1, 7))
        # Nested values (Barlow Twins and VICReg reduce tuples of sums) keep their leaf dtypes.
        total, as_float = distribute.all_reduce_sum((tf.reduce_sum(x), tf.cast(x[:1], tf.float32)))
        assert total.dtype == tf.bfloat16 and as_float.dtype == tf.float32
        return gathered, total, distribute.all_reduce_mean(tf.reduce_sum(x)), tape.gradient(loss, x)

    x = tf.data.Dataset.from_tensor_slices(np.arange(6, dtype=np.float32)).batch(6)
    batch = next(iter(strategy.experimental_distribute_dataset(x)))
    gathered, total, mean, gradient = strategy.run(tf.function(step), args=(batch,))
    for value in strategy.experimental_local_results(gathered):
        assert value.dtype == tf.bfloat16
        np.testing.assert_array_equal(tf.cast(value, tf.float32), np.arange(6))
    assert {float(v) for v in strategy.experimental_local_results(total)} == {15.0}
    assert {float(v) for v in strategy.experimental_local_results(mean)} == {7.5}
    # Each replica's slice gets the upstream gradient summed over both replicas' losses.
    gradients = [
        tf.cast(g, tf.float32).numpy() for g in strategy.experimental_local_results(gradient)
    ]
    np.testing.assert_array_equal(np.concatenate(gradients), 2 * np.arange(1, 7))


def test_helpers_are_identity_on_one_device():
    x = tf.constant([[1.0, 2.0]])
    assert distribute.gather(x) is x
    assert distribute.gather_batch(x) is x
    np.testing.assert_array_equal(distribute.gather_batch([[1.0], [2.0]]), [[1.0], [2.0]])
    assert int(distribute.replica_offset(1)) == 0
    assert distribute.all_reduce_sum(x) is x


def test_resolve_named_strategies():
    assert isinstance(distribute.resolve(strategy="cpu"), tf.distribute.OneDeviceStrategy)
    with pytest.raises(ValueError, match="Unknown strategy 'gpu'"):
        distribute.resolve(strategy="gpu")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.resolve(strategy="multi_worker")


def test_mirrored_in_a_fresh_process():
    import subprocess
    import sys

    code = (
        "from keras_ssl import distribute;"
        "s = distribute.resolve(strategy='mirrored');"
        "print(type(s).__name__, s.num_replicas_in_sync)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("MirroredStrategy 1")
