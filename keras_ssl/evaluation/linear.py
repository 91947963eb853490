"""Linear probe: multinomial logistic regression on frozen embeddings."""

import itertools
import math

import numpy as np
import tensorflow as tf

from keras_ssl.evaluation.features import (
    check_features,
    check_labels,
    extract_labelled_features,
)
from keras_ssl.evaluation.fractions import label_fraction
from keras_ssl.validation import check_in_range, check_int


def linear_probe(
    train_features,
    train_labels,
    test_features,
    test_labels,
    num_classes=None,
    epochs=100,
    batch_size=1024,
    learning_rate=1e-3,
    weight_decay=1e-4,
    seed=0,
):
    """Trains a softmax classifier on frozen features and reports its accuracy.

    Features are standardised with the training mean and standard deviation (constant features
    are only centred). The classifier ``softmax(x W + b)`` starts at zero and minimises the mean
    cross-entropy plus ``weight_decay / 2 * ||W||^2`` (the bias is not decayed) with Adam, the
    learning rate following a cosine decay from ``learning_rate`` to 0 over all steps.

    The training set is shuffled once (from ``seed``) into fixed full batches, the last one
    wrapping around to the start of the permutation, and every epoch visits the batches in a
    new order drawn from ``seed``; contiguous batches make each step two dense matmuls. The
    whole optimisation runs in one XLA-compiled TensorFlow loop, so 60k x 512 features train
    for 100 epochs in about 3 s on 2 CPU cores. The same inputs and seed give the same result.

    Args:
        train_features: ``[N_train, D]`` embeddings of the training examples.
        train_labels: ``[N_train]`` integer class ids in ``[0, num_classes)``.
        test_features: ``[N_test, D]`` embeddings of the evaluation examples.
        test_labels: ``[N_test]`` integer class ids.
        num_classes: number of classes; ``None`` uses the largest label in either set plus one.
        epochs: passes over the training set (>= 1).
        batch_size: examples per step (capped at ``N_train``).
        learning_rate: peak Adam learning rate (> 0).
        weight_decay: L2 penalty on the weights (>= 0).
        seed: integer seed of the shuffling order.

    Returns:
        dict with ``accuracy`` (test top-1), ``train_accuracy`` (top-1 on the training set)
        and, when ``num_classes > 5``, ``top5_accuracy`` (test top-5); Python floats.

    Raises:
        ValueError: for features that are not ``[N, D]`` with matching ``D``, labels whose
            length or range does not match, or non-positive ``epochs``, ``batch_size``,
            ``learning_rate`` or negative ``weight_decay``.
    """
    train_features = check_features(train_features, "train_features")
    test_features = check_features(test_features, "test_features")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"`test_features` must have the same feature dimension as `train_features`; "
            f"received {test_features.shape[1]} and {train_features.shape[1]}. Fix: compute "
            "both with the same encoder."
        )
    check_linear_probe_arguments(num_classes, epochs, batch_size, learning_rate, weight_decay, seed)
    train_labels = check_labels(
        train_labels, len(train_features), num_classes, "train_labels", "train_features"
    )
    test_labels = check_labels(
        test_labels, len(test_features), num_classes, "test_labels", "test_features"
    )
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1

    mean = train_features.mean(axis=0, dtype=np.float64)
    std = train_features.std(axis=0, dtype=np.float64)
    std = np.where(std > 1e-6, std, 1.0)
    train_x = ((train_features - mean) / std).astype(np.float32)
    test_x = ((test_features - mean) / std).astype(np.float32)

    # Fixed batches from one seeded shuffle; each epoch visits them in a new seeded order.
    batch = min(int(batch_size), len(train_x))
    steps_per_epoch = math.ceil(len(train_x) / batch)
    order = np.random.default_rng(seed).permutation(len(train_x))
    order = np.resize(order, steps_per_epoch * batch)  # The last batch wraps around.
    blocks = train_x[order].reshape(steps_per_epoch, batch, -1).transpose(0, 2, 1)
    label_blocks = train_labels[order].reshape(steps_per_epoch, batch)
    weights, bias = _train(
        tf.constant(np.ascontiguousarray(blocks)),
        tf.constant(label_blocks),
        int(num_classes),
        tf.constant(int(epochs)),
        tf.constant(float(learning_rate)),
        tf.constant(float(weight_decay)),
        tf.constant(int(seed), tf.int64),
    )
    weights, bias = weights.numpy().T, bias.numpy()
    test_logits = test_x @ weights + bias
    train_logits = train_x @ weights + bias
    result = {
        "accuracy": float(np.mean(np.argmax(test_logits, axis=1) == test_labels)),
        "train_accuracy": float(np.mean(np.argmax(train_logits, axis=1) == train_labels)),
    }
    if num_classes > 5:
        top5 = np.argsort(-test_logits, axis=1, kind="stable")[:, :5]
        result["top5_accuracy"] = float(np.mean(np.any(top5 == test_labels[:, None], axis=1)))
    return result


