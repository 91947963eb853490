"""Train-step and input-pipeline throughput of every registered method; a markdown table.

    python benchmarks/throughput.py [--methods simclr,moco] [--image-size 32] [--batch 128]
        [--backbone small_resnet] [--precisions float32,mixed_bfloat16] [--xla off]
        [--replicas 1] [--steps 5] [--repeats 3] [--out runs/throughput]

Train step: each configuration runs in its own process (a fresh TensorFlow, one strategy per
process, its own peak memory). The method is built from ``configs/<method>_fashion_mnist.py``
with the chosen backbone, at ``image-size x image-size x 3``; the step is fed views made once
by the method's augmenter, so the figure is the step alone. ``fit`` runs one warm-up epoch of
``--steps`` steps (tracing, XLA compilation: reported as "warm-up s") and then ``--repeats``
timed epochs of ``--steps`` steps; the table gives the median images/second (images, not views)
and the spread (min-max) of the repeats, and the process's peak resident memory.

Input pipeline: every augmentation preset runs through ``make_ssl_dataset`` from uint8 images
(batched, augmented in ``tf.data``), timed over ``--pipeline-batches`` batches after one warm-up
batch; the ratio to each method's float32 train step says whether the input can keep up (the
target is at least 3x).

SimCLR is additionally measured with XLA on and with 2 replicas (two logical CPUs) unless
``--no-extras``.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET_OF = {"moco": "simclr", "cpc": "crop_flip"}  # presets the configs use, else their own


def _load_config(method):
    """The method's shipped config: ``configs/<method>_fashion_mnist.py``, else the one
    ``configs/<method>_*.py`` (colour methods train on photos)."""
    import glob
    import importlib.util

    path = os.path.join(ROOT, "configs", f"{method}_fashion_mnist.py")
    if not os.path.exists(path):
        matches = sorted(glob.glob(os.path.join(ROOT, "configs", f"{method}_*.py")))
        if not matches:
            raise ValueError(
                f"No config for method {method!r}: expected configs/{method}_*.py. Fix: add one "
                "or leave the method out of --methods."
            )
        path = matches[0]
    spec = importlib.util.spec_from_file_location(f"{method}_fashion_mnist", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def measure_step(method, image_size, batch, backbone, precision, xla, replicas, steps, repeats):
    """Runs in a fresh process: the train-step figures of one configuration (a dict)."""
    from keras_ssl.testing.devices import configure_logical_cpus

    if replicas > 1:
        configure_logical_cpus(replicas)
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_ssl import experiment
    from keras_ssl import precision as precision_lib

    config = _load_config(method)
    config.backbone = backbone
    config.backbone_kwargs = {"widths": (32, 64, 128)} if backbone == "small_resnet" else {}
    config.batch_size = batch
    keras.utils.set_random_seed(0)
    strategy = (
        tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
        if replicas > 1
        else tf.distribute.get_strategy()
    )
    precision_lib.set_policy(precision, strategy)
    image_shape = (image_size, image_size, 3)
    with strategy.scope():
        model = experiment.build_model(config, image_shape, replicas)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=xla)
    images = np.random.default_rng(0).integers(0, 256, (batch, *image_shape), dtype=np.uint8)
    views = tuple(v.numpy() for v in model.augmenter(tf.constant(images), seed=tf.constant([0, 1])))
    dataset = tf.data.Dataset.from_tensors({"views": views}).repeat()

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    times = []
    model.fit(
        dataset, epochs=1 + repeats, steps_per_epoch=steps, callbacks=[EpochTimer()], verbose=0
    )
    rates = [batch * steps / seconds for seconds in times[1:]]
    return {
        "method": method,
        "precision": precision_lib.resolve_policy(precision),
        "xla": xla,
        "replicas": replicas,
        "images_per_s": statistics.median(rates),
        "spread": [min(rates), max(rates)],
        "warmup_s": times[0],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "views": len(views),
        "params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
    }


def measure_pipeline(preset, image_size, batch, batches):
    """Views per second of one augmentation preset through tf.data, from uint8 images."""
    import numpy as np

    from keras_ssl.augment import PRESETS
    from keras_ssl.datasets.pipeline import make_ssl_dataset

    image_shape = (image_size, image_size, 3)
    images = np.random.default_rng(0).integers(
        0, 256, (batch * (batches + 1), *image_shape), dtype=np.uint8
    )
    augmenter = PRESETS[preset](image_shape)
    dataset = make_ssl_dataset(images, batch_size=batch, augmenter=augmenter, seed=0)
    iterator = iter(dataset)
    next(iterator)  # warm-up: tracing
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - start
    return {"preset": preset, "images_per_s": batch * batches / seconds}


def _run_worker(kind, **kwargs):
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps([kind, kwargs])]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} {kwargs} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def format_step_table(rows):
    lines = [
        "| method | precision | XLA | replicas | images/s (median) | spread | warm-up s | "
        "peak RSS MiB | vs SimCLR time/image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    reference = {
        (r["precision"], r["xla"], r["replicas"]): r["images_per_s"]
        for r in rows
        if r["method"] == "simclr"
    }
    for r in rows:
        base = reference.get((r["precision"], r["xla"], r["replicas"]))
        ratio = f"{base / r['images_per_s']:.2f}x" if base else "-"
        lines.append(
            f"| {r['method']} | {r['precision']} | {'on' if r['xla'] else 'off'} | "
            f"{r['replicas']} | {r['images_per_s']:.1f} | {r['spread'][0]:.1f}-"
            f"{r['spread'][1]:.1f} | {r['warmup_s']:.1f} | {r['peak_rss_mib']:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def format_pipeline_table(pipelines, steps, methods):
    step_rate = {
        r["method"]: r["images_per_s"]
        for r in steps
        if r["precision"] == "float32" and not r["xla"] and r["replicas"] == 1
    }
    lines = [
        "| preset | pipeline images/s | used by | pipeline / float32 step |",
        "|---|---|---|---|",
    ]
    for p in pipelines:
        users = [m for m in methods if methods[m] == p["preset"]]
        ratios = ", ".join(
            f"{m} {p['images_per_s'] / step_rate[m]:.1f}x" for m in users if m in step_rate
        )
        lines.append(
            f"| {p['preset']} | {p['images_per_s']:.0f} | {', '.join(users) or '-'} | "
            f"{ratios or '-'} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--methods", default=None, help="comma-separated registry names")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--backbone", default="small_resnet")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--xla", choices=("off", "on", "both"), default="off")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipeline-batches", type=int, default=20)
    parser.add_argument("--no-extras", action="store_true", help="skip SimCLR's XLA/2-replica rows")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "throughput"))
    args = parser.parse_args()
    if args.worker:
        kind, kwargs = json.loads(args.worker)
        function = measure_step if kind == "step" else measure_pipeline
        print("RESULT " + json.dumps(function(**kwargs)), flush=True)
        return

    from keras_ssl import methods as methods_lib

    names = args.methods.split(",") if args.methods else sorted(methods_lib.REGISTRY)
    unknown = sorted(set(names) - set(methods_lib.REGISTRY))
    if unknown:
        raise ValueError(
            f"Unknown methods {unknown}; expected names from {sorted(methods_lib.REGISTRY)}. "
            "Fix: correct --methods."
        )
    precisions = args.precisions.split(",")
    xla_modes = {"off": [False], "on": [True], "both": [False, True]}[args.xla]
    jobs = [(m, p, x, args.replicas) for m in names for p in precisions for x in xla_modes]
    if "simclr" in names and not args.no_extras:
        extras = [("simclr", "float32", True, 1), ("simclr", "float32", False, 2)]
        extras += [("simclr", "mixed_bfloat16", False, 2)]
        jobs += [job for job in extras if job not in jobs]
    common = {"image_size": args.image_size, "batch": args.batch}
    steps = []
    for method, precision, xla, replicas in jobs:
        row = _run_worker(
            "step",
            method=method,
            backbone=args.backbone,
            precision=precision,
            xla=xla,
            replicas=replicas,
            steps=args.steps,
            repeats=args.repeats,
            **common,
        )
        steps.append(row)
        print(format_step_table([row]).splitlines()[-1], flush=True)
    method_presets = {m: PRESET_OF.get(m, _load_config(m).augment.preset) for m in names}
    pipelines = [
        _run_worker("pipeline", preset=preset, batches=args.pipeline_batches, **common)
        for preset in sorted(set(method_presets.values()))
    ]
    report = (
        f"Backbone {args.backbone}, {args.image_size}x{args.image_size}x3 images, batch "
        f"{args.batch}, {args.steps} steps x {args.repeats} timed repeats.\n\n"
        f"{format_step_table(steps)}\n\n{format_pipeline_table(pipelines, steps, method_presets)}"
    )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"steps": steps, "pipelines": pipelines}, f, indent=2)
    print("\n" + report)


if __name__ == "__main__":
    main()
