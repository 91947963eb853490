"""Optimizers and schedules for SSL training."""

from keras_ssl.optimizers.factory import NO_WEIGHT_DECAY, build_optimizer, scaled_learning_rate
from keras_ssl.optimizers.lars import LARS
from keras_ssl.optimizers.schedules import WarmupCosine

__all__ = ["LARS", "NO_WEIGHT_DECAY", "WarmupCosine", "build_optimizer", "scaled_learning_rate"]
