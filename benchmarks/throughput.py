"""Train-step and input-pipeline throughput of every registered method; a markdown table.

    python benchmarks/throughput.py [--methods simclr,moco] [--image-size 32] [--batch 128]
        [--backbone small_resnet] [--precisions float32,mixed_bfloat16] [--xla off]
        [--steps 4] [--repeats 3] [--steps-per-execution 1] [--intra-op-threads 0]
        [--inter-op-threads 0] [--compare-pytorch] [--out runs/throughput]

Train step: each method runs in its own process (a fresh TensorFlow, one strategy per process)
that measures every requested precision (and XLA mode) in turn; SimCLR's 2-replica rows (two
logical CPUs, MirroredStrategy) get a process of their own. The method is built from its
shipped config (``configs/<method>_fashion_mnist.py``, else ``configs/<method>_*.py``) with the
chosen backbone at ``image-size x image-size x 3``; the step is fed views made once by the
method's augmenter, so the figure is the step alone. ``fit`` first runs ``--warmup-steps``
steps (tracing, XLA compilation: "warm-up s"), then ``--repeats`` timed epochs of ``--steps``
steps; the table gives the median images/second (images, not views), the spread (min-max) of
the repeats, and the process's peak resident memory (the maximum over the precisions measured
in that process).

Input pipeline: every augmentation preset runs through ``make_ssl_dataset`` from uint8 images
(batched, augmented in ``tf.data``), timed over ``--pipeline-batches`` batches after one warm-up
batch; the ratio to each method's float32 train step says whether the input keeps up (target:
at least 3x).

``--compare-pytorch`` (needs ``torch``, e.g. ``pip install torch==2.13.0``): keras_ssl's SimCLR
with ResNet-18 (CIFAR stem) against the same model written in PyTorch (``torch_simclr.py``),
batch ``--compare-batch``, float32 and bfloat16, in alternating processes
(keras, torch, keras, torch, ...), with the parameter counts side by side and the ratio.
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


def configure_threads(intra_op_threads=0, inter_op_threads=0):
    """Sets TensorFlow's thread pools (0 keeps TensorFlow's default: one thread per core).

    Must run before the first TensorFlow op of the process.

    Returns:
        ``(intra, inter)``: the values TensorFlow reports afterwards (0 = its default).
    """
    import tensorflow as tf

    if intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra_op_threads))
    if inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(int(inter_op_threads))
    return (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )


def median_and_spread(rates):
    """``(median, [min, max])`` of a list of rates."""
    return statistics.median(rates), [min(rates), max(rates)]


def measure_method(
    method,
    image_size,
    batch,
    backbone,
    precisions=("float32",),
    xla_modes=(False,),
    replicas=1,
    steps=4,
    repeats=3,
    warmup_steps=2,
    steps_per_execution=1,
    intra_op_threads=0,
    inter_op_threads=0,
    backbone_kwargs=None,
):
    """Runs in a fresh process: the train-step rows of one method (a list of dicts), one row per
    (precision, XLA mode), all measured in this process."""
    from keras_ssl.testing.devices import configure_logical_cpus

    if replicas > 1:
        configure_logical_cpus(replicas)
    threads = configure_threads(intra_op_threads, inter_op_threads)
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_ssl import experiment
    from keras_ssl import precision as precision_lib

    config = _load_config(method)
    config.backbone = backbone
    if backbone_kwargs is None:
        backbone_kwargs = {"widths": (32, 64, 128)} if backbone == "small_resnet" else {}
    config.backbone_kwargs = backbone_kwargs
    config.batch_size = batch
    strategy = (
        tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
        if replicas > 1
        else tf.distribute.get_strategy()
    )
    image_shape = (image_size, image_size, 3)
    images = np.random.default_rng(0).integers(0, 256, (batch, *image_shape), dtype=np.uint8)
    rows = []
    for precision in precisions:
        for xla in xla_modes:
            keras.utils.set_random_seed(0)
            policy = precision_lib.set_policy(precision, strategy)
            with strategy.scope():
                model = experiment.build_model(config, image_shape, replicas)
                model.compile(
                    optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                    jit_compile=xla,
                    steps_per_execution=steps_per_execution,
                )
            views = model.augmenter(tf.constant(images), seed=tf.constant([0, 1]))
            views = tuple(v.numpy() for v in views)
            dataset = tf.data.Dataset.from_tensors({"views": views}).repeat()
            row = _time_fit(model, dataset, batch, steps, repeats, warmup_steps)
            row.update(
                method=method,
                backbone=backbone,
                precision=policy,
                xla=xla,
                replicas=replicas,
                steps_per_execution=steps_per_execution,
                threads=list(threads),
                views=len(views),
                params=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            )
            rows.append(row)
            del model
            keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [dict(row, peak_rss_mib=peak) for row in rows]


def _time_fit(model, dataset, batch, steps, repeats, warmup_steps):
    """Warm-up ``fit`` then ``repeats`` timed epochs of ``steps`` steps on an endless dataset of
    ``batch``-image batches."""
    import keras

    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup_steps, verbose=0)
    warmup = time.perf_counter() - start
    model.fit(dataset, epochs=repeats, steps_per_epoch=steps, callbacks=[EpochTimer()], verbose=0)
    median, spread = median_and_spread([batch * steps / seconds for seconds in times])
    return {"images_per_s": median, "spread": spread, "warmup_s": warmup}


def measure_pipelines(presets, image_size, batch, batches):
    """Images per second of each augmentation preset through tf.data, from uint8 images."""
    return [measure_pipeline(preset, image_size, batch, batches) for preset in presets]


def measure_pipeline(preset, image_size, batch, batches):
    """Images per second of one augmentation preset through tf.data, from uint8 images."""
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


def measure_torch(**kwargs):
    """The PyTorch SimCLR ResNet-18 step (``torch_simclr.measure_step``) in this process."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_simclr

    return torch_simclr.measure_step(**kwargs)


