import importlib

import keras
import numpy as np
import pytest

from keras_ssl import backbones
from keras_ssl.evaluation.efficiency import data_efficiency
from keras_ssl.evaluation.fine_tune import fine_tune, layer_groups
from keras_ssl.evaluation.fractions import label_fraction
from keras_ssl.evaluation.knn import knn_eval, knn_sweep
from keras_ssl.evaluation.linear import linear_eval, linear_sweep
from keras_ssl.evaluation.plots import embed_2d, plot_convergence, plot_data_efficiency


def separable(n, seed):
    """Images whose class is the brightest of 3 pixel blocks: linearly separable pixels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.uniform(0.0, 0.2, (n, 6, 6, 1)).astype(np.float32)
    for i, label in enumerate(labels):
        images[i, 2 * label : 2 * label + 2] += 0.8
    return images, labels


def flatten_encoder():
    return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten()])


def test_linear_eval_on_separable_data_reaches_100_percent():
    result = linear_eval(flatten_encoder(), separable(90, 0), separable(30, 1), epochs=30)
    assert result["accuracy"] == 1.0 and result["train_accuracy"] == 1.0
    assert len(result["sweep"]) == 6
    best = max(row["validation_accuracy"] for row in result["sweep"])
    assert result["validation_accuracy"] == best
    chosen = [r for r in result["sweep"] if r["validation_accuracy"] == best][0]
    assert (result["learning_rate"], result["weight_decay"]) == (
        chosen["learning_rate"],
        chosen["weight_decay"],
    )


def test_linear_sweep_retrains_the_first_best_setting_on_all_training_data():
    from keras_ssl.evaluation.linear import linear_probe

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)), np.arange(60) % 2
    x[:, 0] += 1.0 * y
    result = linear_sweep(x, y, x[:20], y[:20], 2, (1e-3, 1e-1), (0.0, 1.0), 0.25, epochs=5)
    scores = [row["validation_accuracy"] for row in result["sweep"]]
    first_best = result["sweep"][int(np.argmax(scores))]
    assert (result["learning_rate"], result["weight_decay"]) == (
        first_best["learning_rate"],
        first_best["weight_decay"],
    )
    expected = linear_probe(
        x, y, x[:20], y[:20], 2, 5, 1024, first_best["learning_rate"], first_best["weight_decay"], 0
    )
    assert result["accuracy"] == expected["accuracy"]
    assert result["train_examples"] == 60


@pytest.mark.parametrize("fraction", [0, 1, 1.5])
def test_linear_sweep_bad_validation_fraction(fraction):
    with pytest.raises(ValueError, match="validation_fraction"):
        linear_sweep(
            np.ones((4, 2)), [0, 1, 0, 1], np.ones((2, 2)), [0, 1], 2, (1e-3,), (0.0,), fraction
        )


def test_linear_sweep_empty_sweep():
    with pytest.raises(ValueError, match="sweep is empty"):
        linear_sweep(np.ones((4, 2)), [0, 1, 0, 1], np.ones((2, 2)), [0, 1], 2, ())


def brute_force_knn(train, train_labels, test, k, temperature, classes):
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    predictions = []
    for query in test:
        similarity = train @ query
        nearest = np.argsort(-similarity, kind="stable")[:k]
        votes = np.zeros(classes)
        for index in nearest:
            votes[train_labels[index]] += np.exp(similarity[index] / temperature)
        predictions.append(np.argmax(votes))
    return np.array(predictions)


def test_knn_eval_equals_brute_force_numpy_for_every_k():
    rng = np.random.default_rng(0)
    x_train, y_train = rng.uniform(size=(50, 6, 6, 1)).astype(np.float32), rng.integers(0, 4, 50)
    x_test, y_test = rng.uniform(size=(20, 6, 6, 1)).astype(np.float32), rng.integers(0, 4, 20)
    result = knn_eval(flatten_encoder(), (x_train, y_train), (x_test, y_test), ks=(5, 50))
    assert result["ks"] == [5, 50] and result["temperature"] == 0.07  # the library default
    for k in (5, 50):
        expected = brute_force_knn(
            x_train.reshape(50, -1), y_train, x_test.reshape(20, -1), k, 0.07, 4
        )
        assert result["accuracies"][str(k)] == pytest.approx(np.mean(expected == y_test))
    assert result["accuracy"] == result["accuracies"]["5"]


def test_knn_sweep_errors():
    features, labels = np.eye(3), [0, 1, 2]
    with pytest.raises(ValueError, match="`ks` is empty"):
        knn_sweep(features, labels, features, labels, ks=())
    with pytest.raises(ValueError, match="larger than the training set"):
        knn_sweep(features, labels, features, labels, ks=(200,))


def tiny_resnet():
    keras.utils.set_random_seed(0)
    return backbones.REGISTRY["small_resnet"]((6, 6, 1), widths=(4,))


def test_fine_tune_learns_leaves_the_encoder_alone_and_is_reproducible():
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(8, "relu")]
    )
    before = [w.copy() for w in encoder.get_weights()]
    train, test = separable(96, 0), separable(30, 1)
    kwargs = dict(epochs=4, batch_size=16, learning_rate=1e-2, validation_fraction=0.25, verbose=0)
    result = fine_tune(encoder, train, test, **kwargs)
    for name in ("loss", "test_accuracy", "val_accuracy"):
        assert len(result["curves"][name]) == 4
    assert result["curves"]["loss"][-1] < result["curves"]["loss"][0]
    assert result["accuracy"] > 0.9
    assert result["train_examples"] == 72
    for old, new in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(old, new)
    again = fine_tune(encoder, train, test, **kwargs)
    np.testing.assert_allclose(
        again["curves"]["loss"], result["curves"]["loss"], rtol=1e-5, atol=1e-5
    )


def test_fine_tune_on_a_label_fraction_uses_the_balanced_subset():
    train = separable(90, 0)
    result = fine_tune(
        tiny_resnet(), train, separable(9, 1), fraction=0.1, seed=3, epochs=1, verbose=0
    )
    assert result["train_examples"] == len(label_fraction(train[1], 0.1, 3)) == 9


def test_layer_decay_scales_the_first_adam_step_per_depth():
    encoder = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(5, name="a"),
            keras.layers.Dense(4, name="b"),
        ]
    )
    head = keras.layers.Dense(3, name="head")
    head.build((None, 4))
    groups = layer_groups(encoder, head, 0.5)
    assert [scale for _, scale in groups] == [0.25, 0.5, 1.0]
    assert [len(v) for v, _ in groups] == [2, 2, 2]
    assert layer_groups(encoder, head)[0][1] == 1.0 and len(layer_groups(encoder, head)) == 1
    before = [w.copy() for w in encoder.get_weights()]
    copy_check = {}

    def capture(weights):
        copy_check["w"] = weights

    module = importlib.import_module("keras_ssl.evaluation.fine_tune")

    original = module._build_classifier

    def spy(enc, shape, classes):
        classifier, backbone, head_layer = original(enc, shape, classes)
        capture(backbone)
        return classifier, backbone, head_layer

    module._build_classifier = spy
    try:
        fine_tune(
            encoder,
            separable(8, 0),
            separable(3, 1),
            epochs=1,
            batch_size=4,
            learning_rate=1e-2,
            weight_decay=0.0,
            layer_decay=0.5,
            verbose=0,
        )
    finally:
        module._build_classifier = original
    after = copy_check["w"].get_weights()
    steps = [np.max(np.abs(a - b)) for a, b in zip(after, before)]
    # The zero-initialised head passes no gradient on step 1; step 2 moves every weight by
    # the same Adam factor times its layer's rate, so layer a moves half as far as layer b.
    assert steps[2] > 0
    np.testing.assert_allclose(steps[0] / steps[2], 0.5, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layer_decay": 1.5}, "layer_decay"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"epochs": 0}, "epochs"),
        ({"fraction": 0}, "fraction"),
    ],
)
def test_fine_tune_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fine_tune(flatten_encoder(), separable(6, 0), separable(3, 1), verbose=0, **kwargs)


def test_data_efficiency_linear_matches_direct_probes_and_plots(tmp_path):
    from keras_ssl.evaluation.linear import linear_probe

    train, test = separable(60, 0), separable(15, 1)
    result = data_efficiency(
        {"pixels": flatten_encoder()}, train, test, fractions=(0.1, 1.0), seeds=(0, 1), epochs=10
    )
    assert result["train_examples"] == [6, 60]
    features = train[0].reshape(60, -1)
    subset = label_fraction(train[1], 0.1, 1)
    expected = linear_probe(
        features[subset],
        train[1][subset],
        test[0].reshape(15, -1),
        test[1],
        3,
        epochs=10,
        batch_size=256,
        seed=1,
    )["accuracy"]
    assert result["results"]["pixels"]["runs"][0][1] == pytest.approx(expected)
    assert result["results"]["pixels"]["mean"][1] == 1.0
    path = plot_data_efficiency(result, str(tmp_path / "eff.png"))
    assert (tmp_path / "eff.png").stat().st_size > 0 and path.endswith("eff.png")
    plot_convergence({"a": {"test_accuracy": [0.1, 0.5], "loss": [2, 1]}}, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0


def test_data_efficiency_errors():
    with pytest.raises(ValueError, match="Unknown label-fraction protocol"):
        data_efficiency({"a": flatten_encoder()}, separable(6, 0), separable(3, 1), protocol="svm")
    with pytest.raises(ValueError, match="non-empty dict"):
        data_efficiency({}, separable(6, 0), separable(3, 1))


def test_embed_2d_separates_clusters_and_rejects_unknown_method():
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(size=(20, 5)), rng.normal(size=(20, 5)) + 20])
    points = embed_2d(features, seed=0)
    assert points.shape == (40, 2)
    centre_gap = np.linalg.norm(points[:20].mean(0) - points[20:].mean(0))
    assert centre_gap > 3 * points[:20].std(0).max()
    with pytest.raises(ValueError, match="Unknown embedding method"):
        embed_2d(features, method="pca")
    with pytest.raises(ValueError, match="convergence|curves"):
        plot_convergence({}, "x.png")
