"""Config-driven experiments: what ``keras-ssl train | eval | export`` run.

Everything a run produces lives in its work folder::

    DIR/config.json      the resolved config          DIR/model.keras    the trained method
    DIR/history.json     per-epoch losses and probes  DIR/encoder/       SavedModel export
    DIR/views.png        augmented view pairs         DIR/training.png   loss and probe curves
    DIR/metrics.json     kNN / linear results of ``eval`` (with baselines when asked)
    DIR/backup/          BackupAndRestore state while training: running ``train`` again on the
                         folder resumes an interrupted run at its last finished epoch, with the
                         same data order and augmentations (removed once the run completes)
"""

import inspect
import json
import os
import shutil
import sys
import time

import keras
import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from keras_ssl import backbones, distribute, evaluation, export, methods, precision
from keras_ssl import callbacks as ssl_callbacks
from keras_ssl import config as config_lib
from keras_ssl.augment import PRESETS
from keras_ssl.datasets import EpochCounter, make_ssl_dataset
from keras_ssl.datasets.splits import load_splits, probe_splits, subset
from keras_ssl.optimizers import build_optimizer


# ------------------------------------------------------------------------------ model
def _construct(registry, name, kind, *args, **kwargs):
    if name not in registry:
        raise ValueError(
            f"Unknown {kind} {name!r}; expected one of {sorted(registry)}. "
            f"Fix: set config.{kind} to one of them."
        )
    try:
        return registry[name](*args, **kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Bad arguments for {kind} {name!r}: {error}. Fix: correct config.{kind}_kwargs."
        ) from error


def build_model(config, image_shape, replicas=1):
    """Builds the configured method (encoder, augmenter, method) for ``image_shape``.

    With ``replicas > 1``, BatchNorm is synchronised across replicas (``synchronized_bn=True``
    for the backbone and the method's heads, where they take it and the config does not set it)
    so that batch statistics are those of the global batch, as SimCLR, BYOL, Barlow Twins and
    DINO train; methods that want per-replica statistics opt out (MoCo's shuffle-BN). A method
    built under a several-replica strategy does the same by itself (``SSLMethod``'s
    ``synchronized_bn=None``); passing it here also covers building for ``replicas`` outside
    the strategy's scope. Method schedules are in epochs and need no conversion here: ``fit``
    hands the real steps per epoch to the method.
    """
    backbone_kwargs = dict(config.backbone_kwargs)
    method_kwargs = dict(config.method_kwargs)
    method_class = methods.REGISTRY.get(config.method)
    if replicas > 1 and getattr(method_class, "synchronize_batch_norm", False):
        for function, kwargs in (
            (backbones.REGISTRY.get(config.backbone), backbone_kwargs),
            (method_class, method_kwargs),
        ):
            if function is not None and "synchronized_bn" in _parameters(function):
                kwargs.setdefault("synchronized_bn", True)
    encoder = _construct(
        backbones.REGISTRY, config.backbone, "backbone", image_shape, **backbone_kwargs
    )
    preset = PRESETS.get(config.augment.preset)
    if preset is None:
        raise ValueError(
            f"Unknown augmentation preset {config.augment.preset!r}; expected one of "
            f"{sorted(PRESETS)}. Fix: set config.augment.preset to one of them."
        )
    augmenter = preset(image_shape, **config.augment.kwargs)
    return _construct(
        methods.REGISTRY,
        config.method,
        "method",
        encoder,
        augmenter=augmenter,
        **method_kwargs,
    )


def _parameters(function):
    return inspect.signature(function).parameters


# ------------------------------------------------------------------------------ train
def train(config, workdir, strategy=None, verbose=1):
    """Pretrains the configured method and writes the work folder (see module docs).

    Returns:
        ``(model, history)``: the trained method and ``History.history``.
    """
    config_lib.validate(config)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    os.makedirs(workdir, exist_ok=True)
    _write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json_best_effort()))
    keras.utils.set_random_seed(config.seed)
    splits = load_splits(config.data)
    x_train, y_train = subset(splits[0], splits[1], config.data.train_examples, config.seed)
    probe_train, probe_test = probe_splits(config, splits)
    strategy = strategy or distribute.resolve()
    precision.set_policy(config.precision, strategy)
    steps_per_epoch = len(x_train) // config.batch_size
    epochs = training_epochs(config, steps_per_epoch)
    with strategy.scope():
        model = build_model(config, x_train.shape[1:], strategy.num_replicas_in_sync)
        # Training data a method needs: Colorization's ab prior, DeepCluster's images to cluster.
        if hasattr(model, "adapt"):
            model.adapt(x_train)
        model.compile(
            optimizer=build_optimizer(config.optimizer, steps_per_epoch, epochs, config.batch_size),
            steps_per_execution=config.steps_per_execution,
            jit_compile=config.jit_compile,
        )
    epoch_counter = EpochCounter()  # epoch e's data depends on (seed, e) only: exact resume
    dataset = make_ssl_dataset(
        x_train,
        batch_size=config.batch_size,
        augmenter=model.augmenter,
        seed=config.seed,
        strategy=strategy,
        epoch_counter=epoch_counter,
        # DeepCluster: every batch carries its images' dataset indices (per-image targets).
        indices=getattr(model, "needs_example_indices", False),
    )
    first = next(iter(dataset))["views"]
    evaluation.plot_view_pairs(
        [v.numpy() for v in first], os.path.join(workdir, "views.png"), title="Augmented views"
    )
    clusters = callable(getattr(model, "predict_clusters", None))
    callbacks = [
        epoch_counter,
        *_training_callbacks(config, epochs, workdir, probe_train, probe_test, clusters),
    ]
    logging.info(
        "Training %s on %d images, batch %d, %d steps/epoch, %d epochs.",
        config.method,
        len(x_train),
        config.batch_size,
        steps_per_epoch,
        epochs,
    )
    start = time.monotonic()
    history = model.fit(dataset, epochs=epochs, callbacks=callbacks, shuffle=False, verbose=verbose)
    minutes = (time.monotonic() - start) / 60
    _save_model(model, os.path.join(workdir, "model.keras"))
    record = {"history": _plain(history.history), "train_minutes": minutes, "epochs": epochs}
    _write_json(os.path.join(workdir, "history.json"), record)
    evaluation.plot_training_curves(history.history, os.path.join(workdir, "training.png"))
    if config.export:
        export.export_encoder(model, os.path.join(workdir, "encoder"), overwrite=True)
    shutil.rmtree(os.path.join(workdir, "backup"), ignore_errors=True)  # the run is complete
    return model, history.history


