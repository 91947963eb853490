"""Does the plain API learn on a user's own small data? Random init vs after SSL, per method.

    python benchmarks/own_data.py [--datasets digits,glyphs] [--methods simclr,byol,...]
                                  [--epochs 8] [--batch 256] [--lr 1e-3] [--seed 0]
                                  [--train-examples 4000] [--test-examples 1000]
                                  [--preset NAME] [--preset-kwargs JSON]
                                  [--method-kwargs JSON] [--variants JSON]
                                  [--probe-every N] [--out results.jsonl]

The call a new user makes (issue 22): their own encoder, a method class with every other
argument at its default, ``compile(optimizer=keras.optimizers.Adam(lr))``, ``fit`` on a
``tf.data`` of raw ``uint8`` images (shuffled, batched with ``drop_remainder=True``), and a
frozen weighted kNN probe (k=20, T=0.1, cosine) of the method's ``export_encoder`` on the test
images with the training images as references. The encoder is the issue's 6-layer
Conv-BN-ReLU network (3x3 convolutions 32-32-64-64-128-128, stride 2 at the first 64 and the
first 128, global average pooling, 128-d features, Keras BatchNormalization), built with
``keras.utils.set_random_seed(seed)``, so "random init" is exactly the weights SSL starts from.

Data: the small sets of :mod:`keras_ssl.datasets.small` (``digits``: scikit-learn's digits
warped into 28x28 images; ``glyphs``: letters rendered from matplotlib's fonts; ``glyphs_rgb``:
the same in random colours), or ``fashion_mnist`` (the first images of the embedded/installed
set). Each line printed (and appended to ``--out`` as JSON) holds: data set, method, kNN of
the random-init encoder, kNN after SSL, the margin, training seconds, and the final loss.
``--probe-every N`` also probes after every N-th epoch (and the last) and prints the curve
(``knn_by_epoch`` in the JSON), for runs that may still be rising when they stop.

Ablations (one factor at a time, all for the experiments of issue 22):
``--preset NAME --preset-kwargs '{"crop_scale": [0.08, 1.0]}'`` replaces the method's default
augmentation with ``keras_ssl.augment.PRESETS[NAME](image_shape, **kwargs)`` (``NAME=before``
gives each method's preset with the papers' values at every image size, i.e. the class
defaults before they adapted to the input); ``--method-kwargs '{"temperature": 0.2}'`` overrides
constructor arguments; ``--lr`` changes Adam's learning rate; ``--variants '[{"label": "crop05",
"preset": "simclr", "preset_kwargs": {"crop_scale": [0.5, 1.0]}}, ...]'`` runs several such
settings in one process. Every run also reports the kNN of the same weights after re-estimating
the encoder's BatchNorm moving statistics on the clean training images ("precise BN", column
``pbn``): it separates weights that got worse from moving statistics that do not fit them.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_ssl import augment, evaluation, methods  # noqa: E402
from keras_ssl.datasets import small  # noqa: E402

#: The methods with an augmentation-based objective (issue 22's list), in table order.
AUGMENTATION_METHODS = (
    "simclr",
    "moco",
    "moco_v3",
    "nnclr",
    "byol",
    "simsiam",
    "barlow_twins",
    "vicreg",
    "swav",
    "dino",
)
DATASETS = ("digits", "glyphs")
KNN_K = 20
KNN_TEMPERATURE = 0.1


def issue_encoder(image_shape, widths=(32, 32, 64, 64, 128, 128), name="issue_encoder"):
    """The issue's encoder: 3x3 Conv-BN-ReLU layers (stride 2 where the width grows past the
    first width), global average pooling. Returns a functional ``keras.Model``."""
    inputs = keras.Input(shape=image_shape)
    x = inputs
    for index, width in enumerate(widths):
        stride = 2 if index > 0 and width != widths[index - 1] else 1
        x = keras.layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs, name=name)


def load(name, train_examples, test_examples, seed):
    """``((x_train, y_train), (x_test, y_test))`` uint8 NHWC images of one benchmark data set."""
    if name == "fashion_mnist":
        from keras_ssl.datasets import fashion_mnist

        (x, y), (xt, yt) = fashion_mnist.load_data()
        return (x[:train_examples, ..., None], y[:train_examples]), (
            xt[:test_examples, ..., None],
            yt[:test_examples],
        )
    kwargs = dict(train_examples=train_examples, test_examples=test_examples, seed=seed)
    if name == "glyphs_rgb":
        return small.load_glyphs(channels=3, **kwargs)
    return small.load_data(name, **kwargs)


def knn(encoder, data):
    """Weighted kNN accuracy (k=20, T=0.1, cosine) of a frozen encoder."""
    (x, y), (xt, yt) = data
    train = evaluation.extract_features(encoder, x)
    test = evaluation.extract_features(encoder, xt)
    return float(evaluation.knn_accuracy(train, y, test, yt, k=KNN_K, temperature=KNN_TEMPERATURE))


def recalibrate_batch_norm(encoder, images, batch_size=1000):
    """Sets every BatchNorm layer's moving statistics to the mean over ``images`` of the
    training-mode batch statistics (a "precise BN" pass; the weights are unchanged)."""
    batch_size = min(batch_size, len(images))
    layers = [
        layer
        for layer in encoder._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    sums = [
        [np.zeros(layer.moving_mean.shape), np.zeros(layer.moving_variance.shape)]
        for layer in layers
    ]
    saved = [layer.momentum for layer in layers]
    batches = 0
    for start in range(0, len(images) - batch_size + 1, batch_size):
        for layer in layers:
            layer.momentum = 0.0  # moving stats := this batch's statistics
        encoder(tf.cast(images[start : start + batch_size], tf.float32) / 255.0, training=True)
        for total, layer in zip(sums, layers):
            total[0] += np.asarray(layer.moving_mean)
            total[1] += np.asarray(layer.moving_variance)
        batches += 1
    for total, layer, momentum in zip(sums, layers, saved):
        layer.moving_mean.assign(total[0] / batches)
        layer.moving_variance.assign(total[1] / batches)
        layer.momentum = momentum


def before_augmenter(method_name, image_shape):
    """The method's default augmentation as it was before the defaults adapted to the input:
    its preset called with the class's preset arguments and the preset's own (papers')
    defaults at every image size (MoCo: ``moco_v2``, its default version)."""
    cls = methods.REGISTRY[method_name]
    preset = "moco_v2" if method_name == "moco" else cls.default_preset
    return augment.PRESETS[preset](image_shape, **dict(cls.default_preset_kwargs))


class EpochProbe(keras.callbacks.Callback):
    """kNN of the method's ``export_encoder`` after every ``every``-th epoch and the last."""

    def __init__(self, data, every, epochs):
        super().__init__()
        self.data, self.every, self.epochs = data, every, epochs
        self.curve = {}

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every == 0 or done == self.epochs:
            self.curve[done] = knn(self.model.export_encoder, self.data)


def run_one(dataset, data, method_name, args, random_init, random_init_precise_bn):
    """Trains one method with the issue's call and returns the result row (a dict)."""
    (x, _), _ = data
    image_shape = tuple(x.shape[1:])
    keras.backend.clear_session()
    keras.utils.set_random_seed(args.seed)
    encoder = issue_encoder(image_shape)
    if args.preset == "before":
        augmenter = before_augmenter(method_name, image_shape)
    elif args.preset:
        augmenter = augment.PRESETS[args.preset](image_shape, **json.loads(args.preset_kwargs))
    else:
        augmenter = None
    model = methods.REGISTRY[method_name](
        encoder=encoder, augmenter=augmenter, **json.loads(args.method_kwargs)
    )
    model.compile(optimizer=keras.optimizers.Adam(args.lr))
    train = (
        tf.data.Dataset.from_tensor_slices(x)
        .shuffle(len(x), seed=args.seed)
        .batch(args.batch, drop_remainder=True)
    )
    probe = [EpochProbe(data, args.probe_every, args.epochs)] if args.probe_every else []
    start = time.monotonic()
    history = model.fit(train, epochs=args.epochs, verbose=0, callbacks=probe)
    seconds = time.monotonic() - start  # includes the per-epoch probes, if any
    after = knn(model.export_encoder, data)
    # The same weights with BatchNorm statistics re-estimated, on augmented first views (what
    # fully converged moving statistics would hold) and on the clean training images:
    # separates "the weights got worse" from "the moving statistics do not fit the weights".
    views = np.concatenate(
        [
            model.augmenter(tf.cast(x[i : i + 500], tf.float32) / 255.0)[0].numpy()
            for i in range(0, len(x), 500)
        ]
    )
    recalibrate_batch_norm(model.export_encoder, np.round(views * 255.0).astype(np.uint8))
    after_views_bn = knn(model.export_encoder, data)
    recalibrate_batch_norm(model.export_encoder, x)
    after_precise_bn = knn(model.export_encoder, data)
    loss = history.history["loss"]
    return {
        "dataset": dataset,
        "method": method_name,
        "random_init": random_init,
        "after_ssl": after,
        "margin": after - random_init,
        "after_ssl_precise_bn": after_precise_bn,
        "after_ssl_views_bn": after_views_bn,
        "random_init_precise_bn": random_init_precise_bn,
        "seconds": round(seconds, 1),
        "loss_first": float(loss[0]),
        "loss_last": float(loss[-1]),
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "preset": args.preset or "default",
        "preset_kwargs": json.loads(args.preset_kwargs),
        "method_kwargs": json.loads(args.method_kwargs),
        "label": args.label,
        "seed": args.seed,
        "knn_by_epoch": probe[0].curve if probe else {},
    }


def parse_args(argv=None):
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--methods", default=",".join(AUGMENTATION_METHODS))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-examples", type=int, default=4000)
    parser.add_argument("--test-examples", type=int, default=1000)
    parser.add_argument("--preset", default="", help="'' (class default), 'before' or a preset")
    parser.add_argument("--preset-kwargs", default="{}")
    parser.add_argument("--method-kwargs", default="{}")
    parser.add_argument(
        "--variants",
        default="",
        help="JSON list of dicts overriding lr/preset/preset_kwargs/method_kwargs/label per run",
    )
    parser.add_argument("--label", default="default", help="name of the setting in the table")
    parser.add_argument(
        "--probe-every", type=int, default=0, help="kNN after every N-th epoch (0: only at the end)"
    )
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    if args.probe_every < 0:
        parser.error(
            f"--probe-every must be >= 0 (0: probe only at the end); received {args.probe_every}"
        )
    for name in args.methods.split(","):
        if name not in methods.REGISTRY:
            parser.error(f"unknown method {name!r}; expected names from {sorted(methods.REGISTRY)}")
    return args


