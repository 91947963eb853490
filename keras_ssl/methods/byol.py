"""BYOL: an online network predicts an EMA target network's projection of the other view."""

import keras
import tensorflow as tf

from keras_ssl.losses.regression import normalized_mse
from keras_ssl.methods.heads import build_predictor_heads, predictor_heads
from keras_ssl.methods.momentum import MomentumMethod
from keras_ssl.methods.projected_views import check_two_views
from keras_ssl.methods.short_runs import SHORT_RUN_STEPS


@keras.saving.register_keras_serializable(package="keras_ssl")
class BYOL(MomentumMethod):
    """BYOL (Grill et al. 2020, "Bootstrap Your Own Latent: A New Approach to Self-Supervised
    Learning", https://arxiv.org/abs/2006.07733).

    The online network (encoder ``f``, projector ``g``, predictor ``q``) predicts the target
    network's projection of the other view; the target network (copies of ``f`` and ``g``) gets no
    gradients and follows the online weights by EMA, ``t <- tau t + (1 - tau) o``, with ``tau``
    rising from ``momentum`` (0.996) to ``final_momentum`` (1) on the paper's cosine schedule over
    the whole run of ``fit`` (Sec. 3.2; see :class:`MomentumMethod`; BatchNorm moving statistics are
    the target's own, not averaged). Each network makes one forward pass over the two concatenated
    views (so BatchNorm sees both, and the target runs in training mode like the online network).
    The loss is the paper's symmetrised normalised MSE, the SUM of the two directions averaged over
    the batch (Eq. 2 and the ``L + L~`` of Sec. 3.1)::

        loss = mean_i [ (2 - 2 cos(q(v1_i), sg(z'(v2_i)))) + (2 - 2 cos(q(v2_i), sg(z'(v1_i)))) ]

    so it lies in ``[0, 8]`` (0 when every prediction points at its target). It has no batch-
    level terms, so under ``tf.distribute`` each replica's mean over its own examples already
    averages to the global-batch loss; BatchNorm (encoder and heads) is synchronised on several
    replicas by default, as BYOL trains, which makes N replicas equal one device.

    ``model.encoder`` (what ``model(images)``, the probes and ``keras_ssl.export`` use) is the
    ONLINE encoder, the network BYOL keeps after training; the target copy is
    ``model.target_encoder``.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.byol`` (asymmetric blur
            and solarization).
        projection_hidden_dim: hidden size of the projector (paper: 4096; 512-1024 is plenty
            for encoders with 64-512 features on small images).
        projection_dim: output size of the projector and the predictor (paper: 256).
        prediction_hidden_dim: hidden size of the predictor (paper: 4096, like the projector).
        use_predictor: put the predictor on the online network (BYOL). ``False`` is the paper's
            ablation (Sec. 5), which collapses: online and target then map every
            image to the same point. It exists to demonstrate and test collapse detection.
        momentum: base EMA momentum ``tau_base`` (paper: 0.996 at batch 4096 over 300+ epochs;
            use 0.99 for small data sets and short runs, where the target must keep up).
        final_momentum: momentum at the end of the schedule (paper: 1.0); ``None`` keeps
            ``tau = momentum``.
        momentum_epochs: length of the cosine schedule in epochs; ``None`` (the paper) spans
            the whole run, ``epochs * steps_per_epoch`` of ``fit``.
        synchronized_bn: global BatchNorm in encoder and heads (BYOL's); ``None``: on several
            replicas (see :class:`~keras_ssl.methods.SSLMethod`).
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
        use_predictor=True,
        momentum=0.996,
        final_momentum=1.0,
        momentum_epochs=None,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
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
        self.projection_hidden_dim = projection_hidden_dim
        self.projection_dim = projection_dim
        if not isinstance(use_predictor, bool):
            raise ValueError(
                f"`use_predictor` must be True or False; received {use_predictor!r}. Fix: keep "
                "use_predictor=True (BYOL); False is the collapsing ablation."
            )
        self.prediction_hidden_dim = prediction_hidden_dim
        self.use_predictor = use_predictor
        self.projector, self.predictor = predictor_heads(
            self,
            (projection_hidden_dim,),
            projection_dim,
            prediction_hidden_dim,
            use_predictor=use_predictor,
        )

    def build_heads(self, feature_shape):
        self.target_encoder, self.target_projector = build_predictor_heads(self, feature_shape)

    def compute_ssl_loss(self, views, training):
        check_two_views(views, "BYOL")
        batch = tf.shape(views[0])[0]
        images = tf.concat(views, axis=0)
        features = self.encoder(images, training=training)
        predictions = self.projector(features, training=training)
        if self.predictor is not None:
            predictions = self.predictor(predictions, training=training)
        targets = self.target_projector(
            self.target_encoder(images, training=training), training=training
        )
        targets = tf.stop_gradient(targets)
        q_1, q_2 = tf.split(predictions, 2, axis=0)
        z_1, z_2 = tf.split(targets, 2, axis=0)
        losses = normalized_mse(q_1, z_2) + normalized_mse(q_2, z_1)
        return {"loss": tf.reduce_mean(losses)}, features[:batch]

    def get_config(self):
        return {
            **super().get_config(),
            "projection_hidden_dim": self.projection_hidden_dim,
            "projection_dim": self.projection_dim,
            "prediction_hidden_dim": self.prediction_hidden_dim,
            "use_predictor": self.use_predictor,
        }
