"""Stop training when a wall-clock budget is spent."""

import time

import keras
from absl import logging


class TimeLimit(keras.callbacks.Callback):
    """Stops ``fit`` at the end of the first batch after ``minutes`` of training.

    The epoch in progress ends early; callbacks that run at epoch end (probes, checkpoints)
    still run once more. The elapsed time is logged as ``train_minutes``.
    """

    def __init__(self, minutes):
        super().__init__()
        if not minutes or minutes <= 0:
            raise ValueError(
                f"`minutes` must be positive; received {minutes!r}. Fix: pass the training "
                "budget in minutes, e.g. TimeLimit(5)."
            )
        self.minutes = minutes
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def elapsed_minutes(self):
        return (time.monotonic() - self.start) / 60.0

    def on_train_batch_end(self, batch, logs=None):
        if self.elapsed_minutes() >= self.minutes and not self.model.stop_training:
            logging.info("Time budget of %.1f min spent; stopping after this epoch.", self.minutes)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["train_minutes"] = self.elapsed_minutes()