def check_linear_probe_arguments(
    num_classes, epochs, batch_size, learning_rate, weight_decay, seed
):
    """Validates the hyperparameters of :func:`linear_probe` (raises ``ValueError``)."""
    check_int(epochs, "epochs")
    check_int(batch_size, "batch_size")
    if num_classes is not None:
        fix = "pass the number of classes, or None to infer it from the labels."
        check_int(num_classes, "num_classes", minimum=2, fix=fix)
    check_in_range(learning_rate, "learning_rate", low=0, low_open=True, fix="pass e.g. 1e-3.")
    fix = "pass e.g. 1e-4, or 0 to disable it."
    check_in_range(weight_decay, "weight_decay", low=0, fix=fix)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an integer; received {seed!r}. Fix: pass e.g. 0.")


@tf.function(jit_compile=True)
def _train(blocks, label_blocks, num_classes, epochs, learning_rate, decay, seed):
    """Adam on softmax cross-entropy + L2, with hand-written gradients, in one compiled loop.

    Args:
        blocks: ``[steps, D, batch]`` batches of standardised features, transposed so that
            every matmul streams contiguous memory (3-5x faster on CPU than ``[batch, D]``).
        label_blocks: ``[steps, batch]`` class ids.
        num_classes: Python int (a static shape for XLA).
        epochs, learning_rate, decay, seed: scalar tensors.

    Returns:
        ``(weights [num_classes, D], bias [num_classes])``.
    """
    steps_per_epoch = tf.shape(blocks)[0]
    dim = tf.shape(blocks)[1]
    batch = blocks.shape[2]
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7
    total_steps = tf.cast(epochs * steps_per_epoch, tf.float32)
    zeros_w = tf.zeros(tf.stack([num_classes, dim]))
    zeros_b = tf.zeros([num_classes, 1])

    def epoch_body(epoch, step, w, b, m_w, m_b, v_w, v_b):
        order_seed = tf.stack([seed, tf.cast(epoch, tf.int64)])
        order = tf.argsort(tf.random.stateless_uniform([steps_per_epoch], order_seed))

        def step_body(index, step, w, b, m_w, m_b, v_w, v_b):
            block = order[index]
            x_batch = blocks[block]  # [D, batch]
            one_hot = tf.one_hot(label_blocks[block], num_classes, axis=0)  # [classes, batch]
            probabilities = tf.nn.softmax(tf.matmul(w, x_batch) + b, axis=0)
            grad_logits = (probabilities - one_hot) / float(batch)
            grad_w = tf.matmul(grad_logits, x_batch, transpose_b=True) + decay * w
            grad_b = tf.reduce_sum(grad_logits, axis=1, keepdims=True)
            step = step + 1
            t = tf.cast(step, tf.float32)
            rate = learning_rate * 0.5 * (1.0 + tf.cos(math.pi * (t - 1.0) / total_steps))
            rate = rate * tf.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
            m_w = beta_1 * m_w + (1.0 - beta_1) * grad_w
            m_b = beta_1 * m_b + (1.0 - beta_1) * grad_b
            v_w = beta_2 * v_w + (1.0 - beta_2) * tf.square(grad_w)
            v_b = beta_2 * v_b + (1.0 - beta_2) * tf.square(grad_b)
            w = w - rate * m_w / (tf.sqrt(v_w) + epsilon)
            b = b - rate * m_b / (tf.sqrt(v_b) + epsilon)
            return index + 1, step, w, b, m_w, m_b, v_w, v_b

        _, step, w, b, m_w, m_b, v_w, v_b = tf.while_loop(
            lambda index, *_: index < steps_per_epoch,
            step_body,
            (tf.constant(0), step, w, b, m_w, m_b, v_w, v_b),
        )
        return epoch + 1, step, w, b, m_w, m_b, v_w, v_b

    _, _, w, b, *_ = tf.while_loop(
        lambda epoch, *_: epoch < epochs,
        epoch_body,
        (tf.constant(0), tf.constant(0), zeros_w, zeros_b, zeros_w, zeros_b, zeros_w, zeros_b),
    )
    return w, b[:, 0]


#: The default sweep: a small grid over the Adam learning rate and the L2 penalty.
LEARNING_RATES = (1e-3, 1e-2)
WEIGHT_DECAYS = (0.0, 1e-4, 1e-3)


def linear_eval(
    encoder,
    train,
    test,
    num_classes=None,
    learning_rates=LEARNING_RATES,
    weight_decays=WEIGHT_DECAYS,
    validation_fraction=0.1,
    epochs=50,
    batch_size=1024,
    seed=0,
    verbose=0,
):
    """Linear evaluation of a frozen encoder: features once, sweep on validation, test top-1/5.

    The encoder embeds ``train`` and ``test`` once (no L2 normalisation: the classifier
    standardises the features); :func:`linear_sweep` then picks the learning rate and weight
    decay on a class-balanced validation split of ``train`` and retrains on all of ``train``.
    With the defaults (6 settings x 50 epochs) 10k x 512 features take a few seconds on 2 cores.

    Args:
        encoder: frozen encoder (``model.export_encoder``), float images in ``[0, 1]`` ->
            ``[batch, D]``.
        train: labelled training data, ``(images, labels)`` or a dataset of pairs.
        test: labelled test data, same forms.
        num_classes: number of classes; ``None`` infers it from the labels.
        learning_rates: peak Adam learning rates to try.
        weight_decays: L2 penalties to try.
        validation_fraction: share of ``train`` held out (per class) to choose the setting.
        epochs: passes of each linear classifier over its training features.
        batch_size: examples per classifier step.
        seed: seed of the validation split and the shuffling.
        verbose: 1 shows progress bars while embedding and a line per setting.

    Returns:
        JSON-able dict, see :func:`linear_sweep`.
    """
    train_features, train_labels = extract_labelled_features(
        encoder, train, normalize=False, verbose=verbose
    )
    test_features, test_labels = extract_labelled_features(
        encoder, test, normalize=False, verbose=verbose
    )
    return linear_sweep(
        train_features,
        train_labels,
        test_features,
        test_labels,
        num_classes,
        learning_rates,
        weight_decays,
        validation_fraction,
        epochs,
        batch_size,
        seed,
        verbose,
    )


