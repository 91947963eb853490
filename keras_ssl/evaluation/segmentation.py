"""Segmentation transfer: :func:`segmentation_transfer` trains U-Nets on an encoder (pretrained
and from random init, frozen and fine-tuned) for several label fractions;
:func:`segmentation_protocol` runs it for ``keras-ssl eval --protocol segmentation``.
"""

import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.evaluation.segmentation_metrics import segmentation_metrics
from keras_ssl.evaluation.segmentation_plots import plot_label_efficiency, plot_segmentation_grid
from keras_ssl.validation import check_in_range, check_int

#: Budgets of ``keras-ssl eval --protocol segmentation`` (a 2-core CPU runs the default, SSL
#: and random init, in about 5 minutes); override with ``--eval_option=name=value``.
SEGMENTATION_OPTIONS = {
    "segmentation_dataset": "canvas",
    "segmentation_train_images": 1000,
    "segmentation_test_images": 500,
    "segmentation_canvas_size": 56,
    "segmentation_fractions": (0.01, 0.1, 1.0),
    "segmentation_modes": ("frozen", "finetune"),
    "segmentation_epochs": 8,
    "segmentation_min_steps": 100,
    "segmentation_batch_size": 32,
    "segmentation_learning_rate": 1e-3,
    "segmentation_encoder_learning_rate_scale": 1.0,
}
MODES = ("frozen", "finetune")


