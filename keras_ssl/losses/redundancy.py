"""Redundancy-reduction losses: Barlow Twins' cross-correlation loss and VICReg.

Both losses are functions of batch statistics (per-dimension means, variances, cross- and
auto-covariances), so they are not sums of per-example losses. The functions take this
replica's projections and all-reduce the *sums* they need (sums, sums of squared deviations,
``Z^T Z`` products and the example count) with :mod:`keras_ssl.distribute`; the statistics are
then those of the global batch, never means of per-replica statistics. Every replica ends up
with the same global loss ``L``. On one device the helpers are the identity, so the functions
are ordinary pure functions.

Gradients under ``N`` replicas: :class:`keras_ssl.methods.SSLMethod` minimises ``L / N`` on
every replica, and the gradient of an all-reduce sum is the all-reduce sum of the upstream
gradients. For a global sum ``S = sum_r s(z_r)`` the gradient reaching replica ``r``'s local
``s(z_r)`` is therefore ``sum_r' d(L / N) / dS = N * (1 / N) * dL/dS = dL/dS``, the
single-device partial derivative; it flows on to ``z_r`` and the replica's weights exactly as
the single-device gradient of ``L`` through the rows of ``z_r``, and the strategy's sum of the
replicas' weight gradients is the single-device gradient on the global batch.
"""

import keras
import tensorflow as tf

from keras_ssl import distribute


def _check_projections(z_a, z_b):
    z_a = tf.cast(tf.convert_to_tensor(z_a), tf.float32)
    z_b = tf.cast(tf.convert_to_tensor(z_b), tf.float32)
    if z_a.shape.rank != 2 or z_b.shape.rank != 2:
        raise ValueError(
            f"`z_a` and `z_b` must be rank 2 [batch, dim]; received shapes {tuple(z_a.shape)} "
            f"and {tuple(z_b.shape)}. Fix: pass the projector's outputs (flatten or pool first)."
        )
    if z_a.shape.is_fully_defined() and z_b.shape.is_fully_defined() and z_a.shape != z_b.shape:
        raise ValueError(
            f"`z_a` and `z_b` must have the same shape (row i of both = the two views of image "
            f"i); received {tuple(z_a.shape)} and {tuple(z_b.shape)}. Fix: project both views "
            "of the same images with the same head."
        )
    local_batch = z_a.shape[0]
    if local_batch is not None and local_batch * distribute.num_replicas() < 2:
        raise ValueError(
            f"Barlow Twins and VICReg standardise every dimension over the batch, and a standard "
            f"deviation needs at least 2 examples; received a (global) batch of "
            f"{local_batch * distribute.num_replicas()}. Fix: use a batch size of 2 or more "
            "(the papers use 256-2048)."
        )
    return z_a, z_b


def _check_number(value, name, minimum, strict, example):
    valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not valid or value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise ValueError(
            f"`{name}` must be a number {relation} {minimum}; received {value!r}. "
            f"Fix: use e.g. {name}={example}."
        )


def check_barlow_twins_arguments(redundancy_weight, epsilon):
    """Raises a ``ValueError`` for a negative ``redundancy_weight`` or non-positive ``epsilon``."""
    _check_number(redundancy_weight, "redundancy_weight", 0, False, "5e-3 (the paper's lambda)")
    _check_number(epsilon, "epsilon", 0, True, "1e-5")


def check_vicreg_arguments(invariance_weight, variance_weight, covariance_weight, gamma, epsilon):
    """Raises a ``ValueError`` for negative weights or a non-positive ``gamma`` / ``epsilon``."""
    _check_number(invariance_weight, "invariance_weight", 0, False, "25.0 (the paper's lambda)")
    _check_number(variance_weight, "variance_weight", 0, False, "25.0 (the paper's mu)")
    _check_number(covariance_weight, "covariance_weight", 0, False, "1.0 (the paper's nu)")
    _check_number(gamma, "gamma", 0, True, "1.0")
    _check_number(epsilon, "epsilon", 0, True, "1e-4")


def _global_sums(z_a, z_b, *extra):
    """All-reduced ``(count, sum(z_a), sum(z_b), *extra)`` over the global batch."""
    count = tf.cast(tf.shape(z_a)[0], tf.float32)
    return distribute.all_reduce_sum(
        (count, tf.reduce_sum(z_a, axis=0), tf.reduce_sum(z_b, axis=0), *extra)
    )


def _off_diagonal_mask(dim):
    return 1.0 - tf.eye(dim, dtype=tf.float32)


