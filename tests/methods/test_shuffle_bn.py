import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import distribute, testing
from keras_ssl.methods.shuffle_bn import (
    bn_groups,
    check_bn_splits,
    in_groups,
    shuffle_permutation,
    unshuffled_keys,
)


def centred(x):
    """A batch-dependent "encoder": rows minus the batch mean, like BatchNorm's centring."""
    return x - tf.reduce_mean(x, axis=0, keepdims=True)


def test_shuffle_permutation_is_a_shared_bijection_that_unshuffle_inverts():
    for step in range(5):
        permutation = shuffle_permutation(16, step).numpy()
        np.testing.assert_array_equal(np.sort(permutation), np.arange(16))
        x = np.random.default_rng(step).random((16, 3))
        shuffled = tf.gather(x, permutation)
        np.testing.assert_array_equal(tf.gather(shuffled, tf.argsort(permutation)), x)
    assert not np.array_equal(shuffle_permutation(16, 0), shuffle_permutation(16, 1))
    # The XLA-compiled step draws the permutation of the plain step.
    compiled = tf.function(lambda step: shuffle_permutation(16, step), jit_compile=True)
    np.testing.assert_array_equal(compiled(tf.constant(4, tf.int64)), shuffle_permutation(16, 4))
    # Every replica draws the same permutation without communicating.
    strategy = testing.two_replica_strategy()
    per_replica = strategy.run(tf.function(lambda: shuffle_permutation(16, 3)))
    first, second = (v.numpy() for v in strategy.experimental_local_results(per_replica))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, shuffle_permutation(16, 3))


def test_in_groups_normalises_each_group_with_its_own_statistics():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    expected = np.concatenate([g - g.mean(0) for g in np.split(x, 3)])
    layer = keras.layers.Lambda(centred)
    np.testing.assert_allclose(in_groups(layer, x, 3, training=True), expected)
    np.testing.assert_allclose(in_groups(layer, x, 1, training=True), x - x.mean(0))


def test_unshuffled_keys_on_one_device_are_in_batch_order():
    x = np.random.default_rng(0).random((8, 3)).astype(np.float32)
    keys, all_keys = unshuffled_keys(lambda v: v * 2.0, tf.constant(x), 0, step=3)
    np.testing.assert_allclose(keys, 2.0 * x)
    np.testing.assert_allclose(all_keys, 2.0 * x)
    keys, all_keys = unshuffled_keys(centred, tf.constant(x), 0)  # no shuffle
    np.testing.assert_allclose(all_keys, x - x.mean(0), atol=1e-6)


def test_unshuffled_keys_on_two_replicas_encode_slices_of_the_permuted_batch():
    # Replica r encodes rows permutation[4r : 4r + 4] of the global batch with its own batch
    # statistics; both replicas get every key back in global batch order.
    strategy = testing.two_replica_strategy()
    x = np.random.default_rng(1).random((8, 3)).astype(np.float32)
    permutation = shuffle_permutation(8, 5).numpy()
    shuffled = x[permutation]
    encoded = np.concatenate([g - g.mean(0) for g in np.split(shuffled, 2)])
    expected = np.empty_like(encoded)
    expected[permutation] = encoded

    def step(view):
        offset = distribute.replica_offset(4)
        return unshuffled_keys(centred, view, offset, step=tf.constant(5, tf.int64))

    views = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(x[4 * context.replica_id_in_sync_group :][:4])
    )
    keys, all_keys = strategy.run(tf.function(step), args=(views,))
    for replica, (local, gathered) in enumerate(
        zip(
            strategy.experimental_local_results(keys), strategy.experimental_local_results(all_keys)
        )
    ):
        np.testing.assert_allclose(gathered, expected, atol=1e-6)
        np.testing.assert_allclose(local, expected[4 * replica : 4 * replica + 4], atol=1e-6)


def test_bn_groups_and_bn_splits_checks():
    assert bn_groups(8, None) == 2  # one replica: 2 groups
    assert bn_groups(8, 4) == 4
    with pytest.raises(ValueError, match="bn_splits=3 groups; received a per-replica batch of 8"):
        bn_groups(8, 3)
    check_bn_splits(None)
    check_bn_splits(2)
    with pytest.raises(ValueError, match="`bn_splits` must be an integer >= 1; received 0"):
        check_bn_splits(0)
