import keras
import numpy as np
import pytest

from keras_ssl.callbacks import TimeLimit


class _Clock:
    """A fake ``time.monotonic`` that advances 30 s per reading."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 30.0
        return self.now


def _fit(callback, epochs):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((8, 2), "float32")
    y = np.zeros((8, 1), "float32")
    return model.fit(x, y, batch_size=2, epochs=epochs, callbacks=[callback], verbose=0)


def test_stops_after_the_first_batch_past_the_budget_and_logs_minutes():
    callback = TimeLimit(1.0)
    callback.clock = _Clock()
    # Readings: train begin at 30 s, then +30 s per batch-end check: 1.0 min is reached at the
    # second batch (90 s - 30 s = 1 min), so training stops in the first epoch.
    history = _fit(callback, epochs=5)
    assert len(history.history["loss"]) == 1
    assert history.history["train_minutes"][0] == pytest.approx(1.5, abs=1e-9)


def test_a_budget_longer_than_training_changes_nothing():
    callback = TimeLimit(1000.0)
    callback.clock = _Clock()
    history = _fit(callback, epochs=3)
    assert len(history.history["loss"]) == 3


@pytest.mark.parametrize("minutes", [0, -1, None, True, "5"])
def test_rejects_a_non_positive_budget(minutes):
    with pytest.raises(ValueError, match=r"`minutes` must be a positive number; received .*Fix"):
        TimeLimit(minutes)
