"""Learning-rate schedules."""

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_ssl")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine decay to ``final``.

    The schedule of SimCLR, BYOL and most SSL recipes (Goyal et al. 2017 warm-up; Loshchilov &
    Hutter 2017 cosine decay without restarts).

    Args:
        peak: learning rate reached at the end of the warm-up.
        total_steps: length of the whole schedule in optimizer steps.
        warmup_steps: steps of linear warm-up (0 for none).
        final: learning rate at ``total_steps`` and after.
    """

    def __init__(self, peak, total_steps, warmup_steps=0, final=0.0):
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps or peak <= 0:
            raise ValueError(
                f"WarmupCosine needs peak > 0 and 0 <= warmup_steps <= total_steps >= 1; received "
                f"peak={peak}, warmup_steps={warmup_steps}, total_steps={total_steps}. Fix: "
                "compute total_steps as epochs * steps_per_epoch."
            )
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.final = float(final)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = self.peak * step / max(self.warmup_steps, 1)
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = tf.clip_by_value((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = self.final + 0.5 * (self.peak - self.final) * (1 + tf.cos(math.pi * progress))
        return tf.where(step < self.warmup_steps, warmup, cosine)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final": self.final,
        }