def segmentation_transfer(
    encoder,
    train,
    test,
    num_classes,
    fractions=(0.01, 0.1, 1.0),
    modes=MODES,
    random_init=True,
    epochs=5,
    min_steps=50,
    batch_size=32,
    learning_rate=1e-3,
    encoder_learning_rate_scale=1.0,
    weight_decay=1e-4,
    decoder_widths=None,
    seed=0,
    workdir=None,
    grid_images=4,
    verbose=1,
):
    """Transfers an encoder to segmentation with a U-Net, against the same net from random init.

    For each initialisation (``"ssl"``: ``encoder``'s weights; ``"random_init"``: the same
    architecture rebuilt by ``with_input_shape(..., copy_weights=False)`` after
    ``keras.utils.set_random_seed(seed)``), each mode (``"frozen"``: only the decoder trains,
    encoder BatchNorm in inference mode; ``"finetune"``: everything trains, the encoder at
    ``learning_rate * encoder_learning_rate_scale``) and each label fraction, a
    :func:`keras_ssl.downstream.UNet` on a copy of the encoder is trained with AdamW (cosine
    decay, per-pixel softmax cross-entropy, no weight decay on biases and norms) and scored
    on ``test`` with :func:`segmentation_metrics`.

    Label fractions are taken by image: a seeded random permutation of the training images
    (``numpy.random.default_rng(seed)``), of which the first ``max(1, round(f * N))`` are used,
    so smaller fractions are subsets of larger ones (classes cannot be balanced for masks).
    Each run takes ``max(epochs * ceil(n / batch), min_steps)`` steps so that tiny fractions
    still train. ``encoder`` itself is never modified.

    Args:
        encoder: a keras_ssl backbone (e.g. ``model.export_encoder``); it is rebuilt at the
            training images' size (:func:`keras_ssl.backbones.with_input_shape`).
        train: ``(images uint8 [N, H, W, C], masks int [N, H, W])``.
        test: test ``(images, masks)`` of the same size.
        num_classes: classes per pixel, background included (11 for the canvas set).
        fractions: label fractions in ``(0, 1]``.
        modes: a subset of ``("frozen", "finetune")``.
        random_init: also run the random-initialisation baseline.
        epochs: passes over each label subset.
        min_steps: least number of optimisation steps per run.
        batch_size: images per step (capped at the subset size).
        learning_rate: peak AdamW learning rate of the decoder (and encoder, scaled).
        encoder_learning_rate_scale: encoder learning-rate factor when fine-tuning, in
            ``(0, 1]`` (lower values fine-tune the pretrained encoder more gently).
        weight_decay: AdamW decoupled weight decay.
        decoder_widths: U-Net decoder widths (default: the encoder's level widths).
        seed: seed of the subsets, the batch order and the random-init baseline.
        workdir: if given, ``label_efficiency.png`` and ``segmentation_grid.png`` are written.
        grid_images: test images in the grid.
        verbose: 1 prints a line per run.

    Returns:
        JSON-able dict: ``results[init][mode][f"{fraction:g}"]`` = ``{"mean_iou",
        "pixel_accuracy", "train_images", "steps", "encoder_weight_change" (relative L2 change
        of the encoder copy's weights, 0 when frozen), "seconds"}``, plus ``fractions``,
        ``modes``, ``num_classes``, ``epochs``, ``plots`` (file names written).

    Raises:
        ValueError: for mismatched images and masks, unknown modes, fractions outside
            ``(0, 1]`` or non-positive budgets.
    """
    from keras_ssl.backbones.features import with_input_shape

    x_train, y_train = _check_pairs(train, "train")
    x_test, y_test = _check_pairs(test, "test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"`train` and `test` images differ in shape: {x_train.shape[1:]} vs "
            f"{x_test.shape[1:]}; expected one size. Fix: resize both to the same size."
        )
    modes = tuple(modes)
    if not modes or any(mode not in MODES for mode in modes):
        raise ValueError(
            f"`modes` must be a non-empty subset of {MODES}; received {modes!r}. Fix: pass "
            "e.g. modes=('frozen', 'finetune')."
        )
    fractions = tuple(fractions)
    if not fractions:
        raise ValueError(
            "`fractions` must be a non-empty sequence of values in (0, 1]; received (). "
            "Fix: pass e.g. (0.01, 0.1, 1.0)."
        )
    fix = "pass e.g. (0.01, 0.1, 1.0)."
    fractions = tuple(check_in_range(f, "fractions", 0, 1, fix, low_open=True) for f in fractions)
    check_int(epochs, "epochs")
    check_int(batch_size, "batch_size")
    fix = "pass 1.0, or e.g. 0.1 for a lower rate."
    check_in_range(
        encoder_learning_rate_scale, "encoder_learning_rate_scale", 0, 1, fix, low_open=True
    )
    image_shape = tuple(x_train.shape[1:])
    encoders = {"ssl": encoder}
    if random_init:
        keras.utils.set_random_seed(seed)
        encoders["random_init"] = with_input_shape(encoder, image_shape, copy_weights=False)
    order = np.random.default_rng(seed).permutation(len(x_train))
    results, predictions = {}, {}
    for init, start_encoder in encoders.items():
        for mode in modes:
            for fraction in fractions:
                subset = np.sort(order[: max(1, round(fraction * len(x_train)))])
                run = _train_unet(
                    start_encoder,
                    (x_train[subset], y_train[subset]),
                    num_classes,
                    mode,
                    dict(
                        epochs=epochs,
                        min_steps=min_steps,
                        batch_size=batch_size,
                        learning_rate=learning_rate,
                        encoder_scale=encoder_learning_rate_scale,
                        weight_decay=weight_decay,
                        decoder_widths=decoder_widths,
                        seed=seed,
                    ),
                )
                predicted = _predict(run.pop("predict"), x_test, batch_size)
                metrics = segmentation_metrics(y_test, predicted, num_classes)
                run.update(mean_iou=metrics["mean_iou"], pixel_accuracy=metrics["pixel_accuracy"])
                results.setdefault(init, {}).setdefault(mode, {})[f"{fraction:g}"] = run
                predictions[f"{init} {mode}"] = predicted[:grid_images]
                if verbose:
                    print(
                        f"segmentation {init} {mode} {fraction:g}: mIoU={run['mean_iou']:.4f} "
                        f"pixel_acc={run['pixel_accuracy']:.4f} ({run['seconds']:.0f}s)",
                        flush=True,
                    )
    output = {
        "results": results,
        "fractions": list(fractions),
        "modes": list(modes),
        "num_classes": int(num_classes),
        "epochs": int(epochs),
        "plots": [],
    }
    if workdir is not None:
        plot_label_efficiency(output, os.path.join(workdir, "label_efficiency.png"))
        plot_segmentation_grid(
            x_test[:grid_images],
            y_test[:grid_images],
            predictions,
            num_classes,
            os.path.join(workdir, "segmentation_grid.png"),
        )
        output["plots"] = ["label_efficiency.png", "segmentation_grid.png"]
    return output


