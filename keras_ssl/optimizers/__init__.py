"""Optimizers and schedules for SSL training."""

from keras_ssl.optimizers.lars import LARS
from keras_ssl.optimizers.schedules import WarmupCosine

__all__ = ["LARS", "WarmupCosine"]
