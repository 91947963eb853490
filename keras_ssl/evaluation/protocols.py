"""The evaluation protocols of ``keras-ssl eval --protocol``, as a registry.

Each protocol is a function ``(model, config, splits, workdir) -> dict`` (JSON-able). ``splits``
is :class:`EvalSplits`: the labelled probe train/test arrays, the protocol options, and a
factory for the random-initialisation baseline encoder. Adding a protocol is one line:
``PROTOCOLS["name"] = function``.

Frozen features are computed once per encoder and evaluation and cached under
``DIR/features/<checkpoint key>_<split>.npy`` (the key hashes ``model.keras`` and the probe
split), so ``linear``, ``knn``, ``fractions`` and ``embedding`` share one pass of the encoder.
"""

import dataclasses
import hashlib
import os
import tempfile

import numpy as np

from keras_ssl.evaluation.efficiency import data_efficiency
from keras_ssl.evaluation.features import extract_features
from keras_ssl.evaluation.fine_tune import fine_tune
from keras_ssl.evaluation.knn import TEMPERATURE, knn_sweep
from keras_ssl.evaluation.linear import linear_sweep
from keras_ssl.evaluation.plots import (
    embed_2d,
    plot_convergence,
    plot_data_efficiency,
    plot_embedding,
)
from keras_ssl.evaluation.probe_table import probes_protocol
from keras_ssl.evaluation.segmentation import SEGMENTATION_OPTIONS, segmentation_protocol
from keras_ssl.retrieval.protocol import RETRIEVAL_OPTIONS, retrieval_protocol

#: Protocol budgets, small enough for a 2-core CPU; override with ``evaluate(options=...)`` or
#: ``keras-ssl eval --eval_option=name=value``.
DEFAULT_OPTIONS = {
    "linear_epochs": 50,
    "linear_learning_rates": (1e-3, 1e-2),
    "linear_weight_decays": (0.0, 1e-4, 1e-3),
    "validation_fraction": 0.1,
    "knn_ks": (20, 200),
    "knn_temperature": TEMPERATURE,
    "finetune_epochs": 5,
    "finetune_fraction": 0.1,
    "finetune_learning_rate": 1e-3,
    "finetune_layer_decay": None,
    "fractions": (0.01, 0.1, 1.0),
    "fraction_seeds": (0, 1, 2),
    "fraction_protocol": "linear",
    "embedding_points": 2000,
    "embedding_method": "tsne",
    **SEGMENTATION_OPTIONS,
    **RETRIEVAL_OPTIONS,
}


@dataclasses.dataclass
class EvalSplits:
    """What every protocol receives besides the model and the config.

    Attributes:
        train: ``(images uint8 [N, H, W, C], labels [N])`` labelled probe training split.
        test: ``(images, labels)`` probe test split.
        options: ``DEFAULT_OPTIONS`` updated with the user's overrides.
        random_encoder: zero-argument callable building the same encoder architecture from
            random initialisation (seeded), for baselines.
        cache_key: identifies the checkpoint and split in cached feature file names.
    """

    train: tuple
    test: tuple
    options: dict
    random_encoder: object = None
    cache_key: str = ""


def checkpoint_key(model_path, *parts):
    """A short hash of a checkpoint file and extra identifying values (split sizes, seed)."""
    digest = hashlib.sha1()
    with open(model_path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(repr(parts).encode())
    return digest.hexdigest()[:12]


def cached_features(encoder, images, workdir, name):
    """Frozen (un-normalised) features, loaded from ``DIR/features/name.npy`` when present."""
    path = os.path.join(workdir, "features", f"{name}.npy") if workdir and name else None
    if path and os.path.exists(path):
        return np.load(path)
    features = extract_features(encoder, images, normalize=False)
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".npy.tmp", dir=os.path.dirname(path))
        with os.fdopen(handle, "wb") as file:
            np.save(file, features)
        os.replace(temporary, path)
    return features


def _ssl_features(model, splits, workdir):
    encoder = model.export_encoder
    return tuple(
        cached_features(encoder, data[0], workdir, f"{splits.cache_key}_{name}")
        for name, data in (("train", splits.train), ("test", splits.test))
    )


