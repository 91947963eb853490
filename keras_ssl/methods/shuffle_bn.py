"""Shuffle-BN: MoCo's key encoding on a permuted batch (He et al. 2020, Sec. 3.3,
https://arxiv.org/abs/1911.05722).

With BatchNorm, a query and its key normalised with the statistics of the same sub-batch can be
matched through those statistics instead of image content. So the global key batch is permuted
(the same stateless permutation on every replica, :func:`shuffle_permutation`), each replica
encodes its slice of the permuted batch, and the keys are gathered and put back in order
(:func:`unshuffled_keys`). On each replica both encoders also split the local batch into
``bn_splits`` groups and encode them separately (queries in order, keys permuted;
:func:`in_groups`): for any encoder whose only cross-example layers are BatchNorm this is
exactly "split BatchNorm" (statistics per group) and needs no change to the encoder. One replica
with ``G`` splits therefore computes exactly the losses, gradients, keys and queue of ``G``
replicas with one split each and per-replica (unsynchronised) BatchNorm, i.e. of MoCo's
shuffle-BN on ``G`` GPUs; only BatchNorm moving statistics differ (one EMA update per group
instead of one per replica), and they are not used in training mode. Shuffle-BN ties BatchNorm
statistics to the device layout on purpose, so the same configuration on one and on two
replicas is not equivalent in general (the groups differ, and synchronised BatchNorm would make
them global on two replicas only). Without shuffling both encoders see the whole local batch
and, with synchronised BatchNorm (or none) in the encoder, N replicas compute exactly what one
device computes on the global batch.
"""

import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.validation import check_int

_SHUFFLE_SALT = 0x4D6F436F  # "MoCo"
_MASK32 = 0xFFFFFFFF


def shuffle_permutation(size, step):
    """The permutation of the global key batch that shuffle-BN uses at optimizer step ``step``.

    Sorts ``size`` hashes of ``(step, index)`` (a 32-bit integer hash written with int64 tensor
    ops): every replica computes the same permutation with no communication, and the XLA-compiled
    step draws exactly the permutation of the plain step on every device (TensorFlow's stateless
    random ops give different numbers under XLA).

    Args:
        size: global batch size (static int).
        step: optimizer step (int or scalar integer tensor).

    Returns:
        ``[size]`` int32: a permutation of ``0 .. size - 1``.
    """
    step = tf.bitwise.bitwise_and(tf.cast(step, tf.int64), _MASK32)
    base = _hash32(tf.bitwise.bitwise_xor(step, _SHUFFLE_SALT))
    keys = _hash32(tf.bitwise.bitwise_and(base + tf.range(size, dtype=tf.int64), _MASK32))
    # Sort 31-bit int32 keys (cheaper than int64 on accelerators); ties keep index order.
    return tf.argsort(tf.cast(tf.bitwise.right_shift(keys, 1), tf.int32), stable=True)


def _multiply32(x, constant):
    """``x * constant mod 2**32`` for ``x, constant < 2**32`` without int64 overflow."""
    low, high = tf.bitwise.bitwise_and(x, 0xFFFF), tf.bitwise.right_shift(x, 16)
    high = tf.bitwise.left_shift(tf.bitwise.bitwise_and(high * constant, 0xFFFF), 16)
    return tf.bitwise.bitwise_and(low * constant + high, _MASK32)


def _hash32(x):
    """A bijective 32-bit integer hash (xor-shift-multiply rounds, "lowbias32") of int64 ``x``."""
    x = _multiply32(tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16)), 0x7FEB352D)
    x = _multiply32(tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15)), 0x846CA68B)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def check_bn_splits(bn_splits):
    """Raises a ``ValueError`` unless ``bn_splits`` is ``None`` or an integer >= 1."""
    if bn_splits is not None:
        check_int(
            bn_splits,
            "bn_splits",
            1,
            "use None (2 groups on one device, 1 per replica on several) or e.g. 2 or 4.",
        )


def bn_groups(batch, bn_splits):
    """BatchNorm groups per replica: ``bn_splits``, or ``None``: 2 on one replica and 1 on
    several (each replica is a group, as on MoCo's GPUs); a ``ValueError`` unless they divide
    the per-replica ``batch``."""
    splits = bn_splits or (2 if distribute.num_replicas() == 1 else 1)
    if batch % splits:
        raise ValueError(
            f"Shuffle-BN splits each replica's batch into bn_splits={splits} groups; "
            f"received a per-replica batch of {batch}, which {splits} does not divide. Fix: "
            f"use a per-replica batch that is a multiple of {splits}, a bn_splits that "
            f"divides {batch}, or shuffle_bn=False."
        )
    return splits


def in_groups(network, images, splits, training):
    """``network`` (a layer or model) on each of ``splits`` consecutive groups of ``images``,
    concatenated: BatchNorm statistics per group."""
    groups = tf.split(images, splits)
    return tf.concat([network(group, training=training) for group in groups], axis=0)


def unshuffled_keys(encode, view, offset, step=None):
    """``(this replica's keys [n, d], the global batch's keys [N, d])`` in batch order.

    Args:
        encode: callable mapping a batch of ``n`` images to their keys ``[n, d]``.
        view: this replica's ``n`` key images (static ``n``).
        offset: row of this replica's first image in the global batch.
        step: optimizer step: the replicas encode the global batch in the order of
            :func:`shuffle_permutation` ``(N, step)``; ``None``: no shuffle, each replica
            encodes its own images.
    """
    if step is None:
        keys = encode(view)
        return keys, distribute.gather_batch(keys)
    rows = offset + tf.range(view.shape[0])
    permutation = shuffle_permutation(view.shape[0] * distribute.num_replicas(), step)
    # Shuffle: this replica encodes rows permutation[offset : offset + n] of the global batch.
    shuffled = tf.gather(distribute.gather_batch(view), tf.gather(permutation, rows))
    shuffled_keys = distribute.gather_batch(encode(shuffled))
    # Unshuffle: row permutation[i] of the global batch is row i of the shuffled keys.
    all_keys = tf.gather(shuffled_keys, tf.argsort(permutation))
    return tf.gather(all_keys, rows), all_keys
