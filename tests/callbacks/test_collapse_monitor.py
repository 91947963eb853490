"""Tests for keras_ssl.callbacks.collapse_monitor."""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from stand_ins import make_method

from keras_ssl.callbacks import CollapseMonitor, CollapseWarning, effective_rank, embedding_std
from keras_ssl.evaluation import extract_features

SHAPE = (4, 4, 3)


def _method(kernel_initializer="glorot_uniform", bias_initializer="zeros", units=16):
    return make_method(
        SHAPE,
        drift=False,
        units=units,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
    )


IMAGES = np.random.default_rng(0).uniform(size=(300, *SHAPE)).astype(np.float32)


def test_gaussian_embeddings_are_healthy():
    embeddings = np.random.default_rng(1).normal(size=(4000, 16))
    assert embedding_std(embeddings) == pytest.approx(1.0, abs=0.02)
    assert 15.0 < effective_rank(embeddings) <= 16.0


def test_identical_embeddings_are_collapsed():
    embeddings = np.tile(np.random.default_rng(2).normal(size=(1, 16)), (50, 1))
    assert embedding_std(embeddings) == 0.0
    assert effective_rank(embeddings) == 1.0


def test_rank_two_embeddings():
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 16))
    assert 1.0 < effective_rank(embeddings) <= 2.0 + 1e-6


def test_hand_computed_values():
    # +-e1 and +-e2 (any scale): every coordinate is [1, -1, 0, 0] -> std sqrt(1/2), times
    # sqrt(2) = 1; the centred matrix has two equal singular values -> effective rank 2.
    embeddings = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    assert embedding_std(embeddings) == pytest.approx(1.0, abs=1e-12)
    assert effective_rank(embeddings) == pytest.approx(2.0, abs=1e-12)
    # Singular values 2 and 1 (rows +-(1,0) twice, +-(0,1) once, normalised): p = (2/3, 1/3).
    embeddings = np.array([[1.0, 0], [-1.0, 0], [1.0, 0], [-1.0, 0], [0, 1.0], [0, -1.0]])
    p = np.array([2.0, math.sqrt(2.0)]) / (2.0 + math.sqrt(2.0))
    assert effective_rank(embeddings) == pytest.approx(math.exp(-np.sum(p * np.log(p))))


def test_callback_logs_the_statistics_of_the_encoder_embeddings():
    model = _method()
    monitor = CollapseMonitor(IMAGES, every_n_epochs=2, name_prefix="student_")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)  # a healthy encoder must not warn
        history = model.fit(IMAGES, epochs=3, batch_size=100, verbose=0, callbacks=[monitor])
    embeddings = extract_features(model.encoder, IMAGES)
    stds = history.history["student_embedding_std"]
    ranks = history.history["student_effective_rank"]
    assert math.isnan(stds[0]) and math.isnan(ranks[0])
    assert stds[1] == stds[2] == embedding_std(embeddings)
    assert ranks[1] == ranks[2] == effective_rank(embeddings)
    assert stds[2] > 0.3 and ranks[2] > 2.0
    assert monitor.results[3] == {"embedding_std": stds[2], "effective_rank": ranks[2]}


def test_collapsed_encoder_warns_with_the_epoch_and_values():
    model = _method(kernel_initializer="zeros", bias_initializer="ones")  # constant output
    with pytest.warns(CollapseWarning, match=r"Epoch 1: .*embedding_std = 0 < std_threshold"):
        history = model.fit(
            IMAGES, epochs=1, verbose=0, callbacks=[CollapseMonitor(IMAGES, std_threshold=0.1)]
        )
    assert history.history["embedding_std"] == [0.0]
    assert history.history["effective_rank"] == [1.0]


def test_rank_threshold_warns_on_dimensional_collapse():
    model = _method()
    images = tf.data.Dataset.from_tensor_slices(IMAGES).batch(64)
    monitor = CollapseMonitor(images, std_threshold=0.0, rank_threshold=100.0)
    with pytest.warns(CollapseWarning, match=r"effective_rank = [0-9.]+ < rank_threshold = 100"):
        model.fit(IMAGES, epochs=1, verbose=0, callbacks=[monitor])


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="`every_n_epochs` must be an integer >= 1"):
        CollapseMonitor(IMAGES, every_n_epochs=0)
    with pytest.raises(ValueError, match="`std_threshold` must be a number; received 'low'"):
        CollapseMonitor(IMAGES, std_threshold="low")
    with pytest.raises(ValueError, match=r"rank 4 \[N, height, width, channels\]"):
        CollapseMonitor(IMAGES[0, 0])
    with pytest.raises(ValueError, match=r"`embeddings` must have rank 2"):
        effective_rank(np.zeros(5))
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="CollapseMonitor needs a model with an `encoder`"):
        model.fit(IMAGES, np.zeros(300), verbose=0, callbacks=[CollapseMonitor(IMAGES)])
