"""``EpochCounter``: makes an input pipeline's randomness a function of (seed, epoch)."""

import keras
import tensorflow as tf


class EpochCounter(keras.callbacks.Callback):
    """A callback holding the current epoch in a variable that input pipelines read.

    ``make_ssl_dataset(..., seed=s, epoch_counter=counter)`` draws the shuffling order and the
    augmentations of epoch ``e`` from ``(s, e)`` alone, so a run resumed at epoch ``e`` (e.g. by
    ``keras.callbacks.BackupAndRestore``) sees exactly the data an uninterrupted run would.
    Pass the same counter to ``fit``'s callbacks; it sets the variable at the start of every
    epoch, before Keras creates that epoch's iterator.
    """

    def __init__(self):
        super().__init__()
        with tf.init_scope():
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)
