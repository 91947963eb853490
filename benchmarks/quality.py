"""Every registered method on Fashion-MNIST with one shared budget; a markdown results table.

    python benchmarks/quality.py [--methods simclr,byol] [--epochs 3] [--minutes M]
                                 [--out runs/quality]

Each method trains from its own ``configs/<method>_fashion_mnist.py`` (its loss, heads,
augmentations and optimizer) with the shared budget overriding the rest: the same SmallResNet
16-32-64 backbone, batch 128, ``--epochs`` epochs over all 60,000 training images. The budget is
counted in epochs by default, so the accuracies do not depend on the machine's speed or load
(seeded, deterministic augmentation); ``--minutes`` adds a wall-clock cap per method (training
stops there, and the epochs column shows how far it got). The frozen encoder is
then probed on the full split: weighted kNN (k=20, T=0.07) with all 60,000 training images as
references, a linear classifier on all labels, and linear classifiers on class-balanced 1% and
10% of the labels (seed 0); clustering methods (IIC, DeepCluster) also get their unsupervised
clustering accuracy (Hungarian matching of predicted clusters to the 10 classes on the test set).
Raw pixels and the random-init encoder are the baselines. The table
goes to stdout and ``OUT/results.md``; every run's work folder stays under ``OUT/<method>``.

The colour methods (Colorization, SplitBrain: they learn from the ab channels of RGB images)
have nothing to learn from grayscale Fashion-MNIST; they are listed in the table as not run, with
that reason, and measured on photos by their own examples.
"""

import argparse
import importlib.util
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_ssl import config as config_lib  # noqa: E402
from keras_ssl import evaluation, experiment, methods, precision  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRACTIONS = (0.01, 0.1)


def needs_rgb(name):
    """True for methods that learn from colour and cannot train on grayscale images."""
    return getattr(methods.REGISTRY[name], "requires_rgb", False)


def method_config(name, epochs, minutes):
    """The method's own config with the shared budget applied."""
    path = os.path.join(ROOT, "configs", f"{name}_fashion_mnist.py")
    if not os.path.exists(path):
        raise ValueError(
            f"No config for method {name!r}: expected {path}. Fix: add "
            f"configs/{name}_fashion_mnist.py or drop {name!r} from --methods."
        )
    spec = importlib.util.spec_from_file_location(f"{name}_fashion_mnist", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.backbone = "small_resnet"
    config.backbone_kwargs = {"widths": (16, 32, 64)}
    config.batch_size = 128
    config.epochs = epochs
    config.time_budget_minutes = minutes
    config.data.train_examples = None
    config.data.probe_train_examples = 10000  # the per-epoch kNN probe while training
    config.data.probe_test_examples = None
    config.probes.knn_every_epochs = max(1, epochs // 3)
    config_lib.validate(config)
    return config


def probe(train_features, test_features, y_train, y_test):
    """kNN, linear (all labels) and linear on label fractions, on one feature set."""
    normalized = [evaluation.l2_normalize(f) for f in (train_features, test_features)]
    row = {
        "knn": evaluation.knn_accuracy(normalized[0], y_train, normalized[1], y_test, k=20),
        "linear": evaluation.linear_probe(train_features, y_train, test_features, y_test)[
            "accuracy"
        ],
    }
    for fraction in FRACTIONS:
        subset = evaluation.label_fraction(y_train, fraction, seed=0)
        result = evaluation.linear_probe(
            train_features[subset], y_train[subset], test_features, y_test, epochs=200
        )
        row[f"linear_{fraction:g}"] = result["accuracy"]
    return row


def encoder_row(encoder, splits):
    x_train, y_train, x_test, y_test = splits
    train = evaluation.extract_features(encoder, x_train, normalize=False)
    test = evaluation.extract_features(encoder, x_test, normalize=False)
    return probe(train, test, y_train, y_test)


def format_table(rows):
    header = (
        "| method | backbone | epochs | batch | train min | kNN | linear | linear 1% | "
        "linear 10% | clustering |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['method']} | not run: {row['skipped']} |" + " - |" * 8)
            continue
        lines.append(
            f"| {row['method']} | {row['backbone']} | {row['epochs']} | {row['batch']} | "
            f"{row['minutes']} | {row['knn']:.4f} | {row['linear']:.4f} | "
            f"{row['linear_0.01']:.4f} | {row['linear_0.1']:.4f} | "
            + (f"{row['clustering']:.4f} |" if row.get("clustering") is not None else "- |")
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(sorted(methods.REGISTRY)))
    parser.add_argument("--epochs", type=int, default=3, help="epochs per method")
    parser.add_argument("--minutes", type=float, default=None, help="optional cap per method")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "quality"))
    args = parser.parse_args()
    names = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = sorted(set(names) - set(methods.REGISTRY))
    if unknown:
        raise ValueError(
            f"Unknown methods {unknown}; expected names from {sorted(methods.REGISTRY)}. "
            "Fix: correct --methods."
        )
    skipped = [
        {"method": name, "skipped": "learns from colour; Fashion-MNIST is grayscale"}
        for name in names
        if needs_rgb(name)
    ]
    names = [name for name in names if not needs_rgb(name)]
    if not names:
        raise ValueError(
            f"--methods={args.methods!r} holds only colour methods, which cannot train on "
            "grayscale Fashion-MNIST. Fix: add a grayscale method, or run "
            "examples/colorize_photos.py for the colour methods."
        )
    configs = {name: method_config(name, args.epochs, args.minutes) for name in names}
    rows = []
    splits = None
    for name, config in configs.items():
        workdir = os.path.join(args.out, name)
        start = time.monotonic()
        model, history = experiment.train(config, workdir, verbose=2)
        minutes = (time.monotonic() - start) / 60
        if splits is None:
            splits = experiment.load_splits(config.data)
        row = encoder_row(model.export_encoder, splits)
        row.update(
            method=name,
            backbone="SmallResNet 16-32-64",
            epochs=f"{len(history['loss'])}/{config.epochs}",
            batch=config.batch_size,
            minutes=f"{minutes:.1f}",
            # IIC, DeepCluster: Hungarian clustering accuracy on the test set after the last
            # epoch, logged by the ClusteringProbe that keras-ssl train adds for them.
            clustering=(history.get("clustering_accuracy") or [None])[-1],
        )
        rows.append(row)
        print(format_table(rows[-1:]), flush=True)
    rows.extend(skipped)
    last = configs[names[-1]]
    precision.set_policy(last.precision)
    keras.utils.set_random_seed(last.seed)
    random_encoder = experiment.build_model(last, splits[0].shape[1:]).export_encoder
    baselines = {
        "random-init encoder": encoder_row(random_encoder, splits),
        "raw pixels": probe(
            *(x.reshape(len(x), -1).astype(np.float32) / 255 for x in (splits[0], splits[2])),
            splits[1],
            splits[3],
        ),
    }
    for label, row in baselines.items():
        row.update(method=label, backbone="-", epochs="-", batch="-", minutes="-")
        rows.append(row)
    table = format_table(rows)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=2, default=float)
    cap = f", capped at {args.minutes} min of training" if args.minutes else ""
    print(f"\nShared budget: {args.epochs} epochs per method{cap}.\n")
    print(table)


if __name__ == "__main__":
    main()
