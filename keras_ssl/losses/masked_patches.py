"""Masked-patch reconstruction loss of masked autoencoders (MAE)."""

import keras
import tensorflow as tf

from keras_ssl.validation import check_positive_number


def patch_moments(patches):
    """Each patch's pixel mean and unbiased variance (divided by ``P - 1`` for ``P`` values per
    patch), as in MAE's released training code (PyTorch's ``Tensor.var``).

    Args:
        patches: ``[batch, L, P]`` patch pixels (``P >= 2``).

    Returns:
        ``(mean, variance)``, float32 ``[batch, L, 1]`` each.
    """
    patches = tf.cast(patches, tf.float32)
    size = patches.shape[-1]
    if size is None or size < 2:
        raise ValueError(
            f"Per-patch normalisation needs at least 2 values per patch; received patches of "
            f"shape {tuple(patches.shape)}. Fix: use patches larger than 1x1, or "
            "norm_pix_loss=False."
        )
    mean = tf.reduce_mean(patches, axis=-1, keepdims=True)
    variance = tf.reduce_sum(tf.square(patches - mean), axis=-1, keepdims=True) / (size - 1)
    return mean, variance


def normalize_patches(patches, epsilon=1e-6):
    """Each patch's pixels minus their mean, over ``sqrt(var + epsilon)`` (:func:`patch_moments`).

    Args:
        patches: ``[batch, L, P]`` patch pixels (``P >= 2``).
        epsilon: added to the variance (MAE: 1e-6).

    Returns:
        float32 ``[batch, L, P]``.
    """
    patches = tf.cast(patches, tf.float32)
    mean, variance = patch_moments(patches)
    return (patches - mean) / tf.sqrt(variance + epsilon)


def denormalize_patches(normalized, patches, epsilon=1e-6):
    """The inverse of :func:`normalize_patches` with the moments of ``patches``:
    ``normalized * sqrt(var + epsilon) + mean`` (how MAE shows normalised predictions).

    Args:
        normalized: ``[batch, L, P]`` normalised pixels (e.g. a decoder's predictions).
        patches: ``[batch, L, P]`` the patches whose mean and variance are restored.
        epsilon: added to the variance (MAE: 1e-6).

    Returns:
        float32 ``[batch, L, P]``.
    """
    mean, variance = patch_moments(patches)
    return tf.cast(normalized, tf.float32) * tf.sqrt(variance + epsilon) + mean


def masked_patch_loss(target_patches, predicted_patches, mask, norm_pix=True, epsilon=1e-6):
    """Per-example MSE of the predicted pixels of the MASKED patches only (MAE, Sec. 3).

    ``loss_b = sum_l m_bl * mean_j (y_blj - t_blj)^2 / sum_l m_bl``, with ``m`` = 1 for masked
    patches, ``y`` the predictions and ``t`` the target pixels, normalised per patch
    (:func:`normalize_patches`) when ``norm_pix`` (MAE's ``norm_pix_loss``). When every image
    has the same number of masked patches (MAE's static masking) the mean over the batch equals
    MAE's ``sum(m * e) / sum(m)`` over the whole batch.

    Args:
        target_patches: ``[batch, L, P]`` pixels of the original patches (``layers.patchify``).
        predicted_patches: ``[batch, L, P]`` the decoder's predictions.
        mask: ``[batch, L]``, 1 for masked patches, 0 for visible ones (no loss).
        norm_pix: normalise each target patch by its mean and standard deviation.
        epsilon: added to each patch's variance (MAE: 1e-6).

    Returns:
        float32 ``[batch]`` (0 for an image without masked patches).

    References:
        He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners",
        https://arxiv.org/abs/2111.06377
    """
    target = tf.cast(target_patches, tf.float32)
    if norm_pix:
        target = normalize_patches(target, epsilon)
    predicted = tf.cast(predicted_patches, tf.float32)
    mask = tf.cast(mask, tf.float32)
    per_patch = tf.reduce_mean(tf.square(predicted - target), axis=-1)
    return tf.math.divide_no_nan(
        tf.reduce_sum(per_patch * mask, axis=-1), tf.reduce_sum(mask, axis=-1)
    )


def check_norm_pix(value, name, patch_shape=None):
    """Returns ``value`` if it is ``True`` or ``False`` (normalised or raw pixel targets) and,
    when ``True`` and ``patch_shape`` ``(p, p, C)`` is given, the patches have 2 values or more
    to normalise."""
    if not isinstance(value, bool):
        raise ValueError(
            f"`{name}` must be True or False; received {value!r}. Fix: keep True (MAE's "
            "normalised pixel targets, norm_pix_loss) or pass False for raw pixels."
        )
    if value and patch_shape is not None and patch_shape[0] * patch_shape[1] * patch_shape[2] < 2:
        raise ValueError(
            f"`{name}=True` normalises each patch's pixels, which needs at least 2 values per "
            f"patch; received {patch_shape[0]}x{patch_shape[1]} patches of {patch_shape[2]} "
            f"channel. Fix: use a larger patch_size in the ViT or {name}=False."
        )
    return value


@keras.saving.register_keras_serializable(package="keras_ssl")
class MaskedPatchLoss(keras.losses.Loss):
    """:func:`masked_patch_loss` as a Keras loss: ``loss(target_patches, predicted_patches,
    sample_weight=None)`` with the mask given to :meth:`call` through ``y_true`` as
    ``{"patches": ..., "mask": ...}`` or, for the plain call, every patch counted."""

    def __init__(self, norm_pix=True, epsilon=1e-6, name="masked_patch_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.norm_pix = check_norm_pix(norm_pix, "norm_pix")
        self.epsilon = check_positive_number(epsilon, "epsilon", fix="pass e.g. 1e-6 (MAE).")

    def call(self, y_true, y_pred):
        if isinstance(y_true, dict):
            patches, mask = y_true["patches"], y_true["mask"]
        else:
            patches, mask = y_true, tf.ones(tf.shape(y_true)[:2], tf.float32)
        return masked_patch_loss(patches, y_pred, mask, self.norm_pix, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "norm_pix": self.norm_pix, "epsilon": self.epsilon}
