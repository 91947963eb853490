"""Keras callbacks that evaluate a self-supervised encoder while it trains."""

from keras_ssl.callbacks.clustering_probe import ClusteringProbe
from keras_ssl.callbacks.collapse_monitor import (
    CollapseMonitor,
    CollapseWarning,
    effective_rank,
    embedding_std,
)
from keras_ssl.callbacks.knn_probe import KNNProbe
from keras_ssl.callbacks.linear_probe import LinearProbe
from keras_ssl.callbacks.non_finite import NonFiniteLossError, StopOnNonFinite
from keras_ssl.callbacks.progbar import ProbeProgbar
from keras_ssl.callbacks.time_limit import TimeLimit

__all__ = [
    "ClusteringProbe",
    "CollapseMonitor",
    "CollapseWarning",
    "KNNProbe",
    "LinearProbe",
    "NonFiniteLossError",
    "ProbeProgbar",
    "StopOnNonFinite",
    "TimeLimit",
    "effective_rank",
    "embedding_std",
]
