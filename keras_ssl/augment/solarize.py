"""Random solarization (BYOL's last colour transform), decided per image."""

import keras
import tensorflow as tf

from keras_ssl.augment.base import BaseAugmentation, apply_mask, batch_size_of, check_probability


def solarize(images, threshold=0.5):
    """Inverts every pixel value at or above ``threshold``: ``x if x < threshold else 1 - x``.

    ``threshold`` may be a number or a tensor broadcastable to ``images`` (per-image values).
    """
    return tf.where(images < threshold, images, 1.0 - images)


@keras.saving.register_keras_serializable(package="keras_ssl")
class RandomSolarize(BaseAugmentation):
    """Solarizes each image with probability ``probability``.

    BYOL (Grill et al. 2020, arXiv:2006.07733, appendix B) solarizes the second view with
    probability 0.2 and never the first; the default here (0.0) is the identity so that the
    layer is opt-in.

    Args:
        probability: chance that an image is solarized, in ``[0, 1]``.
        threshold: pixel values ``>= threshold`` become ``1 - x``; in ``[0, 1]``.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, probability=0.0, threshold=0.5, **kwargs):
        super().__init__(**kwargs)
        self.probability = check_probability(probability, "probability")
        self.threshold = check_probability(threshold, "threshold")

    def augment(self, images, seed):
        mask = apply_mask(batch_size_of(images), self.probability, seed)
        # Images left alone get a threshold above every pixel value (one select, no blend).
        thresholds = tf.where(mask, self.threshold, 2.0)
        return solarize(images, tf.reshape(thresholds, [-1, 1, 1, 1]))

    def get_config(self):
        config = super().get_config()
        config.update(probability=self.probability, threshold=self.threshold)
        return config