def variants(args):
    """The settings to run: ``args`` itself, or one copy of it per entry of ``--variants``."""
    if not args.variants:
        return [args]
    runs = []
    for entry in json.loads(args.variants):
        unknown = set(entry) - {"label", "lr", "preset", "preset_kwargs", "method_kwargs"}
        if unknown:
            raise ValueError(
                f"--variants entries may set label, lr, preset, preset_kwargs and method_kwargs; "
                f"received {sorted(unknown)}. Fix: remove those keys."
            )
        run = argparse.Namespace(**vars(args))
        for key, value in entry.items():
            setattr(run, key, json.dumps(value) if key.endswith("kwargs") else value)
        runs.append(run)
    return runs


def format_row(row):
    """One line of the table: data set, method, label, random init, after SSL, margin, after
    SSL with precise BN, seconds, loss."""
    curve = "".join(f"\n    kNN after epoch {k}: {v:.4f}" for k, v in row["knn_by_epoch"].items())
    return (
        f"{row['dataset']:<12}{row['method']:<13}{row['label'][:22]:<23}{row['random_init']:>7.4f}"
        f"{row['after_ssl']:>8.4f}{row['margin']:>+8.4f}  |{row['random_init_precise_bn']:>7.4f}"
        f"{row['after_ssl_views_bn']:>8.4f}{row['after_ssl_precise_bn']:>8.4f}"
        f"{row['seconds']:>7.1f}  loss {row['loss_first']:.3f} -> {row['loss_last']:.3f}" + curve
    )


