"""Dataset loaders: Fashion-MNIST files, TFDS datasets by name, local image folders and small
offline sets (:mod:`keras_ssl.datasets.small`: digits, glyphs).

Loaders return ``uint8`` images (``[0, 255]``), the keras_ssl input convention
(see :mod:`keras_ssl.images`).
"""

from keras_ssl.datasets import fashion_mnist, sample_photos, small
from keras_ssl.datasets.epoch_counter import EpochCounter
from keras_ssl.datasets.folder import load_image_folder
from keras_ssl.datasets.pipeline import make_ssl_dataset
from keras_ssl.datasets.segmentation import (
    fashion_mnist_canvases,
    load_segmentation_folder,
    load_tfds_segmentation,
    make_canvases,
    paint_canvas,
)
from keras_ssl.datasets.tfds import load_tfds

__all__ = [
    "EpochCounter",
    "fashion_mnist",
    "load_image_folder",
    "load_tfds",
    "make_ssl_dataset",
    "paint_canvas",
    "fashion_mnist_canvases",
    "load_segmentation_folder",
    "load_tfds_segmentation",
    "make_canvases",
    "sample_photos",
    "small",
]
