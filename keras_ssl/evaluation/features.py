"""Embeddings of a frozen encoder, and the input checks shared by the evaluation protocols."""

import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.images import check_image_dtype, to_float_images
from keras_ssl.validation import check_int

# One traced inference function per encoder, so repeated probes (every epoch) reuse the trace.
_INFERENCE_FNS = weakref.WeakKeyDictionary()


def extract_features(
    encoder, images, batch_size=512, normalize=True, return_labels=False, verbose=0
):
    """Runs a frozen encoder over images and returns the embeddings as a NumPy array.

    The encoder runs with ``training=False`` inside a ``tf.function`` that is traced once per
    batch shape and cached per encoder: a short final batch is padded to the full batch size,
    so a whole pass compiles once. An encoder built under a ``tf.distribute`` strategy scope is
    called in cross-replica context (its variables read from the first replica); the call needs
    no strategy scope.

    Args:
        encoder: a ``keras.Model`` (or any callable accepting ``training=``) mapping ``float32``
            images in ``[0, 1]`` shaped ``[batch, height, width, channels]`` to ``[batch, D]``.
        images: a NumPy array of ``uint8`` images in ``[0, 255]`` or floats in ``[0, 1]``,
            shaped ``[N, height, width, channels]`` or ``[N, height, width]`` (grayscale; a
            channel axis is added). Or a ``tf.data.Dataset`` whose elements are images or
            ``(image, label)`` pairs, batched or not: an element of rank 4 is a batch
            ``[B, H, W, C]``; rank 2 is one grayscale image ``[H, W]``; rank 3 is one image
            ``[H, W, C]`` when its last dimension is 1, 3, 4 or unknown, otherwise a batch of
            grayscale images ``[B, H, W]``. Unbatched datasets are batched with ``batch_size``;
            batched ones keep their own batching.
        batch_size: images per encoder call for NumPy input and unbatched datasets.
        normalize: L2-normalise each embedding (what cosine-similarity protocols need).
        return_labels: also return the labels of a dataset of ``(image, label)`` pairs (in the
            order the dataset produced them, so a shuffling dataset stays aligned).
        verbose: 1 shows a ``keras.utils.Progbar`` over the images.

    Returns:
        ``float32`` NumPy array ``[N, D]``; with ``return_labels=True`` a tuple
        ``(features, labels)`` with ``labels`` an ``int64`` array ``[N]``.

    Raises:
        ValueError: for images of the wrong rank or dtype, ``batch_size < 1``, labels requested
            from unlabelled input, or an encoder whose output is not ``[batch, D]``.
    """
    check_int(batch_size, "batch_size")
    if isinstance(images, tf.data.Dataset):
        batches, total, has_labels = _dataset_batches(images, batch_size)
    else:
        array = as_image_array(images)
        total, has_labels = len(array), False
        batches = ((array[i : i + batch_size], None) for i in range(0, total, batch_size))
    if return_labels and not has_labels:
        raise ValueError(
            "`return_labels=True` needs a tf.data.Dataset of (image, label) pairs; received "
            f"{type(images).__name__} of images only. Fix: keep your own labels array and "
            "call with return_labels=False, or pass a dataset of (image, label) pairs."
        )

    infer = _inference_fn(encoder)
    progbar = keras.utils.Progbar(total, unit_name="image") if verbose else None
    features, labels, seen, padded_size = [], [], 0, None
    for image_batch, label_batch in batches:
        image_batch = to_float_images(image_batch)
        count = int(image_batch.shape[0])
        if count == 0:
            continue
        padded_size = padded_size or count
        if count < padded_size:
            padding = [[0, padded_size - count]] + [[0, 0]] * (len(image_batch.shape) - 1)
            image_batch = tf.pad(image_batch, padding)
        output = infer(image_batch)
        _check_encoder_output(output)
        features.append(output[:count].numpy())
        if label_batch is not None:
            labels.append(_label_vector(label_batch, count))
        seen += count
        if progbar is not None:
            progbar.update(seen)

    if not features:
        raise ValueError("`images` is empty; received 0 images. Fix: pass at least one image.")
    features = np.concatenate(features).astype(np.float32)
    if normalize:
        features = l2_normalize(features)
    if not return_labels:
        return features
    return features, np.concatenate(labels).astype(np.int64)


