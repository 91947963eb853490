"""Label-fraction runs and the data-efficiency curve: accuracy against the share of labels."""

import numpy as np

from keras_ssl.evaluation.features import check_labelled_data, extract_labelled_features
from keras_ssl.evaluation.fine_tune import fine_tune
from keras_ssl.evaluation.fractions import label_fraction
from keras_ssl.evaluation.linear import linear_probe

FRACTIONS = (0.01, 0.1, 1.0)
SEEDS = (0, 1, 2)
_PROTOCOLS = ("linear", "finetune")


def data_efficiency(
    encoders,
    train,
    test,
    fractions=FRACTIONS,
    seeds=SEEDS,
    protocol="linear",
    num_classes=None,
    features=None,
    epochs=None,
    verbose=0,
    **fine_tune_kwargs,
):
    """Accuracy of each encoder trained on class-balanced label fractions, over several seeds.

    For every fraction and seed the same labelled subset
    (``label_fraction(train_labels, fraction, seed)``) is used for every encoder, so the SSL
    encoder and the random-initialisation baseline are compared on identical labels.

    Args:
        encoders: dict ``name -> encoder`` (e.g. ``{"ssl": ..., "random_init": ...}``).
        train: labelled training data, ``(images, labels)`` or a dataset of pairs.
        test: labelled test data, same forms.
        fractions: shares of the training labels, each in ``(0, 1]``.
        seeds: one run per seed and fraction.
        protocol: ``"linear"`` (frozen features, computed once per encoder, then
            ``linear_probe``; cheap) or ``"finetune"`` (``fine_tune`` per run; slow on CPU).
        num_classes: number of classes; ``None`` infers it from the labels.
        features: optional dict ``name -> (train_features, test_features)`` of precomputed
            frozen features (linear protocol), aligned with ``train``/``test``.
        epochs: training epochs per run; ``None`` uses 100 (linear) or 5 (finetune).
        verbose: 1 prints a line per run.
        **fine_tune_kwargs: passed to ``fine_tune`` (finetune protocol).

    Returns:
        JSON-able dict: ``fractions``, ``seeds``, ``protocol``, ``train_examples`` (per
        fraction: labelled examples used), and ``results``: ``name -> {"mean": [...],
        "std": [...], "runs": [[accuracy per seed] per fraction]}``.

    Raises:
        ValueError: for an unknown protocol, no encoders, or bad fractions.
    """
    if protocol not in _PROTOCOLS:
        raise ValueError(
            f"Unknown label-fraction protocol {protocol!r}; expected one of {_PROTOCOLS}. "
            "Fix: pass protocol='linear' (frozen features) or 'finetune'."
        )
    if not isinstance(encoders, dict) or not encoders:
        raise ValueError(
            f"`encoders` must be a non-empty dict name -> encoder; received "
            f"{type(encoders).__name__}. Fix: pass e.g. {{'ssl': model.export_encoder}}."
        )
    fractions, seeds = [float(f) for f in fractions], [int(s) for s in seeds]
    train_labels = _labels(train, "train")
    for fraction in fractions:
        label_fraction(train_labels[:1], fraction)  # validates the fraction
    if num_classes is None:
        num_classes = int(max(train_labels.max(), _labels(test, "test").max())) + 1
    subsets = {(f, s): label_fraction(train_labels, f, s) for f in fractions for s in seeds}
    results = {}
    for name, encoder in encoders.items():
        if protocol == "linear":
            runs = _linear_runs(
                encoder, train, test, subsets, num_classes, (features or {}).get(name), epochs
            )
        else:
            runs = {
                key: fine_tune(
                    encoder,
                    train,
                    test,
                    num_classes,
                    fraction=key[0],
                    seed=key[1],
                    epochs=epochs or 5,
                    verbose=0,
                    **fine_tune_kwargs,
                )["accuracy"]
                for key in subsets
            }
        table = [[runs[(f, s)] for s in seeds] for f in fractions]
        results[name] = {
            "mean": [float(np.mean(row)) for row in table],
            "std": [float(np.std(row)) for row in table],
            "runs": table,
        }
        if verbose:
            for fraction, row in zip(fractions, table):
                print(
                    f"{name}: {fraction:.0%} labels -> accuracy {np.mean(row):.4f} "
                    f"(+- {np.std(row):.4f}, {len(row)} seeds)",
                    flush=True,
                )
    return {
        "fractions": fractions,
        "seeds": seeds,
        "protocol": protocol,
        "train_examples": [int(len(subsets[(f, seeds[0])])) for f in fractions],
        "results": results,
    }


def _linear_runs(encoder, train, test, subsets, num_classes, features, epochs):
    if features is None:
        train_features, train_labels = extract_labelled_features(encoder, train, normalize=False)
        test_features, test_labels = extract_labelled_features(encoder, test, normalize=False)
    else:
        train_features, test_features = features
        train_labels, test_labels = _labels(train, "train"), _labels(test, "test")
    runs = {}
    for (fraction, seed), subset in subsets.items():
        runs[(fraction, seed)] = linear_probe(
            train_features[subset],
            train_labels[subset],
            test_features,
            test_labels,
            num_classes,
            epochs=epochs or 100,
            batch_size=256,
            seed=seed,
        )["accuracy"]
    return runs


def _labels(data, name):
    data = check_labelled_data(data, name)
    if isinstance(data, tuple):
        return data[1]
    return np.concatenate(
        [np.reshape(label, (-1,)) for _, label in data.as_numpy_iterator()]
    ).astype(np.int64)
