"""Strategy resolution and cross-replica helpers.

Inside a train step every helper here is a no-op on one replica, so method code is written once
and is correct on a laptop, under ``MirroredStrategy`` and on a TPU.
"""

import tensorflow as tf
from absl import logging


def resolve(tpu=None):
    """Returns the strategy for this machine: TPU, else all GPUs, else the default (one device).

    Args:
        tpu: name or address of a Cloud TPU (``"local"`` on a TPU VM). When ``None``, a TPU is
            still used if the environment names one (``TPU_NAME``) or the host is a TPU VM.

    Returns:
        ``TPUStrategy`` when a TPU is named or found, ``MirroredStrategy`` over all GPUs when there
        are several, else ``tf.distribute.get_strategy()`` (the default strategy).
    """
    resolver = _find_tpu(tpu)
    if resolver is not None:
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
        logging.info("Using TPUStrategy with %d replicas.", strategy.num_replicas_in_sync)
        return strategy
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
        logging.info("Using MirroredStrategy over %d GPUs.", len(gpus))
        return strategy
    logging.info("Using the default strategy on %s.", "one GPU" if gpus else "the CPU")
    return tf.distribute.get_strategy()


def _find_tpu(tpu):
    if tpu is None:
        try:
            return tf.distribute.cluster_resolver.TPUClusterResolver()
        except (ValueError, RuntimeError):
            return None
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    except (ValueError, RuntimeError, OSError) as error:
        raise ValueError(
            f"Could not reach the TPU named {tpu!r}: {error}. Expected the name or grpc address of "
            "a Cloud TPU visible from this machine. Fix: check `gcloud compute tpus list`, use "
            "tpu='local' on a TPU VM, or pass tpu=None to run without a TPU."
        ) from error


def num_replicas():
    """Number of replicas the current strategy keeps in sync (1 outside any strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_id():
    """Index of the replica running this code (0 outside a replica context)."""
    context = tf.distribute.get_replica_context()
    if context is None:
        return 0
    return context.replica_id_in_sync_group


def gather(tensor, axis=0):
    """Concatenates ``tensor`` from all replicas along ``axis``, in replica order.

    Gradients flow back to every replica's slice (TensorFlow all-reduces the upstream gradient),
    so a loss over gathered embeddings gives the single-device gradient.
    """
    if num_replicas() == 1:
        return tensor
    return tf.distribute.get_replica_context().all_gather(tensor, axis=axis)


def all_reduce_sum(tensor):
    """Sums ``tensor`` over replicas (identity on one replica); differentiable."""
    if num_replicas() == 1:
        return tensor
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tensor)


def all_reduce_mean(tensor):
    """Averages ``tensor`` over replicas (identity on one replica); differentiable."""
    if num_replicas() == 1:
        return tensor
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, tensor)


def per_replica_batch_size(global_batch_size, strategy=None):
    """Splits a global batch over the strategy's replicas.

    Raises:
        ValueError: when the global batch does not divide evenly over the replicas.
    """
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if global_batch_size < 1 or global_batch_size % replicas:
        lower = max(replicas, global_batch_size - global_batch_size % replicas)
        raise ValueError(
            f"The global batch size must be a positive multiple of the number of replicas; "
            f"received batch_size={global_batch_size} for {replicas} replicas. Fix: use "
            f"batch_size={lower} or {lower + replicas}."
        )
    return global_batch_size // replicas


def replica_offset(local_batch_size):
    """Row of this replica's first example in the global batch.

    Computed from the gathered per-replica batch sizes, so it stays right when a final partial
    batch is split unevenly across replicas.
    """
    if num_replicas() == 1:
        return tf.constant(0, tf.int32)
    sizes = gather(tf.reshape(tf.cast(local_batch_size, tf.int32), [1]))
    before = tf.range(num_replicas()) < replica_id()
    return tf.reduce_sum(tf.where(before, sizes, tf.zeros_like(sizes)))