def check_labelled_data(data, name="data"):
    """Validates labelled evaluation data and returns it in a canonical form.

    Args:
        data: a tuple ``(images, labels)`` of arrays (images as accepted by
            :func:`extract_features`, labels ``[N]`` integer class ids), or a
            ``tf.data.Dataset`` of ``(image, label)`` pairs, batched or not.
        name: how the argument is named in error messages.

    Returns:
        ``(images, labels)`` with ``images`` a rank-4 array and ``labels`` an ``int64`` array,
        or the dataset unchanged.

    Raises:
        ValueError: for anything else, or images and labels of different lengths.
    """
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise ValueError(
                f"`{name}` must be a tf.data.Dataset of (image, label) pairs; received elements "
                f"{spec}. Fix: dataset.map(lambda image, label: (image, label)) or zip images "
                "with labels."
            )
        return data
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(
            f"`{name}` must be a tuple (images, labels) or a tf.data.Dataset of (image, label) "
            f"pairs; received {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
            + ". Fix: pass (x_train, y_train)."
        )
    images = as_image_array(data[0])
    labels = check_labels(
        data[1], len(images), name=f"{name} labels", features_name=f"{name} images"
    )
    return images, labels


def extract_labelled_features(encoder, data, batch_size=512, normalize=True, verbose=0):
    """Embeds labelled data with :func:`extract_features` and returns features with labels.

    Args:
        encoder: the frozen encoder (see :func:`extract_features`).
        data: ``(images, labels)`` arrays or a ``tf.data.Dataset`` of ``(image, label)`` pairs
            (see :func:`check_labelled_data`).
        batch_size: images per encoder call.
        normalize: L2-normalise the embeddings.
        verbose: 1 shows a progress bar.

    Returns:
        ``(features float32 [N, D], labels int64 [N])``, aligned even when a dataset shuffles.
    """
    data = check_labelled_data(data)
    if isinstance(data, tf.data.Dataset):
        return extract_features(
            encoder, data, batch_size, normalize, return_labels=True, verbose=verbose
        )
    images, labels = data
    return extract_features(encoder, images, batch_size, normalize, verbose=verbose), labels


def l2_normalize(features, epsilon=1e-12):
    """Scales each row of a ``[N, D]`` array to unit L2 norm (zero rows stay zero).

    Args:
        features: NumPy array ``[N, D]``.
        epsilon: floor on the norm, so an all-zero row does not divide by zero.

    Returns:
        ``float32`` array ``[N, D]``.
    """
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features.astype(np.float64), axis=-1, keepdims=True)
    return (features / np.maximum(norms, epsilon)).astype(np.float32)


def check_features(features, name="features"):
    """Validates a ``[N, D]`` feature matrix and returns it as a finite ``float32`` array.

    Args:
        features: array-like ``[N, D]``.
        name: how the argument is named in error messages.

    Returns:
        ``float32`` NumPy array ``[N, D]``.

    Raises:
        ValueError: for a rank other than 2, zero rows, or non-finite values.
    """
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(
            f"`{name}` must have rank 2 [num_examples, feature_dim]; received shape "
            f"{features.shape} (rank {features.ndim}). Fix: flatten or pool the embeddings "
            "to one vector per example (e.g. features.reshape(len(features), -1))."
        )
    if len(features) == 0:
        raise ValueError(
            f"`{name}` is empty; received shape {features.shape}; expected at least one row. "
            "Fix: pass the features of at least one example."
        )
    if not np.issubdtype(features.dtype, np.number):
        raise ValueError(
            f"`{name}` must be numeric; received dtype {features.dtype}. Fix: pass float "
            "features, e.g. from keras_ssl.evaluation.extract_features."
        )
    features = features.astype(np.float32)
    if not np.all(np.isfinite(features)):
        raise ValueError(
            f"`{name}` contains NaN or infinite values ({int(np.sum(~np.isfinite(features)))} "
            "entries); expected finite features. Fix: check the encoder for divergence."
        )
    return features


