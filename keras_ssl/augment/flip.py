"""Random horizontal flips, decided per image."""

import keras
import tensorflow as tf

from keras_ssl.augment.base import BaseAugmentation, apply_mask, batch_size_of, check_probability


@keras.saving.register_keras_serializable(package="keras_ssl")
class RandomHorizontalFlip(BaseAugmentation):
    """Mirrors each image left-right with probability ``probability``.

    Args:
        probability: chance that an image is flipped, in ``[0, 1]``.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, probability=0.5, **kwargs):
        super().__init__(**kwargs)
        self.probability = check_probability(probability, "probability")

    def augment(self, images, seed):
        mask = apply_mask(batch_size_of(images), self.probability, seed)
        width = images.shape[2] if images.shape[2] is not None else tf.shape(images)[2]
        columns = tf.range(width)
        # One batched gather with per-image column order (faster than reverse + select).
        order = tf.where(mask[:, None], (width - 1 - columns)[None, :], columns[None, :])
        return tf.gather(images, order, axis=2, batch_dims=1)

    def get_config(self):
        config = super().get_config()
        config.update(probability=self.probability)
        return config
