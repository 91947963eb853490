"""Any TensorFlow Datasets image dataset as ``(uint8 image, int32 label)`` pairs."""

import numpy as np
import tensorflow as tf


def load_tfds(
    name,
    split="train",
    data_dir=None,
    download=True,
    image_key="image",
    label_key="label",
    as_numpy=False,
):
    """Loads a TFDS image dataset as a ``tf.data.Dataset`` or NumPy arrays.

    Examples keep the order TFDS stores them in (files are not shuffled); shuffle downstream.

    Args:
        name: TFDS name, optionally with config and version, e.g. ``"cifar10"``.
        split: TFDS split, slicing allowed (``"train[:10%]"``).
        data_dir: folder where TFDS keeps prepared datasets; ``None`` uses TFDS' default.
        download: whether to download and prepare the dataset if it is not prepared yet.
        image_key: feature holding the images (``uint8``, ``[height, width, channels]``).
        label_key: feature holding integer labels, or ``None`` for images only.
        as_numpy: return NumPy arrays instead of a dataset. All images must share one size.

    Returns:
        If ``as_numpy`` is False, a ``tf.data.Dataset`` of ``(image, label)`` (``uint8``
        ``[H, W, C]``, ``int32`` scalar), or of images alone when ``label_key`` is None.
        Otherwise ``(images, labels)``: ``uint8`` ``[N, H, W, C]`` and ``int32`` ``[N]``
        (``labels`` is None when ``label_key`` is None).

    Raises:
        ValueError: if a feature is missing or has the wrong type, the dataset is not prepared
            and ``download`` is False, or ``as_numpy`` meets images of different sizes.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    features = builder.info.features
    _check_feature(name, features, image_key, "image_key", _is_image)
    if label_key is not None:
        _check_feature(name, features, label_key, "label_key", _is_label)
    if download:
        builder.download_and_prepare()
    elif not builder.is_prepared():
        raise ValueError(
            f"TFDS dataset {name!r} is not prepared: received download=False and "
            f"data_dir={builder.data_dir_root}; expected a prepared copy there. Fix: pass "
            "download=True, or data_dir= the folder where it was prepared."
        )
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    if label_key is None:
        dataset = dataset.map(lambda example: example[image_key])
    else:
        dataset = dataset.map(
            lambda example: (example[image_key], tf.cast(example[label_key], tf.int32))
        )
    if not as_numpy:
        return dataset
    image_shape = tuple(features[image_key].shape)
    return _to_numpy(dataset, image_shape, label_key is not None, f"TFDS {name!r}[{split}]")


def _is_image(feature):
    return np.dtype(feature.np_dtype) == np.uint8 and len(feature.shape) == 3


def _is_label(feature):
    return np.issubdtype(np.dtype(feature.np_dtype), np.integer) and len(feature.shape) == 0


def _check_feature(name, features, key, argument, is_valid):
    available = ", ".join(sorted(features.keys()))
    if key not in features:
        raise ValueError(
            f"TFDS dataset {name!r} has no feature {key!r}: received {argument}={key!r}; "
            f"available features: {available}. Fix: pass {argument}= one of them."
        )
    feature = features[key]
    if not is_valid(feature):
        expected = (
            "uint8 [height, width, channels]" if argument == "image_key" else "an integer scalar"
        )
        raise ValueError(
            f"TFDS dataset {name!r} feature {key!r} cannot be used as {argument}: received "
            f"{np.dtype(feature.np_dtype).name} of shape {tuple(feature.shape)}; expected "
            f"{expected}. Fix: pass {argument}= another feature ({available})."
        )


def _to_numpy(dataset, image_shape, labelled, what):
    """Stacks a dataset of images (or ``(image, label)`` pairs) into NumPy arrays."""
    if None not in image_shape:
        batches = list(dataset.batch(1024).as_numpy_iterator())
        if not batches:
            images = np.zeros((0, *image_shape), np.uint8)
            return (images, np.zeros((0,), np.int32)) if labelled else (images, None)
        if labelled:
            return tuple(np.concatenate(parts) for parts in zip(*batches))
        return np.concatenate(batches), None
    examples = list(dataset.as_numpy_iterator())
    images = [example[0] for example in examples] if labelled else examples
    shapes = sorted({image.shape for image in images})
    if len(shapes) > 1:
        raise ValueError(
            f"{what} holds images of different sizes (received shapes {shapes[0]}, "
            f"{shapes[1]}, ...); as_numpy=True expects one size to stack them. Fix: use "
            "as_numpy=False and resize in Dataset.map (e.g. with tf.image.resize)."
        )
    stacked = np.stack(images) if images else np.zeros((0, 0, 0, image_shape[-1] or 0), np.uint8)
    if not labelled:
        return stacked, None
    return stacked, np.asarray([example[1] for example in examples], np.int32)
