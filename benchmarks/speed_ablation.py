"""What each optimisation of the SimCLR train step buys: before/after rows; a markdown table.

    python benchmarks/speed_ablation.py [--batch 128] [--image-size 32] [--steps 3]
        [--repeats 3] [--variants 0,1,2] [--out runs/speed_ablation]

The step is ``benchmarks/throughput.py --compare-pytorch``'s: SimCLR with ResNet-18 (CIFAR stem),
``configs/simclr_fashion_mnist.py``'s head and temperature, SGD with momentum, batch 128 of
32x32x3 images. Each variant runs in a fresh process (one TensorFlow, one policy per process)
and changes one setting of the variant it is compared with ("vs base"); the first rows build
the library's default step one change at a time from a plain Keras step, the later rows are
alternatives measured against it. Rows with input "views" time the step alone (views made
once); rows with input "tf.data" or "in-step" time ``fit`` end to end from uint8 images, with
the augmentation in the ``tf.data`` pipeline or inside ``train_step``.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import throughput  # noqa: E402  (the benchmark beside this file)

BASE_SETTINGS = {
    "two_pass": False,
    "fused_bn": True,
    "precision": "float32",
    "steps_per_execution": 1,
    "xla": False,
    "intra_op_threads": 0,
    "inter_op_threads": 0,
    "input": "views",
}

# (change, index of the variant it changes, default on this CPU, settings it changes)
VARIANTS = (
    (
        "plain Keras step: one encoder pass per view, Keras BatchNorm, float32",
        None,
        False,
        {"two_pass": True, "fused_bn": False},
    ),
    ("one encoder pass over both views concatenated", 0, True, {"two_pass": False}),
    ("fused BatchNorm kernel (keras_ssl.layers.BatchNormalization)", 1, True, {"fused_bn": True}),
    ("mixed_bfloat16 (precision='auto' on an AMX CPU)", 2, True, {"precision": "mixed_bfloat16"}),
    ("mixed_bfloat16 with Keras BatchNorm", 1, False, {"precision": "mixed_bfloat16"}),
    ("steps_per_execution 4", 3, False, {"steps_per_execution": 4}),
    ("XLA (jit_compile=True)", 3, False, {"xla": True}),
    (
        "TF threads: intra-op 2, inter-op 1",
        3,
        False,
        {"intra_op_threads": 2, "inter_op_threads": 1},
    ),
    ("end to end: augmentation in tf.data (uint8 images in)", 3, True, {"input": "tf.data"}),
    ("end to end: augmentation inside train_step", 8, False, {"input": "in-step"}),
)


def settings_of(index):
    """The full settings of ``VARIANTS[index]``: its base's, updated with its own change."""
    _, base, _, change = VARIANTS[index]
    settings = dict(BASE_SETTINGS) if base is None else settings_of(base)
    settings.update(change)
    return settings


def measure_variant(settings, image_size, batch, steps, repeats):
    """Runs in a fresh process: images/second of the SimCLR ResNet-18 step under ``settings``."""
    throughput.configure_threads(settings["intra_op_threads"], settings["inter_op_threads"])
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_ssl import experiment, methods
    from keras_ssl import precision as precision_lib
    from keras_ssl.datasets.pipeline import make_ssl_dataset
    from keras_ssl.layers import BatchNormalization
    from keras_ssl.losses import nt_xent

    class TwoPassSimCLR(methods.SimCLR):
        """SimCLR as a first Keras port writes it: the encoder called once per view."""

        def compute_ssl_loss(self, views, training):
            features = [self.encoder(view, training=training) for view in views]
            z_a, z_b = (self.projector(f, training=training) for f in features)
            losses = nt_xent(z_a, z_b, temperature=self.temperature)
            return {"loss": tf.reduce_mean(losses)}, features[0]

    BatchNormalization.fused = settings["fused_bn"]
    if settings["two_pass"]:
        methods.REGISTRY["simclr"] = TwoPassSimCLR  # this process only
    config = throughput._load_config("simclr")
    config.backbone, config.backbone_kwargs, config.batch_size = "resnet18", {}, batch
    keras.utils.set_random_seed(0)
    policy = precision_lib.set_policy(settings["precision"], tf.distribute.get_strategy())
    image_shape = (image_size, image_size, 3)
    model = experiment.build_model(config, image_shape)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        jit_compile=settings["xla"],
        steps_per_execution=settings["steps_per_execution"],
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8 * batch, *image_shape), dtype=np.uint8)
    if settings["input"] == "views":
        views = model.augmenter(tf.constant(images[:batch]), seed=tf.constant([0, 1]))
        dataset = tf.data.Dataset.from_tensors({"views": tuple(v.numpy() for v in views)})
        dataset = dataset.repeat()
    else:
        augmenter = model.augmenter if settings["input"] == "tf.data" else None
        dataset = make_ssl_dataset(
            images, batch_size=batch, augmenter=augmenter, seed=0, repeat=True
        )
    spe = settings["steps_per_execution"]
    row = throughput._time_fit(
        model, dataset, batch, steps=steps * spe, repeats=repeats, warmup_steps=2 * spe
    )
    return dict(row, precision=policy, params=int(model.count_params()))