WORKERS = {
    "method": measure_method,
    "pipelines": measure_pipelines,
    "torch": measure_torch,
}


def _run_worker(kind, script=__file__, **kwargs):
    """Runs ``WORKERS[kind](**kwargs)`` of ``script`` (a benchmark with a ``--worker`` flag) in a
    fresh Python process and returns its result."""
    command = [sys.executable, os.path.abspath(script), "--worker", json.dumps([kind, kwargs])]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} {kwargs} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def torch_available():
    """Whether ``torch`` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def load_average():
    """The 1-minute load average, a note on how busy the machine was while measuring."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def write_report(out, report, results):
    """Writes ``report`` to ``out/results.md`` and ``results`` to ``out/results.json``, then
    prints the report."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print("\n" + report)


# ---------------------------------------------------------------------------- tables
def format_step_table(rows):
    """Markdown table of train-step rows; the last column compares time per image with the
    SimCLR row of the same precision, XLA mode and replica count."""
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
    """Markdown table of pipeline rates and their ratio to each user's float32 step rate."""
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


def summarize_comparison(runs):
    """Combines alternating keras/torch runs into one row per precision.

    Args:
        runs: dicts with ``side`` (``"keras_ssl"`` or ``"pytorch"``), ``precision``,
            ``images_per_s`` and ``params``, in the order they ran.

    Returns:
        A list of dicts, one per precision (in order of first appearance): ``keras_ssl`` and
        ``pytorch`` (lists of images/s, one per run), their medians, ``ratio`` (keras_ssl median
        / PyTorch median) and both parameter counts.
    """
    rows = {}
    for run in runs:
        row = rows.setdefault(run["precision"], {"precision": run["precision"]})
        row.setdefault(run["side"], []).append(run["images_per_s"])
        row[f"{run['side']}_params"] = run["params"]
    for row in rows.values():
        for side in ("keras_ssl", "pytorch"):
            if not row.get(side):
                raise ValueError(
                    f"No {side} run for precision {row['precision']!r}; received runs "
                    f"{[(r['side'], r['precision']) for r in runs]}. Fix: run both sides for "
                    "every precision."
                )
            row[f"{side}_median"] = statistics.median(row[side])
        row["ratio"] = row["keras_ssl_median"] / row["pytorch_median"]
    return list(rows.values())


