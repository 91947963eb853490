"""Seeds and per-image random draws shared by the augmentation layers.

Every layer draws its random parameters with ``tf.random.stateless_*`` ops from a seed of shape
``[2]``: the same numbers whether the code runs eagerly, in ``tf.data`` or compiled by XLA. When
the caller passes no seed, :func:`resolve_seed` draws one with the stateful ``tf.random.uniform``,
so the layers still give fresh randomness on every call inside a train step or a ``tf.data``
pipeline, while a given seed always gives bit-identical output.
"""

import tensorflow as tf

_SEED_LIMIT = 2**31 - 1


def canonical_seed(seed):
    """Keeps the low 31 bits of each seed element, as an ``int32`` tensor of shape ``[2]``.

    TensorFlow's stateless kernels and XLA turn negative or larger-than-31-bit seeds into
    different random bits; with non-negative 31-bit seeds they agree, so every seed is mapped
    there first.
    """
    seed = tf.bitwise.bitwise_and(tf.cast(seed, tf.int64), tf.constant(_SEED_LIMIT, tf.int64))
    return tf.cast(seed, tf.int32)


def resolve_seed(seed=None):
    """Validates ``seed`` or, when it is ``None``, draws a fresh one statefully.

    Args:
        seed: ``None``, or an ``int32``/``int64`` tensor (or pair of Python ints) of shape ``[2]``.

    Returns:
        An ``int32`` tensor of shape ``[2]`` (see :func:`canonical_seed`: only the low 31 bits
        of each element of ``seed`` matter).

    Raises:
        ValueError: if the seed is not an integer tensor of shape ``[2]``.
    """
    if seed is None:
        return tf.random.uniform([2], minval=0, maxval=_SEED_LIMIT, dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        raise ValueError(
            f"`seed` must be an int32 or int64 tensor of shape [2]; received dtype "
            f"{seed.dtype.name}. Fix: pass e.g. tf.constant([1, 2]) or leave seed=None."
        )
    if seed.shape.rank is not None and seed.shape.as_list() not in ([2], [None]):
        raise ValueError(
            f"`seed` must have shape [2]; received shape {seed.shape.as_list()}. "
            "Fix: pass a pair such as tf.constant([1, 2]) (split batches of seeds yourself)."
        )
    return canonical_seed(seed)


def fold_in(seed, index):
    """Derives the independent sub-seed number ``index`` from ``seed`` (stateless)."""
    return canonical_seed(tf.random.experimental.stateless_fold_in(canonical_seed(seed), index))


def uniform_per_image(batch_size, count, seed):
    """Draws ``count`` independent U[0, 1) numbers for every image.

    Args:
        batch_size: number of images (a Python int or a scalar int32 tensor).
        count: number of random numbers per image (Python int).
        seed: integer tensor of shape ``[2]``.

    Returns:
        A ``float32`` tensor of shape ``[batch_size, count]``.
    """
    # Random bits, not stateless_uniform(dtype=float32): TensorFlow's CPU/GPU kernels and XLA
    # produce the same bits for a seed but different floats, and the top 24 bits turned into a
    # float in [0, 1) here make eager, tf.data and XLA-compiled code draw identical parameters.
    bits = tf.random.stateless_uniform(
        tf.stack([batch_size, count]),
        canonical_seed(seed),
        minval=None,
        maxval=None,
        dtype=tf.uint32,
    )
    return tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (1.0 / (1 << 24))


def lerp(low, high, fraction):
    """Maps U[0, 1) numbers ``fraction`` linearly onto ``[low, high)``."""
    return low + (high - low) * fraction
