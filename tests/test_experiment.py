import json
import os

import keras
import numpy as np
import pytest

from keras_ssl import callbacks, evaluation, experiment
from keras_ssl import config as config_lib
from keras_ssl.datasets import fashion_mnist
from keras_ssl.datasets.splits import load_splits, probe_splits
from keras_ssl.optimizers import build_optimizer, scaled_learning_rate


def tiny_config(**changes):
    config = config_lib.default_config()
    config.data.data_dir = str(fashion_mnist.EMBEDDED_DIR)
    config.data.train_examples = 256
    config.data.probe_train_examples = 300
    config.data.probe_test_examples = 100
    config.backbone_kwargs = {"widths": (4, 8)}
    config.method_kwargs = {"temperature": 0.2, "projection_dim": 16}
    config.batch_size = 64
    config.epochs = 2
    config.precision = "float32"
    config.probes.linear_epochs = 5
    config.probes.collapse_every_epochs = 1
    for key, value in changes.items():
        node = config
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("run"))
    model, history = experiment.train(tiny_config(), workdir, verbose=0)
    return workdir, model, history


def test_train_writes_the_work_folder(trained_run):
    workdir, model, history = trained_run
    for name in ("config.json", "model.keras", "history.json", "views.png", "training.png"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    assert os.path.exists(os.path.join(workdir, "encoder", "saved_model.pb"))
    assert not os.path.exists(os.path.join(workdir, "backup"))  # removed after a finished run
    with open(os.path.join(workdir, "history.json")) as f:
        record = json.load(f)
    assert len(record["history"]["loss"]) == 2
    assert len(record["history"]["knn_accuracy"]) == 2
    assert np.isnan(record["history"]["linear_accuracy"][0])  # linear probe: last epoch only
    assert 0 <= record["history"]["linear_accuracy"][1] <= 1
    assert record["train_minutes"] > 0
    assert history["loss"] == record["history"]["loss"]


def test_eval_reports_ssl_and_baselines_on_the_same_split(trained_run, capsys):
    workdir, model, _ = trained_run
    metrics = experiment.evaluate(workdir, baselines=True)
    assert set(metrics["results"]) == {"ssl", "raw_pixels", "random_init"}
    assert metrics["probe_train_examples"] == 300 and metrics["probe_test_examples"] == 100
    with open(os.path.join(workdir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    # The raw-pixel row is exactly the weighted kNN on L2-normalised pixels of the split.
    config = experiment.load_config(workdir)
    probe_train, probe_test = probe_splits(config, load_splits(config.data))
    pixels = [
        evaluation.l2_normalize(x.reshape(len(x), -1) / 255.0)
        for x in (probe_train[0], probe_test[0])
    ]
    expected = evaluation.knn_accuracy(
        pixels[0], probe_train[1], pixels[1], probe_test[1], k=20, temperature=0.07
    )
    assert metrics["results"]["raw_pixels"]["knn_accuracy"] == pytest.approx(expected)
    printed = capsys.readouterr().out
    assert "raw pixels" in printed and "random-init encoder" in printed
    # The same table is the registry's "probes" protocol, row for row.
    record = experiment.evaluate(workdir, protocol="probes", verbose=False)
    assert record["probes"]["results"] == metrics["results"]
    assert record["probes"]["knn_k"] == metrics["knn_k"] == 20


def test_export_run_is_idempotent(trained_run):
    workdir, _, _ = trained_run
    path = experiment.export_run(workdir)
    assert path == os.path.join(workdir, "encoder")


def test_time_limit_stops_training_early(tmp_path):
    config = tiny_config(epochs=5, time_budget_minutes=1e-4, export=False)
    config.probes.knn_every_epochs = 0
    _, history = experiment.train(config, str(tmp_path), verbose=0)
    assert len(history["loss"]) == 1
    assert not os.path.exists(tmp_path / "encoder")


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"method": "simclr2"}, "Unknown method 'simclr2'"),
        ({"backbone": "vgg"}, "Unknown backbone 'vgg'"),
        ({"method_kwargs": {"temprature": 0.1}}, "Bad arguments for method"),
        ({"data.data_dir": "/no/such/folder"}, "/no/such/folder"),
        ({"data.dataset": "mnist"}, "Unknown dataset 'mnist'"),
        ({"optimizer.name": "adamax2"}, "Unknown optimizer"),
        ({"precision": "half"}, "Unknown precision policy"),
    ],
)
def test_bad_configs_raise_value_errors(tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        experiment.train(tiny_config(**changes), str(tmp_path), verbose=0)


def test_eval_of_a_folder_without_a_run(tmp_path):
    with pytest.raises(ValueError, match="No trained run"):
        experiment.evaluate(str(tmp_path))


def test_lars_from_the_config(tmp_path):
    config = tiny_config(epochs=1, export=False)
    config.optimizer.name = "lars"
    config.optimizer.learning_rate = 0.3
    config.optimizer.weight_decay = 1e-6
    model, history = experiment.train(config, str(tmp_path), verbose=0)
    assert type(model.optimizer).__name__ == "LARS"
    assert model.optimizer.lars_weight_decay == 1e-6
    assert np.isfinite(history["loss"][0])


class _PoisonLearningRate(keras.callbacks.Callback):
    """Sets an absurd learning rate from the second epoch on, so training diverges."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.optimizer.learning_rate.assign(1e38)


def test_non_finite_loss_stops_and_keeps_last_good_state(tmp_path, monkeypatch):
    workdir = str(tmp_path)
    config = tiny_config(epochs=1)
    config.optimizer.schedule = "constant"
    config.optimizer.name = "sgd"
    experiment.train(config, workdir, verbose=0)
    model_path, export_pb = tmp_path / "model.keras", tmp_path / "encoder" / "saved_model.pb"
    saved = (model_path.read_bytes(), export_pb.read_bytes())
    build = experiment._training_callbacks
    monkeypatch.setattr(
        experiment,
        "_training_callbacks",
        lambda *args: build(*args) + [_PoisonLearningRate()],
    )
    config.epochs = 3
    with pytest.raises(callbacks.NonFiniteLossError, match=r"optimizer step \d+ \(epoch 2"):
        experiment.train(config, workdir, verbose=0)
    assert (model_path.read_bytes(), export_pb.read_bytes()) == saved
    with open(tmp_path / "backup" / "training_metadata.json") as f:
        assert json.load(f)["epoch"] == 1  # the last good epoch, ready to resume from


@pytest.mark.parametrize(
    "rule, expected", [("none", 0.3), ("linear", 0.3 * 4096 / 256), ("sqrt", 0.3 * 4.0)]
)
def test_learning_rate_scaling_rules(rule, expected):
    config = config_lib.default_config()
    config.optimizer.learning_rate = 0.3
    config.optimizer.scaling = rule
    assert scaled_learning_rate(config.optimizer, 4096) == pytest.approx(expected)


def test_unknown_scaling_rule():
    config = config_lib.default_config()
    config.optimizer.scaling = "cubic"
    with pytest.raises(ValueError, match="scaling 'cubic'"):
        scaled_learning_rate(config.optimizer, 256)


def _batch_norm_layers(model):
    layers = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layers.append(layer)
    return layers


@pytest.mark.parametrize(
    "method, replicas, backbone, expected",
    [
        ("simclr", 2, {}, True),  # global statistics on several replicas
        ("simclr", 1, {}, False),  # nothing to synchronise on one device
        ("simclr", 2, {"synchronized_bn": False}, False),  # the config wins (both set)
        ("moco", 2, {}, False),  # shuffle-BN needs per-replica statistics
    ],
)
def test_batch_norm_is_synchronised_on_several_replicas(method, replicas, backbone, expected):
    config = tiny_config(method=method)
    config.method_kwargs = {"queue_size": 128} if method == "moco" else {"projection_dim": 16}
    if method == "simclr":
        config.method_kwargs.update(backbone)
    config.backbone_kwargs = {"widths": (4, 8), **backbone}
    model = experiment.build_model(config, (28, 28, 1), replicas=replicas)
    layers = _batch_norm_layers(model)
    assert layers and {layer.synchronized for layer in layers} == {expected}


def test_weight_decay_skips_biases_and_normalisation():
    config = tiny_config(**{"optimizer.name": "sgd", "optimizer.schedule": "constant"})
    config.optimizer.learning_rate, config.optimizer.weight_decay = 0.1, 0.5
    config.optimizer.momentum = 0.0
    optimizer = build_optimizer(config.optimizer, steps_per_epoch=1, epochs=1)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization()]
    )
    rng = np.random.default_rng(0)
    for variable in model.trainable_variables:  # non-zero biases and shifts, so decay shows
        variable.assign(rng.normal(size=variable.shape).astype("float32"))
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    variables = model.trainable_variables
    optimizer.apply([keras.ops.zeros_like(v) for v in variables], variables)
    for variable in model.trainable_variables:
        # With zero gradients only the decoupled decay moves a variable: w <- w (1 - lr wd).
        factor = 1.0 if variable.name in ("bias", "gamma", "beta") else 1 - 0.1 * 0.5
        np.testing.assert_allclose(
            variable.numpy(),
            before[variable.path] * factor,
            rtol=1e-6,
            err_msg=variable.path,
            atol=1e-6,
        )


@pytest.mark.parametrize(
    ("steps_per_epoch", "epochs"), [(31, 90), (937, 3), (5000, 1), (2800, 1), (1400, 2)]
)
def test_train_steps_become_epochs_of_the_real_dataset(steps_per_epoch, epochs):
    config = tiny_config(epochs=0, train_steps=2800)
    assert experiment.training_epochs(config, steps_per_epoch) == epochs
    assert experiment.training_epochs(tiny_config(), steps_per_epoch) == 2  # epochs as given


@pytest.mark.parametrize(
    "changes",
    [{"train_steps": 100}, {"epochs": 0}, {"epochs": 0, "train_steps": -5}, {"epochs": -1}],
)
def test_a_bad_training_length_is_a_clear_error(changes):
    config = tiny_config(**changes)
    received = f"received epochs={config.epochs}, train_steps={config.train_steps}"
    with pytest.raises(ValueError, match=rf"Exactly one of config.epochs and .*{received}.*Fix"):
        experiment.training_epochs(config, 10)


def test_a_step_budget_trains_the_epochs_it_gives(tmp_path):
    config = tiny_config(epochs=0, train_steps=8)  # 256 images / 64 = 4 steps per epoch
    _, history = experiment.train(config, str(tmp_path), verbose=0)
    assert len(history["loss"]) == 2
    with open(tmp_path / "history.json") as f:
        assert json.load(f)["epochs"] == 2
