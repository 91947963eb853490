"""MoCo v1/v2: contrastive learning against a queue of keys from a momentum encoder."""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.layers.memory_queue import MemoryQueue, check_queue_batch
from keras_ssl.layers.mlp_head import MLPHead
from keras_ssl.losses.contrastive import info_nce
from keras_ssl.methods.momentum import MomentumMethod
from keras_ssl.methods.short_runs import SHORT_RUN_STEPS
from keras_ssl.methods.shuffle_bn import bn_groups, check_bn_splits, in_groups, unshuffled_keys
from keras_ssl.validation import check_int, check_positive_number

VERSIONS = ("v1", "v2")
_TEMPERATURES = {"v1": 0.07, "v2": 0.2}


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

    Shuffle-BN (``shuffle_bn=True``): the key encoder encodes a permuted global batch, and
    both encoders split each replica's batch into ``bn_splits`` BatchNorm groups, so a query
    and its key never share BatchNorm statistics; one replica with ``G`` splits computes what
    ``G`` GPUs with per-replica BatchNorm do (:mod:`keras_ssl.methods.shuffle_bn`). With
    ``shuffle_bn=False`` and synchronised BatchNorm (or none) in the encoder, N replicas compute
    exactly what one device computes on the global batch.

    The keys enqueued are those computed in the step (the ``updates`` of ``compute_ssl_loss``):
    ``after_optimizer_step`` runs the momentum update, then the enqueue; evaluation never enqueues.

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

    short_run_steps = SHORT_RUN_STEPS  # measured: see keras_ssl.methods.short_runs

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
        check_bn_splits(bn_splits)
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

    def compute_ssl_loss(self, views, training):
        if len(views) != 2:
            raise ValueError(
                f"MoCo uses exactly 2 views per image (query and key); received {len(views)}. "
                "Fix: use an augmenter with two views (keras_ssl.augment.presets.moco_v2)."
            )
        batch = views[0].shape[0]
        per_image, note = (2, " x 2 views (symmetric=True)") if self.symmetric else (1, "")
        check_queue_batch(self.queue_size, batch, "MoCo", per_image, note)
        splits = bn_groups(batch, self.bn_splits) if self.shuffle_bn else 1
        step = self._step() if self.shuffle_bn else None
        offset = distribute.replica_offset(batch)
        negatives = tf.stop_gradient(self.queue.keys)

        def key_embeddings(images):
            features = in_groups(self.key_encoder, images, splits, training)
            keys = in_groups(self.key_projector, features, splits, training)
            return tf.stop_gradient(tf.math.l2_normalize(tf.cast(keys, tf.float32), axis=1))

        def contrast(query_view, key_view):
            features = in_groups(self.encoder, query_view, splits, training)
            queries = in_groups(self.projector, features, splits, training)
            keys, all_keys = unshuffled_keys(key_embeddings, key_view, offset, step)
            losses = info_nce(queries, keys, negatives, temperature=self.temperature)
            return losses, tf.cast(features, tf.float32), all_keys

        losses, features, enqueue = contrast(views[0], views[1])
        if self.symmetric:
            losses_2, _, all_keys_1 = contrast(views[1], views[0])
            losses = (losses + losses_2) / 2.0
            enqueue = tf.concat([all_keys_1, enqueue], axis=0)
        return {"loss": tf.reduce_mean(losses)}, features, {"keys": enqueue}

    def after_optimizer_step(self, keys):
        super().after_optimizer_step()  # momentum update of the key encoder
        self.queue.enqueue(keys)

    def _step(self):
        optimizer = getattr(self, "optimizer", None)
        return tf.constant(0, tf.int64) if optimizer is None else optimizer.iterations

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
