"""SimCLR on the full Fashion-MNIST for a fixed wall-clock budget; kNN and linear accuracy.

    python benchmarks/simclr_fashion_mnist.py [--minutes 35] [--epochs 14] [--workdir DIR]
                                              [--set optimizer.learning_rate=0.001 ...]

Pretrains with configs/simclr_fashion_mnist.py's recipe, scaled up for a longer budget (a 4x
wider SmallResNet 32-64-128 and crops of scale 0.5-1), on all 60,000 training images
(``--epochs`` sets the cosine schedule; the ``--minutes`` budget stops training early if the
machine is slower than planned), then probes the encoder on the full 60,000 / 10,000 split:
weighted kNN (k=20, T=0.07, cosine) and a linear classifier, next to raw pixels and the
random-init encoder. Prints a markdown table and writes ``DIR/metrics.json``.
"""

import argparse
import ast
import importlib.util
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_ssl import config as config_lib  # noqa: E402
from keras_ssl import experiment  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def benchmark_config(epochs, minutes, settings=()):
    path = os.path.join(ROOT, "configs", "simclr_fashion_mnist.py")
    spec = importlib.util.spec_from_file_location("simclr_fashion_mnist", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.epochs = epochs
    config.train_steps = 0  # a budget in epochs, not the demo's step count
    config.batch_size = 128
    config.time_budget_minutes = minutes
    config.data.train_examples = None
    config.data.probe_train_examples = None  # the full 60k labelled train split
    config.data.probe_test_examples = None  # the full 10k test split
    config.backbone_kwargs = {"widths": (32, 64, 128)}
    config.augment.kwargs = {"crop_scale": (0.5, 1.0)}
    config.probes.knn_every_epochs = max(1, epochs // 5)
    for setting in settings:
        field, _, value = setting.partition("=")
        node = config
        *parents, leaf = field.split(".")
        for parent in parents:
            node = node[parent]
        node[leaf] = ast.literal_eval(value)
    config_lib.validate(config)
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=35.0, help="training wall budget")
    parser.add_argument("--epochs", type=int, default=14, help="epochs of the LR schedule")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="config override, e.g. backbone_kwargs.widths='(32, 64, 128)' (repeatable)",
    )
    parser.add_argument("--workdir", default=os.path.join(ROOT, "runs", "benchmark_simclr"))
    args = parser.parse_args()
    config = benchmark_config(args.epochs, args.minutes, args.set)
    start = time.monotonic()
    experiment.train(config, args.workdir, verbose=2)
    metrics = experiment.evaluate(args.workdir, baselines=True, verbose=False)
    rows = metrics["results"]
    print(
        f"\nSimCLR / {config.backbone} {config.backbone_kwargs.to_dict()} / batch "
        f"{config.batch_size} / {metrics['epochs_trained']} epochs in "
        f"{metrics['train_minutes']:.1f} min on {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}); "
        f"total {(time.monotonic() - start) / 60:.1f} min"
    )
    print(
        f"Probe split: {metrics['probe_train_examples']} train / "
        f"{metrics['probe_test_examples']} test"
    )
    print("\n| features | kNN (k=20) | linear |\n|---|---|---|")
    names = {
        "ssl": "SimCLR encoder",
        "raw_pixels": "raw pixels",
        "random_init": "random-init encoder",
    }
    for key, row in rows.items():
        print(f"| {names[key]} | {row['knn_accuracy']:.4f} | {row['linear_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