def barlow_twins_terms(z_a, z_b, redundancy_weight=5e-3, epsilon=1e-5):
    """Barlow Twins' loss and its two parts, over the global batch.

    See :func:`barlow_twins_loss` for the formula and arguments.

    Returns:
        Dict of float32 scalars: ``loss`` (the total), ``on_diagonal`` (``sum_i (1 - C_ii)^2``)
        and ``off_diagonal`` (``sum_{i != j} C_ij^2``, before the weight).
    """
    check_barlow_twins_arguments(redundancy_weight, epsilon)
    z_a, z_b = _check_projections(z_a, z_b)
    count, sum_a, sum_b = _global_sums(z_a, z_b)
    centred_a = z_a - sum_a / count
    centred_b = z_b - sum_b / count
    # Second round: squared deviations (for the variances) and the unnormalised cross-covariance.
    squares_a, squares_b, cross = distribute.all_reduce_sum(
        (
            tf.reduce_sum(tf.square(centred_a), axis=0),
            tf.reduce_sum(tf.square(centred_b), axis=0),
            tf.matmul(centred_a, centred_b, transpose_a=True),
        )
    )
    # BatchNorm-style standardisation (biased variance, epsilon inside the square root).
    scale_a = tf.math.rsqrt(squares_a / count + epsilon)
    scale_b = tf.math.rsqrt(squares_b / count + epsilon)
    correlation = cross / count * scale_a[:, None] * scale_b[None, :]
    on_diagonal = tf.reduce_sum(tf.square(1.0 - tf.linalg.diag_part(correlation)))
    mask = _off_diagonal_mask(tf.shape(correlation)[0])
    off_diagonal = tf.reduce_sum(tf.square(correlation * mask))
    return {
        "loss": on_diagonal + redundancy_weight * off_diagonal,
        "on_diagonal": on_diagonal,
        "off_diagonal": off_diagonal,
    }


def barlow_twins_loss(z_a, z_b, redundancy_weight=5e-3, epsilon=1e-5):
    """Barlow Twins: make the views' cross-correlation matrix the identity.

    Each dimension of each view is standardised over the batch (mean 0, variance 1, as the
    paper's affine-free BatchNorm does), ``C = z_a_std^T z_b_std / batch`` is the ``[D, D]``
    cross-correlation matrix, and the loss is
    ``sum_i (1 - C_ii)^2 + redundancy_weight * sum_{i != j} C_ij^2``: the invariance term pulls
    the diagonal to 1, the redundancy-reduction term pushes the off-diagonal entries to 0.

    Args:
        z_a: ``[n, D]`` projections of the first view of this replica's ``n`` images.
        z_b: ``[n, D]`` projections of the second view of the same images, row for row.
        redundancy_weight: the paper's ``lambda`` (5e-3 for ``D = 8192``), ``>= 0``.
        epsilon: added to the variance before the square root (the official code's BatchNorm
            default, 1e-5).

    Returns:
        A float32 scalar, the loss of the global batch (the same on every replica under a
        ``tf.distribute`` strategy; see the module docstring for the gradients).

    References:
        Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy Reduction",
        Eq. 1-2, https://arxiv.org/abs/2103.03230
    """
    return barlow_twins_terms(z_a, z_b, redundancy_weight, epsilon)["loss"]


def vicreg_terms(
    z_a,
    z_b,
    invariance_weight=25.0,
    variance_weight=25.0,
    covariance_weight=1.0,
    gamma=1.0,
    epsilon=1e-4,
):
    """VICReg's loss and its three (unweighted) terms, over the global batch.

    See :func:`vicreg_loss` for the formula and arguments.

    Returns:
        Dict of float32 scalars: ``loss`` (the weighted total), ``invariance``, ``variance``
        and ``covariance`` (each before its weight).
    """
    check_vicreg_arguments(invariance_weight, variance_weight, covariance_weight, gamma, epsilon)
    z_a, z_b = _check_projections(z_a, z_b)
    dim = tf.cast(tf.shape(z_a)[1], tf.float32)
    squared_error = tf.reduce_sum(tf.square(z_a - z_b))
    count, sum_a, sum_b, squared_error = _global_sums(z_a, z_b, squared_error)
    centred_a = z_a - sum_a / count
    centred_b = z_b - sum_b / count
    gram_a, gram_b = distribute.all_reduce_sum(
        (
            tf.matmul(centred_a, centred_a, transpose_a=True),
            tf.matmul(centred_b, centred_b, transpose_a=True),
        )
    )
    # Unbiased covariance, as the official code; a partial batch of one image whose shape was
    # unknown when the step was traced gives zero variance here instead of 0 / 0.
    denominator = tf.maximum(count - 1.0, 1.0)
    mask = _off_diagonal_mask(tf.shape(z_a)[1])
    variance, covariance = [], []
    for gram in (gram_a, gram_b):
        cov = gram / denominator
        std = tf.sqrt(tf.linalg.diag_part(cov) + epsilon)
        variance.append(tf.reduce_mean(tf.nn.relu(gamma - std)))
        covariance.append(tf.reduce_sum(tf.square(cov * mask)) / dim)
    invariance = squared_error / (count * dim)
    variance = (variance[0] + variance[1]) / 2.0
    covariance = covariance[0] + covariance[1]
    loss = (
        invariance_weight * invariance + variance_weight * variance + covariance_weight * covariance
    )
    return {
        "loss": loss,
        "invariance": invariance,
        "variance": variance,
        "covariance": covariance,
    }