def training_epochs(config, steps_per_epoch):
    """The epochs to train: ``config.epochs``, or ``config.train_steps`` in epochs (see config).

    Raises:
        ValueError: unless exactly one of ``epochs`` and ``train_steps`` is positive.
    """
    epochs, steps = config.epochs, config.train_steps
    if epochs < 0 or steps < 0 or (epochs > 0) == (steps > 0):
        raise ValueError(
            f"Exactly one of config.epochs and config.train_steps must be positive (the other 0); "
            f"received epochs={epochs!r}, train_steps={steps!r}. Fix: to train for N epochs pass "
            "--config.epochs=N --config.train_steps=0; for N optimizer steps, "
            "--config.train_steps=N --config.epochs=0."
        )
    if epochs:
        return epochs
    return max(1, round(steps / steps_per_epoch))


def _training_callbacks(config, epochs, workdir, probe_train, probe_test, clusters=False):
    probes = config.probes
    # The backup is removed only after the model and export are written (see train), so an
    # interrupted or failed run always leaves its last good epoch to resume from.
    callbacks = [
        ssl_callbacks.StopOnNonFinite(),
        keras.callbacks.BackupAndRestore(os.path.join(workdir, "backup"), delete_checkpoint=False),
    ]
    if probes.knn_every_epochs:
        callbacks.append(
            ssl_callbacks.KNNProbe(
                probe_train,
                probe_test,
                k=probes.knn_k,
                temperature=probes.knn_temperature,
                every_n_epochs=probes.knn_every_epochs,
            )
        )
    callbacks.append(
        ssl_callbacks.LinearProbe(
            probe_train,
            probe_test,
            every_n_epochs=probes.linear_every_epochs or None,
            epochs_to_run=None if probes.linear_every_epochs else [epochs],
            probe_epochs=probes.linear_epochs,
        )
    )
    if probes.collapse_every_epochs:
        callbacks.append(
            ssl_callbacks.CollapseMonitor(
                probe_test[0][:2048], every_n_epochs=probes.collapse_every_epochs
            )
        )
    if clusters:  # IIC, DeepCluster: unsupervised clustering accuracy on the probe test set
        callbacks.append(
            ssl_callbacks.ClusteringProbe(
                *probe_test, every_n_epochs=probes.knn_every_epochs or epochs
            )
        )
    if config.time_budget_minutes:
        callbacks.append(ssl_callbacks.TimeLimit(config.time_budget_minutes))
    return callbacks


# ------------------------------------------------------------------------------- eval
def evaluate(workdir, baselines=False, verbose=True, protocol=None, options=None):
    """kNN and linear-probe accuracy of a trained run (and of baselines) -> ``metrics.json``.

    This is the ``probes`` protocol (``keras_ssl.evaluation.probe_table``): the config's own
    kNN and linear probes. Baselines use the same probe split: raw pixels, and the same encoder
    architecture randomly initialised from the config's seed (as the run was, before training).

    With ``protocol`` (a name in ``keras_ssl.evaluation.protocols.PROTOCOLS``, or ``"all"``)
    the named protocols run instead and their results are merged into ``DIR/eval.json``
    (results of other protocols already there are kept); ``options`` overrides entries of
    ``protocols.DEFAULT_OPTIONS``. Returns the whole ``eval.json`` content then.
    """
    from keras_ssl.evaluation import probe_table

    if protocol is not None:
        return _evaluate_protocols(workdir, protocol, options or {}, verbose)
    model, config, splits = _eval_inputs(workdir, {}, verbose, baselines)
    metrics = {
        "method": config.method,
        "backbone": config.backbone,
        "probe_train_examples": len(splits.train[0]),
        "probe_test_examples": len(splits.test[0]),
        **probe_table.probes_protocol(model, config, splits, workdir),
    }
    history_path = os.path.join(workdir, "history.json")
    if os.path.exists(history_path):
        with open(history_path) as f:
            record = json.load(f)
        metrics["train_minutes"] = record.get("train_minutes")
        metrics["epochs_trained"] = len(record.get("history", {}).get("loss", []))
    _write_json(os.path.join(workdir, "metrics.json"), metrics)
    if verbose:
        print(probe_table.format_table(metrics), file=sys.stdout)
    return metrics


