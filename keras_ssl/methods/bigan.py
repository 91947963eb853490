"""BiGAN: adversarial feature learning with a generator, an encoder and a joint discriminator."""

import keras
import tensorflow as tf

from keras_ssl.backbones.decoder import ConvDecoder
from keras_ssl.images import check_image_batch, to_float_images
from keras_ssl.layers.discriminators import JointDiscriminator, check_widths
from keras_ssl.losses.adversarial import bigan_discriminator_loss, bigan_generator_loss
from keras_ssl.methods.adversarial import AdversarialMethod
from keras_ssl.methods.base import check_single_view
from keras_ssl.methods.step_random import (
    NOISE_DISTRIBUTIONS,
    draw_noise,
    global_batch_noise,
    new_seed,
    step_seed,
)
from keras_ssl.validation import check_int


@keras.saving.register_keras_serializable(package="keras_ssl")
class BiGAN(AdversarialMethod):
    """BiGAN (Donahue et al. 2016, "Adversarial Feature Learning",
    https://arxiv.org/abs/1605.09782).

    A generator ``G`` maps prior codes ``z`` (uniform on ``[-1, 1]^d`` in the paper) to images,
    an encoder ``E`` (the backbone plus a Dense layer to ``d``) maps images to codes, and a
    discriminator ``D(x, z)`` sees joint pairs: ``(x, E(x))`` labelled real and ``(G(z), z)``
    labelled fake. ``D`` minimises the binary cross-entropy; ``E`` and ``G`` minimise the
    non-saturating loss with inverted labels. At the optimum ``E`` and ``G`` invert each other,
    so ``E(x)`` is the representation (:attr:`export_encoder`, the online probe's input).

    Training step: one forward pass of all three networks, then the discriminator's gradient
    goes to ``discriminator_optimizer`` and the encoder's, generator's (and online probe's)
    gradient to ``optimizer`` -- a simultaneous update, as in the paper's code (see
    :class:`AdversarialMethod`). Distribution: both losses are per-example means; ``z`` is drawn
    for the global batch from a stateless seed (``seed`` folded with the optimizer step) and
    sliced per replica, so 2 replicas equal 1.

    Args:
        encoder: backbone ``keras.Model`` (images -> ``[batch, D]`` features).
        augmenter: view generator; default ``presets.identity`` (one view, no augmentation).
        latent_dim: size ``d`` of ``z`` and of the representation ``E(x)`` (paper: 50 on
            MNIST, 200 on ImageNet).
        prior: ``"uniform"`` (the paper's ``U[-1, 1]^d``) or ``"normal"``.
        generator_widths: channels of the generator's (a ``ConvDecoder``) 2x upsampling stages.
        discriminator_widths: channels of the discriminator's stride-2 convolutions on ``x``.
        discriminator_hidden_dim: width of the discriminator's Dense layers.
        synchronized_bn: global BatchNorm in the encoder and generator (see :class:`SSLMethod`).
        seed: int seed of the prior samples (``None``: random); kept in a variable, so
            checkpoints and ``.keras`` files restore it.
        probe_classes: classes of the online linear probe (on ``E(x)``), or ``None``.
    """

    default_preset = "identity"

    loss_terms = ("loss", "discriminator_loss", "generator_loss")
    player_loss = "generator_loss"

    def __init__(
        self,
        encoder,
        augmenter=None,
        latent_dim=50,
        prior="uniform",
        generator_widths=(64, 32),
        discriminator_widths=(32, 64),
        discriminator_hidden_dim=256,
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
        check_int(latent_dim, "latent_dim", fix="pass e.g. latent_dim=50.")
        check_int(
            discriminator_hidden_dim,
            "discriminator_hidden_dim",
            fix="pass e.g. discriminator_hidden_dim=256.",
        )
        if prior not in NOISE_DISTRIBUTIONS:
            raise ValueError(
                f"`prior` must be one of {NOISE_DISTRIBUTIONS}; received {prior!r}. Fix: pass "
                "'uniform' (the paper's U[-1, 1]) or 'normal'."
            )
        self.discriminator_widths = check_widths(discriminator_widths, "discriminator_widths")
        self.latent_dim = latent_dim
        self.prior = prior
        self.generator_widths = tuple(generator_widths)
        self.discriminator_hidden_dim = discriminator_hidden_dim
        self.seed = seed
        self.encoder_dim = self.feature_dim
        self.feature_dim = latent_dim  # the representation (probe input) is E(x)
        self.latent_head = keras.layers.Dense(latent_dim, name="latent")
        self.generator = ConvDecoder(
            latent_dim,
            self.image_shape,
            widths=self.generator_widths,
            output_activation="sigmoid",
            synchronized_bn=self.batch_norm_synchronized,
            name="generator",
        )
        self.discriminator = JointDiscriminator(
            self.image_shape,
            latent_dim,
            widths=self.discriminator_widths,
            hidden_dim=discriminator_hidden_dim,
            name="discriminator",
        )
        self.noise_seed = self.add_weight(
            shape=(2,),
            dtype="int32",
            initializer=keras.initializers.Constant(new_seed(seed)),
            trainable=False,
            name="noise_seed",
        )

    def build_heads(self, feature_shape):
        self.latent_head.build((None, self.encoder_dim))
        # E: images -> codes, built once: what model(images), the probes and the export use.
        images = keras.Input(self.image_shape, name="images")
        self.latent_encoder = keras.Model(
            images, self.latent_head(self.encoder(images)), name="bigan_encoder"
        )

    @property
    def export_encoder(self):
        """``E``: images -> latent codes ``[batch, latent_dim]`` (BiGAN's representation)."""
        return self.latent_encoder

    def default_optimizer(self):
        return keras.optimizers.Adam(2e-4, beta_1=0.5)  # the paper's

    # ------------------------------------------------------------------------ steps
    def encode(self, images, training=False):
        """``E(x)``: float32 latent codes ``[batch, latent_dim]``."""
        features = self.encoder(images, training=training)
        return tf.cast(self.latent_head(features), tf.float32)

    def compute_ssl_loss(self, views, training):
        check_single_view(views, "BiGAN")
        images = tf.cast(views[0], tf.float32)
        codes = self.encode(images, training=training)
        prior_codes = global_batch_noise(
            tf.shape(images)[0],
            self.latent_dim,
            step_seed(self, self.noise_seed, training),
            self.prior,
        )
        fakes = tf.cast(self.generator(prior_codes, training=training), tf.float32)
        # Real and generated pairs in one pass (D has no BatchNorm, so nothing mixes).
        logits = self.discriminator(
            [tf.concat([images, fakes], 0), tf.concat([codes, prior_codes], 0)],
            training=training,
        )
        real_logits, fake_logits = tf.split(tf.cast(logits, tf.float32), 2, axis=0)
        discriminator_loss = tf.reduce_mean(bigan_discriminator_loss(real_logits, fake_logits))
        generator_loss = tf.reduce_mean(bigan_generator_loss(real_logits, fake_logits))
        terms = {
            "loss": discriminator_loss + generator_loss,
            "discriminator_loss": discriminator_loss,
            "generator_loss": generator_loss,
        }
        return terms, codes

    # ---------------------------------------------------------------------- images
    def generate(self, codes):
        """``G(z)``: float32 NumPy images in ``[0, 1]`` for codes ``[batch, latent_dim]``."""
        codes = tf.convert_to_tensor(codes, tf.float32)
        return tf.cast(self.generator(codes, training=False), tf.float32).numpy()

    def reconstruct(self, images):
        """``G(E(x))`` of ``images`` (uint8 or float ``[batch, H, W, C]``): float32 NumPy
        images in ``[0, 1]``."""
        images = to_float_images(images)
        check_image_batch(images, self.image_shape)
        return self.generate(self.encode(images, training=False))

    def sample(self, num_samples, seed=0):
        """``G(z)`` for ``num_samples`` codes from the prior: float32 NumPy images."""
        check_int(num_samples, "num_samples", fix="pass e.g. num_samples=16.")
        return self.generate(draw_noise(num_samples, self.latent_dim, new_seed(seed), self.prior))

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "prior": self.prior,
            "generator_widths": self.generator_widths,
            "discriminator_widths": self.discriminator_widths,
            "discriminator_hidden_dim": self.discriminator_hidden_dim,
            "seed": self.seed,
        }
