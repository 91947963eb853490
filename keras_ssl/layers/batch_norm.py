"""BatchNormalization on TensorFlow's fused kernel: the same layer, a faster step."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_ssl")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` computed by one ``FusedBatchNormV3`` kernel.

    Keras 3's layer upcasts every activation to float32 and normalises with separate moment,
    subtract, multiply and add ops; the fused kernel reads bfloat16/float16 activations as they
    are (statistics still accumulate in float32) and has a fused gradient: the largest single
    speed-up of the ResNet-18 SimCLR step in ``benchmarks/speed_ablation.py`` (README, Speed).

    Same arguments, weights, moving-statistics update (biased batch variance, as Keras) and
    saved format as the Keras layer, so checkpoints move between the two. The Keras computation is
    kept where the fused kernel does not apply: ``synchronized=True`` (the moments are reduced
    across replicas first), ``renorm``, a ``mask``, float64, an axis other than the last, or an
    input rank other than 2 or 4.

    ``BatchNormalization.fused = False`` (class-wide) switches back to the Keras computation, for
    comparisons such as the benchmark's before/after rows.
    """

    fused = True

    def _fused_applies(self, inputs, mask):
        rank = len(inputs.shape)
        return (
            self.fused
            and not self.synchronized
            and not self.renorm
            and mask is None
            and rank in (2, 4)
            and self.axis in (-1, rank - 1)
            and inputs.dtype in (tf.float32, tf.bfloat16, tf.float16)
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = inputs if len(inputs.shape) == 4 else inputs[:, None, None, :]
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        learning = bool(training) and self.trainable
        if learning:
            mean, variance = tf.zeros([0]), tf.zeros([0])
        else:
            mean = tf.cast(self.moving_mean, tf.float32)
            variance = tf.cast(self.moving_variance, tf.float32)
        y, batch_mean, batch_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=gamma,
            offset=beta,
            mean=mean,
            variance=variance,
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=learning,
        )
        if learning:
            # The kernel returns the unbiased (n - 1) variance; Keras averages the biased one.
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
            batch_variance = batch_variance * (count - 1.0) / tf.maximum(count, 1.0)
            momentum = self.momentum
            self.moving_mean.assign(
                tf.cast(self.moving_mean, tf.float32) * momentum + batch_mean * (1.0 - momentum)
            )
            self.moving_variance.assign(
                tf.cast(self.moving_variance, tf.float32) * momentum
                + batch_variance * (1.0 - momentum)
            )
        y = y if len(inputs.shape) == 4 else tf.reshape(y, tf.shape(inputs))
        return tf.cast(y, self.compute_dtype)
