"""Fine-tuning: the whole encoder plus a new linear head, optionally on a fraction of labels."""

import math
import time

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.evaluation.features import check_labelled_data
from keras_ssl.evaluation.fractions import label_fraction
from keras_ssl.images import to_float_images
from keras_ssl.validation import check_in_range, check_int

#: Variables (by name) that get no weight decay: biases and normalisation scales and shifts.
NO_WEIGHT_DECAY = ("bias", "gamma", "beta")


def fine_tune(
    encoder,
    train,
    test,
    num_classes=None,
    fraction=1.0,
    seed=0,
    epochs=5,
    batch_size=128,
    learning_rate=1e-3,
    weight_decay=1e-4,
    layer_decay=None,
    validation_fraction=0.0,
    verbose=1,
):
    """Trains a copy of the encoder with a new ``Dense`` head and reports per-epoch accuracy.

    The encoder is cloned (structure and weights), so the model it came from is untouched; the
    head ``Dense(num_classes)`` starts at zero. AdamW minimises the softmax cross-entropy on
    ``train`` (or its class-balanced ``fraction``, drawn with ``seed``), the learning rate
    decaying along a cosine from ``learning_rate`` to 0 over all steps; biases and
    normalisation parameters get no weight decay. BatchNorm layers train in training mode.

    With ``layer_decay`` the learning rate of each layer is ``learning_rate *
    layer_decay**depth``: the head has depth 0, and the encoder's layers with trainable
    variables (in the order of ``encoder.trainable_variables``, i.e. input to output) have
    depths ``L, L-1, ..., 1`` (the last one is 1). Each depth gets its own optimizer.

    The default budget (5 epochs, batch 128) fine-tunes a small ResNet on 1k Fashion-MNIST
    images in well under a minute on 2 CPU cores.

    Args:
        encoder: the encoder to start from (``model.export_encoder``, or a freshly built one
            for the random-initialisation baseline); float images in ``[0, 1]`` -> ``[B, D]``.
        train: labelled training data, ``(images, labels)`` arrays or a dataset of pairs.
        test: labelled test data, same forms.
        num_classes: number of classes; ``None`` infers it from the labels.
        fraction: share of the training labels used, per class (``label_fraction``).
        seed: seed of the label subset, the validation split and the batch order.
        epochs: passes over the (subset of the) training data.
        batch_size: examples per step (capped at the training-set size).
        learning_rate: peak AdamW learning rate.
        weight_decay: decoupled weight decay of AdamW.
        layer_decay: ``None`` (one learning rate) or a factor in ``(0, 1]``.
        validation_fraction: share of the (subset of the) training data held out per class
            and scored every epoch; 0 disables the validation curve.
        verbose: 1 prints a line per epoch.

    Returns:
        JSON-able dict: ``accuracy`` (final test top-1), ``top5_accuracy`` (more than 5
        classes), ``curves`` (``loss``, ``test_accuracy`` and, with validation,
        ``val_accuracy``: one value per epoch), ``train_examples``, ``fraction``, ``epochs``,
        ``layer_decay``, ``seconds``.

    Raises:
        ValueError: for bad data, a fraction outside ``(0, 1]``, non-positive ``epochs``,
            ``batch_size`` or ``learning_rate``, or a ``layer_decay`` outside ``(0, 1]``.
    """
    check_int(epochs, "epochs")
    check_int(batch_size, "batch_size")
    _check_rates(learning_rate, weight_decay, layer_decay, validation_fraction)
    x_train, y_train = _as_arrays(train, "train")
    x_test, y_test = _as_arrays(test, "test")
    if num_classes is None:
        num_classes = int(max(y_train.max(), y_test.max())) + 1
    subset = label_fraction(y_train, fraction, seed)
    x_train, y_train = x_train[subset], y_train[subset]
    x_val = y_val = None
    if validation_fraction:
        held_out = label_fraction(y_train, validation_fraction, seed)
        kept = np.setdiff1d(np.arange(len(y_train)), held_out)
        x_val, y_val = x_train[held_out], y_train[held_out]
        x_train, y_train = x_train[kept], y_train[kept]

    classifier, backbone, head = _build_classifier(encoder, x_train.shape[1:], num_classes)
    batch = min(int(batch_size), len(x_train))
    steps_per_epoch = math.ceil(len(x_train) / batch)
    groups = layer_groups(backbone, head, layer_decay)
    optimizers = []
    for variables, scale in groups:
        optimizer = keras.optimizers.AdamW(
            learning_rate=keras.optimizers.schedules.CosineDecay(
                learning_rate * scale, epochs * steps_per_epoch
            ),
            weight_decay=weight_decay,
        )
        optimizer.exclude_from_weight_decay(var_names=NO_WEIGHT_DECAY)
        optimizer.build(variables)
        optimizers.append(optimizer)
    train_step = _train_step_fn(classifier, groups, optimizers)
    predict = tf.function(lambda x: classifier(to_float_images(x), training=False))

    rng = np.random.default_rng(seed)
    curves = {"loss": [], "test_accuracy": []}
    if x_val is not None:
        curves["val_accuracy"] = []
    start = time.monotonic()
    for epoch in range(int(epochs)):
        order = rng.permutation(len(x_train))
        losses = []
        for step in range(steps_per_epoch):
            index = order[step * batch : (step + 1) * batch]
            losses.append(float(train_step(tf.constant(x_train[index]), y_train[index])))
        curves["loss"].append(float(np.mean(losses)))
        test_logits = _logits(predict, x_test, batch)
        curves["test_accuracy"].append(_top_k(test_logits, y_test, 1))
        if x_val is not None:
            curves["val_accuracy"].append(_top_k(_logits(predict, x_val, batch), y_val, 1))
        if verbose:
            line = f"fine-tune epoch {epoch + 1}/{epochs}: " + " ".join(
                f"{name}={values[-1]:.4f}" for name, values in curves.items()
            )
            print(line, flush=True)
    result = {
        "accuracy": curves["test_accuracy"][-1],
        "curves": curves,
        "train_examples": int(len(x_train)),
        "test_examples": int(len(x_test)),
        "fraction": float(fraction),
        "epochs": int(epochs),
        "learning_rate": float(learning_rate),
        "layer_decay": None if layer_decay is None else float(layer_decay),
        "seconds": time.monotonic() - start,
    }
    if num_classes > 5:
        result["top5_accuracy"] = _top_k(test_logits, y_test, 5)
    return result


