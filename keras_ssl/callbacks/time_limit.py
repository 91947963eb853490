"""Stop training when a wall-clock budget is spent."""

import time

import keras
from absl import logging

from keras_ssl.validation import check_positive_number


class TimeLimit(keras.callbacks.Callback):
    """Stops ``fit`` at the end of the first batch after ``minutes`` of training.

    The epoch in progress ends early; callbacks that run at epoch end (probes, checkpoints)
    still run once more. The elapsed time is logged as ``train_minutes``.
    """

    #: Seconds from a monotonic clock (replaceable, e.g. by a fake clock in tests).
    clock = staticmethod(time.monotonic)

    def __init__(self, minutes):
        super().__init__()
        fix = "pass the training budget in minutes, e.g. TimeLimit(5)."
        check_positive_number(minutes, "minutes", fix=fix)
        self.minutes = minutes
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = self.clock()

    def elapsed_minutes(self):
        return (self.clock() - self.start) / 60.0

    def on_train_batch_end(self, batch, logs=None):
        if self.elapsed_minutes() >= self.minutes and not self.model.stop_training:
            logging.info("Time budget of %.1f min spent; stopping after this epoch.", self.minutes)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["train_minutes"] = self.elapsed_minutes()