def _check_pairs(data, name):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"`{name}` must be (images, masks); received {type(data).__name__}. Fix: pass e.g. "
            "keras_ssl.datasets.fashion_mnist_canvases(...)."
        )
    images, masks = np.asarray(data[0]), np.asarray(data[1])
    if images.ndim != 4 or masks.shape != images.shape[:3] or not len(images):
        raise ValueError(
            f"`{name}` must be images [N, H, W, C] and masks [N, H, W]; received shapes "
            f"{images.shape} and {masks.shape}. Fix: give one mask per image, of its size."
        )
    return images, masks


def _train_unet(encoder, train, num_classes, mode, budget):
    from keras_ssl.downstream.unet import UNet
    from keras_ssl.evaluation.fine_tune import NO_WEIGHT_DECAY, _train_step_fn
    from keras_ssl.images import to_float_images

    images, masks = train
    keras.utils.set_random_seed(budget["seed"])
    unet = UNet(
        encoder,
        num_classes,
        input_shape=images.shape[1:],
        decoder_widths=budget["decoder_widths"],
        freeze_encoder=mode == "frozen",
    )
    copy = unet.get_layer(f"{encoder.name}_features")
    encoder_ids = {id(v) for v in copy.weights}
    decoder = [v for v in unet.trainable_variables if id(v) not in encoder_ids]
    groups = [(decoder, 1.0)]
    if mode == "finetune":
        groups.append((list(copy.trainable_variables), budget["encoder_scale"]))
    batch = min(int(budget["batch_size"]), len(images))
    steps = max(budget["epochs"] * math.ceil(len(images) / batch), int(budget["min_steps"]))
    optimizers = []
    for variables, scale in groups:
        optimizer = keras.optimizers.AdamW(
            learning_rate=keras.optimizers.schedules.CosineDecay(
                budget["learning_rate"] * scale, steps
            ),
            weight_decay=budget["weight_decay"],
        )
        optimizer.exclude_from_weight_decay(var_names=NO_WEIGHT_DECAY)
        optimizer.build(variables)
        optimizers.append(optimizer)
    before = [np.array(v) for v in copy.weights]
    train_step = _train_step_fn(unet, groups, optimizers)
    rng = np.random.default_rng(budget["seed"])
    start = time.monotonic()
    order = np.empty(0, np.int64)
    for _ in range(steps):
        if len(order) < batch:
            order = np.concatenate([order, rng.permutation(len(images))])
        index, order = order[:batch], order[batch:]
        train_step(tf.constant(images[index]), masks[index].astype(np.int32))
    change = sum(float(np.sum((np.array(v) - b) ** 2)) for v, b in zip(copy.weights, before))
    norm = sum(float(np.sum(b.astype(np.float64) ** 2)) for b in before)
    return {
        "train_images": int(len(images)),
        "steps": int(steps),
        "encoder_weight_change": float(np.sqrt(change / max(norm, 1e-12))),
        "seconds": time.monotonic() - start,
        "predict": tf.function(lambda x: unet(to_float_images(x), training=False)),
    }


def _predict(predict, images, batch_size):
    return np.concatenate(
        [
            np.argmax(predict(tf.constant(images[i : i + batch_size])).numpy(), axis=-1)
            for i in range(0, len(images), batch_size)
        ]
    )


