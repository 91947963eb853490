"""The train/test splits a config names (Fashion-MNIST, a TFDS dataset or image folders), and
the seeded subsets of them that training and the probes use."""

import os

import numpy as np
import tensorflow as tf

from keras_ssl.datasets import fashion_mnist, folder, tfds


def load_splits(data_config, announce=True):
    """Loads ``(x_train, y_train, x_test, y_test)`` as uint8 ``[N, H, W, C]`` arrays + labels.

    With ``announce``, first prints one ``data: ...`` line naming the source and what it means
    (for Fashion-MNIST its ``fashion_mnist.DataSource`` description, with the image counts).
    """
    name, data_dir = data_config.dataset, data_config.data_dir
    source = data_config.get("source")  # absent from the config.json of older runs
    if source is not None and name != "fashion_mnist":
        raise ValueError(
            f"config.data.source={source!r} was given with config.data.dataset={name!r}; "
            "expected a source only with 'fashion_mnist'. Fix: drop config.data.source (other "
            "datasets take their location from config.data.data_dir)."
        )
    if name == "fashion_mnist":
        splits, data_source = fashion_mnist.load_data(
            path=data_dir, source=source, return_source=True
        )
        (x_train, y_train), (x_test, y_test) = splits
        description = data_source.description
    elif name.startswith("tfds:"):
        x_train, y_train = tfds.load_tfds(name[5:], "train", data_dir=data_dir, as_numpy=True)
        x_test, y_test = tfds.load_tfds(name[5:], "test", data_dir=data_dir, as_numpy=True)
        where = data_dir or "the default TFDS data folder"
        description = f"TFDS {name[5:]} ({where}): {len(x_train):,}/{len(x_test):,} images"
    elif name.startswith("folder:"):
        root = name[7:]
        (x_train, y_train), _ = folder.load_image_folder(
            os.path.join(root, "train"), data_config.image_size, as_numpy=True
        )
        (x_test, y_test), _ = folder.load_image_folder(
            os.path.join(root, "test"), data_config.image_size, as_numpy=True
        )
        description = f"image folders ({root}): {len(x_train):,}/{len(x_test):,} images"
    else:
        raise ValueError(
            f"Unknown dataset {name!r}; expected 'fashion_mnist', 'tfds:<name>' or "
            "'folder:<path with train/ and test/ class folders>'. Fix: set config.data.dataset."
        )
    if announce:
        print(f"data: {description}", flush=True)
    x_train, x_test = (_as_images(x, data_config.image_size) for x in (x_train, x_test))
    return x_train, np.asarray(y_train), x_test, np.asarray(y_test)


def _as_images(images, image_size):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if image_size and images.shape[1:3] != (image_size, image_size):
        resized = tf.image.resize(images, (image_size, image_size), antialias=True)
        images = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy()
    return images


def subset(images, labels, count, seed):
    """``count`` examples drawn by ``seed`` (in their original order), or all when ``count`` is
    ``None`` or at least the number of examples."""
    if count is None or count >= len(images):
        return images, labels
    order = np.random.default_rng(seed).permutation(len(images))[:count]
    order.sort()
    return images[order], labels[order]


def probe_splits(config, splits):
    """The labelled (train, test) subsets the probes use, fixed by the config's seed."""
    x_train, y_train, x_test, y_test = splits
    probe_train = subset(x_train, y_train, config.data.probe_train_examples, config.seed)
    probe_test = subset(x_test, y_test, config.data.probe_test_examples, config.seed)
    return probe_train, probe_test
