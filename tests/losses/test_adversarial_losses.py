"""GAN losses: BiGAN's joint-pair losses and the context encoder's discriminator and
non-saturating generator terms."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl import testing
from keras_ssl.losses import (
    BiGANLoss,
    bigan_discriminator_loss,
    bigan_generator_loss,
    discriminator_loss,
    generator_adversarial_loss,
)


def _softplus(x):
    return np.log1p(np.exp(x))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------------------- BiGAN
def test_bigan_discriminator_loss():
    # Logits 0: D = 1/2 on both pairs, loss 2 ln 2.
    zeros = {"real_logits": np.zeros(3, np.float32), "fake_logits": np.zeros(3, np.float32)}
    testing.run_loss_test(bigan_discriminator_loss, zeros, expected=2 * math.log(2))
    rng = np.random.default_rng(0)
    inputs = {
        "real_logits": rng.normal(size=(6, 1)).astype(np.float32) * 2,
        "fake_logits": rng.normal(size=(6, 1)).astype(np.float32) * 2,
    }

    def reference(real_logits, fake_logits):
        d_real = _sigmoid(real_logits[:, 0])
        d_fake = _sigmoid(fake_logits[:, 0])
        return -np.log(d_real) - np.log(1 - d_fake)

    testing.run_loss_test(
        bigan_discriminator_loss,
        inputs,
        reference_fn=reference,
        loss_object=BiGANLoss("discriminator"),
    )


def test_bigan_generator_loss_is_the_non_saturating_inverted_label_loss():
    rng = np.random.default_rng(1)
    inputs = {
        "real_logits": rng.normal(size=6).astype(np.float32) * 2,
        "fake_logits": rng.normal(size=6).astype(np.float32) * 2,
    }

    def reference(real_logits, fake_logits):
        return -np.log(1 - _sigmoid(real_logits)) - np.log(_sigmoid(fake_logits))

    testing.run_loss_test(
        bigan_generator_loss,
        inputs,
        expected=np.mean(_softplus(inputs["real_logits"]) + _softplus(-inputs["fake_logits"])),
        reference_fn=reference,
        loss_object=BiGANLoss("generator"),
    )
    # The discriminator's loss with the roles of the pairs exchanged.
    np.testing.assert_allclose(
        bigan_generator_loss(**inputs),
        bigan_discriminator_loss(inputs["fake_logits"], inputs["real_logits"]),
        rtol=1e-6,
        atol=1e-6,
    )
    # Non-saturating: a confident discriminator (fake logit -10) still gives G a gradient
    # near -1 per example, where the saturating log(1 - D) gives about -4.5e-5.
    fake = tf.constant([-10.0])
    with tf.GradientTape() as tape:
        tape.watch(fake)
        loss = bigan_generator_loss(tf.constant([0.0]), fake)
    assert float(tape.gradient(loss, fake)[0]) < -0.99


def test_bigan_loss_rejects_an_unknown_role():
    with pytest.raises(ValueError, match="`role` must be one of"):
        BiGANLoss("critic")


# ------------------------------------------------------------------- context encoder GAN
def test_discriminator_and_generator_adversarial_losses():
    logits = np.array([[0.0], [2.0]], np.float32)
    # -log sigmoid(0) = log 2; -log(1 - sigmoid(0)) = log 2.
    testing.run_loss_test(
        discriminator_loss,
        {"real_logits": logits[:1], "fake_logits": logits[:1]},
        expected=2 * np.log(2.0),
    )
    testing.run_loss_test(
        generator_adversarial_loss,
        {"fake_logits": logits},
        reference_fn=lambda fake_logits: -np.log(_sigmoid(fake_logits))[:, 0],
        expected=np.mean(-np.log(_sigmoid(logits))),
    )
    testing.run_loss_test(
        discriminator_loss,
        {"real_logits": logits, "fake_logits": -logits},
        reference_fn=lambda real_logits, fake_logits: (
            -(np.log(_sigmoid(real_logits)) + np.log(1 - _sigmoid(fake_logits)))[:, 0]
        ),
    )