def vicreg_loss(
    z_a,
    z_b,
    invariance_weight=25.0,
    variance_weight=25.0,
    covariance_weight=1.0,
    gamma=1.0,
    epsilon=1e-4,
):
    """VICReg: invariance + variance + covariance regularisation of two views' embeddings.

    ``loss = invariance_weight * s + variance_weight * v + covariance_weight * c`` with

    - invariance ``s``: the mean squared error between ``z_a`` and ``z_b`` over all ``n * D``
      entries;
    - variance ``v``: for each view, the mean over dimensions of the hinge
      ``max(0, gamma - sqrt(Var(z_j) + epsilon))`` on the (unbiased) standard deviation of
      dimension ``j`` over the batch; the two views' values are averaged;
    - covariance ``c``: for each view, the sum of the squared off-diagonal entries of the
      (unbiased) ``[D, D]`` covariance matrix divided by ``D``; the two views' values are added.

    The scaling of each term (MSE over entries, views' variance terms averaged, covariance terms
    added) follows the official implementation, for which the paper's weights 25 / 25 / 1 were
    tuned; the paper's Eq. 6 writes the invariance as a sum over dimensions and adds the
    variance terms.

    Args:
        z_a: ``[n, D]`` embeddings (expander outputs) of the first view of this replica's images.
        z_b: ``[n, D]`` embeddings of the second view, row for row.
        invariance_weight: the paper's ``lambda`` (25).
        variance_weight: the paper's ``mu`` (25).
        covariance_weight: the paper's ``nu`` (1).
        gamma: target standard deviation of every dimension (1).
        epsilon: added to the variance inside the square root (1e-4).

    Returns:
        A float32 scalar, the loss of the global batch (the same on every replica under a
        ``tf.distribute`` strategy; see the module docstring for the gradients).

    References:
        Bardes, Ponce and LeCun 2022, "VICReg: Variance-Invariance-Covariance Regularization
        for Self-Supervised Learning", Eq. 1-6, https://arxiv.org/abs/2105.04906
    """
    return vicreg_terms(
        z_a, z_b, invariance_weight, variance_weight, covariance_weight, gamma, epsilon
    )["loss"]


@keras.saving.register_keras_serializable(package="keras_ssl")
class BarlowTwinsLoss(keras.losses.Loss):
    """``keras.losses.Loss`` form of :func:`barlow_twins_loss`.

    Call it as ``loss(z_a, z_b)``: the two arguments are the projections of the two views. The
    value is a batch-level scalar (no per-example reduction applies).
    """

    def __init__(self, redundancy_weight=5e-3, epsilon=1e-5, name="barlow_twins", **kwargs):
        super().__init__(name=name, **kwargs)
        check_barlow_twins_arguments(redundancy_weight, epsilon)
        self.redundancy_weight = redundancy_weight
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        return barlow_twins_loss(y_true, y_pred, self.redundancy_weight, self.epsilon)

    def get_config(self):
        return {
            **super().get_config(),
            "redundancy_weight": self.redundancy_weight,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="keras_ssl")
class VICRegLoss(keras.losses.Loss):
    """``keras.losses.Loss`` form of :func:`vicreg_loss`.

    Call it as ``loss(z_a, z_b)``: the two arguments are the embeddings of the two views. The
    value is a batch-level scalar (no per-example reduction applies).
    """

    def __init__(
        self,
        invariance_weight=25.0,
        variance_weight=25.0,
        covariance_weight=1.0,
        gamma=1.0,
        epsilon=1e-4,
        name="vicreg",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        check_vicreg_arguments(
            invariance_weight, variance_weight, covariance_weight, gamma, epsilon
        )
        self.invariance_weight = invariance_weight
        self.variance_weight = variance_weight
        self.covariance_weight = covariance_weight
        self.gamma = gamma
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        return vicreg_loss(
            y_true,
            y_pred,
            self.invariance_weight,
            self.variance_weight,
            self.covariance_weight,
            self.gamma,
            self.epsilon,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "invariance_weight": self.invariance_weight,
            "variance_weight": self.variance_weight,
            "covariance_weight": self.covariance_weight,
            "gamma": self.gamma,
            "epsilon": self.epsilon,
        }
