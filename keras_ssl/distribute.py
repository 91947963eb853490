"""Strategy resolution and cross-replica helpers.

Inside a train step every helper here is a no-op on one replica, so method code is written once
and is correct on a laptop, under ``MirroredStrategy`` and on a TPU.
"""

import os

import tensorflow as tf
from absl import logging

STRATEGIES = ("auto", "cpu", "mirrored", "multi_worker", "tpu")


def resolve(tpu=None, strategy="auto"):
    """Returns the ``tf.distribute`` strategy to train with.

    Args:
        tpu: name or address of a Cloud TPU (``"local"`` on a TPU VM). With ``strategy="auto"``
            and ``tpu=None`` a TPU is still used if the environment names one (``TPU_NAME``).
        strategy: ``"auto"`` (TPU, else ``MirroredStrategy`` over all GPUs when there are
            several, else the default strategy), ``"cpu"`` (one CPU device even when GPUs
            exist), ``"mirrored"`` (all local GPUs, or the CPU), ``"multi_worker"``
            (``MultiWorkerMirroredStrategy`` configured by the ``TF_CONFIG`` environment
            variable) or ``"tpu"`` (``TPUStrategy``; ``tpu`` defaults to ``"local"``).

    Returns:
        A ``tf.distribute.Strategy``. Create it once per process and reuse it.
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy {strategy!r}; expected one of {STRATEGIES}. Fix: pass e.g. "
            "--strategy=mirrored for several GPUs or --strategy=tpu --tpu=NAME."
        )
    if strategy == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy='multi_worker' needs the TF_CONFIG environment variable (cluster and "
                "task of this worker); received none. Fix: set TF_CONFIG on every worker, see "
                "https://www.tensorflow.org/guide/distributed_training#TF_CONFIG"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if strategy == "tpu":
        tpu = tpu or "local"
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
    so a loss over gathered embeddings gives the single-device gradient. bfloat16 tensors travel
    as float32 (CPU collectives have no bfloat16 kernels) and come back as bfloat16.
    """
    if num_replicas() == 1:
        return tensor
    context = tf.distribute.get_replica_context()
    return _collective_dtype(tensor, lambda t: context.all_gather(t, axis=axis))


def gather_batch(tensor):
    """The global batch: ``tensor`` ``[n, ...]`` of every replica, concatenated in replica order.

    :func:`gather` along the batch axis, with the static shape ``[replicas * n, ...]`` that
    ``all_gather`` drops (the batch stays unknown when ``n`` is), for code that needs static
    shapes: :meth:`~keras_ssl.layers.MemoryQueue.enqueue`, ``tf.split`` into BatchNorm groups.
    Every replica gets the same tensor, so enqueuing it keeps the replicas' queues identical.
    Identity on one replica.

    Args:
        tensor: this replica's ``[n, ...]`` rows (``n`` the same on every replica).

    Returns:
        ``[replicas * n, ...]``: replica 0's rows, then replica 1's, ...
    """
    tensor = tf.convert_to_tensor(tensor)
    gathered = gather(tensor)
    batch = tensor.shape[0]
    gathered.set_shape([None if batch is None else num_replicas() * batch, *tensor.shape[1:]])
    return gathered


def _collective_dtype(value, collective):
    """``collective(value)`` with bfloat16 leaves of a (nested) ``value`` sent as float32."""
    value = tf.nest.map_structure(tf.convert_to_tensor, value)
    if all(leaf.dtype != tf.bfloat16 for leaf in tf.nest.flatten(value)):
        return collective(value)
    widened = tf.nest.map_structure(
        lambda t: tf.cast(t, tf.float32) if t.dtype == tf.bfloat16 else t, value
    )
    return tf.nest.map_structure(
        lambda out, t: tf.cast(out, tf.bfloat16) if t.dtype == tf.bfloat16 else out,
        collective(widened),
        value,
    )


def all_reduce_sum(tensor):
    """Sums ``tensor`` over replicas (identity on one replica); differentiable."""
    if num_replicas() == 1:
        return tensor
    context = tf.distribute.get_replica_context()
    return _collective_dtype(tensor, lambda t: context.all_reduce(tf.distribute.ReduceOp.SUM, t))


def all_reduce_mean(tensor):
    """Averages ``tensor`` over replicas (identity on one replica); differentiable."""
    if num_replicas() == 1:
        return tensor
    context = tf.distribute.get_replica_context()
    return _collective_dtype(tensor, lambda t: context.all_reduce(tf.distribute.ReduceOp.MEAN, t))


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
