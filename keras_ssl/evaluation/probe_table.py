"""The ``probes`` protocol: the run's own kNN and linear probe, next to the baselines.

This is what ``keras-ssl eval`` reports by default (``DIR/metrics.json``): weighted kNN at the
config's ``probes.knn_k`` / ``probes.knn_temperature`` and a linear probe trained for
``probes.linear_epochs``, the same probes that run while training. Given a random-init encoder
factory it adds two baselines on the same split: raw pixels (flattened, scaled to ``[0, 1]``)
and the same encoder architecture at random initialisation.
"""

import numpy as np

from keras_ssl.evaluation.features import extract_features, l2_normalize
from keras_ssl.evaluation.knn import knn_accuracy
from keras_ssl.evaluation.linear import linear_probe

ROW_NAMES = {"raw_pixels": "raw pixels", "random_init": "random-init encoder"}


def pixel_features(images):
    """``uint8`` images ``[N, H, W, C]`` -> ``float32`` ``[N, H*W*C]`` in ``[0, 1]``."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def probe_row(train_features, test_features, splits, probes, seed):
    """kNN and linear accuracy of one feature set: ``{"knn_accuracy", "linear_accuracy"}``.

    Args:
        train_features, test_features: un-normalised features of ``splits.train`` /
            ``splits.test`` images (kNN L2-normalises them; the linear probe standardises).
        splits: the protocol's :class:`~keras_ssl.evaluation.protocols.EvalSplits`.
        probes: the config's ``probes`` block (``knn_k``, ``knn_temperature``,
            ``linear_epochs``).
        seed: seed of the linear probe.
    """
    (_, train_labels), (_, test_labels) = splits.train, splits.test
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    knn = knn_accuracy(
        l2_normalize(train_features),
        train_labels,
        l2_normalize(test_features),
        test_labels,
        num_classes,
        k=probes.knn_k,
        temperature=probes.knn_temperature,
    )
    linear = linear_probe(
        train_features,
        train_labels,
        test_features,
        test_labels,
        num_classes,
        epochs=probes.linear_epochs,
        seed=seed,
    )
    return {"knn_accuracy": float(knn), "linear_accuracy": float(linear["accuracy"])}


def probes_protocol(model, config, splits, workdir):
    """The SSL encoder's kNN/linear row, plus ``raw_pixels`` and ``random_init`` rows when
    ``splits.random_encoder`` is given.

    Returns:
        ``{"knn_k", "knn_temperature", "results": {row name: probe_row(...)}}``.
    """
    del workdir  # nothing is written: metrics.json is the caller's

    def row(features):
        return probe_row(*features, splits, config.probes, int(config.seed))

    def encoder_features(encoder):
        return [
            extract_features(encoder, data[0], normalize=False)
            for data in (splits.train, splits.test)
        ]

    rows = {"ssl": row(encoder_features(model.export_encoder))}
    if splits.random_encoder is not None:
        rows["raw_pixels"] = row([pixel_features(data[0]) for data in (splits.train, splits.test)])
        rows["random_init"] = row(encoder_features(splits.random_encoder()))
    return {
        "knn_k": config.probes.knn_k,
        "knn_temperature": config.probes.knn_temperature,
        "results": rows,
    }


def format_table(metrics):
    """A plain-text table of a ``metrics.json`` record (its ``results`` rows)."""
    names = {"ssl": f"{metrics['method']} encoder", **ROW_NAMES}
    lines = [
        f"Probes on {metrics['probe_train_examples']} train / {metrics['probe_test_examples']} "
        f"test images (kNN k={metrics['knn_k']}, T={metrics['knn_temperature']}, cosine):",
        f"{'features':<24}{'kNN acc':>10}{'linear acc':>12}",
    ]
    for key, row in metrics["results"].items():
        lines.append(
            f"{names.get(key, key):<24}{row['knn_accuracy']:>10.4f}{row['linear_accuracy']:>12.4f}"
        )
    return "\n".join(lines)