def check_labels(labels, num_examples, num_classes=None, name="labels", features_name="features"):
    """Validates integer class labels against their features and the number of classes.

    Args:
        labels: array-like ``[N]`` (``[N, 1]`` is accepted and flattened).
        num_examples: ``N``, the number of feature rows the labels belong to.
        num_classes: when given, labels must lie in ``[0, num_classes)``.
        name: how the labels are named in error messages.
        features_name: how the matching features are named in error messages.

    Returns:
        ``int64`` NumPy array ``[N]``.

    Raises:
        ValueError: for the wrong rank, a length mismatch, non-integer or out-of-range labels.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"`{name}` must have rank 1 [num_examples] (integer class ids); received shape "
            f"{labels.shape}. Fix: pass integer labels, e.g. np.argmax(one_hot, axis=-1)."
        )
    if len(labels) != num_examples:
        raise ValueError(
            f"`{name}` has {len(labels)} entries but `{features_name}` has {num_examples} rows; "
            f"expected one label per example. Fix: pass the labels of exactly the examples the "
            "features were computed from."
        )
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise ValueError(
                f"`{name}` must hold integer class ids; received dtype {labels.dtype}. "
                "Fix: convert to int, e.g. labels.astype('int64')."
            )
    labels = labels.astype(np.int64)
    if num_classes is not None and len(labels):
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"`{name}` must lie in [0, num_classes={num_classes}); received values in "
                f"[{low}, {high}]. Fix: pass num_classes={max(high + 1, num_classes)} or "
                "remap the labels to 0..num_classes-1."
            )
    return labels


def _inference_fn(encoder):
    """A cached ``tf.function`` calling ``encoder(x, training=False)``."""
    try:
        return _INFERENCE_FNS[encoder]
    except (KeyError, TypeError):
        pass
    # The function refers to the encoder weakly so the cache does not keep it alive.
    encoder_ref = weakref.ref(encoder)

    @tf.function(reduce_retracing=True)
    def infer(images):
        return encoder_ref()(images, training=False)

    try:
        _INFERENCE_FNS[encoder] = infer
    except TypeError:
        pass
    return infer


def _label_vector(label_batch, count):
    labels = np.asarray(label_batch)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (count,):
        raise ValueError(
            f"Dataset labels must be integer class ids, one per image; received a label batch "
            f"of shape {labels.shape} for {count} images. Fix: map one-hot labels to ids with "
            "tf.argmax(label, axis=-1)."
        )
    return labels


def _check_encoder_output(output):
    shape = getattr(output, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(
            "The encoder must return one embedding per image, shaped [batch, D]; received "
            f"{type(output).__name__} with shape {shape}. Fix: end the encoder with global "
            "pooling or Flatten, or pass the sub-model that outputs the embedding."
        )


def as_image_array(images):
    """Returns images as a rank-4 NumPy array ``[N, H, W, C]`` (grayscale ``[N, H, W]`` gets a
    channel axis), raising a ``ValueError`` for other ranks or non-numeric dtypes."""
    array = np.asarray(images)
    check_image_dtype(array.dtype)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise ValueError(
            "`images` must have rank 4 [N, height, width, channels] (or rank 3 [N, height, "
            f"width] for grayscale); received shape {array.shape} (rank {array.ndim}). Fix: "
            "stack the images into one array; add a batch axis (x[None]) for a single image."
        )
    return array


def _element_is_batched(image_spec):
    """Decides from an element's image shape whether a dataset is batched (see docstring)."""
    shape = image_spec.shape
    if shape.rank == 4:
        return True
    if shape.rank == 2:
        return False
    if shape.rank == 3:
        return shape[-1] is not None and shape[-1] not in (1, 3, 4)
    raise ValueError(
        "Dataset images must be [H, W], [H, W, C] (unbatched) or [B, H, W, C] (batched); "
        f"received elements with image shape {shape}. Fix: map the dataset to yield images "
        "or (image, label) pairs."
    )


def _dataset_batches(dataset, batch_size):
    """Returns a generator of ``(images [B, H, W, C], labels or None)``, the image count
    (``None`` when unknown) and whether the elements carry labels."""
    spec = dataset.element_spec
    if isinstance(spec, tuple):
        if len(spec) not in (1, 2):
            raise ValueError(
                f"Dataset elements must be images or (image, label) pairs; received tuples of "
                f"{len(spec)} components. Fix: map the dataset to (image, label)."
            )
        image_spec = spec[0]
    elif isinstance(spec, dict):
        raise ValueError(
            f"Dataset elements must be images or (image, label) pairs; received a dict with "
            f"keys {sorted(spec)}. Fix: dataset.map(lambda d: (d['image'], d['label']))."
        )
    else:
        image_spec = spec
    if not isinstance(image_spec, tf.TensorSpec):
        raise ValueError(
            f"Dataset images must be dense tensors; received {image_spec}. Fix: map the "
            "dataset to yield decoded, dense image tensors."
        )
    check_image_dtype(image_spec.dtype)
    has_labels = isinstance(spec, tuple) and len(spec) == 2
    batched = _element_is_batched(image_spec)
    total = None  # Images are counted; a batched dataset does not know how many it holds.
    if not batched:
        cardinality = int(dataset.cardinality())
        total = cardinality if cardinality >= 0 else None
        dataset = dataset.batch(batch_size)

    def generate():
        for element in dataset:
            if isinstance(element, tuple):
                image_batch = element[0]
                label_batch = element[1] if len(element) == 2 else None
            else:
                image_batch, label_batch = element, None
            if image_batch.shape.rank == 3:
                image_batch = image_batch[..., None]
            yield image_batch, label_batch

    return generate(), total, has_labels