WORKERS = {"variant": measure_variant}


def format_table(rows):
    """Markdown table: one row per variant with its ratio to its base and to the first row."""
    lines = [
        "| # | change | vs # | images/s (spread) | vs base | vs plain Keras | default on CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    by_index = {row["index"]: row for row in rows}
    first = by_index.get(0)
    for row in rows:
        base = by_index.get(row["base"])
        vs_base = f"{row['images_per_s'] / base['images_per_s']:.2f}x" if base else "-"
        vs_first = f"{row['images_per_s'] / first['images_per_s']:.2f}x" if first else "-"
        lines.append(
            f"| {row['index']} | {row['change']} | "
            f"{'-' if row['base'] is None else row['base']} | {row['images_per_s']:.1f} "
            f"({row['spread'][0]:.1f}-{row['spread'][1]:.1f}) | {vs_base} | {vs_first} | "
            f"{'yes' if row['default'] else 'no'} |"
        )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="", help="comma-separated indices (default all)")
    parser.add_argument("--out", default="runs/speed_ablation")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    indices = [int(i) for i in args.variants.split(",")] if args.variants else []
    bad = [i for i in indices if not 0 <= i < len(VARIANTS)]
    if bad:
        raise ValueError(
            f"--variants {bad} out of range; expected indices 0-{len(VARIANTS) - 1}. "
            "Fix: pick from the table's # column."
        )
    args.indices = indices or list(range(len(VARIANTS)))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        kind, kwargs = json.loads(args.worker)
        print("RESULT " + json.dumps(WORKERS[kind](**kwargs)), flush=True)
        return
    started, loads, rows = time.perf_counter(), [throughput.load_average()], []
    for index in args.indices:
        change, base, default, _ = VARIANTS[index]
        row = throughput._run_worker(
            "variant",
            script=__file__,
            settings=settings_of(index),
            image_size=args.image_size,
            batch=args.batch,
            steps=args.steps,
            repeats=args.repeats,
        )
        row.update(index=index, change=change, base=base, default=default)
        rows.append(row)
        loads.append(throughput.load_average())
        print(f"{index}: {change}: {row['images_per_s']:.1f} images/s", flush=True)
    minutes = (time.perf_counter() - started) / 60
    report = (
        f"Command: `python benchmarks/speed_ablation.py {' '.join(sys.argv[1:])}`; "
        f"{os.cpu_count()} CPUs; 1-min load average {min(loads):.2f}-{max(loads):.2f}; "
        f"{minutes:.1f} min.\nSimCLR ResNet-18 (CIFAR stem), batch {args.batch}, "
        f"{args.image_size}x{args.image_size}x3, SGD; {args.repeats} timed repeats of "
        f"{args.steps} steps after 2 warm-up steps (times steps_per_execution).\n\n"
        + format_table(rows)
    )
    throughput.write_report(args.out, report, {"rows": rows, "minutes": minutes})


if __name__ == "__main__":
    main()