def clone_encoder(encoder, input_shape):
    """A structural copy of ``encoder`` with its weights copied (the original is untouched).

    Args:
        encoder: a built ``keras.Model`` (functional, sequential or subclassed with
            ``get_config``).
        input_shape: ``(height, width, channels)`` of the images.

    Returns:
        The copy, built on ``input_shape``.
    """
    try:
        copy = keras.models.clone_model(encoder)
    except (TypeError, ValueError, NotImplementedError):
        copy = encoder.__class__.from_config(encoder.get_config())
    if not copy.built:
        copy(tf.zeros((1, *input_shape)), training=False)
    copy.set_weights(encoder.get_weights())
    return copy


def layer_groups(backbone, head, layer_decay=None):
    """Splits the trainable variables into learning-rate groups ``(variables, scale)``.

    Args:
        backbone: the encoder being fine-tuned.
        head: the new classification layer.
        layer_decay: ``None`` for one group with scale 1, else the per-depth factor.

    Returns:
        list of ``(list of variables, learning-rate scale)``: without decay one group; with
        decay one group per encoder layer (variables sharing a path prefix), input side first,
        scaled ``layer_decay**depth``, and the head last with scale 1.
    """
    if layer_decay is None:
        return [(list(backbone.trainable_variables) + list(head.trainable_variables), 1.0)]
    layers = {}
    for variable in backbone.trainable_variables:
        layers.setdefault(variable.path.rsplit("/", 1)[0], []).append(variable)
    count = len(layers)
    groups = [
        (variables, float(layer_decay) ** (count - index))
        for index, variables in enumerate(layers.values())
    ]
    return groups + [(list(head.trainable_variables), 1.0)]


def _build_classifier(encoder, image_shape, num_classes):
    backbone = clone_encoder(encoder, image_shape)
    inputs = keras.Input(image_shape, dtype="float32")
    features = backbone(inputs)
    head = keras.layers.Dense(
        num_classes, kernel_initializer="zeros", dtype="float32", name="fine_tune_head"
    )
    logits = head(keras.layers.Flatten()(features) if len(features.shape) > 2 else features)
    return keras.Model(inputs, logits, name="fine_tuned"), backbone, head


def _train_step_fn(classifier, groups, optimizers):
    variables = [variable for group, _ in groups for variable in group]

    @tf.function(reduce_retracing=True)
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            logits = classifier(to_float_images(images), training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)
                )
            )
        gradients = tape.gradient(loss, variables)
        start = 0
        for (group, _), optimizer in zip(groups, optimizers):
            optimizer.apply(gradients[start : start + len(group)], group)
            start += len(group)
        return loss

    return train_step


def _logits(predict, images, batch):
    return np.concatenate(
        [predict(tf.constant(images[i : i + batch])).numpy() for i in range(0, len(images), batch)]
    )


def _top_k(logits, labels, k):
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def _as_arrays(data, name):
    data = check_labelled_data(data, name)
    if not isinstance(data, tf.data.Dataset):
        return data
    images, labels = [], []
    for image, label in data.as_numpy_iterator():
        images.append(image if image.ndim == 4 else image[None])
        labels.append(np.reshape(label, (-1,)))
    return check_labelled_data((np.concatenate(images), np.concatenate(labels)), name)


def _check_rates(learning_rate, weight_decay, layer_decay, validation_fraction):
    check_in_range(learning_rate, "learning_rate", low=0, low_open=True, fix="pass e.g. 1e-3.")
    check_in_range(weight_decay, "weight_decay", low=0, fix="pass e.g. 1e-4, or 0 to disable it.")
    fix = "pass e.g. 0.1, or 0 to disable the validation curve."
    check_in_range(validation_fraction, "validation_fraction", 0, 1, fix, high_open=True)
    if layer_decay is not None:
        fix = "pass e.g. 0.75 (lower layers learn slower), or None for one learning rate."
        check_in_range(layer_decay, "layer_decay", 0, 1, fix, low_open=True)
