"""SimSiam: a Siamese network with a predictor and a stop-gradient, no negatives, no momentum."""

import keras
import tensorflow as tf

from keras_ssl.layers import MLPHead
from keras_ssl.losses.regression import negative_cosine_similarity
from keras_ssl.methods.base import SSLMethod
from keras_ssl.methods.short_runs import SHORT_RUN_STEPS


@keras.saving.register_keras_serializable(package="keras_ssl")
class SimSiam(SSLMethod):
    """SimSiam (Chen & He 2021, "Exploring Simple Siamese Representation Learning",
    https://arxiv.org/abs/2011.10566).

    One network (encoder ``f`` + projector) embeds both views, ``z = proj(f(v))``, in one forward
    pass over the concatenated views; a predictor ``h`` maps ``z`` of one view onto ``z`` of the
    other, which is treated as a constant (stop-gradient). The loss is the symmetrised negative
    cosine similarity of Eq. 2, averaged over the batch::

        loss = mean_i [ D(p1_i, sg(z2_i)) / 2 + D(p2_i, sg(z1_i)) / 2 ],  D(p, z) = -cos(p, z)

    in ``[-1, 1]`` (-1 when every prediction points at its target). The projector has
    ``projection_layers`` fully-connected layers, each followed by BatchNorm (the output's
    without scale and shift, as in the official code) and all but the last by ReLU; the
    predictor is a bottleneck ``Dense(prediction_hidden_dim) - BN - ReLU - Dense`` without BN on
    its output. There is no teacher and no batch-level loss term: each replica's mean over its
    own examples averages to the global-batch loss; BatchNorm (encoder and heads) is
    synchronised on several replicas by default (the paper's SyncBN), which makes N replicas
    equal one device.

    Optimiser (paper, Sec. 3 and appendix A): SGD with momentum 0.9, learning rate
    ``0.05 * batch / 256`` (ImageNet, weight decay 1e-4) or ``0.03 * batch / 256`` (CIFAR-10,
    weight decay 5e-4), cosine decay; the paper keeps the predictor's learning rate constant,
    which a single Keras optimizer does not express (decaying it as well costs little).
    The method works with plain SGD, unlike BYOL, which is usually trained with LARS.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.simclr`` (the paper
            uses the same augmentations as SimCLR / MoCo v2).
        projection_hidden_dim: hidden size of the projector (paper: 2048).
        projection_dim: output size of the projector and the predictor (paper: 2048).
        projection_layers: number of fully-connected layers of the projector (paper: 3 on
            ImageNet, 2 on CIFAR-10).
        prediction_hidden_dim: bottleneck size of the predictor (paper: 512, a quarter of
            ``projection_dim``).
        stop_gradient: stop the gradient through the target ``z`` (the paper's method). ``False``
            is the paper's ablation (Sec. 4.1), which collapses to a constant output; it exists
            to demonstrate and test collapse detection.
        synchronized_bn: global BatchNorm in encoder and heads; ``None``: on several replicas
            (see :class:`~keras_ssl.methods.SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    short_run_steps = SHORT_RUN_STEPS  # measured: see keras_ssl.methods.short_runs

    def __init__(
        self,
        encoder,
        augmenter=None,
        projection_hidden_dim=2048,
        projection_dim=2048,
        projection_layers=3,
        prediction_hidden_dim=512,
        stop_gradient=True,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(
            encoder,
            augmenter=augmenter,
            probe_classes=probe_classes,
            synchronized_bn=synchronized_bn,
            **kwargs,
        )
        if (
            isinstance(projection_layers, bool)
            or not isinstance(projection_layers, int)
            or projection_layers < 1
        ):
            raise ValueError(
                f"`projection_layers` must be a positive integer; received "
                f"{projection_layers!r}. Fix: use 3 (SimSiam on ImageNet) or 2 (CIFAR-10)."
            )
        if not isinstance(stop_gradient, bool):
            raise ValueError(
                f"`stop_gradient` must be True or False; received {stop_gradient!r}. Fix: keep "
                "stop_gradient=True (SimSiam); False is the collapsing ablation."
            )
        self.projection_hidden_dim = projection_hidden_dim
        self.projection_dim = projection_dim
        self.projection_layers = projection_layers
        self.prediction_hidden_dim = prediction_hidden_dim
        self.stop_gradient = stop_gradient
        self.projector = MLPHead(
            hidden_dims=(projection_hidden_dim,) * (projection_layers - 1),
            output_dim=projection_dim,
            output_batch_norm=True,
            synchronized=self.batch_norm_synchronized,
            name="projector",
        )
        self.predictor = MLPHead(
            hidden_dims=(prediction_hidden_dim,),
            output_dim=projection_dim,
            synchronized=self.batch_norm_synchronized,
            name="predictor",
        )

    def build_heads(self, feature_shape):
        self.projector.build(feature_shape)
        self.predictor.build((None, self.projection_dim))

    def compute_ssl_loss(self, views, training):
        if len(views) != 2:
            raise ValueError(
                f"SimSiam uses exactly 2 views per image; received {len(views)}. Fix: use an "
                "augmenter with two views (keras_ssl.augment.presets.simclr)."
            )
        batch = tf.shape(views[0])[0]
        features = self.encoder(tf.concat(views, axis=0), training=training)
        projections = self.projector(features, training=training)
        predictions = self.predictor(projections, training=training)
        targets = tf.stop_gradient(projections) if self.stop_gradient else projections
        p_1, p_2 = tf.split(predictions, 2, axis=0)
        z_1, z_2 = tf.split(targets, 2, axis=0)
        losses = 0.5 * (negative_cosine_similarity(p_1, z_2) + negative_cosine_similarity(p_2, z_1))
        return {"loss": tf.reduce_mean(losses)}, features[:batch]

    def get_config(self):
        return {
            **super().get_config(),
            "projection_hidden_dim": self.projection_hidden_dim,
            "projection_dim": self.projection_dim,
            "projection_layers": self.projection_layers,
            "prediction_hidden_dim": self.prediction_hidden_dim,
            "stop_gradient": self.stop_gradient,
            "synchronized_bn": self.synchronized_bn,
        }
