"""Batches that carry each image's dataset index, as DeepCluster trains on them.

DeepCluster labels every augmented view of image ``i`` with the cluster of image ``i`` in the
epoch's clustering, so its batches hold ``"indices"`` (``int32 [batch]``) next to the images or
views: ``fit(images)`` numbers a NumPy array itself, and
``keras_ssl.datasets.make_ssl_dataset(images, indices=True, ...)`` numbers a ``tf.data``
pipeline. These helpers read the indices from batches and dataset specs, collect the distinct
indexed images of a dataset, and carry the indices with the views into the loss.
"""

import warnings

import numpy as np
import tensorflow as tf

from keras_ssl.images import check_image_batch

#: The batch key holding each image's dataset index (``int32 [batch]``).
INDICES = "indices"

INDEXED_BATCHES = (
    "DeepCluster trains every view of an image on that image's cluster, so each batch must "
    "carry the dataset index of its images under 'indices' (image i of the clustered images "
    "has index i)"
)
INDEXED_FIX = (
    "Fix: pass the NumPy images to fit (DeepCluster numbers them), or build the dataset with "
    "keras_ssl.datasets.make_ssl_dataset(images, indices=True, ...) and give DeepCluster the "
    "same images with model.adapt(images) or callbacks=[DeepClusterCallback(images)]."
)


class IndexedViews(tuple):
    """The views of a batch (a tuple, as ``compute_ssl_loss`` takes them) with the dataset index
    of each image, ``indices`` (``int32 [batch]``): every view of image ``j`` is trained on the
    cluster of ``indices[j]``."""

    def __new__(cls, views, indices):
        instance = super().__new__(cls, views)
        instance.indices = indices
        return instance


def view_indices(views):
    """The dataset indices ``views`` carry (:class:`IndexedViews`); a ``ValueError`` without."""
    indices = getattr(views, "indices", None)
    if indices is None:
        raise ValueError(
            f"{INDEXED_BATCHES}; received views without them. Fix: pass "
            "IndexedViews(views, indices) (unpack_batch makes them from batches)."
        )
    return indices


def image_array(images, image_shape=None):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    check_image_batch(images, image_shape)
    return images


def batch_indices(data):
    batch = data[0] if isinstance(data, (tuple, list)) else data
    return batch.get(INDICES) if isinstance(batch, dict) else None


def batch_keys(spec):
    if isinstance(spec, (tuple, list)) and spec:
        spec = spec[0]
    return set(spec) if isinstance(spec, dict) else set()


def collect_indexed_images(dataset):
    """The distinct ``(images, indices)`` of one pass over a dataset of indexed batches."""
    if int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "DeepClusterCallback reads a dataset's images in one pass; received an endless "
            "dataset (repeat()). Fix: pass the un-augmented training images as a NumPy array "
            "(model.adapt(images) or DeepClusterCallback(images))."
        )
    images, indices = [], []
    for element in dataset:
        batch = element[0] if isinstance(element, (tuple, list)) else element
        index = np.asarray(batch[INDICES]).reshape(-1)
        image = np.asarray(batch["images"])
        images.append(image.reshape((len(index), *image.shape[-3:])))
        indices.append(index)
    if not images:
        raise ValueError(
            "DeepClusterCallback received an empty dataset. Fix: pass the training images."
        )
    images, indices = np.concatenate(images), np.concatenate(indices)
    indices, first = np.unique(indices, return_index=True)
    if indices[0] != 0 or indices[-1] != len(indices) - 1:
        warnings.warn(
            f"DeepClusterCallback: one pass over the dataset yielded {len(indices)} distinct "
            f"indices in [{indices[0]}, {indices[-1]}]; images it did not yield stay "
            "unclustered (no loss) until a clustering includes them (a shuffled dataset that "
            "drops a remainder misses some). Fix: give DeepCluster all training images as a "
            "NumPy array (model.adapt(images) or DeepClusterCallback(images)).",
            stacklevel=2,
        )
    return images[first], indices


def check_indices(indices, count, capacity):
    """``indices`` as a NumPy array of ``count`` distinct integers in ``[0, capacity)`` (default
    ``0 .. count - 1``)."""
    if indices is None:
        return np.arange(count)
    indices = np.asarray(indices).reshape(-1)
    if (
        len(indices) != count
        or not np.issubdtype(indices.dtype, np.integer)
        or (count and (indices.min() < 0 or indices.max() >= capacity))
        or len(np.unique(indices)) != count
    ):
        raise ValueError(
            f"`indices` must be {count} distinct integers in [0, clustering_examples="
            f"{capacity}), one per image; received {indices.dtype} indices of shape "
            f"{indices.shape}. Fix: pass each image's dataset index."
        )
    return indices


def index_fit_input(x, check_images, adapted, needs_images):
    """``(x with indices, what the clustering embeds)`` for DeepCluster's ``fit(x)``.

    Args:
        x: a NumPy array of images (numbered here), a dict of NumPy arrays (``"images"`` and/or
            ``"views"``; numbered here), or a ``tf.data.Dataset`` whose batches hold
            ``"indices"``.
        check_images: validates a NumPy array of training images.
        adapted: the images given to ``DeepCluster.adapt``, or ``None``.
        needs_images: whether the clustering needs images (no explicit callback names them).
    """

    def adapted_images(received):
        if adapted is None and needs_images:
            raise ValueError(
                "DeepCluster clusters the un-augmented training images before every epoch; "
                f"received {received} and no images from adapt(). Fix: call "
                "model.adapt(images) with the images the indices refer to, or pass "
                "callbacks=[DeepClusterCallback(images)]."
            )
        return adapted

    if isinstance(x, np.ndarray):
        check_images(x)
        return {"images": x, INDICES: np.arange(len(x), dtype=np.int32)}, x
    if isinstance(x, dict) and all(
        isinstance(v, np.ndarray) or (isinstance(v, (tuple, list)) and v) for v in x.values()
    ):
        images = x.get("images")
        if images is not None:
            check_images(images)
        first = images if images is not None else x.get("views", [None])[0]
        if first is None:
            raise ValueError(
                f"A dict `x` must hold 'images' or 'views'; received keys {sorted(x)}. Fix: "
                "pass {'images': x} or {'views': (v1, ...), 'images': x}."
            )
        x = {INDICES: np.arange(len(first), dtype=np.int32), **x}
        if images is None:
            images = adapted_images("a dict without 'images'")
        return x, images
    if isinstance(x, tf.data.Dataset):
        keys = batch_keys(x.element_spec)
        if INDICES not in keys:
            raise ValueError(
                f"{INDEXED_BATCHES}; received a dataset whose batches hold "
                f"{sorted(keys) or x.element_spec}. {INDEXED_FIX}"
            )
        # The adapted array covers every image; one pass over a dataset may miss some.
        if adapted is not None or "images" not in keys:
            return x, adapted_images("a dataset without 'images'")
        return x, x
    raise ValueError(
        f"{INDEXED_BATCHES}; received `x` of type {type(x).__name__}, which cannot carry "
        f"them. {INDEXED_FIX}"
    )
