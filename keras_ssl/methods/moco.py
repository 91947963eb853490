"""MoCo v1/v2: contrastive learning against a queue of keys from a momentum encoder."""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.layers.memory_queue import MemoryQueue
from keras_ssl.layers.mlp_head import MLPHead
from keras_ssl.losses.contrastive import info_nce
from keras_ssl.methods.momentum import MomentumMethod
from keras_ssl.validation import check_int, check_positive_number

VERSIONS = ("v1", "v2")
_TEMPERATURES = {"v1": 0.07, "v2": 0.2}
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


def _gather(tensor):
    """``distribute.gather`` with the static shape ``[replicas * n, ...]`` that all_gather drops."""
    gathered = distribute.gather(tensor)
    gathered.set_shape([distribute.num_replicas() * tensor.shape[0], *tensor.shape[1:]])
    return gathered


def _check_version(version):
    if version not in VERSIONS:
        raise ValueError(
            f"`version` must be one of {VERSIONS}; received {version!r}. Fix: pass version='v2' "
            "(MLP head, blur, temperature 0.2) or version='v1' (linear head, temperature 0.07)."
        )


@keras.saving.register_keras_serializable(package="keras_ssl")
class MoCo(MomentumMethod):
    """MoCo v1 (He et al. 2020, "Momentum Contrast for Unsupervised Visual Representation
    Learning", https://arxiv.org/abs/1911.05722) and v2 (Chen et al. 2020, "Improved Baselines
    with Momentum Contrastive Learning", https://arxiv.org/abs/2003.04297).

    The query encoder (``encoder`` + ``projector``) is trained by gradient; the key encoder
    (``key_encoder`` + ``key_projector``) is its momentum copy, ``k <- m k + (1 - m) q`` after every
    optimizer step (:class:`MomentumMethod`; ``m`` is constant, as in MoCo, or follows a cosine
    schedule to ``final_momentum`` over the run or ``momentum_epochs``). The loss is InfoNCE: each
    query (view 1) must pick its key (view 2, L2-normalised) among the ``queue_size`` keys of the
    queue, at ``temperature``. After the optimizer step the step's keys, gathered from all replicas
    in global batch order, replace the oldest keys of the queue
    (:class:`keras_ssl.layers.MemoryQueue`). v1 projects with a linear layer, v2 with an MLP (hidden
    layer, ReLU, output; no BatchNorm, as in MoCo v2's code) and uses the stronger "aug+"
    augmentation (:func:`keras_ssl.augment.presets.moco_v2`; v1:
    :func:`~keras_ssl.augment.presets.moco_v1`).

    Shuffle-BN (``shuffle_bn=True``): with BatchNorm, a query and its key normalised with the
    statistics of the same sub-batch can be matched through those statistics instead of image
    content. So the global key batch is permuted (the same stateless permutation on every
    replica), each replica encodes its slice of the permuted batch, and the keys are gathered and
    put back in order. On each replica both encoders also split the local batch into
    ``bn_splits`` groups and encode them separately (queries in order, keys permuted): for any
    encoder whose only cross-example layers are BatchNorm this is exactly "split BatchNorm"
    (statistics per group) and needs no change to the encoder. One replica with ``G`` splits
    therefore computes exactly the losses, gradients, keys and queue of ``G`` replicas with one
    split each and per-replica (unsynchronised) BatchNorm, i.e. of MoCo's shuffle-BN on ``G``
    GPUs; only BatchNorm moving statistics differ (one EMA update per group instead of one per
    replica), and they are not used in training mode. Shuffle-BN ties BatchNorm statistics to
    the device layout on purpose, so the same configuration on one and on two replicas is not
    equivalent in general (the groups differ, and synchronised BatchNorm would make them global
    on two replicas only). With ``shuffle_bn=False`` both encoders see the whole local batch and,
    with synchronised BatchNorm (or none) in the encoder, N replicas compute exactly what one
    device computes on the global batch.

    The keys enqueued are those computed in the step: ``compute_ssl_loss`` returns the gathered
    keys as its ``updates`` and the train step hands them to ``after_optimizer_step``, which runs
    the momentum update and then the enqueue; evaluation drops them (never enqueues).

    Batches must have a static size (``drop_remainder=True``) and ``queue_size`` must be a
    multiple of the keys enqueued per step (the global batch, twice that when ``symmetric``).

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        version: ``"v1"`` or ``"v2"``; chooses the head, the default temperature and the
            default augmentation.
        augmenter: view generator; default the preset ``"moco_v1"`` or ``"moco_v2"`` for
            ``version``.
        queue_size: number of keys ``K`` in the queue (paper: 65536; 4096 for CIFAR-size runs).
        projection_dim: size of the projections and keys (paper: 128).
        projection_hidden_dim: hidden size of v2's MLP head; ``None`` uses the feature size
            ``D`` (2048 for ResNet-50, as in the paper). Ignored by v1.
        temperature: InfoNCE temperature; ``None`` uses the paper's 0.07 (v1) or 0.2 (v2).
        momentum: key-encoder momentum ``m`` (paper: 0.999; 0.99 suits short runs).
        final_momentum, momentum_epochs: cosine schedule of ``m`` in epochs (see
            :class:`MomentumMethod`); ``final_momentum=None`` keeps ``m`` constant as MoCo does.
        symmetric: also contrast view 2's queries with view 1's keys and average the two
            losses (as many reimplementations do); both views' keys are then enqueued. The
            papers use the asymmetric loss (``False``).
        shuffle_bn: shuffle the key batch across replicas and BatchNorm groups (see above).
        bn_splits: BatchNorm groups per replica when ``shuffle_bn``; ``None`` uses 2 on one
            replica and 1 on several (each replica is a group, as on MoCo's GPUs).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    # Shuffle-BN relies on per-replica BatchNorm statistics (see above): BatchNorm is left as
    # built unless synchronized_bn=True.
    synchronize_batch_norm = False

    default_preset = "moco_v2"  # "moco_v1" for version="v1"

    def __init__(
        self,
        encoder,
        version="v2",
        augmenter=None,
        queue_size=65536,
        projection_dim=128,
        projection_hidden_dim=None,
        temperature=None,
        momentum=0.999,
        final_momentum=None,
        momentum_epochs=None,
        symmetric=False,
        shuffle_bn=True,
        bn_splits=None,
        probe_classes=None,
        **kwargs,
    ):
        _check_version(version)
        if temperature is None:
            temperature = _TEMPERATURES[version]
        temperature = check_positive_number(
            temperature,
            "temperature",
            "use 0.07 (MoCo v1), 0.2 (MoCo v2), or None for the version's default.",
        )
        check_int(queue_size, "queue_size", 1, "use 65536 (ImageNet) or 4096 (small datasets).")
        check_int(projection_dim, "projection_dim", 1, "use 128 (the papers).")
        if bn_splits is not None:
            check_int(
                bn_splits,
                "bn_splits",
                1,
                "use None (2 groups on one device, 1 per replica on several) or e.g. 2 or 4.",
            )
        self.version = version
        self.default_preset = f"moco_{version}"  # read inside the base constructor
        super().__init__(
            encoder,
            augmenter=augmenter,
            momentum=momentum,
            final_momentum=final_momentum,
            momentum_epochs=momentum_epochs,
            probe_classes=probe_classes,
            **kwargs,
        )
        self.queue_size = queue_size
        self.projection_dim = projection_dim
        self.projection_hidden_dim = projection_hidden_dim
        self.temperature = temperature
        self.symmetric = bool(symmetric)
        self.shuffle_bn = bool(shuffle_bn)
        self.bn_splits = bn_splits
        hidden = () if version == "v1" else (projection_hidden_dim or self.feature_dim,)
        self.projector = MLPHead(hidden, projection_dim, batch_norm=False, name="projector")
        self.queue = MemoryQueue(queue_size, projection_dim, name="queue")

    def build_heads(self, feature_shape):
        self.projector.build(feature_shape)
        self.key_encoder = self.make_teacher(self.encoder)
        self.key_projector = self.make_teacher(self.projector)

    # ------------------------------------------------------------------------------ step
    def compute_ssl_loss(self, views, training):
        if len(views) != 2:
            raise ValueError(
                f"MoCo uses exactly 2 views per image (query and key); received {len(views)}. "
                "Fix: use an augmenter with two views (keras_ssl.augment.presets.moco_v2)."
            )
        batch = views[0].shape[0]
        replicas = distribute.num_replicas()
        self._check_batch(batch, replicas)
        splits = self._splits(batch, replicas)
        offset = distribute.replica_offset(batch)
        permutation = None
        if self.shuffle_bn:
            permutation = shuffle_permutation(batch * replicas, self._step())
        negatives = tf.stop_gradient(self.queue.keys)
        features, queries = self._queries(views[0], splits, training)
        keys, all_keys = self._keys(views[1], permutation, offset, splits, training)
        losses = info_nce(queries, keys, negatives, temperature=self.temperature)
        enqueue = all_keys
        if self.symmetric:
            _, queries_2 = self._queries(views[1], splits, training)
            keys_1, all_keys_1 = self._keys(views[0], permutation, offset, splits, training)
            losses_2 = info_nce(queries_2, keys_1, negatives, temperature=self.temperature)
            losses = (losses + losses_2) / 2.0
            enqueue = tf.concat([all_keys_1, all_keys], axis=0)
        return {"loss": tf.reduce_mean(losses)}, features, {"keys": enqueue}

    def after_optimizer_step(self, keys):
        super().after_optimizer_step()  # momentum update of the key encoder
        self.queue.enqueue(keys)

    def _queries(self, view, splits, training):
        """Query features and projections of one view, BatchNorm per group of the local batch."""
        features = tf.concat(
            [self.encoder(group, training=training) for group in tf.split(view, splits)], axis=0
        )
        groups = tf.split(features, splits)
        queries = tf.concat([self.projector(group, training=training) for group in groups], 0)
        return tf.cast(features, tf.float32), queries

    def _key_embeddings(self, images, splits, training):
        keys = [
            self.key_projector(self.key_encoder(group, training=training), training=training)
            for group in tf.split(images, splits)
        ]
        keys = tf.math.l2_normalize(tf.cast(tf.concat(keys, axis=0), tf.float32), axis=1)
        return tf.stop_gradient(keys)

    def _keys(self, view, permutation, offset, splits, training):
        """``(this replica's keys [n, d], the global batch's keys [N, d])`` in batch order."""
        if permutation is None:
            keys = self._key_embeddings(view, splits, training)
            return keys, _gather(keys)
        batch = view.shape[0]
        rows = offset + tf.range(batch)
        # Shuffle: this replica encodes rows permutation[offset : offset + n] of the global batch.
        shuffled = tf.gather(_gather(view), tf.gather(permutation, rows))
        shuffled_keys = _gather(self._key_embeddings(shuffled, splits, training))
        # Unshuffle: row permutation[i] of the global batch is row i of the shuffled keys.
        all_keys = tf.gather(shuffled_keys, tf.argsort(permutation))
        return tf.gather(all_keys, rows), all_keys

    def _step(self):
        optimizer = getattr(self, "optimizer", None)
        return tf.constant(0, tf.int64) if optimizer is None else optimizer.iterations

    def _check_batch(self, batch, replicas):
        if batch is None:
            raise ValueError(
                "MoCo needs batches of a fixed size (the queue is filled one global batch at a "
                "time); received views whose batch size is unknown when the step is traced. Fix: "
                "pass a tf.data.Dataset batched with drop_remainder=True "
                "(keras_ssl.datasets.make_ssl_dataset does) instead of NumPy arrays."
            )
        per_step = batch * replicas * (2 if self.symmetric else 1)
        if self.queue_size % per_step:
            lower = max(per_step, self.queue_size - self.queue_size % per_step)
            views = " x 2 views (symmetric=True)" if self.symmetric else ""
            raise ValueError(
                f"MoCo's queue_size must be a multiple of the keys enqueued per step; received "
                f"queue_size={self.queue_size} with a global batch of {batch * replicas} "
                f"({batch} per replica x {replicas} replicas){views} = {per_step} keys per step. "
                f"Fix: use queue_size={lower} or {lower + per_step}, or a global batch size "
                f"that divides {self.queue_size}."
            )

    def _splits(self, batch, replicas):
        if not self.shuffle_bn:
            return 1
        splits = self.bn_splits or (2 if replicas == 1 else 1)
        if batch % splits:
            raise ValueError(
                f"Shuffle-BN splits each replica's batch into bn_splits={splits} groups; "
                f"received a per-replica batch of {batch}, which {splits} does not divide. Fix: "
                f"use a per-replica batch that is a multiple of {splits}, a bn_splits that "
                f"divides {batch}, or shuffle_bn=False."
            )
        return splits

    def get_config(self):
        return {
            **super().get_config(),
            "version": self.version,
            "queue_size": self.queue_size,
            "projection_dim": self.projection_dim,
            "projection_hidden_dim": self.projection_hidden_dim,
            "temperature": self.temperature,
            "symmetric": self.symmetric,
            "shuffle_bn": self.shuffle_bn,
            "bn_splits": self.bn_splits,
        }