def main(argv=None):
    """Runs every (data set, method, variant) and prints one line per run plus a summary."""
    args = parse_args(argv)
    print(f"# {' '.join(sys.argv)}  (cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f})")
    header = (
        f"{'dataset':<12}{'method':<13}{'setting':<23}{'random':>7}{'after':>8}{'margin':>8}"
        f"  |{'r-pbn':>7}{'vbn':>8}{'pbn':>8}{'sec':>7}"
    )
    print(header, flush=True)
    rows = []
    for dataset in args.datasets.split(","):
        data = load(dataset, args.train_examples, args.test_examples, args.seed)
        keras.backend.clear_session()
        keras.utils.set_random_seed(args.seed)
        encoder = issue_encoder(tuple(data[0][0].shape[1:]))
        random_init = knn(encoder, data)
        recalibrate_batch_norm(encoder, data[0][0])
        random_init_precise_bn = knn(encoder, data)
        for method_name in args.methods.split(","):
            for run in variants(args):
                row = run_one(dataset, data, method_name, run, random_init, random_init_precise_bn)
                rows.append(row)
                print(format_row(row), flush=True)
                if args.out:
                    with open(args.out, "a") as stream:
                        stream.write(json.dumps(row) + "\n")
    print("\n" + header)
    for row in rows:
        print(format_row(row))
    return rows


if __name__ == "__main__":
    main()