def segmentation_data(options, data_config, image_channels, seed=0):
    """Train and test ``(images, masks)`` and the class count for the segmentation protocol.

    ``options["segmentation_dataset"]`` is ``"canvas"`` (the built-in Fashion-MNIST canvases,
    read from ``data_config.data_dir`` when the run used ``fashion_mnist``),
    ``"tfds:<name>"`` (``image``/``segmentation_mask`` features, resized to the canvas size,
    oxford_iiit_pet's 1-based ids shifted to 0-based) or ``"folder:<path>"`` with
    ``train/`` and ``test/`` image/mask folders. Grey images are repeated to the encoder's
    channels.

    Args:
        options: the protocol options (:data:`SEGMENTATION_OPTIONS` keys).
        data_config: the run's ``config.data``.
        image_channels: channels the encoder takes.
        seed: seed of the canvases (test canvases use ``seed + 1``).

    Returns:
        ``(train, test, num_classes)``.

    Raises:
        ValueError: for an unknown ``segmentation_dataset``.
    """
    from keras_ssl.datasets import segmentation as sets

    name = options["segmentation_dataset"]
    size = int(options["segmentation_canvas_size"])
    counts = int(options["segmentation_train_images"]), int(options["segmentation_test_images"])
    if name == "canvas":
        data_dir = data_config.data_dir if data_config.dataset == "fashion_mnist" else None
        train = sets.fashion_mnist_canvases("train", counts[0], size, seed=seed, data_dir=data_dir)
        test = sets.fashion_mnist_canvases(
            "test", counts[1], size, seed=seed + 1, data_dir=data_dir
        )
    elif name.startswith("tfds:"):
        offset = -1 if name[5:].startswith("oxford_iiit_pet") else 0
        train, test = (
            sets.load_tfds_segmentation(
                name[5:], split, (size, size), data_config.data_dir, mask_offset=offset
            )
            for split in (f"train[:{counts[0]}]", f"test[:{counts[1]}]")
        )
    elif name.startswith("folder:"):
        train, test = (
            sets.load_segmentation_folder(os.path.join(name[7:], split), (size, size))
            for split in ("train", "test")
        )
    else:
        raise ValueError(
            f"Unknown segmentation_dataset {name!r}; expected 'canvas', 'tfds:<name>' or "
            "'folder:<path with train/ and test/ images+masks folders>'. Fix: pass "
            "--eval_option=segmentation_dataset=canvas."
        )
    train, test = (_with_channels(pair, image_channels) for pair in (train, test))
    num_classes = int(max(train[1].max(), test[1].max())) + 1
    return train, test, num_classes


def segmentation_protocol(model, config, splits, workdir):
    """``keras-ssl eval --protocol segmentation``: U-Net transfer of ``model.export_encoder``.

    Runs :func:`segmentation_transfer` (SSL and random init, frozen and fine-tuned, per label
    fraction) on :func:`segmentation_data`, with :data:`SEGMENTATION_OPTIONS` overridden by
    the run's options; writes ``label_efficiency.png`` and ``segmentation_grid.png`` in
    ``workdir``.
    """
    options = {
        **SEGMENTATION_OPTIONS,
        **{k: v for k, v in splits.options.items() if k in SEGMENTATION_OPTIONS},
    }
    encoder = model.export_encoder
    seed = int(config.seed)
    train, test, num_classes = segmentation_data(
        options, config.data, int(encoder.input_shape[-1]), seed
    )
    result = segmentation_transfer(
        encoder,
        train,
        test,
        num_classes,
        fractions=options["segmentation_fractions"],
        modes=options["segmentation_modes"],
        epochs=int(options["segmentation_epochs"]),
        min_steps=int(options["segmentation_min_steps"]),
        batch_size=int(options["segmentation_batch_size"]),
        learning_rate=float(options["segmentation_learning_rate"]),
        encoder_learning_rate_scale=float(options["segmentation_encoder_learning_rate_scale"]),
        seed=seed,
        workdir=workdir,
    )
    return {**result, "dataset": options["segmentation_dataset"], "train_images": len(train[0])}


def _with_channels(pair, channels):
    images, masks = pair
    if images.shape[-1] == 1 and channels == 3:
        images = np.repeat(images, 3, axis=-1)
    return images, masks
