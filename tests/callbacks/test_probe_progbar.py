"""Tests for keras_ssl.callbacks.ProbeProgbar: no NaN placeholders on the console."""

import math
import re

import numpy as np
from stand_ins import labelled, make_method

from keras_ssl import backbones
from keras_ssl.callbacks import KNNProbe, LinearProbe, ProbeProgbar
from keras_ssl.methods import RotationPrediction

SHAPE = (8, 8, 1)
TRAIN, TEST = labelled(96, 0, SHAPE), labelled(48, 1, SHAPE)
NAN = re.compile(r"\bnan\b", re.IGNORECASE)


def _fit_a_method(verbose, capsys):
    model = RotationPrediction(backbones.SmallResNet(SHAPE, widths=(4, 8)))
    model.compile(optimizer="adam")
    probes = [
        KNNProbe(TRAIN, TEST, k=3, every_n_epochs=2),
        LinearProbe(TRAIN, TEST, probe_epochs=2),  # only after the last epoch
    ]
    history = model.fit(TRAIN[0], epochs=3, batch_size=32, verbose=verbose, callbacks=probes)
    return history, capsys.readouterr().out


def test_a_method_fit_prints_probe_values_only_where_they_exist(capsys):
    history, out = _fit_a_method(2, capsys)
    assert not NAN.search(out), out
    lines = [line for line in out.splitlines() if "loss" in line]
    assert len(lines) == 3, out  # verbose=2: one line per epoch
    assert ["knn_accuracy" in line for line in lines] == [False, True, True]
    assert ["linear_accuracy" in line for line in lines] == [False, False, True]
    # History and any other logs reader still get one value per epoch, NaN where not run.
    assert [math.isnan(v) for v in history.history["knn_accuracy"]] == [True, False, False]
    assert [math.isnan(v) for v in history.history["linear_accuracy"]] == [True, True, False]


def test_the_live_bar_has_no_nan_either(capsys):
    _, out = _fit_a_method(1, capsys)
    assert not NAN.search(out), out
    assert "knn_accuracy: " in out and "linear_accuracy: " in out


def test_only_probe_keys_are_hidden():
    bar = ProbeProgbar(["knn_accuracy"])
    logs = {"loss": float("nan"), "knn_accuracy": float("nan"), "linear_accuracy": np.nan}
    assert list(bar.shown(logs)) == ["loss", "linear_accuracy"]  # a NaN loss must be seen
    assert bar.shown({"knn_accuracy": 0.5, "loss": 1.0}) == {"knn_accuracy": 0.5, "loss": 1.0}


def test_any_keras_model_can_use_it(capsys):
    probe = KNNProbe(TRAIN, TEST, k=3, every_n_epochs=2)
    make_method(SHAPE).fit(
        TRAIN[0],
        epochs=2,
        batch_size=48,
        verbose=2,
        callbacks=[probe, ProbeProgbar(probe.log_keys)],
    )
    out = capsys.readouterr().out
    assert not NAN.search(out) and out.count("knn_accuracy") == 1, out
