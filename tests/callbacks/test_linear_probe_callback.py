"""Tests for keras_ssl.callbacks.LinearProbe with a stand-in SSL model."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from stand_ins import labelled, make_method

from keras_ssl.callbacks import LinearProbe
from keras_ssl.evaluation import extract_features, linear_probe

SHAPE = (6, 6, 1)


def _method():
    return make_method(SHAPE)


TRAIN, TEST = labelled(120, 0, SHAPE), labelled(60, 1, SHAPE)


class OfflineLinear(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.values = {}

    def on_epoch_end(self, epoch, logs=None):
        train = extract_features(self.model.encoder, TRAIN[0], normalize=False)
        test = extract_features(self.model.encoder, TEST[0], normalize=False)
        self.values[epoch + 1] = linear_probe(train, TRAIN[1], test, TEST[1], epochs=20)


def test_runs_on_listed_epochs_and_the_last_one():
    model = _method()
    probe, offline = LinearProbe(TRAIN, TEST, epochs_to_run=[2], probe_epochs=20), OfflineLinear()
    history = model.fit(TRAIN[0], epochs=4, batch_size=60, verbose=0, callbacks=[probe, offline])
    values = history.history["linear_accuracy"]
    assert [math.isnan(v) for v in values] == [True, False, True, False]
    assert sorted(probe.results) == [2, 4]
    for epoch in (2, 4):
        assert probe.results[epoch] == offline.values[epoch]
        assert values[epoch - 1] == offline.values[epoch]["accuracy"]
    assert 0.5 < values[-1] <= 1.0


def test_default_runs_only_after_the_last_epoch_and_every_n_adds_epochs():
    model = _method()
    last_only = LinearProbe(TRAIN, TEST, probe_epochs=2, name="last")
    periodic = LinearProbe(TRAIN, TEST, every_n_epochs=2, probe_epochs=2, name="periodic")
    history = model.fit(
        TRAIN[0], epochs=3, batch_size=60, verbose=0, callbacks=[last_only, periodic]
    )
    assert [math.isnan(v) for v in history.history["last"]] == [True, True, False]
    assert [math.isnan(v) for v in history.history["periodic"]] == [True, False, False]


def test_dataset_input_matches_arrays():
    model = _method()
    model.fit(TRAIN[0], epochs=1, batch_size=60, verbose=0)
    arrays = LinearProbe(TRAIN, TEST, probe_epochs=5)
    datasets = LinearProbe(
        tf.data.Dataset.from_tensor_slices(TRAIN).batch(50),
        tf.data.Dataset.from_tensor_slices(TEST).batch(50),
        probe_epochs=5,
    )
    arrays.set_model(model)
    datasets.set_model(model)
    assert arrays.evaluate() == datasets.evaluate()


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="`epochs_to_run` must be a list of epoch numbers >= 1"):
        LinearProbe(TRAIN, TEST, epochs_to_run=[0, 3])
    with pytest.raises(ValueError, match="`every_n_epochs` must be an integer >= 1; received 0"):
        LinearProbe(TRAIN, TEST, every_n_epochs=0)
    with pytest.raises(ValueError, match="`probe_epochs` must be an integer >= 1"):
        LinearProbe(TRAIN, TEST, probe_epochs=0)
    with pytest.raises(ValueError, match="`learning_rate` must be a number > 0"):
        LinearProbe(TRAIN, TEST, learning_rate=-1.0)
    with pytest.raises(ValueError, match="`test_data labels` has 59 entries"):
        LinearProbe(TRAIN, (TEST[0], TEST[1][:59]))
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="LinearProbe needs a model with an `encoder` attribute"):
        model.fit(TRAIN[0], np.zeros(120), verbose=0, callbacks=[LinearProbe(TRAIN, TEST)])
