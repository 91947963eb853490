"""U-Net segmentation transfer of SSL encoders on the built-in Fashion-MNIST canvas set.

    python benchmarks/segmentation.py [--methods simclr,rotation,autoencoder]
        [--workdirs DIR,DIR] [--train_epochs 2] [--train_examples 20000]
        [--canvases 1000] [--epochs 8] [--out runs/segmentation] [--quick]

Each encoder is trained here (``--methods``: the method's own
``configs/<method>_fashion_mnist.py`` with benchmarks/quality.py's shared budget, SmallResNet
16-32-64, batch 128, ``--train_epochs`` epochs over the first ``--train_examples`` Fashion-MNIST
training images) and/or reused from finished runs (``--workdirs``: folders holding
``model.keras`` and ``config.json``, e.g. ``OUT/<method>`` of benchmarks/quality.py; the method
name is read from the config, and ``--methods`` then trains only the methods not among them).
Every encoder then gets ``segmentation_transfer`` on the canvas set (``fashion_mnist_canvases``:
2-4 garments on 56x56, 11 classes): ``--canvases`` training canvases from the training garments,
500 test canvases from the test garments, label fractions 1%, 10% and 100% (seeded random
subsets of images, nested), encoder frozen and fine-tuned, U-Net trained ``--epochs`` epochs (at
least ``--min_steps`` steps), batch 32, AdamW ``--learning_rate`` (1e-3). The same architecture
from random initialisation (seeded) is the baseline. The table of test mean IoU (averaged over
the classes present in the ground truth or prediction) goes to stdout and ``OUT/results.md``;
per-run JSON to ``OUT/results.json``, plots to ``OUT/<method>/``.

Budget: with the defaults (3 methods trained for 2 epochs on 20k images, 1000 canvases, 8
U-Net epochs, >= 100 steps) the whole run takes about 15 minutes on a 2-core CPU: the transfer
of 3 encoders + random init took 8.7 min (measured), SimCLR trains 20k images per epoch in about
1 min. ``--quick`` (1 training epoch on 5k images, 300 canvases, 2 U-Net epochs, >= 30 steps)
takes a few minutes.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_ssl import config as config_lib  # noqa: E402
from keras_ssl import experiment, precision  # noqa: E402
from keras_ssl.datasets.segmentation import fashion_mnist_canvases  # noqa: E402
from keras_ssl.evaluation.segmentation import segmentation_transfer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRACTIONS = (0.01, 0.1, 1.0)
TEST_CANVASES = 500
NUM_CLASSES = 11


def trained_runs(args):
    """``{method: (model, config)}`` from --workdirs, or trained here for --methods."""
    runs = {}
    for workdir in [d for d in (args.workdirs or "").split(",") if d]:
        config = experiment.load_config(workdir)
        precision.set_policy(config.precision)
        runs[config.method] = (experiment._load_model(workdir), config)
    names = [m.strip() for m in (args.methods or "").split(",") if m.strip() not in ("", *runs)]
    if not names:
        return runs
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from quality import method_config

    for name in names:
        config = method_config(name, args.train_epochs, None)
        config.data.train_examples = args.train_examples
        config.data.probe_train_examples = min(5000, args.train_examples)
        config.data.probe_test_examples = 2000
        config_lib.validate(config)
        start = time.monotonic()
        model, _ = experiment.train(config, os.path.join(args.out, name), verbose=2)
        print(f"trained {name} in {(time.monotonic() - start) / 60:.1f} min", flush=True)
        runs[name] = (model, config)
    return runs


def format_table(rows):
    """Markdown table: method, init, mode, mIoU at each fraction, pixel accuracy at 100%."""
    header = "| method | init | mode | " + " | ".join(f"{f:.0%} mIoU" for f in FRACTIONS)
    lines = [header + " | 100% pixel acc |", "|---" * (4 + len(FRACTIONS)) + "|"]
    for row in rows:
        values = " | ".join(f"{row[f'{f:g}']['mean_iou']:.4f}" for f in FRACTIONS)
        accuracy = row["1"]["pixel_accuracy"]
        lines.append(
            f"| {row['method']} | {row['init']} | {row['mode']} | {values} | {accuracy:.4f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="simclr,rotation,autoencoder", help="'' for none")
    parser.add_argument("--workdirs", default=None, help="comma-separated finished runs")
    parser.add_argument("--train_epochs", type=int, default=2)
    parser.add_argument("--train_examples", type=int, default=20000)
    parser.add_argument("--canvases", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--min_steps", type=int, default=100)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "segmentation"))
    parser.add_argument("--quick", action="store_true", help="a few-minute smoke budget")
    args = parser.parse_args()
    if args.quick:
        args.train_epochs, args.train_examples = 1, 5000
        args.canvases, args.epochs, args.min_steps = 300, 2, 30
    runs = trained_runs(args)
    train = fashion_mnist_canvases("train", args.canvases, seed=0)
    test = fashion_mnist_canvases("test", TEST_CANVASES, seed=1)
    budget = dict(
        fractions=FRACTIONS,
        epochs=args.epochs,
        min_steps=args.min_steps,
        learning_rate=args.learning_rate,
        verbose=1,
    )
    encoders = {name: ("ssl", model.export_encoder) for name, (model, _) in runs.items()}
    name, (_, config) = next(iter(runs.items()))
    keras.utils.set_random_seed(config.seed)
    random_model = experiment.build_model(config, train[0].shape[1:])
    encoders["random init"] = ("random_init", random_model.export_encoder)
    rows, records = [], {}
    start = time.monotonic()
    for method, (init, encoder) in encoders.items():
        result = segmentation_transfer(
            encoder,
            train,
            test,
            NUM_CLASSES,
            random_init=False,
            workdir=os.path.join(args.out, method.replace(" ", "_")),
            **budget,
        )
        records[method] = result
        for mode, by_fraction in result["results"]["ssl"].items():
            rows.append({"method": method, "init": init, "mode": mode, **by_fraction})
        print(format_table(rows[-len(result["modes"]) :]), flush=True)
    minutes = (time.monotonic() - start) / 60
    table = format_table(rows)
    note = (
        f"Budget: {args.canvases} train / {TEST_CANVASES} test canvases (56x56, 11 classes), "
        f"U-Net {args.epochs} epochs (>= {args.min_steps} steps), batch 32, "
        f"AdamW {args.learning_rate:g}; "
        f"transfer took {minutes:.1f} min."
    )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table + "\n\n" + note + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(records, f, indent=2, default=float)
    print(f"\n{note}\n\n{table}")


if __name__ == "__main__":
    main()