def linear_sweep(
    train_features,
    train_labels,
    test_features,
    test_labels,
    num_classes=None,
    learning_rates=LEARNING_RATES,
    weight_decays=WEIGHT_DECAYS,
    validation_fraction=0.1,
    epochs=50,
    batch_size=1024,
    seed=0,
    verbose=0,
):
    """Chooses the linear probe's learning rate and weight decay on validation, reports test.

    ``label_fraction(train_labels, validation_fraction, seed)`` is held out; every
    ``(learning_rate, weight_decay)`` pair trains :func:`~keras_ssl.evaluation.linear_probe` on
    the rest and is scored on the held-out part. The best pair (the first one listed on ties)
    is retrained on the whole training set and scored on the test set.

    Args:
        train_features: ``[N_train, D]`` frozen features.
        train_labels: ``[N_train]`` integer class ids.
        test_features: ``[N_test, D]``.
        test_labels: ``[N_test]``.
        num_classes, learning_rates, weight_decays, validation_fraction, epochs, batch_size,
            seed, verbose: see :func:`linear_eval`.

    Returns:
        dict with ``accuracy`` (test top-1), ``top5_accuracy`` (when more than 5 classes),
        ``train_accuracy``, ``learning_rate`` and ``weight_decay`` (the chosen ones),
        ``validation_accuracy`` of the chosen pair and ``sweep``: a list of
        ``{"learning_rate", "weight_decay", "validation_accuracy"}``.

    Raises:
        ValueError: for an empty sweep, a ``validation_fraction`` outside ``(0, 1)``, or
            features/labels that do not match (see ``linear_probe``).
    """
    learning_rates, weight_decays = tuple(learning_rates), tuple(weight_decays)
    if not learning_rates or not weight_decays:
        raise ValueError(
            f"The sweep is empty: received learning_rates={learning_rates} and "
            f"weight_decays={weight_decays}; expected at least one value each. Fix: pass e.g. "
            "learning_rates=(1e-3,), weight_decays=(0.0,)."
        )
    fix = "pass e.g. 0.1 to hold out 10% of the training labels per class."
    check_in_range(
        validation_fraction, "validation_fraction", 0, 1, fix, low_open=True, high_open=True
    )
    train_features = check_features(train_features, "train_features")
    train_labels = check_labels(train_labels, len(train_features), num_classes, "train_labels")
    test_labels = np.asarray(test_labels)
    if num_classes is None:
        num_classes = int(max(train_labels.max(), np.max(test_labels))) + 1
    held_out = label_fraction(train_labels, validation_fraction, seed)
    keep = np.setdiff1d(np.arange(len(train_labels)), held_out)
    if len(keep) == 0:
        raise ValueError(
            f"`validation_fraction`={validation_fraction} leaves no training examples out of "
            f"{len(train_labels)}. Fix: use more labelled examples or a smaller fraction."
        )
    sweep = []
    for learning_rate, weight_decay in itertools.product(learning_rates, weight_decays):
        result = linear_probe(
            train_features[keep],
            train_labels[keep],
            train_features[held_out],
            train_labels[held_out],
            num_classes,
            epochs,
            batch_size,
            learning_rate,
            weight_decay,
            seed,
        )
        sweep.append(
            {
                "learning_rate": float(learning_rate),
                "weight_decay": float(weight_decay),
                "validation_accuracy": result["accuracy"],
            }
        )
        if verbose:
            print(
                f"linear sweep: lr={learning_rate:g} wd={weight_decay:g} "
                f"val_accuracy={result['accuracy']:.4f}",
                flush=True,
            )
    best = max(sweep, key=lambda row: row["validation_accuracy"])  # first of equals wins
    final = linear_probe(
        train_features,
        train_labels,
        test_features,
        test_labels,
        num_classes,
        epochs,
        batch_size,
        best["learning_rate"],
        best["weight_decay"],
        seed,
    )
    return {
        **final,
        "learning_rate": best["learning_rate"],
        "weight_decay": best["weight_decay"],
        "validation_accuracy": best["validation_accuracy"],
        "sweep": sweep,
        "train_examples": int(len(train_labels)),
        "test_examples": int(len(test_labels)),
    }
