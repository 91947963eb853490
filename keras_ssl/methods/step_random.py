"""Randomness drawn inside a train step: the same numbers for any number of replicas.

Methods that corrupt, mask or sample inside the step (autoencoders, the context encoder, VAE,
BiGAN) keep a seed in a ``keras.Variable`` (saved and restored with the model), fold it with the
optimizer's step count (:func:`step_seed`: new numbers every step, identical after a resume), and
draw for the WHOLE global batch before keeping this replica's rows (:func:`this_replica_rows`,
:func:`global_batch_noise`), so global example ``i`` gets the same numbers however the batch is
split over replicas, which is what makes N replicas equal one device. Numbers come from random
bits (:func:`draw_noise`), which XLA and TensorFlow's kernels produce identically.
"""

import math

import numpy as np
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.augment.seeds import canonical_seed, fold_in, uniform_per_image

NOISE_DISTRIBUTIONS = ("normal", "uniform")


def new_seed(seed):
    """A ``[2]`` int32 seed value from ``seed`` (``None``: drawn from NumPy's global state,
    which ``keras.utils.set_random_seed`` sets)."""
    if seed is None:
        return np.random.randint(0, 2**31 - 1, size=2).astype("int32")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(
            f"`seed` must be an int or None; received {seed!r}. Fix: pass e.g. seed=0."
        )
    return np.array([seed % (2**31 - 1), 0], "int32")


def step_seed(model, seed_variable, training):
    """The ``[2]`` seed of this step: ``seed_variable`` folded with the optimizer's iteration
    count while training (fresh noise every step, restored with checkpoints), fixed otherwise."""
    step = 0
    if training and getattr(model, "optimizer", None) is not None:
        step = tf.cast(model.optimizer.iterations, tf.int32)
    return fold_in(tf.cast(seed_variable, tf.int32), step)


def this_replica_rows(global_values, local_batch):
    """Rows ``[offset, offset + local_batch)`` of a tensor made for the whole global batch.

    Random draws made for the global batch from one seed and sliced per replica give every
    example the same corruption whatever the number of replicas (1 vs N replicas match).
    """
    if distribute.num_replicas() == 1:
        return global_values
    offset = distribute.replica_offset(local_batch)
    begin = tf.concat([[offset], tf.zeros([global_values.shape.rank - 1], tf.int32)], 0)
    size = tf.concat([[local_batch], tf.fill([global_values.shape.rank - 1], -1)], 0)
    return tf.slice(global_values, begin, size)


def global_batch_draws(sample, local_batch):
    """Draws for the GLOBAL batch with ``sample(global_batch)`` and keeps this replica's rows.

    Every replica draws the same global tensors from the same stateless seed, so image ``i`` of
    the global batch gets the same random puzzle, patch pair or mask however the batch is split
    over replicas.

    Args:
        sample: function of the global batch size returning a tuple of ``[global, ...]`` tensors.
        local_batch: this replica's number of images (scalar int32 tensor or Python int).

    Returns:
        The tuple of this replica's rows.
    """
    if distribute.num_replicas() == 1:
        return sample(local_batch)
    total = distribute.all_reduce_sum(tf.cast(local_batch, tf.int32))
    return tuple(this_replica_rows(draw, local_batch) for draw in sample(total))


def global_batch_noise(local_batch, dim, seed, distribution="normal"):
    """Noise ``[local_batch, dim]`` for this replica's rows of the global batch.

    The random numbers are drawn for the WHOLE global batch from one stateless seed and this
    replica keeps rows ``[offset, offset + local_batch)`` (``offset`` =
    ``distribute.replica_offset``). Global example ``i`` therefore gets the same noise however
    the batch is split over replicas, which is what makes N replicas equal one device (drawing
    per replica would give each replica's rows other numbers). Drawing ``global_batch x dim``
    numbers on every replica costs nothing next to the networks. See :func:`draw_noise`.

    Args:
        local_batch: this replica's batch size (Python int or scalar int32 tensor).
        dim: number of values per example (Python int).
        seed: int32 tensor of shape ``[2]`` (the same on every replica).
        distribution: ``"normal"`` (standard normal) or ``"uniform"`` (uniform on ``[-1, 1)``).

    Returns:
        float32 ``[local_batch, dim]``.
    """
    replicas = distribute.num_replicas()
    static = tf.get_static_value(tf.convert_to_tensor(local_batch))
    if replicas == 1:
        rows = local_batch
    elif static is not None:
        rows = int(static) * replicas  # static shapes: every replica holds `static` rows
    else:
        rows = distribute.all_reduce_sum(tf.cast(local_batch, tf.int32))
    values = draw_noise(rows, dim, seed, distribution)
    if replicas == 1:
        return values
    offset = distribute.replica_offset(local_batch)
    return tf.slice(values, tf.stack([offset, 0]), tf.stack([local_batch, dim]))


def draw_noise(rows, dim, seed, distribution="normal"):
    """``[rows, dim]`` float32 noise from a ``[2]`` seed, identical eagerly and under XLA.

    Built from random bits (``augment.seeds.uniform_per_image``), which XLA and TensorFlow's
    kernels produce identically (their float kernels differ); normals use the Box-Muller
    transform ``sqrt(-2 log(1 - u1)) cos(2 pi u2)``.

    Args:
        rows: number of rows (Python int or scalar int32 tensor).
        dim: values per row (Python int).
        seed: int tensor of shape ``[2]``.
        distribution: ``"normal"`` (standard normal) or ``"uniform"`` (uniform on ``[-1, 1)``).

    Returns:
        float32 ``[rows, dim]``.
    """
    if distribution not in NOISE_DISTRIBUTIONS:
        raise ValueError(
            f"`distribution` must be one of {NOISE_DISTRIBUTIONS}; received {distribution!r}. "
            "Fix: pass 'normal' or 'uniform'."
        )
    seed = canonical_seed(seed)
    if distribution == "uniform":
        return 2.0 * uniform_per_image(rows, dim, seed) - 1.0
    uniform = uniform_per_image(rows, 2 * dim, seed)
    radius = tf.sqrt(-2.0 * tf.math.log(1.0 - uniform[:, :dim]))  # 1 - u is in (0, 1]
    return radius * tf.cos(2.0 * math.pi * uniform[:, dim:])
