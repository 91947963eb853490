"""Class-balanced label fractions for semi-supervised evaluation (1% / 10% of the labels)."""

import numpy as np

from keras_ssl.validation import check_in_range


def label_fraction(labels, fraction, seed=0):
    """Indices of a class-balanced random subset holding ``fraction`` of the labelled examples.

    Every class keeps ``round(fraction * count)`` of its examples (at least one), drawn without
    replacement; the same labels, fraction and seed give the same subset.

    Args:
        labels: ``[N]`` integer class ids.
        fraction: in ``(0, 1]`` (e.g. 0.01 or 0.1).
        seed: integer seed.

    Returns:
        Sorted ``int64`` indices into ``labels``.
    """
    labels = np.asarray(labels).reshape(-1)
    fix = "pass e.g. 0.01 for 1% of the labels."
    check_in_range(fraction, "fraction", 0, 1, fix, low_open=True)
    if labels.size == 0:
        raise ValueError("`labels` is empty; received 0 labels. Fix: pass the training labels.")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = max(1, int(round(fraction * len(members))))
        chosen.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)
