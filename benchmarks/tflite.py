"""TFLite export of the SmallResNet encoder: file size, latency and agreement per quantisation.

    python benchmarks/tflite.py [--weights simclr_fashion_mnist] [--threads 1] [--repeats 200]

Exports the pretrained encoder (``keras_ssl.pretrained.load``; a randomly initialised SmallResNet
16-32-64 with ``--weights none``) as a SavedModel and with ``export.export_tflite`` for each
``quantize`` value, then on the 500 test images of the embedded Fashion-MNIST subset prints:
file size; latency per image at batch 1 (median wall time of ``--repeats`` single-image calls
through the ``serve`` signature, after a warm-up call) and the CPU time per image (all threads,
``time.process_time``) at batch 1 and at batch 64 (``--repeats / 10`` calls): on a shared
machine the median of short calls and the CPU time stay near the unloaded figures, while the
mean wall time grows with the load;
largest absolute difference and smallest cosine similarity to the SavedModel's embeddings; and
kNN accuracy (k = 20, T = 0.07; the subset's 2,000 training images embedded the same way) next
to the SavedModel's. The first line gives the command, the CPU count and the load average.
"""

import argparse
import functools
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no converter notes

import keras_ssl  # noqa: E402, F401, I001  (first: hides TensorFlow's start-up notices)

# isort: split
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_ssl import backbones, evaluation, export, pretrained  # noqa: E402
from keras_ssl.datasets import fashion_mnist  # noqa: E402


def _timings(function, repeats):
    """Median wall seconds of one call, and CPU seconds (all threads) per call."""
    function()  # warm-up (the signature runner resizes its input on a new batch size)
    times, cpu_start = [], time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), (time.process_time() - cpu_start) / repeats


def _directory_bytes(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def _knn(train, y_train, test, y_test):
    return evaluation.knn_accuracy(train, y_train, test, y_test, 10, k=20, temperature=0.07)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="simclr_fashion_mnist", help="a name, or none")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads")
    parser.add_argument("--repeats", type=int, default=200, help="batch-1 calls timed")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    print(
        f"command: python {' '.join(sys.argv)} | CPUs: {os.cpu_count()} | load average: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    started = time.monotonic()
    if args.weights == "none":
        encoder = backbones.SmallResNet((28, 28, 1), widths=(16, 32, 64))
    else:
        encoder = pretrained.load(args.weights)
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(source="embedded")
    x_train, x_test = x_train[..., None], x_test[..., None]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        saved_path = export.export_encoder(encoder, os.path.join(folder, "saved_model"))
        loaded = tf.saved_model.load(saved_path)
        serve = loaded.serve
        reference = serve(tf.constant(x_test))["embeddings"].numpy()
        reference_train = serve(tf.constant(x_train))["embeddings"].numpy()
        one, batch = tf.constant(x_test[:1]), tf.constant(x_test[:64])
        rows.append(
            {
                "format": "SavedModel (float32)",
                "bytes": _directory_bytes(saved_path),
                "one": _timings(lambda: serve(one), args.repeats),
                "batch": _timings(lambda: serve(batch), args.repeats // 10),
                "max_abs": 0.0,
                "min_cos": 1.0,
                "knn": _knn(reference_train, y_train, reference, y_test),
            }
        )
        for quantize in export.QUANTIZATIONS:
            path = export.export_tflite(
                encoder, os.path.join(folder, f"{quantize}.tflite"), quantize=quantize
            )
            interpreter = export.tflite_interpreter(path, num_threads=args.threads)
            runner = interpreter.get_signature_runner("serve")
            embeddings = runner(images=x_test)["embeddings"]
            train_embeddings = runner(images=x_train)["embeddings"]
            cosine = np.sum(embeddings * reference, axis=1) / np.linalg.norm(embeddings, axis=1)
            rows.append(
                {
                    "format": f"TFLite quantize={quantize!r}",
                    "bytes": os.path.getsize(path),
                    "one": _timings(functools.partial(runner, images=x_test[:1]), args.repeats),
                    "batch": _timings(
                        functools.partial(runner, images=x_test[:64]), args.repeats // 10
                    ),
                    "max_abs": float(np.abs(embeddings - reference).max()),
                    "min_cos": float(cosine.min()),
                    "knn": _knn(train_embeddings, y_train, embeddings, y_test),
                }
            )
    print(
        f"encoder: {encoder.name} ({args.weights}), {encoder.count_params():,} parameters, "
        f"input {encoder.input_shape[1:]}, {encoder.output_shape[-1]}-d; "
        f"{args.threads} thread(s); embedded subset: 2,000 train / 500 test images"
    )
    print(
        "| format | size (bytes) | ms/image, batch 1 (median wall) | CPU ms/image, batch 1 | "
        "CPU ms/image, batch 64 | max abs diff vs SavedModel | min cosine vs SavedModel | "
        "kNN acc (k=20) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['format']} | {row['bytes']:,} | {1e3 * row['one'][0]:.3f} | "
            f"{1e3 * row['one'][1]:.3f} | {1e3 * row['batch'][1] / 64:.3f} | "
            f"{row['max_abs']:.2e} | {row['min_cos']:.6f} | {row['knn']:.4f} |"
        )
    print(f"total: {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
