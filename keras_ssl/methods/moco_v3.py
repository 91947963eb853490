"""MoCo v3: a query encoder predicts which in-batch key of a momentum encoder is its own."""

import keras
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.losses.contrastive import moco_v3_contrastive
from keras_ssl.methods.heads import build_predictor_heads, predictor_heads
from keras_ssl.methods.momentum import MomentumMethod
from keras_ssl.methods.patch_projection import (
    check_freeze_patch_projection,
    patch_embeddings,
    random_patch_projection,
)
from keras_ssl.methods.projected_views import check_two_views
from keras_ssl.methods.short_runs import SHORT_RUN_STEPS
from keras_ssl.validation import check_int, check_positive_number

#: The paper's temperatures (Chen et al. 2021, implementation details): ViT and ResNet.
VIT_TEMPERATURE = 0.2
RESNET_TEMPERATURE = 1.0


@keras.saving.register_keras_serializable(package="keras_ssl")
class MoCoV3(MomentumMethod):
    """MoCo v3 (Chen, Xie & He 2021, "An Empirical Study of Training Self-Supervised Vision
    Transformers", https://arxiv.org/abs/2104.02057).

    The query encoder ``f_q`` is ``encoder`` + ``projector`` (3-layer MLP, BatchNorm on every
    layer including the output) + ``predictor`` (2-layer MLP); the momentum encoder ``f_k`` is
    an EMA copy of ``encoder`` + ``projector`` (``key_encoder``, ``key_projector``; no
    predictor), ``k <- m k + (1 - m) q`` after every optimizer step, with ``m`` rising from
    ``momentum`` (0.99) to 1 on a cosine over the whole run (:class:`MomentumMethod`; the
    steps come from the real steps per epoch of ``fit``). BatchNorm moving statistics of
    ``f_k`` are its own, from its own forward passes in training mode, not averaged. There is
    no queue: the keys are the other view's, in the same batch. Each view goes through each
    network on its own (BatchNorm statistics per view, as in the paper's pseudo-code), and the
    loss is symmetrised (Algorithm 1)::

        ctr(q, k) = 2 t * mean_i -log(exp(q_i . k_i / t) / sum_j exp(q_i . k_j / t))
        loss = ctr(q1, k2) + ctr(q2, k1)

    with ``q = f_q(x)``, ``k = sg(f_k(x))`` L2-normalised, ``j`` over the global batch
    (:func:`keras_ssl.losses.moco_v3_contrastive`). The ``2 t`` factor makes the gradient scale
    independent of ``t``; when every query is orthogonal to every key the loss is ``4 t log N``
    (``N`` the global batch).

    Distribution: the keys of every replica are gathered (``keras_ssl.distribute.gather``) and
    each query's label is its global row (``replica_offset + i``), so the negatives are the
    global batch; each replica returns the mean of its own queries' losses, whose mean over
    replicas is the global-batch loss; keys carry no gradient; and BatchNorm (encoder and
    heads) is synchronised on several replicas by default (the paper trains with SyncBN). So N
    replicas compute the losses, gradients and momentum updates of one device on the global
    batch.

    ViT stability (Sec. 4.2, "random patch projection"): the paper fixes the ViT's patch
    projection at its random initialisation. ``freeze_patch_projection=None`` (default) does
    this whenever ``encoder`` contains a ``keras_ssl.backbones.vit.PatchEmbedding`` (every
    ``backbones.ViT``) and does nothing otherwise (ResNets); ``True`` requires such a layer
    (``ValueError`` without one); ``False`` trains the projection
    (:mod:`keras_ssl.methods.patch_projection`).

    ``model.encoder`` (what ``model(images)``, the probes and ``keras_ssl.export`` use) is the
    query backbone, the network MoCo v3 evaluates.

    Optimisation (pass it to ``compile``; not part of the method): the paper trains ResNet-50
    with LARS, learning rate ``0.3 * batch / 256``, weight decay 1.5e-6, and ViTs with AdamW,
    learning rate ``1.5e-4 * batch / 256``, weight decay 0.1, 40 warm-up epochs; 100-300
    epochs at batch 4096 (ResNet-50 also 1000).

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features): a ResNet or a
            ``backbones.ViT``.
        augmenter: view generator; default ``keras_ssl.augment.presets.byol`` (the paper
            uses BYOL's augmentation).
        projection_hidden_dim: hidden size of the projector's two hidden layers (paper: 4096).
        projection_dim: output size of the projector and the predictor (paper: 256).
        prediction_hidden_dim: hidden size of the predictor (paper: 4096).
        prediction_output_batch_norm: BatchNorm (no scale, no offset) on the predictor's
            output, as on the projector's (paper: all layers of both MLPs have BN).
        temperature: ``t``; ``None`` (default) uses the paper's value for the encoder: 0.2
            when it contains a ``PatchEmbedding`` (ViT), else 1.0 (ResNet). ``get_config``
            returns the resolved value.
        momentum: base momentum ``m`` (paper: 0.99, ResNet and ViT).
        final_momentum: momentum at the end of the cosine (paper: 1.0); ``None`` keeps ``m``.
        momentum_epochs: length of the cosine in epochs; ``None`` (paper) spans the run.
        freeze_patch_projection: ``None`` (auto), ``True`` or ``False``; see above.
            ``get_config`` returns the resolved value.
        synchronized_bn: global BatchNorm in encoder and heads; ``None``: on several replicas
            (see :class:`~keras_ssl.methods.SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    short_run_steps = SHORT_RUN_STEPS  # measured: see keras_ssl.methods.short_runs

    default_preset = "byol"

    def __init__(
        self,
        encoder,
        augmenter=None,
        projection_hidden_dim=4096,
        projection_dim=256,
        prediction_hidden_dim=4096,
        prediction_output_batch_norm=True,
        temperature=None,
        momentum=0.99,
        final_momentum=1.0,
        momentum_epochs=None,
        freeze_patch_projection=None,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        fix = "use positive sizes, e.g. 4096 hidden and 256 out (the paper)."
        check_int(projection_hidden_dim, "projection_hidden_dim", 1, fix)
        check_int(projection_dim, "projection_dim", 1, fix)
        check_int(prediction_hidden_dim, "prediction_hidden_dim", 1, fix)
        if not isinstance(prediction_output_batch_norm, bool):
            raise ValueError(
                f"`prediction_output_batch_norm` must be True or False; received "
                f"{prediction_output_batch_norm!r}. Fix: keep True (the paper's BN on every "
                "MLP layer) or pass False."
            )
        if temperature is not None:
            temperature = check_positive_number(
                temperature,
                "temperature",
                f"use {VIT_TEMPERATURE} (ViT), {RESNET_TEMPERATURE} (ResNet), or None for the "
                "paper's value for the encoder.",
            )
        check_freeze_patch_projection(freeze_patch_projection)
        super().__init__(
            encoder,
            augmenter=augmenter,
            momentum=momentum,
            final_momentum=final_momentum,
            momentum_epochs=momentum_epochs,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        self.freeze_patch_projection = random_patch_projection(encoder, freeze_patch_projection)
        if temperature is None:
            temperature = VIT_TEMPERATURE if patch_embeddings(encoder) else RESNET_TEMPERATURE
        self.temperature = float(temperature)
        self.projection_hidden_dim = int(projection_hidden_dim)
        self.projection_dim = int(projection_dim)
        self.prediction_hidden_dim = int(prediction_hidden_dim)
        self.prediction_output_batch_norm = prediction_output_batch_norm
        self.projector, self.predictor = predictor_heads(
            self,
            (self.projection_hidden_dim,) * 2,
            self.projection_dim,
            self.prediction_hidden_dim,
            projection_output_batch_norm=True,
            prediction_output_batch_norm=prediction_output_batch_norm,
        )

    def build_heads(self, feature_shape):
        self.key_encoder, self.key_projector = build_predictor_heads(self, feature_shape)

    def compute_ssl_loss(self, views, training):
        check_two_views(views, "MoCoV3")
        offset = distribute.replica_offset(tf.shape(views[0])[0])
        features, queries, all_keys = [], [], []
        for view in views:
            feature = self.encoder(view, training=training)
            projection = self.projector(feature, training=training)
            features.append(feature)
            queries.append(self.predictor(projection, training=training))
            key = self.key_projector(self.key_encoder(view, training=training), training=training)
            all_keys.append(distribute.gather(tf.stop_gradient(tf.cast(key, tf.float32))))
        losses = moco_v3_contrastive(
            queries[0], all_keys[1], self.temperature, offset
        ) + moco_v3_contrastive(queries[1], all_keys[0], self.temperature, offset)
        return {"loss": tf.reduce_mean(losses)}, features[0]

    def get_config(self):
        return {
            **super().get_config(),
            "projection_hidden_dim": self.projection_hidden_dim,
            "projection_dim": self.projection_dim,
            "prediction_hidden_dim": self.prediction_hidden_dim,
            "prediction_output_batch_norm": self.prediction_output_batch_norm,
            "temperature": self.temperature,
            "freeze_patch_projection": self.freeze_patch_projection,
        }