def _eval_inputs(workdir, options, verbose, baselines=True):
    """The trained model, its config and the protocols' ``EvalSplits`` of ``workdir``."""
    from keras_ssl.evaluation import protocols

    config = load_config(workdir)
    precision.set_policy(config.precision)
    model = _load_model(workdir)
    probe_train, probe_test = probe_splits(config, load_splits(config.data, announce=verbose))

    def random_encoder():
        keras.utils.set_random_seed(config.seed)
        return build_model(config, probe_train[0].shape[1:]).export_encoder

    splits = protocols.EvalSplits(
        train=probe_train,
        test=probe_test,
        options={**protocols.DEFAULT_OPTIONS, **options},
        random_encoder=random_encoder if baselines else None,
        cache_key=protocols.checkpoint_key(
            os.path.join(workdir, "model.keras"),
            config.data.to_json_best_effort(),
            config.seed,
        ),
    )
    return model, config, splits


def _evaluate_protocols(workdir, protocol, options, verbose):
    from keras_ssl.evaluation import protocols

    names = list(protocols.PROTOCOLS) if protocol == "all" else [protocol]
    unknown = [name for name in names if name not in protocols.PROTOCOLS]
    bad_options = sorted(set(options) - set(protocols.DEFAULT_OPTIONS))
    if unknown or bad_options:
        raise ValueError(
            f"Unknown evaluation protocol {protocol!r} or options {bad_options}; expected a "
            f"protocol in {sorted(protocols.PROTOCOLS) + ['all']} and options among "
            f"{sorted(protocols.DEFAULT_OPTIONS)}. Fix: correct --protocol / --eval_option."
        )
    model, config, splits = _eval_inputs(workdir, options, verbose)
    path = os.path.join(workdir, "eval.json")
    record = {}
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
    for name in names:
        start = time.monotonic()
        if verbose:
            print(f"Evaluation protocol {name} ...", flush=True)
        result = protocols.PROTOCOLS[name](model, config, splits, workdir)
        result["seconds"] = time.monotonic() - start
        record[name] = _plain_json(result)
        _write_json(path, record)
        if verbose:
            print(f"  {name}: {_headline(name, result)} ({result['seconds']:.1f} s)", flush=True)
    return record


def _plain_json(value):
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _headline(name, result):
    """What a protocol's progress line shows: accuracy, or mean IoU with all labels."""
    if name == "retrieval":
        return f"recall@1={result['recall@1']:.4f} mAP@R={result['map@R']:.4f}"
    if name == "probes":
        ssl = result["results"]["ssl"]
        return f"kNN={ssl['knn_accuracy']:.4f} linear={ssl['linear_accuracy']:.4f}"
    if name != "segmentation":
        accuracy = result.get("accuracy", result.get("ssl", {}).get("accuracy"))
        return f"accuracy={accuracy}" if accuracy is not None else f"wrote {result.get('plot')}"
    ssl = result["results"]["ssl"]
    scores = {mode: runs[max(runs, key=float)]["mean_iou"] for mode, runs in ssl.items()}
    return "mean IoU " + ", ".join(f"{mode}={score:.4f}" for mode, score in scores.items())


# ----------------------------------------------------------------------------- export
def export_run(workdir, overwrite=False):
    """Exports the run's encoder to ``DIR/encoder`` (see ``keras_ssl.export``)."""
    model = _load_model(workdir)
    return export.export_encoder(model, os.path.join(workdir, "encoder"), overwrite=overwrite)


# ---------------------------------------------------------------------------- helpers
def load_config(workdir):
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise ValueError(
            f"No trained run in {workdir!r}: {path} is missing. Expected the work folder of "
            "`keras-ssl train`. Fix: pass --workdir of a finished training run."
        )
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


def _load_model(workdir):
    path = os.path.join(workdir, "model.keras")
    if not os.path.exists(path):
        raise ValueError(
            f"No trained model in {workdir!r}: {path} is missing. Expected the work folder of "
            "a finished `keras-ssl train`. Fix: finish (or resume) training first."
        )
    return keras.saving.load_model(path)


def _save_model(model, path):
    partial = f"{path}.partial.keras"
    model.save(partial)
    os.replace(partial, path)


def _write_json(path, payload):
    partial = f"{path}.partial"
    with open(partial, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(partial, path)


def _plain(history):
    return {key: [float(v) for v in values] for key, values in history.items()}
