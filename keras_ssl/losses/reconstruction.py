"""Reconstruction losses: autoencoder, VAE (negative log-likelihood, KL) and inpainting."""

import math

import keras
import tensorflow as tf

from keras_ssl.pretext import masks as masks_lib

#: Pixel likelihoods of :func:`reconstruction_nll`.
LIKELIHOODS = ("bernoulli", "gaussian")


def reconstruction_loss(images, outputs, loss="mse"):
    """Per-example reconstruction loss, averaged over pixels and channels.

    ``"mse"``: mean of ``(x - x_hat)^2``; ``"bce"``: mean binary cross-entropy
    ``-[x log s(o) + (1 - x) log(1 - s(o))]`` of the targets ``x`` in ``[0, 1]`` and the
    decoder's logits ``o`` (``s`` = sigmoid), Vincent et al.'s loss for inputs in ``[0, 1]``.

    Args:
        images: clean target images ``[batch, H, W, C]`` in ``[0, 1]``.
        outputs: reconstructions ``[batch, H, W, C]`` for ``"mse"``, logits for ``"bce"``.
        loss: ``"mse"`` or ``"bce"``.

    Returns:
        float32 ``[batch]``.

    References:
        Vincent et al. 2008, "Extracting and Composing Robust Features with Denoising
        Autoencoders", https://doi.org/10.1145/1390156.1390294
    """
    images = tf.cast(images, tf.float32)
    outputs = tf.cast(outputs, tf.float32)
    if loss == "mse":
        per_pixel = tf.square(images - outputs)
    else:
        per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=outputs)
    return tf.reduce_mean(per_pixel, axis=[1, 2, 3])


def gaussian_kl(mean, log_variance):
    """KL divergence of ``N(mean, exp(log_variance))`` (diagonal) from ``N(0, I)``.

    ``KL = 0.5 * sum_j (exp(log_variance_j) + mean_j^2 - 1 - log_variance_j)``, the closed form
    of Kingma & Welling's Appendix B.

    Args:
        mean: ``[batch, latent_dim]`` posterior means.
        log_variance: ``[batch, latent_dim]`` posterior log-variances.

    Returns:
        float32 ``[batch]``.

    References:
        Kingma & Welling 2013, "Auto-Encoding Variational Bayes", https://arxiv.org/abs/1312.6114
    """
    mean = tf.cast(mean, tf.float32)
    log_variance = tf.cast(log_variance, tf.float32)
    terms = tf.exp(log_variance) + tf.square(mean) - 1.0 - log_variance
    return 0.5 * tf.reduce_sum(terms, axis=-1)


def reconstruction_nll(images, outputs, likelihood="bernoulli", observation_std=1.0):
    """Negative log-likelihood ``-log p(x | z)`` of images under the decoder, summed over pixels.

    ``"bernoulli"``: ``-sum [x log s(o) + (1 - x) log(1 - s(o))]`` with the decoder's logits
    ``o`` (``s`` = sigmoid; targets in ``[0, 1]``, the paper's MNIST likelihood).
    ``"gaussian"``: ``sum [(x - m)^2 / (2 std^2) + log(std) + 0.5 log(2 pi)]`` with the decoder's
    means ``m`` and a fixed ``std`` = ``observation_std``.

    Args:
        images: targets ``[batch, H, W, C]`` in ``[0, 1]``.
        outputs: decoder outputs ``[batch, H, W, C]``: logits (Bernoulli) or means (Gaussian).
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        observation_std: standard deviation of the Gaussian likelihood.

    Returns:
        float32 ``[batch]`` (nats per image).

    References:
        Kingma & Welling 2013, "Auto-Encoding Variational Bayes", https://arxiv.org/abs/1312.6114
        (Appendix C).
    """
    check_likelihood(likelihood, observation_std)
    images = tf.cast(images, tf.float32)
    outputs = tf.cast(outputs, tf.float32)
    if likelihood == "bernoulli":
        per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=outputs)
    else:
        variance = float(observation_std) ** 2
        constant = math.log(float(observation_std)) + 0.5 * math.log(2.0 * math.pi)
        per_pixel = tf.square(images - outputs) / (2.0 * variance) + constant
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1]), axis=-1)


@keras.saving.register_keras_serializable(package="keras_ssl")
class ReconstructionNLL(keras.losses.Loss):
    """:func:`reconstruction_nll` as a Keras loss: ``loss(images, decoder_outputs)``."""

    def __init__(
        self, likelihood="bernoulli", observation_std=1.0, name="reconstruction_nll", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        check_likelihood(likelihood, observation_std)
        self.likelihood = likelihood
        self.observation_std = observation_std

    def call(self, y_true, y_pred):
        return reconstruction_nll(y_true, y_pred, self.likelihood, self.observation_std)

    def get_config(self):
        return {
            **super().get_config(),
            "likelihood": self.likelihood,
            "observation_std": self.observation_std,
        }


def check_likelihood(likelihood, observation_std):
    if likelihood not in LIKELIHOODS:
        raise ValueError(
            f"`likelihood` must be one of {LIKELIHOODS}; received {likelihood!r}. Fix: use "
            "'bernoulli' for images in [0, 1] (the paper's MNIST choice) or 'gaussian'."
        )
    if (
        isinstance(observation_std, bool)
        or not isinstance(observation_std, (int, float))
        or observation_std <= 0
    ):
        raise ValueError(
            f"`observation_std` must be a positive number; received {observation_std!r}. "
            "Fix: pass e.g. 0.1 (only the Gaussian likelihood uses it)."
        )


def masked_reconstruction_loss(images, predictions, masks, overlap=4, overlap_weight=10.0):
    """Per-example squared error over the predicted region, the hole ``1 - B`` plus a border
    of ``overlap`` context pixels around it whose errors count ``overlap_weight`` times, divided
    by the number of values in that region: ``sum(W * (x - F)^2) / (|hole + border| * C)``
    with ``W = 1`` in the hole, ``overlap_weight`` on the border, 0 elsewhere.

    ``overlap=0`` is eq. (1), the mean squared error over the missing values.

    Args:
        images: original images ``[batch, H, W, C]``.
        predictions: the decoder's images ``[batch, H, W, C]``.
        masks: ``B`` ``[batch, H, W, 1]``, 1 = kept (context), 0 = dropped.
        overlap: int >= 0, width in pixels of the context border predicted too (released code:
            ``overlapPred=4``).
        overlap_weight: weight of the border's errors (released code: ``overlapL2Weight = 10``).

    Returns:
        float32 ``[batch]`` (0 for an image with nothing dropped).

    References:
        Pathak et al. 2016, "Context Encoders: Feature Learning by Inpainting", eq. (1) and
        section 5.1, https://arxiv.org/abs/1604.07379; pathak22/context-encoder ``train.lua``.
    """
    images, predictions = tf.cast(images, tf.float32), tf.cast(predictions, tf.float32)
    holes = 1.0 - tf.cast(masks, tf.float32)
    border = masks_lib.overlap_border(masks, overlap)
    weights = holes + overlap_weight * border
    squared = tf.reduce_sum(weights * tf.square(images - predictions), axis=[1, 2, 3])
    channels = tf.cast(tf.shape(images)[-1], tf.float32)
    count = tf.reduce_sum(holes + border, axis=[1, 2, 3]) * channels
    return tf.math.divide_no_nan(squared, count)
