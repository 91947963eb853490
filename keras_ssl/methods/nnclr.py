"""NNCLR: contrastive learning whose positives are nearest neighbours from a support set."""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.layers import MLPHead
from keras_ssl.layers.memory_queue import MemoryQueue, check_queue_batch
from keras_ssl.losses.nearest_neighbour import nearest_neighbours, nnclr_loss
from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.short_runs import SHORT_RUN_STEPS
from keras_ssl.validation import check_int, check_positive_number


@keras.saving.register_keras_serializable(package="keras_ssl")
class NNCLR(SSLMethod):
    """NNCLR (Dwibedi et al. 2021, "With a Little Help from My Friends: Nearest-Neighbor
    Contrastive Learning of Visual Representations", https://arxiv.org/abs/2104.14548).

    SimCLR with a nearest neighbour as the positive: both views go through the encoder ``f`` (one
    forward pass over the concatenated views, so BatchNorm sees both), the projector ``g`` (``z``)
    and the predictor ``h`` (``p = h(z)``). Each projection is replaced by its nearest neighbour
    in the support set ``Q`` by cosine similarity, ``NN(z) = argmax_q cos(z, q)``, a constant
    (stop-gradient), and that neighbour must find the prediction of the other view of its own
    image among the predictions of the batch (Eq. 2, symmetrised over the two views)::

        s_a(i, k) = cos(NN(z_a,i), p_b,k) / t            (b: the other view of a)
        L(a, b) = mean_i -log( exp(s_a(i, i)) / sum_k exp(s_a(i, k)) )
        loss = (L(1, 2) + L(2, 1)) / 2

    The support set is a first-in-first-out queue (:class:`~keras_ssl.layers.MemoryQueue`,
    ``model.support_set``) of L2-normalised first-view projections: after the optimizer step,
    the projections of this step (computed before the update, as the loss used them) replace
    the oldest entries. It starts as random unit vectors (the neighbours are random until the
    first ``queue_size / global batch`` steps have filled it). Entries and write pointer are
    non-trainable weights, so they are saved in ``.keras`` files and checkpoints and a resumed
    run continues with the same support set; evaluation never enqueues.

    Distribution: every replica looks its own projections up in the same support set, the
    predictions are gathered from all replicas (``keras_ssl.distribute.gather``) so the negatives
    are those of the global batch, and the labels are offset by the replica's first row
    (``distribute.replica_offset``), as in SimCLR. The first-view projections of the global
    batch, gathered in replica order, are enqueued on every replica, so all copies of the
    support set stay identical and equal the one-device support set. With BatchNorm synchronised
    (the default on several replicas), N replicas compute the loss, gradients and support set of
    one device on the global batch. Batches need a static size (``drop_remainder=True``) and
    ``queue_size`` must be a multiple of the global batch.

    Optimiser (paper, Sec. 4): LARS, base learning rate 4.8 at batch 4096 (0.3 x 4096 / 256),
    weight decay 1e-6, 1000 epochs with warm-up and cosine decay.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.byol`` (NNCLR trains
            with BYOL's augmentation).
        queue_size: number of projections in the support set (paper: 98,304, i.e. 24 batches of
            4096); a multiple of the global batch.
        projection_hidden_dim: width of the projector's hidden layers (paper: 2048).
        projection_dim: output size of the projector and the predictor, i.e. of ``z``, ``p``
            and the support set entries (paper: 256).
        projection_layers: fully-connected layers of the projector, each followed by
            BatchNorm, all but the last by ReLU (paper: 3). The output BatchNorm has no learned
            scale and shift (as SimCLR v2's projector).
        prediction_hidden_dim: hidden size of the predictor ``Dense - BN - ReLU - Dense``
            (paper: 4096).
        temperature: softmax temperature ``t`` (paper: 0.1).
        synchronized_bn: global BatchNorm in the encoder and heads; ``None`` (default) whenever
            there are several replicas (see :class:`~keras_ssl.methods.SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    short_run_steps = SHORT_RUN_STEPS  # measured: see keras_ssl.methods.short_runs

    default_preset = "byol"

    def __init__(
        self,
        encoder,
        augmenter=None,
        queue_size=98304,
        projection_hidden_dim=2048,
        projection_dim=256,
        projection_layers=3,
        prediction_hidden_dim=4096,
        temperature=0.1,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        queue_size = check_int(
            queue_size, "queue_size", fix="use 98304 (ImageNet at batch 4096) or e.g. 4096."
        )
        for name, value, example in (
            ("projection_hidden_dim", projection_hidden_dim, 2048),
            ("projection_dim", projection_dim, 256),
            ("projection_layers", projection_layers, 3),
            ("prediction_hidden_dim", prediction_hidden_dim, 4096),
        ):
            check_int(value, name, fix=f"pass e.g. {name}={example} (the paper's value).")
        temperature = check_positive_number(
            temperature, "temperature", fix="use 0.1 (NNCLR's value)."
        )
        super().__init__(
            encoder,
            augmenter=augmenter,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        self.queue_size = queue_size
        self.projection_hidden_dim = int(projection_hidden_dim)
        self.projection_dim = int(projection_dim)
        self.projection_layers = int(projection_layers)
        self.prediction_hidden_dim = int(prediction_hidden_dim)
        self.temperature = temperature
        self.projector = MLPHead(
            hidden_dims=(self.projection_hidden_dim,) * (self.projection_layers - 1),
            output_dim=self.projection_dim,
            output_batch_norm=True,
            synchronized=self.batch_norm_synchronized,
            name="projector",
        )
        self.predictor = MLPHead(
            hidden_dims=(self.prediction_hidden_dim,),
            output_dim=self.projection_dim,
            synchronized=self.batch_norm_synchronized,
            name="predictor",
        )
        self.support_set = MemoryQueue(queue_size, self.projection_dim, name="support_set")

    def build_heads(self, feature_shape):
        self.projector.build(feature_shape)
        self.predictor.build((None, self.projection_dim))

    def compute_ssl_loss(self, views, training):
        if len(views) != 2:
            raise ValueError(
                f"NNCLR uses exactly 2 views per image; received {len(views)}. Fix: use an "
                "augmenter with two views (keras_ssl.augment.presets.byol)."
            )
        batch = views[0].shape[0]
        check_queue_batch(self.queue_size, batch, "NNCLR")
        features = self.encoder(tf.concat(views, axis=0), training=training)
        projections = self.projector(features, training=training)
        predictions = self.predictor(projections, training=training)
        z_1, z_2 = tf.split(tf.cast(projections, tf.float32), 2, axis=0)
        p_1, p_2 = tf.split(tf.cast(predictions, tf.float32), 2, axis=0)
        support = tf.convert_to_tensor(self.support_set.keys)
        nn_1, _ = nearest_neighbours(tf.stop_gradient(z_1), support)
        nn_2, _ = nearest_neighbours(tf.stop_gradient(z_2), support)
        nn_1, nn_2 = tf.stop_gradient(nn_1), tf.stop_gradient(nn_2)
        offset = distribute.replica_offset(batch)
        loss_12 = nnclr_loss(nn_1, p_2, self.temperature, distribute.gather(p_2), offset)
        loss_21 = nnclr_loss(nn_2, p_1, self.temperature, distribute.gather(p_1), offset)
        loss = (tf.reduce_mean(loss_12) + tf.reduce_mean(loss_21)) / 2.0
        enqueue = distribute.gather_batch(tf.stop_gradient(tf.math.l2_normalize(z_1, axis=1)))
        return {"loss": loss}, features[:batch], {"projections": enqueue}

    def after_optimizer_step(self, projections):
        self.support_set.enqueue(projections)

    def get_config(self):
        return {
            **super().get_config(),
            "queue_size": self.queue_size,
            "projection_hidden_dim": self.projection_hidden_dim,
            "projection_dim": self.projection_dim,
            "projection_layers": self.projection_layers,
            "prediction_hidden_dim": self.prediction_hidden_dim,
            "temperature": self.temperature,
        }
