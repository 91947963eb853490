"""Two views through one encoder and a projector, for the redundancy-reduction methods (Barlow
Twins, VICReg): the projector, its arguments and checks, and the per-view forward passes."""

from keras_ssl.layers import MLPHead
from keras_ssl.methods.base import SSLMethod
from keras_ssl.validation import check_int


def check_two_views(views, method):
    """Raises a ``ValueError`` unless ``views`` holds exactly two view batches."""
    if len(views) != 2:
        raise ValueError(
            f"{method} uses exactly 2 views per image; received {len(views)}. Fix: use an "
            "augmenter with two views (keras_ssl.augment.presets.byol or .simclr)."
        )


def check_projection_layers(projection_layers):
    """Raises a ``ValueError`` unless ``projection_layers`` is a positive integer."""
    check_int(
        projection_layers,
        "projection_layers",
        1,
        "use 3 (Barlow Twins and VICReg use 3-layer projectors).",
    )


def project_views(method, views, training):
    """``(z_a, z_b, features of view 1)``: each view through encoder and projector separately.

    Separate passes give every view its own BatchNorm statistics, as the official Barlow Twins
    and VICReg code does (``projector(backbone(y1))``, then ``y2``).
    """
    features = method.encoder(views[0], training=training)
    z_a = method.projector(features, training=training)
    z_b = method.projector(method.encoder(views[1], training=training), training=training)
    return z_a, z_b, features


class ProjectedViewsMethod(SSLMethod):
    """Base of Barlow Twins and VICReg: an MLP projector after the encoder, BYOL augmentations.

    Subclasses check their own loss arguments and call ``super().__init__`` with the projector
    arguments; their ``compute_ssl_loss`` uses :func:`project_views`.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.byol``.
        projection_hidden_dim: width of the projector's hidden layers.
        projection_dim: output size of the projector.
        projection_layers: number of fully-connected layers of the projector.
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    default_preset = "byol"

    def __init__(
        self,
        encoder,
        augmenter=None,
        projection_hidden_dim=8192,
        projection_dim=8192,
        projection_layers=3,
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
        check_projection_layers(projection_layers)
        self.projection_hidden_dim = projection_hidden_dim
        self.projection_dim = projection_dim
        self.projection_layers = projection_layers
        self.projector = MLPHead(
            hidden_dims=(projection_hidden_dim,) * (projection_layers - 1),
            output_dim=projection_dim,
            synchronized=self.batch_norm_synchronized,
            name="projector",
        )

    def build_heads(self, feature_shape):
        self.projector.build(feature_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "projection_hidden_dim": self.projection_hidden_dim,
            "projection_dim": self.projection_dim,
            "projection_layers": self.projection_layers,
        }
