"""A method-shaped stand-in model and labelled toy data shared by the callback tests."""

import keras
import numpy as np
import tensorflow as tf


class StandInMethod(keras.Model):
    """`.encoder` plus a train_step; with ``drift`` each step applies a seeded random update.

    The random "gradients" are the same on every replica, so the encoder drifts
    deterministically and a probe sees a different encoder every epoch.
    """

    def __init__(self, encoder, drift=True):
        super().__init__()
        self.encoder = encoder
        self.drift = drift

    def call(self, images):
        return self.encoder(images)

    def train_step(self, data):
        images = data[0] if isinstance(data, tuple) else data
        loss = tf.reduce_mean(tf.square(self.encoder(images, training=True)))
        if self.drift:
            variables = self.encoder.trainable_variables
            step = tf.cast(self.optimizer.iterations, tf.int32)
            gradients = [
                tf.random.stateless_normal(v.shape, seed=tf.stack([step, i]))
                for i, v in enumerate(variables)
            ]
            self.optimizer.apply(gradients, variables)
        return {"loss": loss}


def dense_encoder(shape, seed=0, units=8, **dense_kwargs):
    """Flatten + Dense encoder with seeded initial weights."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(units, **dense_kwargs)]
    )


def make_method(shape, seed=0, drift=True, **encoder_kwargs):
    model = StandInMethod(dense_encoder(shape, seed, **encoder_kwargs), drift=drift)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    return model


def labelled(count, seed, shape):
    """Three classes, each brightening its own pair of rows: separable but noisy."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = rng.normal(0.5, 0.15, size=(count, *shape))
    for label in range(3):
        images[labels == label, label * 2 : label * 2 + 2] += 0.25
    return np.clip(images, 0, 1).astype(np.float32), labels
