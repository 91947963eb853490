"""``DeepClusterCallback``: DeepCluster's clustering step before every epoch."""

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.methods.indexed_batches import (
    INDICES,
    batch_keys,
    collect_indexed_images,
    image_array,
)
from keras_ssl.validation import check_int


class DeepClusterCallback(keras.callbacks.Callback):
    """Runs :meth:`DeepCluster.cluster` on the un-augmented training images before every
    ``every_n_epochs``-th epoch.

    ``DeepCluster.fit`` adds one by itself; pass one explicitly to cluster less often or to
    name the images of a dataset that yields augmented views.

    Args:
        images: the un-augmented training images, ``[N, H, W, C]`` NumPy array whose image
            ``i`` is the one batches carry as index ``i``; or a finite ``tf.data.Dataset``
            whose elements hold ``"images"`` and ``"indices"`` (read once when training
            begins; indices it does not yield stay unclustered, ``-1``).
        every_n_epochs: cluster before epochs ``0, n, 2n, ...`` (a run resumed between two
            clusterings keeps the restored ``assignments``).
        batch_size: images per encoder call.
        verbose: 1 prints the number of non-empty clusters after each clustering.
    """

    def __init__(self, images, every_n_epochs=1, batch_size=512, verbose=0):
        super().__init__()
        check_int(every_n_epochs, "every_n_epochs", 1, "use 1 (the paper clusters every epoch).")
        check_int(batch_size, "batch_size", 1, "use e.g. 512.")
        if isinstance(images, tf.data.Dataset):
            missing = {"images", INDICES} - batch_keys(images.element_spec)
            if missing:
                raise ValueError(
                    f"DeepClusterCallback reads 'images' and 'indices' from a dataset; received "
                    f"one without {sorted(missing)}. Fix: pass the un-augmented training images "
                    "as a NumPy array."
                )
        elif isinstance(images, np.ndarray):
            images = image_array(images)
        else:
            raise ValueError(
                "DeepClusterCallback needs the un-augmented training images as a NumPy array "
                "or a tf.data.Dataset of 'images' and 'indices'; received "
                f"{type(images).__name__}. Fix: pass the training images (image i = index i)."
            )
        self.images = images
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self._images, self._indices = None, None

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "cluster"):  # a DeepCluster (its module imports this one)
            raise ValueError(
                f"DeepClusterCallback drives DeepCluster models; received "
                f"{type(self.model).__name__}. Fix: use it with keras_ssl.methods.DeepCluster."
            )
        if self._images is None:
            if isinstance(self.images, tf.data.Dataset):
                self._images, self._indices = collect_indexed_images(self.images)
            else:
                self._images = self.images
            self.model._check_count(len(self._images))

    def on_epoch_begin(self, epoch, logs=None):
        if epoch % self.every_n_epochs:
            return
        assignments = self.model.cluster(self._images, self._indices, self.batch_size)
        if self.verbose:
            used = len(np.unique(assignments))
            print(f"Epoch {epoch + 1}: k-means on {len(assignments)} images, {used} clusters.")
