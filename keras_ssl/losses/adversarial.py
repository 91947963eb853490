"""Adversarial losses: BiGAN's joint discriminator and the context encoder's GAN terms."""

import keras
import tensorflow as tf

ROLES = ("discriminator", "generator")


def bigan_discriminator_loss(real_logits, fake_logits):
    """The discriminator's GAN loss on joint pairs: ``-log D(x, E(x)) - log(1 - D(G(z), z))``.

    With ``D = sigmoid(logit)`` this is ``softplus(-real_logit) + softplus(fake_logit)``: the
    binary cross-entropy of calling encoder pairs ``(x, E(x))`` real and generator pairs
    ``(G(z), z)`` fake.

    Args:
        real_logits: ``[batch]`` or ``[batch, 1]`` logits of ``D(x, E(x))``.
        fake_logits: ``[batch]`` or ``[batch, 1]`` logits of ``D(G(z), z)``.

    Returns:
        float32 ``[batch]``.

    References:
        Donahue et al. 2016, "Adversarial Feature Learning", https://arxiv.org/abs/1605.09782
    """
    real, fake = _flat_logits(real_logits), _flat_logits(fake_logits)
    return tf.nn.softplus(-real) + tf.nn.softplus(fake)


def bigan_generator_loss(real_logits, fake_logits):
    """The encoder's and generator's non-saturating loss: ``-log(1 - D(x, E(x))) - log
    D(G(z), z)``, i.e. ``softplus(real_logit) + softplus(-fake_logit)``.

    The discriminator's labels inverted (Goodfellow et al. 2014's non-saturating heuristic, which
    BiGAN uses for both E and G): the encoder tries to make its pairs look generated and the
    generator to make its pairs look encoded. Equal to
    ``bigan_discriminator_loss(fake_logits, real_logits)``.

    Args:
        real_logits: ``[batch]`` or ``[batch, 1]`` logits of ``D(x, E(x))``.
        fake_logits: ``[batch]`` or ``[batch, 1]`` logits of ``D(G(z), z)``.

    Returns:
        float32 ``[batch]``.

    References:
        Donahue et al. 2016, "Adversarial Feature Learning", https://arxiv.org/abs/1605.09782
        (Sec. 3.4); Goodfellow et al. 2014, https://arxiv.org/abs/1406.2661
    """
    real, fake = _flat_logits(real_logits), _flat_logits(fake_logits)
    return tf.nn.softplus(real) + tf.nn.softplus(-fake)


@keras.saving.register_keras_serializable(package="keras_ssl")
class BiGANLoss(keras.losses.Loss):
    """BiGAN's discriminator or generator loss as a Keras loss: ``loss(real_logits,
    fake_logits)``; ``role`` is ``"discriminator"`` or ``"generator"``."""

    def __init__(self, role="discriminator", name="bigan_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if role not in ROLES:
            raise ValueError(
                f"`role` must be one of {ROLES}; received {role!r}. Fix: pass 'discriminator' "
                "or 'generator'."
            )
        self.role = role

    def call(self, y_true, y_pred):
        if self.role == "discriminator":
            return bigan_discriminator_loss(y_true, y_pred)
        return bigan_generator_loss(y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "role": self.role}


def _flat_logits(logits):
    logits = tf.cast(logits, tf.float32)
    if logits.shape.rank == 2:
        logits = tf.squeeze(logits, axis=-1)
    return logits


def discriminator_loss(real_logits, fake_logits):
    """Per-example GAN discriminator loss ``-[log D(x) + log(1 - D(x_fake))]`` from logits."""
    real = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(real_logits), real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake_logits), fake_logits)
    return tf.reduce_sum(real + fake, axis=-1)


def generator_adversarial_loss(fake_logits):
    """Per-example non-saturating generator loss ``-log D(x_fake)`` from logits."""
    losses = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(fake_logits), fake_logits)
    return tf.reduce_sum(losses, axis=-1)
