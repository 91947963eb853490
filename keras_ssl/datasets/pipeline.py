"""The SSL input pipeline: shuffle, batch (fixed size), augment batched views, prefetch."""

import numpy as np
import tensorflow as tf

from keras_ssl import distribute
from keras_ssl.images import check_image_dtype


def make_ssl_dataset(
    images,
    labels=None,
    *,
    batch_size,
    augmenter=None,
    shuffle=True,
    shuffle_buffer=None,
    seed=None,
    repeat=False,
    strategy=None,
    epoch_counter=None,
    indices=False,
):
    """Builds a ``tf.data`` pipeline that feeds an ``SSLMethod``.

    Batches have a fixed size (``drop_remainder=True``: static shapes for XLA/TPU and even splits
    over replicas). Augmentation runs after batching, so every batch is augmented by one
    vectorised call in which each image draws its own random parameters, in parallel with
    training. With a ``seed`` the whole stream (order and augmentations) is reproducible and
    differs from epoch to epoch.

    Args:
        images: ``[N, H, W, C]`` array (``[N, H, W]`` grayscale gets a channel axis), ``uint8``
            or float in ``[0, 1]``; or an unbatched ``tf.data.Dataset`` of images or
            ``(image, label)`` pairs.
        labels: optional ``[N]`` integer labels (for the online probe only).
        batch_size: global batch size (split evenly over the strategy's replicas).
        augmenter: a layer mapping an image batch to a tuple of views (for example
            ``model.augmenter``). ``None`` yields raw image batches that the model augments
            inside its train step.
        shuffle: shuffle the examples every epoch.
        shuffle_buffer: shuffle buffer size (default: the whole array, or 10 000 for datasets).
        seed: integer seed for shuffling and augmentation.
        repeat: repeat forever (then pass ``steps_per_epoch`` to ``fit``).
        strategy: the ``tf.distribute`` strategy the model trains under (default: current).
        epoch_counter: a :class:`keras_ssl.datasets.EpochCounter` (also given to ``fit``):
            the order and augmentations of each epoch then depend only on ``(seed, epoch)``,
            so a resumed run replays the interrupted epoch exactly. Needs ``seed``, array
            input and ``repeat=False``.
        indices: add ``"indices"`` (``int32 [batch]``) to every batch: each example's position
            in ``images`` (in the stream, for a dataset), for methods whose targets are per-image
            state (``DeepCluster``'s cluster assignments).

    Returns:
        A dataset of dicts ``{"views": (v1, v2, ...)}`` (with an augmenter) or ``{"images": x}``,
        plus ``"labels"`` when labels are given and ``"indices"`` when asked for.
    """
    distribute.per_replica_batch_size(batch_size, strategy)
    if epoch_counter is not None:
        return _epoch_seeded_dataset(
            images, labels, batch_size, augmenter, shuffle, seed, repeat, epoch_counter, indices
        )
    dataset, count = _examples(images, labels, indices)
    if count is not None and count < batch_size:
        raise ValueError(
            f"Not enough images for one batch: received {count} images for batch_size="
            f"{batch_size}. Fix: lower batch_size to at most {count} or add images."
        )
    if shuffle:
        buffer = shuffle_buffer or count or 10_000
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE)
    if augmenter is not None:
        dataset = _augment(dataset, augmenter, seed)
    options = tf.data.Options()
    # Order may only vary where it is random anyway (shuffled, unseeded): that lets parallel
    # batching and augmentation hand batches over as soon as they are ready.
    options.deterministic = seed is not None or not shuffle
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _epoch_seeded_dataset(
    images, labels, batch_size, augmenter, shuffle, seed, repeat, counter, indices=False
):
    if seed is None or repeat or isinstance(images, tf.data.Dataset):
        raise ValueError(
            "`epoch_counter` needs an integer `seed`, array images and repeat=False; received "
            f"seed={seed!r}, repeat={repeat}, images of type {type(images).__name__}. Fix: pass "
            "seed=..., NumPy arrays and repeat=False, or drop epoch_counter."
        )
    examples, count = _examples(images, labels, indices)
    if count < batch_size:
        raise ValueError(
            f"Not enough images for one batch: received {count} images for batch_size="
            f"{batch_size}. Fix: lower batch_size to at most {count} or add images."
        )
    table = next(iter(examples.batch(count)))  # every example, as one dict of tensors

    def epoch_seed():
        return tf.stack([tf.constant(seed, tf.int64), counter.epoch.read_value()])

    def example(index):
        if shuffle:
            index = tf.random.experimental.index_shuffle(index, epoch_seed(), count - 1)
        return {key: tf.gather(value, index) for key, value in table.items()}

    dataset = tf.data.Dataset.range(count).map(example, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE)
    if augmenter is not None:

        def augment(step, batch):
            pair = tf.random.experimental.stateless_fold_in(epoch_seed(), step)
            seed_pair = tf.cast(pair % (2**31 - 1), tf.int32)
            return _with_views(batch, augmenter(batch["images"], seed=seed_pair))

        dataset = dataset.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _examples(images, labels, indices=False):
    if isinstance(images, tf.data.Dataset):
        if labels is not None:
            raise ValueError(
                "`labels` must be None when `images` is a tf.data.Dataset; received both. "
                "Fix: put the labels in the dataset as (image, label) pairs."
            )
        examples = images.map(_as_example, num_parallel_calls=tf.data.AUTOTUNE)
        if indices:
            examples = examples.enumerate().map(
                lambda index, example: {**example, "indices": tf.cast(index, tf.int32)}
            )
        return examples, None
    images = np.asarray(images)
    check_image_dtype(images.dtype)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(
            f"`images` must be [N, H, W, C] (or [N, H, W] grayscale); received shape "
            f"{images.shape}. Fix: stack the images into one array."
        )
    columns = {"images": images}
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images):
            raise ValueError(
                f"`labels` must have one entry per image; received {len(labels)} labels for "
                f"{len(images)} images. Fix: pass the labels that belong to these images."
            )
        columns["labels"] = labels
    if indices:
        columns["indices"] = np.arange(len(images), dtype=np.int32)
    return tf.data.Dataset.from_tensor_slices(columns), len(images)


def _as_example(*element):
    if len(element) == 1:
        image = element[0]
        if isinstance(image, dict):
            return image
        if isinstance(image, (tuple, list)):
            return {"images": image[0], "labels": image[1]}
        return {"images": image}
    return {"images": element[0], "labels": element[1]}


def _augment(dataset, augmenter, seed):
    if seed is None:
        return dataset.map(
            lambda batch: _with_views(batch, augmenter(batch["images"])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(dataset, seeds).map(
        lambda batch, pair: _with_views(
            batch, augmenter(batch["images"], seed=tf.cast(pair % (2**31 - 1), tf.int32))
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _with_views(batch, views):
    out = {"views": tuple(views)}
    for key in ("labels", "indices"):
        if key in batch:
            out[key] = batch[key]
    return out
