"""Makes a registry entry's weights: train from its config, probe, write the file, print the entry.

    python -m keras_ssl.pretrained.build --name simclr_fashion_mnist
    python -m keras_ssl.pretrained.build --name vicreg_fashion_mnist

Each recipe trains a method from its config in ``configs/`` (the repository's; ``--config_dir``
elsewhere) on the full Fashion-MNIST training set of the Debian package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``; forced, so a missing package is
an error rather than a silent fallback to the embedded subset), with the training-time kNN and
collapse probes switched off (they do not change the weights) and no wall-clock limit, so the
budget is the stated one in steps or epochs, whatever the machine's load. Then, in float32, the
encoder is rebuilt from the written file and probed:

- ``fashion_mnist_test``: weighted kNN (k = 20, T = ``evaluation.knn.TEMPERATURE``, cosine) with
  all 60,000 training images as references, and ``evaluation.linear_probe`` (its defaults) on
  all 60,000 training labels; both scored on the 10,000 test images;
- ``embedded_subset_test``: the same kNN on the embedded 2,000 / 500-image subset (what
  ``tests/pretrained`` checks against).

The weights go to ``keras_ssl/pretrained/weights/NAME.weights.h5`` (written to a temporary
sibling, then moved into place) and the printed ``WeightsEntry(...)`` is pasted into
``keras_ssl/pretrained/registry.py``.
"""

import argparse
import dataclasses
import importlib.util
import os
import pathlib
import pprint
import tempfile
import time
import uuid

import keras
import numpy as np

from keras_ssl import evaluation, experiment
from keras_ssl.datasets import fashion_mnist
from keras_ssl.evaluation.knn import TEMPERATURE
from keras_ssl.pretrained.loading import WEIGHTS_DIR, build_encoder, sha256_of_file
from keras_ssl.pretrained.registry import WeightsEntry

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs"
KNN_K = 20


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one entry's weights are made: a config file, overrides of it, and why."""

    config: str
    overrides: dict
    note: str


RECIPES = {
    "simclr_fashion_mnist": Recipe(
        config="simclr_fashion_mnist.py",
        overrides={},
        note="the config's budget: 4,700 steps at batch 64 (5 epochs of 60,000 images)",
    ),
    "vicreg_fashion_mnist": Recipe(
        config="vicreg_fashion_mnist.py",
        overrides={"epochs": 3},
        note="3 epochs at batch 128 (the config has 6 with an 8-minute limit; 3 fit a few "
        "minutes on 2 cores)",
    ),
}


def build(
    name,
    output_dir=WEIGHTS_DIR,
    config_dir=CONFIG_DIR,
    data_source="debian",
    overrides=None,
    verbose=1,
):
    """Trains ``name``'s recipe, writes its weights file and returns its registry entry.

    Args:
        name: a key of :data:`RECIPES`.
        output_dir: folder for ``NAME.weights.h5`` (default: the package's weights folder).
        config_dir: folder holding the recipe's config file.
        data_source: the Fashion-MNIST source to train and probe on (``"debian"``: the full
            set; ``"embedded"`` makes a quick, weaker build on the shipped subset, then the
            entry's ``fashion_mnist_test`` accuracies are those of the subset's test split).
        overrides: more config fields to set, ``{"train_steps": 10, "optimizer.name": "sgd"}``
            (applied after the recipe's).
        verbose: 1 shows Keras progress bars and prints the entry; 0 is silent.

    Returns:
        The :class:`WeightsEntry`, with the SHA-256 of the written file and the measured
        accuracies.

    Raises:
        ValueError: for an unknown name, a missing config file or data source, or a config
            override the schema does not know.
    """
    if name not in RECIPES:
        raise ValueError(
            f"Unknown recipe {name!r}; expected one of {sorted(RECIPES)}. "
            "Fix: pass --name with one of these."
        )
    recipe = RECIPES[name]
    config = _load_config(pathlib.Path(config_dir) / recipe.config)
    config.data.source = data_source
    config.probes.knn_every_epochs = 0
    config.probes.collapse_every_epochs = 0
    config.time_budget_minutes = None
    config.export = False
    for field, value in {**recipe.overrides, **(overrides or {})}.items():
        _set_field(config, field, value)
    policy = keras.mixed_precision.global_policy().name
    start = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            model, _ = experiment.train(config, workdir, verbose=verbose)
        trained = model.export_encoder
        minutes = (time.monotonic() - start) / 60
        keras.mixed_precision.set_global_policy("float32")
        entry = _write_and_probe(name, recipe, config, trained, output_dir, data_source, verbose)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    if verbose:
        print(f"Trained in {minutes:.1f} min, {(time.monotonic() - start) / 60:.1f} min in all.")
        print(f"Wrote {os.path.join(output_dir, entry.file)}. Registry entry:")
        print(format_entry(entry))
    return entry


