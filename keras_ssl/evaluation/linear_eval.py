"""The linear evaluation protocol: frozen features, a validation sweep, then the test score."""

import itertools

import numpy as np

from keras_ssl.evaluation.features import check_features, check_labels, extract_labelled_features
from keras_ssl.evaluation.fractions import label_fraction
from keras_ssl.evaluation.linear import linear_probe

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
    if isinstance(validation_fraction, bool) or not (
        isinstance(validation_fraction, (int, float)) and 0 < validation_fraction < 1
    ):
        raise ValueError(
            f"`validation_fraction` must be in (0, 1); received {validation_fraction!r}. "
            "Fix: pass e.g. 0.1 to hold out 10% of the training labels per class."
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
