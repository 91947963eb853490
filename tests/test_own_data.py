"""Issue 22: the plain API on a user's own small data (benchmarks/own_data.py).

These check why the defaults changed (views of a small image keep their class) and that the
benchmark runs and reports its margin; the margins themselves are measured by the benchmark
(minutes per method) and listed in the README's "Your own data" section.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.augment import presets
from keras_ssl.datasets import small


def _nearest_labels(references, labels, queries):
    """Labels of each query's cosine 1-nearest reference on mean-centred raw pixels."""
    a = references.reshape(len(references), -1).astype(np.float64)
    b = queries.reshape(len(queries), -1).astype(np.float64)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-9
    b /= np.linalg.norm(b, axis=1, keepdims=True) + 1e-9
    return labels[np.argmax(b @ a.T, axis=1)]


@pytest.mark.parametrize("name", ["digits", "glyphs"])
def test_adapted_views_keep_the_class_that_paper_crops_lose(name):
    # A view is only a useful positive if it still shows its image's class. Classified by
    # raw-pixel 1-NN against clean training images, SimCLR's views with the paper's 8% crops
    # keep far less of the class than the adapted default's (measured on 300 test images,
    # 3 seeds: digits 0.26 vs 0.37, glyphs 0.29 vs 0.41; clean images 0.63 / 0.64).
    (x, y), (x_test, y_test) = small.load_data(name, train_examples=1000, test_examples=300, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the paper's crops warn at 28 px
        paper = presets.simclr((28, 28, 1))
    adapted = presets.default_augmenter("simclr", (28, 28, 1))
    accuracy = {}
    for label, augmenter in (("paper", paper), ("adapted", adapted)):
        hits = []
        for seed in range(3):
            views = augmenter(x_test, seed=tf.constant([seed, 1]))
            hits += [np.mean(_nearest_labels(x, y, v.numpy()) == y_test) for v in views]
        accuracy[label] = float(np.mean(hits))
    clean = float(np.mean(_nearest_labels(x, y, x_test) == y_test))
    assert accuracy["adapted"] > accuracy["paper"] + 0.06, accuracy
    assert clean > accuracy["adapted"], (clean, accuracy)


def test_benchmark_runs_the_issue_call_and_reports_the_margin(load_benchmark):
    bench = load_benchmark("own_data")
    rows = bench.main(
        [
            "--datasets=digits",
            "--methods=simclr",
            "--epochs=2",
            "--batch=64",
            "--train-examples=128",
            "--test-examples=40",
            "--probe-every=1",
        ]
    )
    (row,) = rows
    assert (row["dataset"], row["method"], row["epochs"], row["batch"]) == (
        "digits",
        "simclr",
        2,
        64,
    )
    # the per-epoch curve; its last point probes the same weights as the final kNN
    assert sorted(row["knn_by_epoch"]) == [1, 2]
    assert row["knn_by_epoch"][2] == pytest.approx(row["after_ssl"], abs=1e-9)
    for key in ("random_init", "after_ssl", "after_ssl_precise_bn", "after_ssl_views_bn"):
        assert 0.0 <= row[key] <= 1.0
    assert row["margin"] == pytest.approx(row["after_ssl"] - row["random_init"])
    assert np.isfinite(row["loss_last"])


def test_probe_every_must_not_be_negative(load_benchmark, capsys):
    with pytest.raises(SystemExit):
        load_benchmark("own_data").parse_args(["--probe-every=-1"])
    assert "--probe-every must be >= 0" in capsys.readouterr().err


def test_issue_encoder_and_precise_batch_norm(load_benchmark):
    bench = load_benchmark("own_data")
    encoder = bench.issue_encoder((28, 28, 1))
    assert encoder.output_shape == (None, 128)
    convs = [layer for layer in encoder.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 32, 64, 64, 128, 128]
    assert [c.strides[0] for c in convs] == [1, 1, 2, 1, 2, 1]
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    bench.recalibrate_batch_norm(encoder, images, batch_size=32)
    # Independent reference for the first BatchNorm: the mean over the two batches of the
    # first convolution's per-channel batch moments.
    conv, norm = convs[0], encoder.layers[2]
    outputs = conv(images.astype(np.float32) / 255.0).numpy().reshape(2, -1, 32)
    np.testing.assert_allclose(
        norm.moving_mean.numpy(), outputs.mean(1).mean(0), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        norm.moving_variance.numpy(), outputs.var(1).mean(0), rtol=1e-3, atol=1e-6
    )
    assert norm.momentum == 0.99  # restored
