"""Apply any image layer to a random subset of the batch, decided per image."""

import inspect

import keras
import tensorflow as tf

from keras_ssl.augment.base import (
    BaseAugmentation,
    apply_mask,
    batch_size_of,
    check_probability,
    select,
)
from keras_ssl.augment.seeds import fold_in


def accepts_seed(layer):
    """Whether ``layer.call`` takes a ``seed`` argument (keras_ssl layers do)."""
    try:
        return "seed" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False


def call_layer(layer, images, seed):
    """Calls ``layer`` on ``images``, passing ``seed`` only when its ``call`` accepts one.

    Foreign layers (Keras core, keras-cv) are called without a seed and use their own random
    state, so their output is not reproducible from ``seed``.

    Returns:
        The layer output cast to ``float32``.
    """
    if accepts_seed(layer):
        return tf.cast(layer(images, seed=seed), tf.float32)
    return tf.cast(layer(images), tf.float32)


@keras.saving.register_keras_serializable(package="keras_ssl")
class RandomApply(BaseAugmentation):
    """Runs ``layer`` on the batch and keeps its output for each image with ``probability``.

    The wrapped layer runs on the whole batch (vectorised); a per-image mask then picks the
    augmented or the original image (an exact 0/1 blend, faster than ``tf.where`` on CPU). The
    layer must keep the image shape.
    keras_ssl layers get an independent sub-seed; other layers are called without one.

    Args:
        layer: a ``keras.layers.Layer`` mapping ``[batch, H, W, C]`` images in ``[0, 1]`` to the
            same shape (configure foreign layers for the ``[0, 1]`` value range).
        probability: chance that an image takes the layer's output, in ``[0, 1]``.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, layer, probability=0.5, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"RandomApply `layer` must be a keras.layers.Layer; received "
                f"{type(layer).__name__}. Fix: wrap the function in keras.layers.Lambda or "
                "write a Layer subclass."
            )
        self.layer = layer
        self.probability = check_probability(probability, "probability")

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(tuple(input_shape))
        self.built = True

    def augment(self, images, seed):
        if self.probability == 0:
            return images
        augmented = call_layer(self.layer, images, fold_in(seed, 1))
        if augmented.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"RandomApply needs a layer that keeps the image shape; "
                f"{self.layer.__class__.__name__} turned {tuple(images.shape)} into "
                f"{tuple(augmented.shape)}. Fix: put shape-changing layers (crops, resizes) "
                "directly in the pipeline instead of inside RandomApply."
            )
        if self.probability == 1:
            return augmented
        mask = apply_mask(batch_size_of(images), self.probability, fold_in(seed, 0))
        return select(mask, augmented, images)

    def get_config(self):
        config = super().get_config()
        config.update(
            layer=keras.saving.serialize_keras_object(self.layer), probability=self.probability
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)