def _write_and_probe(name, recipe, config, trained, output_dir, data_source, verbose):
    os.makedirs(output_dir, exist_ok=True)
    file_name = f"{name}.weights.h5"
    staging = os.path.join(output_dir, f".{name}.partial-{uuid.uuid4().hex[:8]}.weights.h5")
    try:
        trained.save_weights(staging)
        draft = WeightsEntry(
            name=name,
            method=config.method,
            architecture=config.backbone,
            architecture_kwargs=_plain(dict(config.backbone_kwargs)),
            input_shape=tuple(int(d) for d in trained.input_shape[1:]),
            sha256=sha256_of_file(staging),
            file=file_name,
        )
        encoder = build_encoder(draft)  # float32, from the file: what `load` will return
        encoder.load_weights(staging)
        for expected, loaded in zip(trained.weights, encoder.weights):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(loaded), keras.ops.convert_to_numpy(expected)
            )
        splits = fashion_mnist.load_data(source=data_source)
        accuracies = {
            "fashion_mnist_test": probe(encoder, splits, verbose, linear=True),
            "embedded_subset_test": probe(
                encoder, fashion_mnist.load_data(source="embedded"), verbose
            ),
        }
        os.replace(staging, os.path.join(output_dir, file_name))
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return dataclasses.replace(
        draft,
        accuracies=accuracies,
        description=(
            f"{config.method} from configs/{recipe.config}, {_budget(config, len(splits[0][0]))}"
            f" on {len(splits[0][0]):,} Fashion-MNIST training images ({data_source}), "
            f"seed {config.seed}"
        ),
        command=f"python -m keras_ssl.pretrained.build --name {name}",
    )


def _budget(config, num_images):
    steps_per_epoch = num_images // config.batch_size
    epochs = experiment.training_epochs(config, steps_per_epoch)
    return f"{epochs} epochs of {steps_per_epoch:,} steps at batch {config.batch_size}"


def probe(encoder, splits, verbose=0, linear=False):
    """kNN (k = 20, T = ``TEMPERATURE``, cosine) and optionally linear-probe test accuracy.

    Args:
        encoder: a ``keras.Model`` from ``float32`` images in ``[0, 1]`` to ``[batch, D]``.
        splits: ``((x_train, y_train), (x_test, y_test))`` with ``uint8`` images ``[N, H, W]``
            or ``[N, H, W, C]``; every training image is a kNN reference.
        verbose: 1 shows progress bars while features are computed.
        linear: also train ``evaluation.linear_probe`` (its defaults) on all training labels.

    Returns:
        ``{"knn": accuracy}``, plus ``"linear"`` when asked; rounded to 4 decimals.
    """
    (x_train, y_train), (x_test, y_test) = splits
    train = evaluation.extract_features(encoder, x_train, normalize=False, verbose=verbose)
    test = evaluation.extract_features(encoder, x_test, normalize=False, verbose=verbose)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    result = {
        "knn": evaluation.knn_accuracy(
            evaluation.l2_normalize(train),
            y_train,
            evaluation.l2_normalize(test),
            y_test,
            num_classes,
            k=KNN_K,
            temperature=TEMPERATURE,
        )
    }
    if linear:
        result["linear"] = evaluation.linear_probe(train, y_train, test, y_test, num_classes)[
            "accuracy"
        ]
    return {key: round(float(value), 4) for key, value in result.items()}


def format_entry(entry):
    """``entry`` as Python source, ready to paste into ``registry.py``'s entries."""
    lines = ["WeightsEntry("]
    for field in dataclasses.fields(entry):
        value = getattr(entry, field.name)
        if value is None or value == field.default:
            continue
        text = pprint.pformat(_plain(value), width=76, sort_dicts=False)
        lines.append(f"    {field.name}={text.replace(chr(10), chr(10) + '    ')},")
    lines.append("),")
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_plain(item) for item in value)
    return value


def _load_config(path):
    if not path.is_file():
        raise ValueError(
            f"Config file {str(path)!r} not found; expected the recipe's config in the "
            "repository's configs/ folder. Fix: run from a keras_ssl checkout, or pass "
            "--config_dir with the folder that holds it."
        )
    spec = importlib.util.spec_from_file_location(f"_keras_ssl_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _set_field(config, field, value):
    *parents, leaf = field.split(".")
    node = config
    for part in parents:
        node = node[part] if part in node else None
        if node is None:
            break
    if node is None or leaf not in node:
        raise ValueError(
            f"Unknown config field {field!r} in the overrides; expected a field of the "
            "keras_ssl config schema (keras_ssl/config.py). Fix: correct the name."
        )
    node[leaf] = value


def main(argv=None):
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, choices=sorted(RECIPES))
    parser.add_argument("--output_dir", default=str(WEIGHTS_DIR))
    parser.add_argument("--config_dir", default=str(CONFIG_DIR))
    parser.add_argument(
        "--data_source", default="debian", choices=list(fashion_mnist.SOURCES), help="see build"
    )
    args = parser.parse_args(argv)
    build(args.name, args.output_dir, args.config_dir, args.data_source)


if __name__ == "__main__":
    main()