def format_comparison_table(rows):
    """Markdown table of :func:`summarize_comparison` rows."""
    lines = [
        "| precision | keras_ssl images/s (runs) | PyTorch images/s (runs) | keras_ssl / PyTorch "
        "| params keras_ssl / PyTorch |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        runs = {s: ", ".join(f"{v:.1f}" for v in r[s]) for s in ("keras_ssl", "pytorch")}
        lines.append(
            f"| {r['precision']} | {r['keras_ssl_median']:.1f} ({runs['keras_ssl']}) | "
            f"{r['pytorch_median']:.1f} ({runs['pytorch']}) | {r['ratio']:.2f}x | "
            f"{r['keras_ssl_params']:,} / {r['pytorch_params']:,} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------ runs
def parse_args(argv=None):
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--methods", default=None, help="comma-separated registry names")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--backbone", default="small_resnet")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--xla", choices=("off", "on", "both"), default="off")
    parser.add_argument("--steps", type=int, default=4, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats")
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--intra-op-threads", type=int, default=0, help="0: TF default")
    parser.add_argument("--inter-op-threads", type=int, default=0, help="0: TF default")
    parser.add_argument("--pipeline-batches", type=int, default=20)
    parser.add_argument("--no-extras", action="store_true", help="skip SimCLR's XLA/2-replica rows")
    parser.add_argument("--no-methods", action="store_true", help="only --compare-pytorch")
    parser.add_argument("--compare-pytorch", action="store_true")
    parser.add_argument("--compare-batch", type=int, default=128)
    parser.add_argument("--compare-rounds", type=int, default=2)
    parser.add_argument("--compare-steps", type=int, default=2)
    parser.add_argument("--compare-repeats", type=int, default=2)
    parser.add_argument("--compare-xla", action="store_true", help="keras_ssl side with XLA")
    parser.add_argument("--torch-threads", type=int, default=0, help="0: one per core")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "throughput"))
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "warmup_steps", "steps_per_execution", "compare_rounds"):
        value = getattr(args, name)
        if value < 1:
            raise ValueError(
                f"--{name.replace('_', '-')} must be at least 1; received {value}. Fix: pass a "
                "positive integer."
            )
    if args.steps % args.steps_per_execution or args.warmup_steps % args.steps_per_execution:
        raise ValueError(
            f"--steps ({args.steps}) and --warmup-steps ({args.warmup_steps}) must be multiples "
            f"of --steps-per-execution ({args.steps_per_execution}). Fix: e.g. --steps "
            f"{args.steps_per_execution * max(1, args.steps // args.steps_per_execution)}."
        )
    return args


def step_jobs(names, precisions, xla_modes, extras=True):
    """Worker jobs: one per method (all precisions and XLA modes in it), then SimCLR's
    extras (XLA on in float32, 2 replicas in every precision) unless ``extras`` is False.

    Returns:
        A list of ``(method, precisions, xla_modes, replicas)``.
    """
    jobs = [(m, list(precisions), list(xla_modes), 1) for m in names]
    if "simclr" in names and extras:
        if True not in xla_modes:
            index = names.index("simclr")
            jobs[index] = ("simclr", list(precisions), [*xla_modes, True], 1)
        jobs.append(("simclr", list(precisions), [False], 2))
    return jobs


