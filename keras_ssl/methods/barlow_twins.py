"""Barlow Twins: make the cross-correlation of two views' projections the identity matrix."""

import keras

from keras_ssl.losses.redundancy import barlow_twins_terms, check_barlow_twins_arguments
from keras_ssl.methods.projected_views import ProjectedViewsMethod, check_two_views, project_views
from keras_ssl.methods.short_runs import SHORT_RUN_STEPS


@keras.saving.register_keras_serializable(package="keras_ssl")
class BarlowTwins(ProjectedViewsMethod):
    """Barlow Twins (Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
    Reduction", https://arxiv.org/abs/2103.03230).

    Both views go through the encoder and a projector (``projection_layers`` fully-connected
    layers; BatchNorm and ReLU after each hidden one). Each projection dimension is standardised
    over the batch and the loss drives the ``[D, D]`` cross-correlation matrix ``C`` of the two
    views to the identity: ``sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2``
    (:func:`keras_ssl.losses.barlow_twins_loss`). No negatives, predictor, stop-gradient or
    momentum encoder are needed; the redundancy-reduction term prevents collapse.

    Under a ``tf.distribute`` strategy the means, variances and ``C`` are those of the global
    batch: the loss all-reduces sums and the example count (not per-replica statistics), every
    replica computes the same global loss, and the gradients equal those of one device on the
    global batch (the derivation is in :mod:`keras_ssl.losses.redundancy`). BatchNorm in the
    encoder and projector is synchronised too whenever there are several replicas, as the
    paper's code does, so N replicas equal one device exactly.

    The paper's projector is 8192-8192-8192 (ImageNet, batch 2048; accuracy still grows with
    the width). On small data and CPUs a narrower projector is the practical choice, e.g.
    ``projection_hidden_dim=projection_dim=2048`` for CIFAR-10 or 512 for the Fashion-MNIST
    demo (``configs/barlow_twins_fashion_mnist.py``); ``redundancy_weight`` then often goes up
    (``1 / D`` is a common scaling: 5e-3 was tuned for ``D = 8192``). Optimiser (paper): LARS,
    batch 2048, learning rate 0.2 for the weights and 0.0048 for biases and BatchNorm, weight
    decay 1.5e-6, 1000 epochs.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.byol`` (the paper uses
            BYOL's asymmetric augmentations).
        projection_hidden_dim: width of the projector's hidden layers (paper: 8192).
        projection_dim: output size ``D`` of the projector (paper: 8192).
        projection_layers: number of fully-connected layers of the projector (paper: 3).
        redundancy_weight: ``lambda``, the weight of the off-diagonal term (paper: 5e-3).
        epsilon: added to the variance when standardising (the paper's BatchNorm: 1e-5).
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    short_run_steps = SHORT_RUN_STEPS  # measured: see keras_ssl.methods.short_runs

    loss_terms = ("loss", "on_diagonal", "off_diagonal")

    def __init__(
        self,
        encoder,
        augmenter=None,
        projection_hidden_dim=8192,
        projection_dim=8192,
        projection_layers=3,
        redundancy_weight=5e-3,
        epsilon=1e-5,
        synchronized_bn=None,
        probe_classes=None,
        **kwargs,
    ):
        super().__init__(
            encoder,
            augmenter=augmenter,
            projection_hidden_dim=projection_hidden_dim,
            projection_dim=projection_dim,
            projection_layers=projection_layers,
            synchronized_bn=synchronized_bn,
            probe_classes=probe_classes,
            **kwargs,
        )
        check_barlow_twins_arguments(redundancy_weight, epsilon)
        self.redundancy_weight = redundancy_weight
        self.epsilon = epsilon

    def compute_ssl_loss(self, views, training):
        check_two_views(views, "Barlow Twins")
        z_a, z_b, features = project_views(self, views, training)
        terms = barlow_twins_terms(z_a, z_b, self.redundancy_weight, self.epsilon)
        return terms, features

    def get_config(self):
        return {
            **super().get_config(),
            "redundancy_weight": self.redundancy_weight,
            "epsilon": self.epsilon,
        }
