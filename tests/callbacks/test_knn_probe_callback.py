"""Tests for keras_ssl.callbacks.KNNProbe with a stand-in SSL model."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from stand_ins import dense_encoder, labelled, make_method

from keras_ssl.callbacks import KNNProbe
from keras_ssl.evaluation import extract_features, knn_accuracy
from keras_ssl.testing import two_replica_strategy

SHAPE = (6, 6, 1)


def _encoder(seed=0):
    return dense_encoder(SHAPE, seed)


def _method(seed=0):
    return make_method(SHAPE, seed)


TRAIN, TEST = labelled(120, 0, SHAPE), labelled(60, 1, SHAPE)


class OfflineKNN(keras.callbacks.Callback):
    """Runs after the probe and computes the same accuracy with the offline functions."""

    def __init__(self, k):
        super().__init__()
        self.k = k
        self.values = {}

    def on_epoch_end(self, epoch, logs=None):
        train = extract_features(self.model.encoder, TRAIN[0])
        test = extract_features(self.model.encoder, TEST[0])
        self.values[epoch + 1] = knn_accuracy(train, TRAIN[1], test, TEST[1], k=self.k)


def test_history_holds_the_accuracy_on_probe_epochs_and_nan_elsewhere():
    model = _method()
    probe, offline = KNNProbe(TRAIN, TEST, k=5, every_n_epochs=2), OfflineKNN(k=5)
    history = model.fit(TRAIN[0], epochs=5, batch_size=40, verbose=0, callbacks=[probe, offline])
    values = history.history["knn_accuracy"]
    assert len(values) == 5 and history.epoch == [0, 1, 2, 3, 4]
    assert [math.isnan(v) for v in values] == [True, False, True, False, False]  # 2, 4, last
    for epoch in (2, 4, 5):
        assert values[epoch - 1] == offline.values[epoch] == probe.results[epoch]
    assert sorted(probe.results) == [2, 4, 5]
    assert len(set(offline.values.values())) > 1  # the encoder changed between epochs
    assert 0.4 < values[-1] <= 1.0


def test_progress_bar_shows_the_accuracy(capsys):
    _method().fit(
        TRAIN[0], epochs=1, batch_size=60, verbose=2, callbacks=[KNNProbe(TRAIN, TEST, k=3)]
    )
    assert "knn_accuracy: " in capsys.readouterr().out


def test_datasets_give_the_same_accuracy_as_arrays():
    model = _method()
    model.fit(TRAIN[0], epochs=1, batch_size=40, verbose=0)
    arrays = KNNProbe(TRAIN, TEST, k=5)
    datasets = KNNProbe(
        tf.data.Dataset.from_tensor_slices(TRAIN).shuffle(120, seed=1).batch(32),
        tf.data.Dataset.from_tensor_slices(TEST),
        k=5,
        num_classes=3,
    )
    arrays.set_model(model)
    datasets.set_model(model)
    assert arrays.evaluate() == datasets.evaluate()


def test_probe_works_for_a_model_trained_under_mirrored_strategy():
    with two_replica_strategy().scope():
        model = _method(seed=3)
    probe = KNNProbe(TRAIN, TEST, k=5, name="knn")
    history = model.fit(TRAIN[0], epochs=2, batch_size=40, verbose=0, callbacks=[probe])
    plain = _encoder(seed=4)
    plain.set_weights(model.encoder.get_weights())
    expected = knn_accuracy(
        extract_features(plain, TRAIN[0]), TRAIN[1], extract_features(plain, TEST[0]), TEST[1], k=5
    )
    assert history.history["knn"][-1] == expected


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="`every_n_epochs` must be an integer >= 1; received 0"):
        KNNProbe(TRAIN, TEST, every_n_epochs=0)
    with pytest.raises(ValueError, match=r"`k`=121 is larger than the training set \(120"):
        KNNProbe(TRAIN, TEST, k=121)
    with pytest.raises(ValueError, match="`temperature` must be a finite number > 0; received 0"):
        KNNProbe(TRAIN, TEST, temperature=0)
    with pytest.raises(ValueError, match="`train_data labels` has 119 entries but `train_data"):
        KNNProbe((TRAIN[0], TRAIN[1][:119]), TEST)
    with pytest.raises(ValueError, match=r"`test_data` must be a tuple \(images, labels\)"):
        KNNProbe(TRAIN, TEST[0])


def test_model_without_encoder_raises_at_fit():
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="needs a model with an `encoder` attribute.*Fix: "):
        model.fit(TRAIN[0], np.zeros(120), epochs=1, verbose=0, callbacks=[KNNProbe(TRAIN, TEST)])


class StopDuringEpoch(keras.callbacks.Callback):
    """Sets stop_training mid-epoch, as a wall-clock limit does."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch:
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch


def test_probe_runs_on_the_epoch_where_training_stops_early():
    model = _method()
    probe = KNNProbe(TRAIN, TEST, k=5, every_n_epochs=5)
    history = model.fit(
        TRAIN[0], epochs=10, batch_size=40, verbose=0, callbacks=[StopDuringEpoch(1), probe]
    )
    values = history.history["knn_accuracy"]
    assert len(values) == 2 and math.isnan(values[0]) and not math.isnan(values[1])
    assert sorted(probe.results) == [2]
