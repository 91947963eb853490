"""SwAV: online clustering; each crop predicts the Sinkhorn-Knopp code of the other crops."""

import keras
import tensorflow as tf

from keras_ssl.layers.memory_queue import MemoryQueue, check_queue_batch
from keras_ssl.layers.mlp_head import MLPHead
from keras_ssl.losses.swav import queued_sinkhorn_knopp, sinkhorn_knopp, swav_loss
from keras_ssl.methods.base import SSLMethod, check_epochs
from keras_ssl.methods.epoch_schedules import optimizer_step
from keras_ssl.methods.multicrop_views import LARGE_CROPS, MultiCropMethod
from keras_ssl.methods.swav_queue import enqueue_global_batch, queue_scores
from keras_ssl.validation import check_int, check_positive_number


@keras.saving.register_keras_serializable(package="keras_ssl")
class SwAV(MultiCropMethod, SSLMethod):
    """SwAV (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
    Assignments", https://arxiv.org/abs/2006.09882).

    Every crop goes through the encoder and the projection MLP; its L2-normalised projection
    ``z`` is scored against ``K`` prototypes ``C`` (a linear layer without bias whose columns
    are L2-normalised after every optimizer step, and at construction): ``s = z^T C``. The
    codes of the 2 large crops are computed without gradient by ``sinkhorn_iterations``
    Sinkhorn-Knopp iterations (:func:`~keras_ssl.losses.swav.sinkhorn_knopp`), and the loss is
    the swapped prediction of each large crop's code by every other crop, so each large crop
    predicts the other's code and every small crop predicts both
    (:func:`~keras_ssl.losses.swav.swav_loss`, the paper's Eq. 1-2 with multi-crop). The
    prototypes get no gradient during the first ``freeze_prototypes_epochs`` epochs.

    Queue (``queue_length > 0``): the projections of the 2 large crops of the last
    ``queue_length`` images (one queue per large crop, filled from epoch ``queue_start_epochs``
    on) are scored against the current prototypes and join the Sinkhorn batch once the queue is
    full; they only enlarge the equipartition (their codes are dropped). Queue, write pointer
    and fill count are model weights, saved with the model.

    Distribution: Sinkhorn-Knopp runs on the GLOBAL batch, as the paper's ``distributed_sinkhorn``
    (:func:`~keras_ssl.losses.swav.sinkhorn_knopp`), and each replica scores its share of the queue
    (``methods.swav_queue``). The loss has no other batch-level term and BatchNorm is synchronised
    by default on several replicas (SwAV trains with SyncBN), so N replicas equal one device.

    Multi-crop: views 0 and 1 are the large crops (the encoder's input size), views 2, 3, ...
    small crops of any size the encoder accepts, encoded at their own size (see
    ``methods.multicrop_views.MultiCropMethod``). The default augmenter is
    ``keras_ssl.augment.multicrop`` with SwAV's crops: 2 large crops covering 14-100% of the
    image and 6 small ones of 96/224 the side covering 5-14%, no solarization. Its colour
    jitter and blur are DINO's (jitter 0.4/0.4/0.2/0.1, blur on every first large crop, 10% of
    second ones, half of the small ones), milder than SwAV's (0.8/0.8/0.8/0.2, blur on half of
    all crops), which the preset cannot express; pass your own augmenter for SwAV's exactly.

    Small batches: Sinkhorn-Knopp spreads each batch over all ``K`` prototypes, so it needs
    batches (plus queue) well above ``K``; the paper uses the queue at batch 256. It starts
    late (epoch 15) because stale projections of a fast-moving network hurt: in 10-epoch runs
    on Fashion-MNIST it lowered kNN accuracy (see ``configs/swav_fashion_mnist.py``).

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]``), e.g. ResNet-50.
        augmenter: view generator (2 large crops, then small crops); default: see above.
        projection_hidden_dim: hidden width of the projection MLP (SwAV: 2048).
        projection_dim: size of the projections and prototypes (SwAV: 128).
        num_prototypes: number of prototypes ``K`` (SwAV: 3000 on ImageNet).
        temperature: softmax temperature of the predictions (SwAV: 0.1).
        epsilon: Sinkhorn-Knopp entropy regularisation (SwAV: 0.05).
        sinkhorn_iterations: Sinkhorn-Knopp iterations (SwAV: 3).
        freeze_prototypes_epochs: epochs during which the prototypes get no gradient (SwAV: the
            first epoch, 313 iterations at batch 4096; 0 never freezes).
        queue_length: size of the queue of past large-crop projections, a multiple of the global
            batch size (SwAV: 3840 for batches of 256; 0, no queue, for its batch 4096 runs).
        queue_start_epochs: epoch from which the queue is filled (SwAV: 15).
        synchronized_bn: global BatchNorm in encoder and projector; ``None``: on several replicas.
        probe_classes: classes of the online linear probe, or ``None``.
    """

    default_preset_kwargs = {
        "num_local": 6,
        "global_scale": (0.14, 1.0),
        "local_scale": (0.05, 0.14),
        "solarize_probability": 0.0,
    }

    def __init__(
        self,
        encoder,
        augmenter=None,
        projection_hidden_dim=2048,
        projection_dim=128,
        num_prototypes=3000,
        temperature=0.1,
        epsilon=0.05,
        sinkhorn_iterations=3,
        freeze_prototypes_epochs=1,
        queue_length=0,
        queue_start_epochs=15,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(encoder, augmenter, probe_classes, synchronized_bn, **kwargs)
        self.projection_hidden_dim = check_int(
            projection_hidden_dim, "projection_hidden_dim", fix="use SwAV's 2048."
        )
        self.projection_dim = check_int(projection_dim, "projection_dim", fix="use SwAV's 128.")
        self.num_prototypes = check_int(
            num_prototypes, "num_prototypes", 2, fix="use SwAV's 3000 (or ~10x the classes)."
        )
        self.temperature = check_positive_number(
            temperature, "temperature", "use SwAV's temperature=0.1."
        )
        self.epsilon = check_positive_number(epsilon, "epsilon", "use SwAV's epsilon=0.05.")
        self.sinkhorn_iterations = check_int(
            sinkhorn_iterations, "sinkhorn_iterations", fix="use SwAV's 3."
        )
        self.freeze_prototypes_epochs = check_epochs(
            freeze_prototypes_epochs, "freeze_prototypes_epochs"
        )
        self.queue_length = check_int(
            queue_length, "queue_length", 0, fix="use 0 (no queue) or SwAV's 3840 at batch 256."
        )
        self.queue_start_epochs = check_epochs(queue_start_epochs, "queue_start_epochs")
        self.projector = MLPHead(
            hidden_dims=(self.projection_hidden_dim,),
            output_dim=self.projection_dim,
            synchronized=self.batch_norm_synchronized,
            name="projector",
        )
        # float32: scores / 0.05 and / 0.1 need its precision under mixed precision.
        self.prototypes = keras.layers.Dense(
            self.num_prototypes, use_bias=False, dtype="float32", name="prototypes"
        )
        self.queue = None
        if self.queue_length:
            # Each row: the projections of both large crops of one image, [z_1 | z_2].
            self.queue = MemoryQueue(self.queue_length, 2 * self.projection_dim, name="queue")
            self.queue_fill = self.add_weight(
                shape=(), dtype="int32", initializer="zeros", trainable=False, name="queue_fill"
            )
        self.check_augmenter_views()

    def build_heads(self, feature_shape):
        self.projector.build(feature_shape)
        self.prototypes.build((None, self.projection_dim))
        self.normalize_prototypes()

    @property
    def uses_epoch_schedules(self):
        return super().uses_epoch_schedules or bool(self.queue_length and self.queue_start_epochs)

    def normalize_prototypes(self):
        """L2-normalises every prototype (column of the prototype layer's kernel)."""
        self.prototypes.kernel.assign(tf.math.l2_normalize(self.prototypes.kernel, axis=0))

    def queue_active_at(self, step):
        """Whether the projections of optimizer step ``step`` are enqueued (bool tensor)."""
        return tf.cast(step, tf.float32) >= self.epochs_to_steps(self.queue_start_epochs)

    def compute_ssl_loss(self, views, training):
        self.check_crops(views)
        batch = views[0].shape[0] or tf.shape(views[0])[0]  # static when known (the queue)
        step = optimizer_step(self)
        features = self.encode_crops(views, training)
        projections = tf.cast(self.projector(features, training=training), tf.float32)
        projections = tf.math.l2_normalize(projections, axis=-1)
        kernel = self.prototypes_at(tf.convert_to_tensor(self.prototypes.kernel), step)
        scores = tf.reshape(tf.matmul(projections, kernel), [len(views), batch, -1])
        large = [projections[i * batch : (i + 1) * batch] for i in range(LARGE_CROPS)]
        codes = [self._codes(scores[i], i, kernel, views[0].shape[0]) for i in range(LARGE_CROPS)]
        terms = {"loss": tf.reduce_mean(swav_loss(codes, scores, self.temperature))}
        updates = {}
        if self.queue is not None:
            updates["large_projections"] = tf.stop_gradient(tf.concat(large, axis=-1))
        return terms, tf.cast(features[:batch], tf.float32), updates

    def _codes(self, scores, crop, kernel, local_batch):
        """Sinkhorn-Knopp codes of one large crop, with this replica's share of the queue."""
        if self.queue is None:
            return sinkhorn_knopp(scores, self.epsilon, self.sinkhorn_iterations)
        check_queue_batch(self.queue_length, local_batch, "SwAV", argument="queue_length")
        queued = queue_scores(self.queue, crop, kernel)
        full = self.queue_fill >= self.queue_length
        return queued_sinkhorn_knopp(scores, queued, full, self.epsilon, self.sinkhorn_iterations)

    def after_optimizer_step(self, large_projections=None):
        self.normalize_prototypes()
        if self.queue is not None:
            active = self.queue_active_at(self.optimizer.iterations - 1)
            enqueue_global_batch(self.queue, self.queue_fill, large_projections, active)

    def get_config(self):
        return {
            **super().get_config(),
            "projection_hidden_dim": self.projection_hidden_dim,
            "projection_dim": self.projection_dim,
            "num_prototypes": self.num_prototypes,
            "temperature": self.temperature,
            "epsilon": self.epsilon,
            "sinkhorn_iterations": self.sinkhorn_iterations,
            "freeze_prototypes_epochs": self.freeze_prototypes_epochs,
            "queue_length": self.queue_length,
            "queue_start_epochs": self.queue_start_epochs,
        }