def _num_classes(splits):
    return int(max(splits.train[1].max(), splits.test[1].max())) + 1


def linear_protocol(model, config, splits, workdir):
    """Linear evaluation with a learning-rate / weight-decay sweep (see ``linear_sweep``)."""
    del config
    options = splits.options
    train_features, test_features = _ssl_features(model, splits, workdir)
    return linear_sweep(
        train_features,
        splits.train[1],
        test_features,
        splits.test[1],
        _num_classes(splits),
        options["linear_learning_rates"],
        options["linear_weight_decays"],
        options["validation_fraction"],
        options["linear_epochs"],
    )


def knn_protocol(model, config, splits, workdir):
    """Weighted kNN for each ``k`` in ``knn_ks`` (capped at the training-set size)."""
    del config
    train_features, test_features = _ssl_features(model, splits, workdir)
    ks = sorted({min(int(k), len(train_features)) for k in splits.options["knn_ks"]})
    return knn_sweep(
        train_features,
        splits.train[1],
        test_features,
        splits.test[1],
        ks,
        splits.options["knn_temperature"],
        _num_classes(splits),
    )


def finetune_protocol(model, config, splits, workdir):
    """Fine-tunes the SSL encoder and the random-init one; writes ``convergence.png``."""
    options = splits.options
    kwargs = dict(
        num_classes=_num_classes(splits),
        fraction=options["finetune_fraction"],
        seed=int(config.seed),
        epochs=options["finetune_epochs"],
        learning_rate=options["finetune_learning_rate"],
        layer_decay=options["finetune_layer_decay"],
        validation_fraction=options["validation_fraction"],
    )
    results = {"ssl": fine_tune(model.export_encoder, splits.train, splits.test, **kwargs)}
    if splits.random_encoder is not None:
        results["random_init"] = fine_tune(
            splits.random_encoder(), splits.train, splits.test, **kwargs
        )
    plot_convergence(
        {name: result["curves"] for name, result in results.items()},
        os.path.join(workdir, "convergence.png"),
    )
    return {**results, "plot": "convergence.png"}


def fractions_protocol(model, config, splits, workdir):
    """Accuracy vs label fraction, SSL and random init; writes ``data_efficiency.png``."""
    options = splits.options
    encoders = {"ssl": model.export_encoder}
    features = {}
    if options["fraction_protocol"] == "linear":
        features["ssl"] = _ssl_features(model, splits, workdir)
    if splits.random_encoder is not None:
        encoders["random_init"] = splits.random_encoder()
    result = data_efficiency(
        encoders,
        splits.train,
        splits.test,
        fractions=options["fractions"],
        seeds=options["fraction_seeds"],
        protocol=options["fraction_protocol"],
        num_classes=_num_classes(splits),
        features=features,
        epochs=options["finetune_epochs"] if options["fraction_protocol"] == "finetune" else None,
        verbose=1,
    )
    plot_data_efficiency(result, os.path.join(workdir, "data_efficiency.png"))
    return {**result, "plot": "data_efficiency.png"}


def embedding_protocol(model, config, splits, workdir):
    """2-D map (t-SNE, or UMAP) of up to ``embedding_points`` test embeddings by class."""
    options = splits.options
    _, test_features = _ssl_features(model, splits, workdir)
    labels = splits.test[1]
    count = min(int(options["embedding_points"]), len(labels))
    chosen = np.sort(np.random.default_rng(config.seed).permutation(len(labels))[:count])
    method = options["embedding_method"]
    points = embed_2d(test_features[chosen], method, seed=int(config.seed))
    name = f"embedding_{method}.png"
    plot_embedding(
        points, labels[chosen], os.path.join(workdir, name), title=f"Test embeddings ({method})"
    )
    return {"method": method, "points": count, "plot": name}


PROTOCOLS = {
    "probes": probes_protocol,
    "linear": linear_protocol,
    "knn": knn_protocol,
    "finetune": finetune_protocol,
    "fractions": fractions_protocol,
    "embedding": embedding_protocol,
    "segmentation": segmentation_protocol,
    "retrieval": retrieval_protocol,
}
