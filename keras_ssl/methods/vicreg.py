"""VICReg: variance, invariance and covariance regularisation of two views' embeddings."""

import keras

from keras_ssl.losses.redundancy import check_vicreg_arguments, vicreg_terms
from keras_ssl.methods.projected_views import ProjectedViewsMethod, check_two_views, project_views
from keras_ssl.methods.short_runs import SHORT_RUN_STEPS


@keras.saving.register_keras_serializable(package="keras_ssl")
class VICReg(ProjectedViewsMethod):
    """VICReg (Bardes, Ponce and LeCun 2022, "VICReg: Variance-Invariance-Covariance
    Regularization for Self-Supervised Learning", https://arxiv.org/abs/2105.04906).

    Both views go through the encoder and an expander (``projection_layers`` fully-connected
    layers; BatchNorm and ReLU after each hidden one). The loss
    (:func:`keras_ssl.losses.vicreg_loss`) weighs three terms: invariance, the mean squared
    error between the two views' embeddings; variance, a hinge keeping the standard deviation of
    every embedding dimension over the batch above ``gamma``; covariance, the squared
    off-diagonal entries of each view's covariance matrix divided by ``D``. The variance term
    prevents collapse without negatives, a predictor, stop-gradients or BatchNorm on the
    embeddings. Every term is reported as a metric (unweighted); ``loss`` is the weighted sum.

    Under a ``tf.distribute`` strategy the means, variances and covariances are those of the
    global batch: the loss all-reduces sums and the example count, every replica computes the
    same global loss, and the gradients equal those of one device on the global batch (the
    derivation is in :mod:`keras_ssl.losses.redundancy`). BatchNorm in the encoder and expander
    is synchronised too whenever there are several replicas, so N replicas equal one device.

    The paper's expander is 8192-8192-8192 (ImageNet, batch 2048). On small data and CPUs a
    narrower expander is the practical choice, e.g. 2048 for CIFAR-10 or 512 for the
    Fashion-MNIST demo (``configs/vicreg_fashion_mnist.py``). Optimiser (paper): LARS, batch
    2048, base learning rate 0.2 (``lr = batch / 256 * 0.2``), weight decay 1e-6, 1000 epochs.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``keras_ssl.augment.presets.byol`` (the paper uses
            BYOL's augmentations).
        projection_hidden_dim: width of the expander's hidden layers (paper: 8192).
        projection_dim: output size ``D`` of the expander (paper: 8192).
        projection_layers: number of fully-connected layers of the expander (paper: 3).
        invariance_weight: ``lambda``, the weight of the invariance term (paper: 25).
        variance_weight: ``mu``, the weight of the variance term (paper: 25).
        covariance_weight: ``nu``, the weight of the covariance term (paper: 1).
        gamma: target standard deviation of each dimension (paper: 1).
        epsilon: added to the variance inside the square root (paper: 1e-4).
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        probe_classes: classes of the online linear probe, or ``None``.
    """

    short_run_steps = SHORT_RUN_STEPS  # measured: see keras_ssl.methods.short_runs

    loss_terms = ("loss", "invariance", "variance", "covariance")

    def __init__(
        self,
        encoder,
        augmenter=None,
        projection_hidden_dim=8192,
        projection_dim=8192,
        projection_layers=3,
        invariance_weight=25.0,
        variance_weight=25.0,
        covariance_weight=1.0,
        gamma=1.0,
        epsilon=1e-4,
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
        check_vicreg_arguments(
            invariance_weight, variance_weight, covariance_weight, gamma, epsilon
        )
        self.invariance_weight = invariance_weight
        self.variance_weight = variance_weight
        self.covariance_weight = covariance_weight
        self.gamma = gamma
        self.epsilon = epsilon

    def compute_ssl_loss(self, views, training):
        check_two_views(views, "VICReg")
        z_a, z_b, features = project_views(self, views, training)
        terms = vicreg_terms(
            z_a,
            z_b,
            self.invariance_weight,
            self.variance_weight,
            self.covariance_weight,
            self.gamma,
            self.epsilon,
        )
        return terms, features

    def get_config(self):
        return {
            **super().get_config(),
            "invariance_weight": self.invariance_weight,
            "variance_weight": self.variance_weight,
            "covariance_weight": self.covariance_weight,
            "gamma": self.gamma,
            "epsilon": self.epsilon,
        }
