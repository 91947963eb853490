"""The weighted k-nearest-neighbour evaluation protocol on frozen, L2-normalised features."""

import numpy as np

from keras_ssl.evaluation.features import check_features, extract_labelled_features
from keras_ssl.evaluation.knn import check_knn_arguments, knn_accuracy

#: k=200 with temperature 0.1 is the common CIFAR protocol (Wu et al. 2018, InstDisc); k=20 is
#: the other usual setting.
KS = (20, 200)
TEMPERATURE = 0.1


def knn_eval(encoder, train, test, ks=KS, temperature=TEMPERATURE, num_classes=None, verbose=0):
    """Weighted kNN accuracy of a frozen encoder for several ``k`` (features computed once).

    Args:
        encoder: frozen encoder (``model.export_encoder``).
        train: labelled reference data, ``(images, labels)`` or a dataset of pairs.
        test: labelled queries, same forms.
        ks: numbers of neighbours to report (each at most the training-set size).
        temperature: softness of the vote weights ``exp(similarity / temperature)``.
        num_classes: number of classes; ``None`` infers it from the labels.
        verbose: 1 shows progress bars while embedding.

    Returns:
        JSON-able dict, see :func:`knn_sweep`.
    """
    train_features, train_labels = extract_labelled_features(encoder, train, verbose=verbose)
    test_features, test_labels = extract_labelled_features(encoder, test, verbose=verbose)
    return knn_sweep(
        train_features, train_labels, test_features, test_labels, ks, temperature, num_classes
    )


def knn_sweep(
    train_features,
    train_labels,
    test_features,
    test_labels,
    ks=KS,
    temperature=TEMPERATURE,
    num_classes=None,
):
    """:func:`~keras_ssl.evaluation.knn_accuracy` for every ``k`` in ``ks`` on one feature set.

    Args:
        train_features: ``[N_train, D]`` features (L2-normalised inside ``knn_predict``).
        train_labels: ``[N_train]`` integer class ids.
        test_features: ``[N_test, D]``.
        test_labels: ``[N_test]``.
        ks, temperature, num_classes: see :func:`knn_eval`.

    Returns:
        dict with ``accuracy`` (at the first ``k``), ``accuracies`` (``{str(k): accuracy}``),
        ``ks``, ``temperature``, ``train_examples`` and ``test_examples``.

    Raises:
        ValueError: for an empty ``ks``, a ``k`` larger than the training set, a non-positive
            temperature, or features and labels that do not match.
    """
    ks = [ks] if isinstance(ks, (int, np.integer)) else list(ks)
    if not ks:
        raise ValueError(
            "`ks` is empty; expected at least one number of neighbours. Fix: pass e.g. "
            "ks=(20, 200)."
        )
    train_features = check_features(train_features, "train_features")
    for k in ks:
        check_knn_arguments(k, temperature, len(train_features))
    if num_classes is None:
        num_classes = int(max(np.max(train_labels), np.max(test_labels))) + 1
    accuracies = {
        str(int(k)): knn_accuracy(
            train_features,
            train_labels,
            test_features,
            test_labels,
            num_classes,
            k=int(k),
            temperature=temperature,
        )
        for k in ks
    }
    return {
        "accuracy": accuracies[str(int(ks[0]))],
        "accuracies": accuracies,
        "ks": [int(k) for k in ks],
        "temperature": float(temperature),
        "train_examples": int(len(train_features)),
        "test_examples": int(len(test_labels)),
    }
