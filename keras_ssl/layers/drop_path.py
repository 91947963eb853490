"""``DropPath``: stochastic depth on residual branches, and its removal from a network's copy."""

import keras
import tensorflow as tf

from keras_ssl.validation import check_in_range


@keras.saving.register_keras_serializable(package="keras_ssl")
class DropPath(keras.layers.Layer):
    """Stochastic depth (Huang et al. 2016, arXiv:1603.09382) on a residual branch.

    In training, each example's branch output is zeroed with probability ``rate`` and the kept
    ones are scaled by ``1 / (1 - rate)``; at inference it is the identity.

    Args:
        rate: drop probability in ``[0, 1)``.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, rate=0.0, **kwargs):
        super().__init__(**kwargs)
        fix = "pass e.g. 0.1 (DINO's drop_path_rate for ViT-S) or 0 to disable stochastic depth."
        self.rate = check_in_range(rate, "rate", 0, 1, fix, high_open=True)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = tf.concat([tf.shape(inputs)[:1], tf.ones([tf.rank(inputs) - 1], tf.int32)], 0)
        mask = tf.floor(keep + tf.random.uniform(shape, dtype=tf.float32)) / keep
        return inputs * tf.cast(mask, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


def without_stochastic_depth(network):
    """Sets every ``DropPath`` and ``Dropout`` rate in ``network`` (nested layers included) to 0
    and returns ``network``.

    DINO's teacher is a structural copy of the student, whose ViT may use stochastic depth;
    DINO builds its teacher without it (and without dropout), while keeping training-mode
    BatchNorm.
    """
    stack = [network]
    while stack:
        layer = stack.pop()
        if isinstance(layer, (DropPath, keras.layers.Dropout)):
            layer.rate = 0.0
        stack.extend(getattr(layer, "layers", []))
    return network
