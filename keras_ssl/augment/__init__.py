"""Batched, seedable image augmentations and multi-view pipelines for self-supervised learning.

Every layer maps ``float32`` images ``[batch, H, W, C]`` in ``[0, 1]`` to ``float32`` in
``[0, 1]`` with ``call(images, seed=None)``, draws separate random parameters for every image in
one vectorised pass, is reproducible for a given ``seed`` (shape ``[2]``), and runs eagerly, in
``tf.data`` and under XLA.
"""

from keras_ssl.augment import presets
from keras_ssl.augment.base import BaseAugmentation
from keras_ssl.augment.blur import RandomGaussianBlur, gaussian_blur
from keras_ssl.augment.color import (
    ColorJitter,
    RandomGrayscale,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    rgb_to_luma,
)
from keras_ssl.augment.crop import RandomResizedCrop, crop_and_resize, sample_crop_boxes
from keras_ssl.augment.flip import RandomHorizontalFlip
from keras_ssl.augment.multi_view import MultiViewAugmenter
from keras_ssl.augment.multicrop import multicrop, multicrop_pipeline
from keras_ssl.augment.random_apply import RandomApply
from keras_ssl.augment.solarize import RandomSolarize, solarize

#: Augmentation presets by the name configs use (``config.augment.preset``); each is called as
#: ``fn(image_shape, **config.augment.kwargs)`` and returns a ``MultiViewAugmenter``.
PRESETS = {
    "simclr": presets.simclr,
    "byol": presets.byol,
    "multicrop": multicrop,
    "crop_flip": presets.crop_flip,
    "moco_v1": presets.moco_v1,
    "moco_v2": presets.moco_v2,
    "identity": presets.identity,
}

__all__ = [
    "PRESETS",
    "BaseAugmentation",
    "ColorJitter",
    "MultiViewAugmenter",
    "RandomApply",
    "RandomGaussianBlur",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomSolarize",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "crop_and_resize",
    "gaussian_blur",
    "multicrop",
    "multicrop_pipeline",
    "presets",
    "rgb_to_luma",
    "sample_crop_boxes",
    "solarize",
]