def compare_pytorch(args, log=print):
    """Alternating keras_ssl / PyTorch SimCLR ResNet-18 runs; returns the comparison rows and
    every run."""
    if not torch_available():
        raise ValueError(
            "--compare-pytorch needs PyTorch; `import torch` failed. Fix: pip install "
            "torch==2.13.0 (the CPU build) into this environment."
        )
    common = {"image_size": args.image_size}
    runs = []
    for round_index in range(args.compare_rounds):
        for precision in args.precisions.split(","):
            sides = ("keras_ssl", "pytorch") if round_index % 2 == 0 else ("pytorch", "keras_ssl")
            for side in sides:
                load = load_average()
                if side == "keras_ssl":
                    (run,) = _run_worker(
                        "method",
                        method="simclr",
                        backbone="resnet18",
                        backbone_kwargs={},
                        batch=args.compare_batch,
                        precisions=[precision],
                        xla_modes=[args.compare_xla],
                        steps=args.compare_steps,
                        repeats=args.compare_repeats,
                        warmup_steps=args.steps_per_execution,
                        steps_per_execution=args.steps_per_execution,
                        intra_op_threads=args.intra_op_threads,
                        inter_op_threads=args.inter_op_threads,
                        **common,
                    )
                else:
                    run = _run_worker(
                        "torch",
                        batch=args.compare_batch,
                        precision=precision,
                        steps=args.compare_steps,
                        repeats=args.compare_repeats,
                        temperature=_load_config("simclr").method_kwargs["temperature"],
                        threads=args.torch_threads or os.cpu_count(),
                        **common,
                    )
                run.update(side=side, precision=precision, load_before=load)
                runs.append(run)
                log(
                    f"compare round {round_index + 1} {side} {precision}: "
                    f"{run['images_per_s']:.1f} images/s (spread {run['spread'][0]:.1f}-"
                    f"{run['spread'][1]:.1f}), load {load:.2f}",
                )
    return summarize_comparison(runs), runs


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        kind, kwargs = json.loads(args.worker)
        print("RESULT " + json.dumps(WORKERS[kind](**kwargs)), flush=True)
        return

    from keras_ssl import methods as methods_lib

    names = args.methods.split(",") if args.methods else sorted(methods_lib.REGISTRY)
    unknown = sorted(set(names) - set(methods_lib.REGISTRY))
    if unknown:
        raise ValueError(
            f"Unknown methods {unknown}; expected names from {sorted(methods_lib.REGISTRY)}. "
            "Fix: correct --methods."
        )
    if args.compare_pytorch and not torch_available():
        raise ValueError(
            "--compare-pytorch needs PyTorch; `import torch` failed. Fix: pip install "
            "torch==2.13.0 (the CPU build) into this environment, or drop --compare-pytorch."
        )
    started = time.perf_counter()
    precisions = args.precisions.split(",")
    xla_modes = {"off": [False], "on": [True], "both": [False, True]}[args.xla]
    common = {"image_size": args.image_size, "batch": args.batch}
    steps, pipelines, comparison, compare_runs = [], [], [], []
    loads = [load_average()]
    if not args.no_methods:
        for method, job_precisions, job_xla, replicas in step_jobs(
            names, precisions, xla_modes, not args.no_extras
        ):
            rows = _run_worker(
                "method",
                method=method,
                backbone=args.backbone,
                precisions=job_precisions,
                xla_modes=job_xla,
                replicas=replicas,
                steps=args.steps,
                repeats=args.repeats,
                warmup_steps=args.warmup_steps,
                steps_per_execution=args.steps_per_execution,
                intra_op_threads=args.intra_op_threads,
                inter_op_threads=args.inter_op_threads,
                **common,
            )
            steps.extend(rows)
            loads.append(load_average())
            for line in format_step_table(rows).splitlines()[2:]:
                print(line, flush=True)
        method_presets = {m: PRESET_OF.get(m, _load_config(m).augment.preset) for m in names}
        pipelines = _run_worker(
            "pipelines",
            presets=sorted(set(method_presets.values())),
            batches=args.pipeline_batches,
            **common,
        )
    if args.compare_pytorch:
        comparison, compare_runs = compare_pytorch(args)
        loads.append(load_average())
    minutes = (time.perf_counter() - started) / 60
    report = (
        f"Command: `python benchmarks/throughput.py {' '.join(sys.argv[1:])}`; "
        f"{os.cpu_count()} CPUs; 1-min load average {min(loads):.2f}-{max(loads):.2f} while "
        f"measuring; {minutes:.1f} min in all.\n"
        f"Backbone {args.backbone}, {args.image_size}x{args.image_size}x3 images, batch "
        f"{args.batch}, {args.warmup_steps} warm-up steps, then {args.repeats} timed repeats "
        f"of {args.steps} steps; steps_per_execution {args.steps_per_execution}; TF threads "
        f"intra {args.intra_op_threads or 'default'} / inter {args.inter_op_threads or 'default'}."
    )
    if steps:
        report += f"\n\n{format_step_table(steps)}\n\n"
        report += format_pipeline_table(pipelines, steps, method_presets)
    if comparison:
        report += (
            f"\n\nSimCLR ResNet-18 (CIFAR stem), batch {args.compare_batch}, "
            f"{args.image_size}x{args.image_size}x3, SGD: keras_ssl (XLA "
            f"{'on' if args.compare_xla else 'off'}) vs PyTorch {args.torch_threads or 'default'}"
            f" threads, {args.compare_rounds} alternating rounds.\n\n"
            + format_comparison_table(comparison)
        )
    payload = {"steps": steps, "pipelines": pipelines, "comparison": comparison}
    write_report(args.out, report, {**payload, "compare_runs": compare_runs, "minutes": minutes})


if __name__ == "__main__":
    main()
