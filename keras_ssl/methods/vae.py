"""Variational autoencoder: an encoder to a diagonal Gaussian posterior, a decoder, the ELBO.

The reparameterisation noise is drawn with :mod:`keras_ssl.methods.step_random`, so N replicas
use exactly the noise of one device.
"""

import keras
import tensorflow as tf

from keras_ssl.backbones.decoder import ConvDecoder
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.losses.reconstruction import (
    check_likelihood,
    gaussian_kl,
    reconstruction_nll,
)
from keras_ssl.methods.base import SSLMethod, check_single_view
from keras_ssl.methods.step_random import (
    draw_noise,
    global_batch_noise,
    new_seed,
    step_seed,
)
from keras_ssl.validation import check_int

# ------------------------------------------------------------------------------ noise


# ------------------------------------------------------------------------------ losses


# ------------------------------------------------------------------------------ method
@keras.saving.register_keras_serializable(package="keras_ssl")
class VAE(SSLMethod):
    """Variational autoencoder (Kingma & Welling 2013, "Auto-Encoding Variational Bayes",
    https://arxiv.org/abs/1312.6114), with the beta weight of beta-VAE (Higgins et al. 2017,
    https://openreview.net/forum?id=Sy2fzU9gl).

    The encoder's features go through two Dense heads to the posterior ``q(z | x) =
    N(mu, diag(exp(log_var)))``; ``z = mu + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)``
    (the reparameterisation trick) is decoded by a DCGAN-style ``ConvDecoder`` to the parameters
    of ``p(x | z)`` (Bernoulli logits or Gaussian means). The loss is the negative ELBO per
    image, ``-log p(x | z) + beta * KL(q(z | x) || N(0, I))`` (one sample of ``z``), averaged
    over the batch; the terms ``reconstruction`` and ``kl`` are logged. The representation is
    ``mu``: ``model(images)``, the probes and the export use :attr:`export_encoder` (images ->
    ``mu``), and the online probe sees ``mu``.

    Distribution: every term is a per-example mean, so the replica mean is the global-batch
    loss; ``eps`` is drawn for the global batch from a stateless seed (``seed`` folded with the
    optimizer step) and sliced per replica (:func:`global_batch_noise`), so 2 replicas equal 1.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``presets.identity`` (one view, no augmentation).
        latent_dim: size of ``z`` (and of the representation ``mu``).
        beta: weight of the KL term (1: the ELBO of the paper; > 1: beta-VAE).
        likelihood: ``"bernoulli"`` (the paper's MNIST likelihood; the decoder outputs logits)
            or ``"gaussian"`` (fixed ``observation_std``; the decoder ends with a sigmoid).
        observation_std: standard deviation of the Gaussian likelihood.
        decoder_widths: channels of the decoder's 2x upsampling stages, coarse to fine.
        synchronized_bn: global BatchNorm (statistics over all replicas) in the encoder and
            heads; ``None`` (default) whenever there are several replicas (see :class:`SSLMethod`).
        seed: int seed of the reparameterisation noise (``None``: random); kept in a variable,
            so checkpoints and ``.keras`` files restore it.
        probe_classes: classes of the online linear probe (on ``mu``), or ``None``.
    """

    default_preset = "identity"

    loss_terms = ("loss", "reconstruction", "kl")

    def __init__(
        self,
        encoder,
        augmenter=None,
        latent_dim=32,
        beta=1.0,
        likelihood="bernoulli",
        observation_std=1.0,
        decoder_widths=(64, 32),
        synchronized_bn=None,
        seed=None,
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
        check_int(latent_dim, "latent_dim", fix="pass e.g. latent_dim=32.")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta < 0:
            raise ValueError(
                f"`beta` must be a number >= 0; received {beta!r}. Fix: use 1.0 for the ELBO "
                "or a value > 1 for a beta-VAE."
            )
        check_likelihood(likelihood, observation_std)
        self.latent_dim = latent_dim
        self.beta = beta
        self.likelihood = likelihood
        self.observation_std = observation_std
        self.decoder_widths = tuple(decoder_widths)
        self.seed = seed
        self.encoder_dim = self.feature_dim
        self.feature_dim = latent_dim  # the representation (probe input) is mu
        self.mean_head = keras.layers.Dense(latent_dim, name="mean")
        self.log_variance_head = keras.layers.Dense(latent_dim, name="log_variance")
        self.decoder = ConvDecoder(
            latent_dim,
            self.image_shape,
            widths=self.decoder_widths,
            output_activation=None if likelihood == "bernoulli" else "sigmoid",
            synchronized_bn=self.batch_norm_synchronized,
            name="decoder",
        )
        self.noise_seed = self.add_weight(
            shape=(2,),
            dtype="int32",
            initializer=keras.initializers.Constant(new_seed(seed)),
            trainable=False,
            name="noise_seed",
        )

    def build_heads(self, feature_shape):
        encoder_shape = (None, self.encoder_dim)
        self.mean_head.build(encoder_shape)
        self.log_variance_head.build(encoder_shape)
        # images -> mu, built once: what model(images), the probes and the export use.
        images = keras.Input(self.image_shape, name="images")
        self.mean_encoder = keras.Model(
            images, self.mean_head(self.encoder(images)), name="vae_mean_encoder"
        )

    @property
    def export_encoder(self):
        """Images -> posterior mean ``mu`` (the VAE's representation)."""
        return self.mean_encoder

    def encode(self, images, training=False):
        """Returns the posterior ``(mu, log_var)``, float32 ``[batch, latent_dim]`` each."""
        features = self.encoder(images, training=training)
        mean = tf.cast(self.mean_head(features), tf.float32)
        log_variance = tf.cast(self.log_variance_head(features), tf.float32)
        return mean, log_variance

    def compute_ssl_loss(self, views, training):
        check_single_view(views, "VAE")
        images = views[0]
        mean, log_variance = self.encode(images, training=training)
        noise = global_batch_noise(
            tf.shape(images)[0], self.latent_dim, step_seed(self, self.noise_seed, training)
        )
        codes = mean + tf.exp(0.5 * log_variance) * noise
        outputs = self.decoder(codes, training=training)
        reconstruction = reconstruction_nll(images, outputs, self.likelihood, self.observation_std)
        kl = gaussian_kl(mean, log_variance)
        reconstruction, kl = tf.reduce_mean(reconstruction), tf.reduce_mean(kl)
        terms = {
            "loss": reconstruction + self.beta * kl,
            "reconstruction": reconstruction,
            "kl": kl,
        }
        return terms, mean

    def decode(self, codes):
        """Decodes latent codes ``[batch, latent_dim]`` to images in ``[0, 1]`` (the mean of
        ``p(x | z)``), float32 NumPy ``[batch, H, W, C]``."""
        outputs = tf.cast(self.decoder(tf.convert_to_tensor(codes), training=False), tf.float32)
        if self.likelihood == "bernoulli":
            outputs = tf.sigmoid(outputs)
        return outputs.numpy()

    def reconstruct(self, images):
        """Decodes ``mu`` of ``images`` (uint8 or float ``[batch, H, W, C]``): float32 NumPy
        images in ``[0, 1]``."""
        images = to_float_images(images)
        check_image_batch(images, self.image_shape)
        mean, _ = self.encode(images, training=False)
        return self.decode(mean)

    def sample(self, num_samples, seed=0):
        """Decodes ``num_samples`` codes drawn from the prior ``N(0, I)``: float32 NumPy images
        in ``[0, 1]``."""
        check_int(num_samples, "num_samples", fix="pass e.g. num_samples=16.")
        codes = draw_noise(num_samples, self.latent_dim, new_seed(seed))
        return self.decode(codes)

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "beta": self.beta,
            "likelihood": self.likelihood,
            "observation_std": self.observation_std,
            "decoder_widths": self.decoder_widths,
            "seed": self.seed,
        }
